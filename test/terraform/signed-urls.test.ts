/**
 * terraform/signed_urls.tf and what it needs elsewhere: upload may sign as itself only (token
 * creator on its own account), create objects under incoming/ through a conditional binding, the
 * uploads bucket admits browser PUTs from the upload API's origins, the limits reach the code's
 * environment, and the new variables' validations are Terraform's own (plan on variables.tf alone).
 */
import { expect } from 'chai';
import { ENV_VARS } from '../../shared/core/config.js';
import { topology } from '../../shared/core/topology.js';
import { allResources, block, dynamicBlock, expr, loadModule, TERRAFORM_DIR, type Body, type Module } from './hcl.js';
import { scratchModule, terraform, type ScratchModule } from './scratch.js';

const UPLOAD_ACCOUNT = 'local.upload_service_account';

describe('terraform: signed-URL uploads (signed_urls.tf)', function () {
  let mod: Module;
  before(async function () {
    mod = await loadModule(TERRAFORM_DIR);
  });

  it("names the upload function's own account, and nothing else, as the signer", function () {
    expect(expr(mod.locals.upload_service_account)).to.equal('google_service_account.function["upload"]');
    const creators = allResources(mod).filter(([, , body]) => body.role === 'roles/iam.serviceAccountTokenCreator');
    const upload = creators.filter(([, , body]) => String(body.member).includes(UPLOAD_ACCOUNT));
    expect(upload.map(([type, name]) => `${type}.${name}`)).to.deep.equal([
      'google_service_account_iam_member.upload_signs_as_itself',
    ]);
    const [, , binding] = upload[0]!;
    // On its own account (never the project): signBlob as itself only.
    expect(binding.service_account_id).to.equal(`\${${UPLOAD_ACCOUNT}.name}`);
    expect(binding.member).to.equal(`serviceAccount:\${${UPLOAD_ACCOUNT}.email}`);
    expect(binding.count ?? binding.for_each, 'one binding, unconditionally').to.equal(undefined);
    for (const type of ['google_project_iam_member', 'google_project_iam_binding']) {
      for (const [name, body] of Object.entries(mod.resources[type] ?? {})) {
        expect(body.role, `${type}.${name}`).not.to.equal('roles/iam.serviceAccountTokenCreator');
      }
    }
  });

  it('enables the IAM Service Account Credentials API, which serves signBlob', function () {
    const api = mod.resources.google_project_service!.iamcredentials!;
    expect(api).to.include({
      service: 'iamcredentials.googleapis.com',
      disable_on_destroy: false,
      count: '${var.enable_apis ? 1 : 0}',
    });
  });

  it('lets upload create objects on the uploads bucket under incoming/ only, by an IAM condition', function () {
    const binding = mod.resources.google_storage_bucket_iam_member!.upload_signed_incoming!;
    expect(binding).to.include({
      bucket: '${google_storage_bucket.uploads.name}',
      role: 'roles/storage.objectCreator',
      member: `serviceAccount:\${${UPLOAD_ACCOUNT}.email}`,
    });
    const condition = block(binding, 'condition') as Body;
    expect(condition.title).to.be.a('string').and.not.empty;
    expect(condition.expression).to.equal('resource.name.startsWith("${local.incoming_objects}")');
    expect(mod.locals.incoming_objects).to.equal(
      'projects/_/buckets/${google_storage_bucket.uploads.name}/objects/${local.topology.prefixes.incoming}',
    );
    expect(topology.prefixes.incoming).to.equal('incoming/');
    // Conditions need uniform bucket-level access, which the uploads bucket has.
    expect(mod.resources.google_storage_bucket!.uploads!.uniform_bucket_level_access).to.equal(true);
  });

  it("gives the uploads bucket a CORS rule for browser PUTs from the upload API's origins, none without origins", function () {
    const cors = dynamicBlock(mod.resources.google_storage_bucket!.uploads, 'cors');
    expect(cors?.forEach).to.equal('${local.uploads_cors}');
    expect(cors?.content).to.include({
      origin: '${cors.value.origins}',
      method: '${cors.value.methods}',
      response_header: '${cors.value.response_headers}',
      max_age_seconds: '${cors.value.max_age_seconds}',
    });
    const rules = expr(mod.locals.uploads_cors)!;
    expect(rules).to.match(/^length\(var\.upload_cors_origins\) == 0 \? \[\] :/);
    expect(rules).to.match(/origins\s*=\s*var\.upload_cors_origins/);
    expect(rules).to.match(/methods\s*=\s*\["PUT"\]/);
    // The headers every signed URL binds must be allowed in the preflight.
    expect(rules)
      .to.include('"Content-Type"')
      .and.include('"x-goog-content-length-range"')
      .and.include('"x-goog-if-generation-match"');
    expect(rules).to.match(/max_age_seconds\s*=\s*var\.signed_url_cors_max_age_seconds/);
    expect(mod.variables.upload_cors_origins!.default).to.deep.equal([]);
  });

  it('passes MAX_INGEST_BYTES to every function and SIGNED_URL_TTL_SECONDS to upload, from their variables', function () {
    expect(ENV_VARS).to.include.members(['MAX_INGEST_BYTES', 'SIGNED_URL_TTL_SECONDS', 'MAX_UPLOAD_BYTES']);
    expect((mod.locals.env_common as Body).MAX_INGEST_BYTES).to.equal(
      '${var.max_ingest_bytes == null ? "" : tostring(var.max_ingest_bytes)}',
    );
    expect((mod.locals.env_upload as Body).SIGNED_URL_TTL_SECONDS).to.equal(
      '${var.signed_url_ttl_seconds == null ? "" : tostring(var.signed_url_ttl_seconds)}',
    );
    for (const name of ['max_ingest_bytes', 'signed_url_ttl_seconds'])
      expect(mod.variables[name]!.default, name).to.equal(null);
    expect(mod.variables.signed_url_cors_max_age_seconds!.default).to.equal(3600);
  });

  describe('validations, evaluated by terraform plan on the variables alone', function () {
    let scratch: ScratchModule | undefined;
    const plan = (vars: Record<string, unknown>) =>
      terraform(scratch!.dir, [
        'plan',
        '-no-color',
        '-input=false',
        '-lock=false',
        '-refresh=false',
        scratch!.varFile({ project_id: 'my-project-123', ...vars }),
      ]);

    before(function () {
      this.timeout(120_000);
      scratch = scratchModule('tf-signed-urls');
    });
    after(function () {
      scratch?.remove();
    });

    it('accepts a 1 GiB ingest limit, a one-hour URL and a one-day preflight cache', function () {
      this.timeout(60_000);
      const result = plan({
        max_ingest_bytes: 1024 ** 3,
        signed_url_ttl_seconds: 3600,
        signed_url_cors_max_age_seconds: 86400,
      });
      expect(result.status, result.output).to.equal(0);
    });

    const refused: Array<[string, Record<string, unknown>, string]> = [
      ['an ingest limit over 5 GiB', { max_ingest_bytes: 5 * 1024 ** 3 + 1 }, 'max_ingest_bytes must be'],
      ['a fractional ingest limit', { max_ingest_bytes: 1.5 }, 'max_ingest_bytes must be'],
      // The code caps signed URLs at one hour (SIGNED_URL_TTL_SECONDS, issue 21): the plan says so first.
      ['a URL lifetime over one hour', { signed_url_ttl_seconds: 3601 }, 'between 60 and 3600 (one hour)'],
      ['a URL lifetime of 7 days', { signed_url_ttl_seconds: 604800 }, 'signed_url_ttl_seconds must be'],
      ['a URL lifetime under a minute', { signed_url_ttl_seconds: 10 }, 'signed_url_ttl_seconds must be'],
      [
        'a negative preflight cache',
        { signed_url_cors_max_age_seconds: -1 },
        'signed_url_cors_max_age_seconds must be',
      ],
    ];
    for (const [name, vars, message] of refused) {
      it(`refuses ${name}`, function () {
        this.timeout(60_000);
        const result = plan(vars);
        expect(result.status, result.output).not.to.equal(0);
        expect(result.output.replace(/\s+/g, ' ')).to.include(message);
      });
    }
  });
});

describe("terraform: upload's own rights on the uploads bucket stop short of incoming/", function () {
  let mod: Module;
  before(async function () {
    mod = await loadModule(TERRAFORM_DIR);
  });

  it("conditions upload's objectUser on the uploads bucket to the prefixes it writes", function () {
    // IAM grants add up: an unconditioned objectUser would let a signed URL write anywhere.
    const roles = mod.locals.function_bucket_roles as Body[];
    const upload = roles.filter((r) => r.function === 'upload' && r.bucket === 'uploads');
    expect(upload).to.have.length(1);
    expect(upload[0]).to.include({ role: 'roles/storage.objectUser', condition: '${local.upload_uploads_condition}' });
    const condition = mod.locals.upload_uploads_condition as Body;
    const expression = String(condition.expression);
    expect(expression).to.include('resource.type == \\"storage.googleapis.com/Bucket\\"');
    expect(expression).to.include('local.topology.prefixes.originals');
    expect(expression, 'outcome and ticket markers are gone (the state is in Firestore)')
      .not.to.include('outcomes')
      .and.not.to.include('tickets');
    expect(expression).not.to.include('incoming');
    const binding = mod.resources.google_storage_bucket_iam_member!.function!;
    expect(dynamicBlock(binding, 'condition')?.forEach).to.equal(
      '${each.value.condition == null ? [] : [each.value.condition]}',
    );
  });

  it('keeps no ticket markers in the bucket (tickets are Firestore documents): no tickets/ prefix or rule', function () {
    expect(topology.prefixes).not.to.have.property('tickets');
    const rules = (mod.resources.google_storage_bucket!.uploads!.lifecycle_rule as Body[]) ?? [];
    expect(rules.filter((rule) => JSON.stringify(rule).includes('tickets'))).to.deep.equal([]);
  });
});
