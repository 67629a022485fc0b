/**
 * The Firestore database of the per-image state (terraform/firestore.tf): a named Native-mode
 * database from shared/core/topology.json that Terraform never deletes by surprise, one composite index
 * per index of the topology, FIRESTORE_DATABASE in every function's environment, and
 * roles/datastore.user for the function service accounts only, each conditioned to this database.
 * The index map, the location and the IAM condition are taken from the parsed module and evaluated
 * by Terraform itself in a scratch module (variables.tf, settings.tf and those expressions as
 * outputs, with the database name as a stand-in for the provider's value): no provider is needed.
 * The outcome markers are gone with the move to Firestore: nothing may refer to them.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV_VARS } from '../../shared/core/config.js';
import {
  allResources,
  block,
  dynamicBlock,
  envKeys,
  expr,
  loadModule,
  REPO_ROOT,
  TERRAFORM_DIR,
  topologyPath,
  type Body,
  type Module,
} from './hcl.js';
import { scratchModule, type ScratchModule } from './scratch.js';

interface FirestoreTopology {
  database: { name: string; env: string };
  collections: Record<string, string>;
  indexes: Array<{ collection: string; fields: Array<[string, 'ASCENDING' | 'DESCENDING']>; query: string }>;
  ttl: Array<{ collection: string; field: string; why: string }>;
}

const topologyJson = JSON.parse(readFileSync(join(REPO_ROOT, 'shared', 'core', 'topology.json'), 'utf8')) as {
  firestore: FirestoreTopology;
  functions: Record<string, unknown>;
};
const firestore = topologyJson.firestore;
const FUNCTION_KEYS = Object.keys(topologyJson.functions);

/** An HCL expression for a parsed value ("${x}" → x, a literal → its JSON), with replacements. */
function hclOf(value: unknown, replacements: Array<[RegExp, string]> = []): string {
  let text = expr(value) ?? JSON.stringify(value);
  for (const [pattern, replacement] of replacements) text = text.replace(pattern, replacement);
  return text;
}

describe('terraform: the Firestore database (firestore.tf)', function () {
  let mod: Module;
  let database: Body;
  let index: Body;

  before(async function () {
    mod = await loadModule(TERRAFORM_DIR);
    database = mod.resources.google_firestore_database?.this as Body;
    index = mod.resources.google_firestore_index?.this as Body;
    expect(database, 'google_firestore_database.this').to.exist;
    expect(index, 'google_firestore_index.this').to.exist;
  });

  describe('the database', function () {
    it('is the one named database of the topology, in Native mode, in project_id', function () {
      expect(Object.keys(mod.resources.google_firestore_database!)).to.deep.equal(['this']);
      expect(topologyPath(mod, database.name)).to.deep.equal(['firestore', 'database', 'name']);
      expect(database.type).to.equal('FIRESTORE_NATIVE');
      expect(database.project).to.equal('${var.project_id}');
      for (const [file, text] of Object.entries(mod.sources))
        expect(text.includes(`"${firestore.database.name}"`), `${file} hardcodes the database name`).to.equal(false);
    });

    it('keeps its data: delete protection on, and destroy asks Firestore (which refuses) instead of abandoning it', function () {
      expect(database.delete_protection_state).to.equal('DELETE_PROTECTION_ENABLED');
      expect(database.deletion_policy).to.equal('DELETE');
      expect(mod.sources['firestore.tf']).to.include('terraform-provider-google#22535');
    });

    it('uses pessimistic concurrency, what the server client library expects, and says why', function () {
      expect(database.concurrency_mode).to.equal('PESSIMISTIC');
      expect(mod.sources['firestore.tf']).to.match(/PESSIMISTIC, Firestore's default[\s\S]*server client/);
    });

    it('takes its location and point-in-time recovery from variables, after the APIs', function () {
      expect(database.location_id).to.equal('${local.firestore_location}');
      expect(expr(mod.locals.firestore_location)).to.equal(
        'var.firestore_location == null ? var.region : var.firestore_location',
      );
      expect(database.point_in_time_recovery_enablement).to.equal('${var.firestore_point_in_time_recovery_enablement}');
      expect(mod.variables.firestore_location!.default).to.equal(null);
      expect(mod.variables.firestore_point_in_time_recovery_enablement!.default).to.equal(
        'POINT_IN_TIME_RECOVERY_DISABLED',
      );
      expect(database.depends_on).to.deep.equal(['${google_project_service.this}']);
    });

    it('is an output, for tools run against the deployment', function () {
      expect(mod.outputs.firestore_database?.value).to.equal('${google_firestore_database.this.name}');
    });

    it('enables the Firestore API with the others', function () {
      expect(expr(mod.locals.services)).to.include('"firestore.googleapis.com"');
    });
  });

  describe('the indexes', function () {
    it('creates one index resource per entry of the topology, on the database, fields in order', function () {
      expect(Object.keys(mod.resources.google_firestore_index!)).to.deep.equal(['this']);
      expect(index.for_each).to.equal('${local.firestore_indexes}');
      expect(index.project).to.equal('${var.project_id}');
      // A reference to the database, so every index is created after it (and destroyed before it).
      expect(index.database).to.equal('${google_firestore_database.this.name}');
      expect(index.collection).to.equal('${local.topology.firestore.collections[each.value.collection]}');
      const fields = dynamicBlock(index, 'fields');
      expect(fields?.forEach).to.equal('${each.value.fields}');
      expect(fields?.content).to.deep.equal({ field_path: '${fields.value[0]}', order: '${fields.value[1]}' });
      expect(index.query_scope, 'COLLECTION, the default').to.equal(undefined);
    });
  });

  describe('the TTL policies', function () {
    let ttl: Body;
    before(function () {
      ttl = mod.resources.google_firestore_field?.ttl as Body;
      expect(ttl, 'google_firestore_field.ttl').to.exist;
    });

    it('lets signed-URL tickets expire by themselves: tickets.expireAt in the topology, one TTL field per collection', function () {
      expect(firestore.ttl).to.deep.include({
        collection: 'tickets',
        field: 'expireAt',
        why: firestore.ttl.find((t) => t.collection === 'tickets')?.why,
      });
      for (const entry of firestore.ttl) expect(Object.keys(firestore.collections)).to.include(entry.collection);
      const collections = firestore.ttl.map((t) => t.collection);
      expect(new Set(collections).size, 'Firestore allows one TTL field per collection group').to.equal(
        collections.length,
      );
    });

    it('is one google_firestore_field per entry, on the database: ttl_config {} on, single-field indexes off (index_config {})', function () {
      expect(Object.keys(mod.resources.google_firestore_field!)).to.deep.equal(['ttl']);
      expect(ttl).to.include({
        for_each: '${local.firestore_ttl_fields}',
        project: '${var.project_id}',
        database: '${google_firestore_database.this.name}',
        collection: '${local.topology.firestore.collections[each.value.collection]}',
        field: '${each.value.field}',
      });
      // hcl2json renders an empty block as [{}]: present, with no argument.
      expect(ttl.ttl_config, 'an empty ttl_config turns the policy on').to.deep.equal([{}]);
      expect(ttl.index_config, 'an empty index_config exempts the field from single-field indexes').to.deep.equal([{}]);
      expect(block(ttl, 'timeouts'), 'room for the long-running operation').to.deep.equal({
        create: '60m',
        update: '60m',
      });
      const precondition = block(block(ttl, 'lifecycle'), 'precondition');
      expect(String(precondition?.condition)).to.include('ttl.collection == each.value.collection');
      expect(mod.sources['firestore.tf']).to.include('Manage data retention with TTL policies');
    });
  });

  describe('evaluated by Terraform', function () {
    let scratch: ScratchModule;
    let evaluated: {
      indexes: Record<string, { collection: string; fields: Array<{ field_path: string; order: string }> }>;
      ttl: Record<string, { collection: string; field: string }>;
      location: string;
      condition: string;
    };

    function evaluate(vars: Record<string, unknown>): typeof evaluated {
      return scratch.evaluate(vars) as typeof evaluated;
    }

    before(async function () {
      this.timeout(120_000);
      const db = mod.resources.google_firestore_database!.this!;
      const idx = mod.resources.google_firestore_index!.this!;
      const fields = dynamicBlock(idx, 'fields')!.content;
      const ttlField = mod.resources.google_firestore_field!.ttl!;
      const binding = mod.resources.google_project_iam_member!.function_firestore!;
      const databaseName: [RegExp, string] = [/google_firestore_database\.this\.name/g, `(${hclOf(db.name)})`];
      const perIndex: Array<[RegExp, string]> = [
        [/each\.value/g, 'v'],
        [/fields\.value/g, 'f'],
      ];
      const hcl = `locals {
  firestore_indexes    = ${hclOf(mod.locals.firestore_indexes)}
  firestore_ttl_fields = ${hclOf(mod.locals.firestore_ttl_fields)}
  firestore_location   = ${hclOf(mod.locals.firestore_location)}
}
output "ttl" {
  value = { for k, v in ${hclOf(ttlField.for_each)} : k => {
    collection = ${hclOf(ttlField.collection, perIndex)}
    field      = ${hclOf(ttlField.field, perIndex)}
  } }
}
output "indexes" {
  value = { for k, v in local.firestore_indexes : k => {
    collection = ${hclOf(idx.collection, perIndex)}
    fields     = [for f in v.fields : { field_path = ${hclOf(fields.field_path, perIndex)}, order = ${hclOf(fields.order, perIndex)} }]
  } }
}
output "location" {
  value = ${hclOf(db.location_id)}
}
output "condition" {
  value = "${String(block(binding, 'condition')!.expression)
    .replace(/\$\{google_firestore_database\.this\.name\}/g, `\${${databaseName[1]}}`)
    .replace(/"/g, '\\"')}"
}
`;
      scratch = scratchModule('tf-firestore', { 'firestore.tf': hcl });
      evaluated = evaluate({});
    });

    after(function () {
      scratch?.remove();
    });

    it('has an index for every index of the topology, with its collection and fields in order, under stable keys', function () {
      const expected = firestore.indexes.map((i) => ({
        collection: firestore.collections[i.collection],
        fields: i.fields.map(([field_path, order]) => ({ field_path, order })),
      }));
      expect(Object.values(evaluated.indexes)).to.have.deep.members(expected);
      expect(Object.keys(evaluated.indexes)).to.have.length(firestore.indexes.length);
      // The key names the index: its collection and fields (a changed index is a new resource).
      expect(Object.keys(evaluated.indexes)).to.include('images(status ASCENDING, staleAt ASCENDING)');
    });

    it("has upload's index of an owner's assets, newest first: assets(owner ASCENDING, createdAt DESCENDING)", function () {
      expect(evaluated.indexes['assets(owner ASCENDING, createdAt DESCENDING)']).to.deep.equal({
        collection: firestore.collections.assets,
        fields: [
          { field_path: 'owner', order: 'ASCENDING' },
          { field_path: 'createdAt', order: 'DESCENDING' },
        ],
      });
    });

    it('puts the TTL policies on tickets.expireAt and webhookDeliveries.expireAt, under stable keys', function () {
      expect(evaluated.ttl).to.deep.equal({
        'tickets.expireAt': { collection: firestore.collections.tickets, field: 'expireAt' },
        'webhookDeliveries.expireAt': { collection: firestore.collections.webhookDeliveries, field: 'expireAt' },
      });
    });

    it('puts the database in the region unless firestore_location says otherwise', function () {
      this.timeout(60_000);
      expect(evaluated.location).to.equal('us-central1');
      expect(evaluate({ region: 'europe-west1' }).location).to.equal('europe-west1');
      expect(evaluate({ region: 'europe-west1', firestore_location: 'eur3' }).location).to.equal('eur3');
    });

    it('conditions datastore.user to projects/PROJECT_ID/databases/NAME', function () {
      expect(evaluated.condition).to.equal(
        `resource.name == "projects/my-project-123/databases/${firestore.database.name}"`,
      );
    });
  });

  describe('the functions', function () {
    it('get FIRESTORE_DATABASE, under the name the topology gives it, in every environment', function () {
      const env = firestore.database.env;
      expect(ENV_VARS, 'shared/core/config.ts reads it').to.include(env);
      expect((mod.locals.env_common as Body)[env]).to.equal('${google_firestore_database.this.name}');
      for (const key of FUNCTION_KEYS) {
        const { keys } = envKeys(mod, `\${local.function_env.${key}}`);
        expect([...keys], `${key}'s environment`).to.include(env);
      }
    });

    it('get roles/datastore.user, conditioned to this database; nobody else gets a Firestore role', function () {
      const binding = mod.resources.google_project_iam_member!.function_firestore!;
      expect(binding).to.include({
        for_each: '${local.firestore_functions}',
        project: '${var.project_id}',
        role: 'roles/datastore.user',
        member: 'serviceAccount:${google_service_account.function[each.key].email}',
      });
      expect(expr(mod.locals.firestore_functions)).to.equal(
        'toset(["upload", "ingest", "resize", "cleanup", "webhooks"])',
      );
      expect([...FUNCTION_KEYS].sort(), 'every function of the topology uses Firestore').to.deep.equal([
        'cleanup',
        'ingest',
        'resize',
        'upload',
        'webhooks',
      ]);
      const condition = block(binding, 'condition');
      expect(condition?.expression).to.equal(
        'resource.name == "projects/${var.project_id}/databases/${google_firestore_database.this.name}"',
      );
      expect(String(condition?.title)).to.have.length.greaterThan(0);
      expect(mod.sources['iam.tf'], 'cites where Google documents the condition').to.include(
        'https://cloud.google.com/firestore/native/docs/manage-databases',
      );
      const firestoreRoles = allResources(mod).filter(([, , body]) =>
        /^roles\/(datastore|firebase)/.test(String(body.role)),
      );
      expect(firestoreRoles.map(([t, n]) => `${t}.${n}`)).to.deep.equal([
        'google_project_iam_member.function_firestore',
      ]);
    });
  });

  describe('no outcome markers', function () {
    it('refers nowhere to the outcomes/ prefix or its grant', function () {
      for (const [file, text] of Object.entries(mod.sources)) {
        expect(text, file).not.to.include('prefixes.outcomes');
        expect(text, file).not.to.include('outcomes/');
      }
      expect(mod.resources.google_storage_bucket_iam_member?.resize_outcomes).to.equal(undefined);
      const resizeOnUploads = (mod.locals.function_bucket_roles as Array<Record<string, unknown>>).filter(
        (r) => r.function === 'resize' && r.bucket === 'uploads',
      );
      expect(
        resizeOnUploads.map((r) => r.role),
        'resize only reads the uploads bucket',
      ).to.deep.equal(['roles/storage.objectViewer']);
      const resizeGrants = allResources(mod).filter(
        ([type, , body]) =>
          type === 'google_storage_bucket_iam_member' && String(body.member).includes('function["resize"]'),
      );
      expect(
        resizeGrants.map(([t, n]) => `${t}.${n}`),
        'no resize grant outside the table',
      ).to.deep.equal([]);
    });
  });
});
