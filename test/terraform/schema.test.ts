/**
 * What `terraform validate` would check first, offline: every argument and nested block of every
 * google_*, time_* and archive_* resource and data source in terraform/ exists in the provider's
 * schema (test/terraform/provider-schema.ts: @cdktf/provider-google 16.12.1 = hashicorp/google
 * 6.50.0, and the time and archive packages), blocks are written as blocks and attributes as
 * attributes, and required arguments are set. The checker is first shown to fail on small
 * snippets: a misspelt argument, a block written as an attribute, a missing required argument.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TERRAFORM_DIR } from './hcl.js';
import { parseHclStructure } from './hcl-structure.js';
import { schemaErrors } from './schema-check.js';

describe('terraform: arguments and blocks against the provider schemas', function () {
  describe('the checker, on small snippets', function () {
    const good = `
resource "google_pubsub_subscription" "s" {
  name  = "s"
  topic = "t"
  expiration_policy {
    ttl = ""
  }
  dynamic "dead_letter_policy" {
    for_each = []
    content {
      dead_letter_topic = "d"
    }
  }
  lifecycle {
    precondition {
      condition     = true
      error_message = "never"
    }
  }
}`;

    it('accepts a correct resource (blocks, a dynamic block, lifecycle)', function () {
      expect(schemaErrors(good)).to.deep.equal([]);
    });

    it('fails on a misspelt argument', function () {
      const text = good.replace('topic = "t"', 'topik = "t"');
      expect(schemaErrors(text)).to.deep.include.members([
        'snippet.tf: google_pubsub_subscription.s: unknown argument "topik" (line 4)',
        'snippet.tf: google_pubsub_subscription.s: missing required argument "topic"',
      ]);
    });

    it('fails on a misspelt argument in a nested block', function () {
      expect(schemaErrors(good.replace('ttl = ""', 'tll = ""'))).to.deep.equal([
        'snippet.tf: google_pubsub_subscription.s.expiration_policy: unknown argument "tll" (line 6)',
        'snippet.tf: google_pubsub_subscription.s.expiration_policy: missing required argument "ttl"',
      ]);
    });

    it('fails on a block written as an attribute', function () {
      const text = good.replace('expiration_policy {\n    ttl = ""\n  }', 'expiration_policy = [{ ttl = "" }]');
      expect(schemaErrors(text)).to.deep.equal([
        'snippet.tf: google_pubsub_subscription.s: "expiration_policy" is a block, written as an attribute (line 5): write expiration_policy { … }',
      ]);
    });

    it('fails on an attribute written as a block', function () {
      const text = good.replace('name  = "s"', 'labels {\n    a = "b"\n  }\n  name = "s"');
      expect(schemaErrors(text)).to.include(
        'snippet.tf: google_pubsub_subscription.s: "labels" is an attribute, written as a block (line 3): write labels = …',
      );
    });

    it('fails on a missing required argument', function () {
      expect(schemaErrors('resource "google_storage_bucket" "b" {\n  name = "b"\n}\n')).to.deep.equal([
        'snippet.tf: google_storage_bucket.b: missing required argument "location"',
      ]);
    });

    it('fails on a missing required argument inside a dynamic block', function () {
      expect(schemaErrors(good.replace('dead_letter_topic = "d"', 'max_delivery_attempts = 5'))).to.deep.equal([]);
      const text = `
resource "google_cloudfunctions2_function" "f" {
  name     = "f"
  location = "l"
  dynamic "event_trigger" {
    for_each = []
    content {
      dynamic "event_filters" {
        for_each = []
        content {
          attribute = "bucket"
        }
      }
    }
  }
}`;
      expect(schemaErrors(text)).to.deep.equal([
        'snippet.tf: google_cloudfunctions2_function.f.event_trigger.event_filters: missing required argument "value"',
      ]);
    });

    it('fails on a resource type the provider does not have, and checks time_ and archive_ too', function () {
      expect(schemaErrors('resource "google_cloudfunction2_function" "f" {\n}\n')).to.deep.equal([
        'snippet.tf: google_cloudfunction2_function.f: the provider has no resource type google_cloudfunction2_function',
      ]);
      expect(schemaErrors('resource "time_sleep" "w" {\n  create_durations = "1s"\n}\n')).to.deep.equal([
        'snippet.tf: time_sleep.w: unknown argument "create_durations" (line 2)',
      ]);
      expect(schemaErrors('data "archive_file" "z" {\n  type = "zip"\n}\n')).to.deep.equal([
        'snippet.tf: data.archive_file.z: missing required argument "output_path"',
      ]);
    });
  });

  describe('terraform/', function () {
    const files = readdirSync(TERRAFORM_DIR)
      .filter((f) => f.endsWith('.tf'))
      .sort();

    it('checks every resource and data source type the module uses', function () {
      const types = new Set<string>();
      for (const file of files) {
        for (const block of parseHclStructure(readFileSync(join(TERRAFORM_DIR, file), 'utf8')).blocks) {
          if (block.type === 'resource' || block.type === 'data')
            types.add(`${block.type === 'data' ? 'data.' : ''}${block.labels[0]}`);
        }
      }
      expect(
        [...types].filter((t) => !/^(data\.)?(google|time|archive)_/.test(t)),
        'types without a schema here',
      ).to.deep.equal([]);
      expect(types.size).to.be.greaterThan(20);
    });

    it('would catch each of the three mistakes in the real functions.tf', function () {
      const text = readFileSync(join(TERRAFORM_DIR, 'functions.tf'), 'utf8');
      const where = 'functions.tf: google_cloudfunctions2_function.this';
      expect(
        schemaErrors(text.replace('available_memory ', 'available_memroy '), 'functions.tf').join('\n'),
      ).to.include(`${where}.service_config: unknown argument "available_memroy"`);
      expect(
        schemaErrors(text.replace('  build_config {', '  build_config = {'), 'functions.tf').join('\n'),
      ).to.include(`${where}: "build_config" is a block, written as an attribute`);
      expect(schemaErrors(text.replace(/\n {2}location += var\.region\n/, '\n'), 'functions.tf')).to.include(
        `${where}: missing required argument "location"`,
      );
    });

    for (const file of files) {
      it(`${file}: every argument and block exists, in its form, and required ones are set`, function () {
        expect(schemaErrors(readFileSync(join(TERRAFORM_DIR, file), 'utf8'), file)).to.deep.equal([]);
      });
    }
  });
});
