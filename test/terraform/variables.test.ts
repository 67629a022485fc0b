/**
 * terraform/variables.tf on its own: every variable typed and described, documented in
 * terraform/README.md's Inputs, listed in terraform.tfvars.example when required; and its validations
 * evaluated by Terraform itself. variables.tf refers to nothing but settings.tf and
 * shared/core/topology.json, so it is planned in a scratch module that needs no provider (init
 * downloads nothing): good inputs must pass, bad ones must be refused with the variable's own
 * message.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from '@cdktf/hcl2json';
import { scratchModule, terraform, type ScratchModule } from './scratch.js';
import {
  block,
  expr,
  functionDefaults,
  loadModule,
  optionalDefaults,
  REPO_ROOT,
  TERRAFORM_DIR,
  type Body,
  type Module,
} from './hcl.js';

/** The jobs push subscription's ack deadline in shared/core/topology.json. */
function topologyAckDeadline(): number {
  const topology = JSON.parse(readFileSync(join(REPO_ROOT, 'shared', 'core', 'topology.json'), 'utf8')) as {
    subscriptions: { jobsPush: { ackDeadlineSeconds: number } };
  };
  return topology.subscriptions.jobsPush.ackDeadlineSeconds;
}

/** A public upload for end users: sign-in tokens of a Firebase project. */
const JWT = {
  allow_unauthenticated_upload: true,
  upload_auth: 'jwt',
  jwt_issuer: 'https://securetoken.google.com/my-project-123',
  jwt_audience: 'my-project-123',
  jwt_jwks_url: 'https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com',
};
const QUOTAS = { uploads_per_day: 50, bytes_per_day: 1024 ** 3, open_tickets: 5 };

describe('terraform variables', function () {
  let mod: Module;
  before(async function () {
    mod = await loadModule(TERRAFORM_DIR);
  });

  it('types and describes every variable', function () {
    const names = Object.keys(mod.variables);
    expect(names.length).to.be.greaterThan(20);
    for (const [name, body] of Object.entries(mod.variables)) {
      expect(body.type, `${name} type`).to.be.a('string');
      expect(String(body.description ?? ''), `${name} description`).to.have.length.greaterThan(20);
    }
  });

  it('documents every variable in the Inputs table of terraform/README.md', function () {
    // Moved from the README's deploy section to terraform/README.md (terraform-docs format);
    // test/terraform/docs.test.ts also compares the whole table with variables.tf.
    const readme = readFileSync(join(TERRAFORM_DIR, 'README.md'), 'utf8');
    const start = readme.indexOf('## Inputs');
    expect(start, 'terraform/README.md has an Inputs section').to.be.greaterThan(-1);
    const end = readme.indexOf('\n## ', start + 1);
    const doc = readme.slice(start, end === -1 ? undefined : end);
    for (const name of Object.keys(mod.variables)) {
      expect(doc, `terraform/README.md lists ${name}`).to.match(
        new RegExp(`^\\|\\s*<a name="input_${name}"></a>`, 'm'),
      );
    }
    const documented = [...doc.matchAll(/^\|\s*<a name="input_([a-z0-9_]+)"><\/a>/gm)].map((m) => m[1]!);
    for (const name of documented)
      expect(Object.keys(mod.variables), `terraform/README.md documents ${name}, which does not exist`).to.include(
        name,
      );
  });

  it('sets every required variable in terraform.tfvars.example, and only declared ones', async function () {
    const text = readFileSync(join(TERRAFORM_DIR, 'terraform.tfvars.example'), 'utf8');
    const set = Object.keys((await parse('terraform.tfvars.example', text)) as Body);
    const required = Object.entries(mod.variables)
      .filter(([, v]) => !('default' in v))
      .map(([n]) => n);
    expect(required).to.deep.equal(['project_id']);
    for (const name of required) expect(set, name).to.include(name);
    for (const name of set) expect(Object.keys(mod.variables), name).to.include(name);
    const commented = [...text.matchAll(/^#\s*([a-z0-9_]+)\s*=/gm)].map((m) => m[1]!);
    for (const name of commented) expect(Object.keys(mod.variables), `commented ${name}`).to.include(name);
  });

  it('calls the module with every required variable in examples/basic', async function () {
    const example = await loadModule(join(TERRAFORM_DIR, 'examples', 'basic'));
    const call = block((example.other.module ?? []).flat()[0] as Body, 'image_pipeline');
    expect(call?.source).to.equal('../..');
    for (const [name, v] of Object.entries(mod.variables))
      if (!('default' in v)) expect(call, name).to.have.property(name);
    for (const name of Object.keys(call ?? {}).filter((k) => k !== 'source'))
      expect(Object.keys(mod.variables), name).to.include(name);
  });

  it('defaults the functions for sharp: resize 2 GiB / 2 vCPU / 1 request per instance', function () {
    // Adapted: the defaults moved from four object variables' optional() defaults into
    // local.function_defaults (settings.tf), which var.functions overrides per attribute; instances
    // and concurrency now come from shared/core/topology.json.
    const all = functionDefaults(mod);
    expect(expr(mod.locals.function_defaults))
      .to.include('local.topology.functions[key].maxInstances')
      .and.include('local.topology.functions[key].concurrency');
    expect(all.resize).to.deep.include({ memory: '2Gi', cpu: '2', concurrency: 1, timeout_seconds: 540 });
    expect(all.upload).to.deep.include({ memory: '1Gi', cpu: '1', concurrency: 4, timeout_seconds: 60 });
    expect(all.ingest).to.deep.include({ memory: '1Gi' });
    expect(all.cleanup).to.deep.include({ memory: '512Mi', timeout_seconds: 540, max_instances: 1 });
    for (const key of ['upload', 'ingest', 'resize', 'cleanup']) {
      const defaults = all[key]!;
      const cpu = defaults.cpu === null ? 0 : Number(defaults.cpu);
      if (Number(defaults.concurrency) > 1)
        expect(cpu, `${key}: concurrency > 1 needs >= 1 vCPU on gen2`).to.be.at.least(1);
    }
    expect(String(mod.variables.functions!.description).length, 'the description says why').to.be.greaterThan(600);
    expect(
      optionalDefaults(String(mod.variables.functions!.type)),
      'no defaults in the type: they are per function',
    ).to.deep.equal({
      memory: null,
      cpu: null,
      timeout_seconds: null,
      min_instances: null,
      max_instances: null,
      concurrency: null,
    });
  });

  describe('validations, evaluated by terraform plan on variables.tf alone', function () {
    let scratch: ScratchModule;

    before(function () {
      this.timeout(120_000);
      scratch = scratchModule('tf-variables');
    });

    after(function () {
      scratch?.remove();
    });

    function plan(vars: Record<string, unknown>): { status: number | null; output: string } {
      return terraform(scratch.dir, [
        'plan',
        '-no-color',
        '-input=false',
        '-lock=false',
        '-refresh=false',
        scratch.varFile(vars),
      ]);
    }

    const valid: Array<[string, Record<string, unknown>]> = [
      ['only the required project_id', { project_id: 'my-project-123' }],
      [
        'every optional setting',
        {
          project_id: 'my-project-123',
          region: 'europe-west1',
          name_prefix: 'acme-img',
          function_name_prefix: 'img',
          widths: [320, 640, 1280],
          formats: ['avif', 'webp'],
          fanout_strategy: 'per-width',
          max_upload_bytes: 20 * 1024 * 1024,
          public_base_url: 'https://cdn.example.com',
          original_retention_days: 30,
          incoming_max_age_hours: 12,
          cleanup_dry_run: true,
          cleanup_schedule: '0 * * * *',
          cleanup_time_zone: 'Europe/Berlin',
          extra_env: { AVIF_QUALITY: '45', JPEG_MOZJPEG: 'true' },
          serving: 'bucket',
          images_cors: [{ origins: ['https://www.example.com'] }],
          allow_unauthenticated_upload: true,
          upload_token_secret_id: 'upload-token',
          upload_token_secret_version: '3',
          webhook_urls: ['https://hooks.example.com/images', 'https://other.example.net/h?k=1'],
          webhook_secret_id: 'webhook-secret',
          webhook_secret_version: '2',
          webhook_retry_hours: 48,
          upload_cors_origins: ['https://www.example.com'],
          upload_invoker_members: [
            'user:alice@example.com',
            'serviceAccount:app@my-project-123.iam.gserviceaccount.com',
          ],
          build_service_account: 'builder@my-project-123.iam.gserviceaccount.com',
          scheduler_region: 'europe-west3',
          iam_propagation_wait: '3m',
          log_metric_wait: '600s',
          grant_storage_agent_publisher: false,
          // Adapted from resize_function/cleanup_function; timeout 590 (was 600): resize must now
          // stay strictly below the push subscription's ack deadline (600 s in the topology).
          functions: {
            resize: { memory: '4Gi', cpu: '2', timeout_seconds: 590, max_instances: 50 },
            cleanup: { concurrency: 2, cpu: '1' },
          },
          sharp_concurrency: 4,
          malloc_arena_max: 4,
          firestore_location: 'eur3',
          firestore_point_in_time_recovery_enablement: 'POINT_IN_TIME_RECOVERY_ENABLED',
        },
      ],
      ['a regional Firestore location', { project_id: 'my-project-123', firestore_location: 'europe-west1' }],
      [
        'serving through Cloud CDN on a domain',
        { project_id: 'my-project-123', serving: 'cdn', domain: 'images.example.com' },
      ],
      [
        'serving through a layer of ones own',
        { project_id: 'my-project-123', serving: 'none', public_base_url: 'https://img.example.com' },
      ],
      // Issue 21: end users sign in; the upload function may be public only with jwt or token.
      [
        'a public upload for end users with sign-in tokens and quotas',
        { project_id: 'my-project-123', ...JWT, quotas: QUOTAS },
      ],
      [
        'sign-in tokens with the shared token kept for trusted backends',
        { project_id: 'my-project-123', ...JWT, upload_token_secret_id: 'upload-token', quotas: { open_tickets: 0 } },
      ],
      [
        'an explicit token mode on a public upload',
        {
          project_id: 'my-project-123',
          allow_unauthenticated_upload: true,
          upload_auth: 'token',
          upload_token_secret_id: 't',
        },
      ],
      [
        'IAM alone (upload_auth none) on a private upload',
        { project_id: 'my-project-123', upload_auth: 'none', upload_invoker_members: ['user:alice@example.com'] },
      ],
    ];

    for (const [name, vars] of valid) {
      it(`accepts ${name}`, function () {
        this.timeout(60_000);
        const result = plan(vars);
        expect(result.status, result.output).to.equal(0);
      });
    }

    const invalid: Array<[string, Record<string, unknown>, string]> = [
      ['a malformed project ID', { project_id: 'My_Project' }, 'project_id'],
      ['a bucket prefix containing "google"', { name_prefix: 'my-google-images' }, 'name_prefix'],
      [
        'a resize timeout beyond the 600 s ack deadline',
        { functions: { resize: { timeout_seconds: 900 } } },
        'functions.resize.timeout_seconds',
      ],
      [
        'a resize timeout equal to the ack deadline of shared/core/topology.json',
        { functions: { resize: { timeout_seconds: topologyAckDeadline() } } },
        'functions.resize.timeout_seconds must be below',
      ],
      [
        'an event function timeout beyond 540 s',
        { functions: { ingest: { timeout_seconds: 600 } } },
        'functions.<name>.timeout_seconds',
      ],
      [
        'concurrency above 1 with less than one vCPU',
        { functions: { cleanup: { concurrency: 4 } } },
        'functions.<name>.concurrency',
      ],
      ['a memory size without unit', { functions: { upload: { memory: '1GB' } } }, 'functions.<name>.memory'],
      [
        'settings for a function that does not exist',
        { functions: { thumbnail: { memory: '1Gi' } } },
        'unknown function thumbnail',
      ],
      [
        'min_instances above max_instances',
        { functions: { resize: { min_instances: 5, max_instances: 2 } } },
        'min_instances <= max_instances',
      ],
      ['allUsers as an upload invoker', { upload_invoker_members: ['allUsers'] }, 'upload_invoker_members'],
      [
        'allAuthenticatedUsers as an upload invoker',
        { upload_invoker_members: ['allAuthenticatedUsers'] },
        'upload_invoker_members',
      ],
      ['an unknown output format', { formats: ['gif'] }, 'formats'],
      ['an unknown fan-out strategy', { fanout_strategy: 'random' }, 'fanout_strategy'],
      ['uploads larger than Cloud Run accepts', { max_upload_bytes: 64 * 1024 * 1024 }, 'max_upload_bytes'],
      ['a lower-case extra_env name', { extra_env: { avif_quality: '40' } }, 'extra_env'],
      ['a cron with four fields', { cleanup_schedule: '*/15 * * *' }, 'cleanup_schedule'],
      ['a full secret resource name', { upload_token_secret_id: 'projects/p/secrets/s' }, 'upload_token_secret_id'],
      [
        'a webhook receiver over plain http',
        { webhook_urls: ['http://hooks.example.com/h'], webhook_secret_id: 'w' },
        'Each webhook_urls entry must be an https URL',
      ],
      [
        'webhook receivers without a secret',
        { webhook_urls: ['https://hooks.example.com/h'] },
        'needs webhook_secret_id',
      ],
      [
        'the same webhook receiver twice',
        { webhook_urls: ['https://a.example.com/h', 'https://a.example.com/h'], webhook_secret_id: 'w' },
        'each once',
      ],
      ['webhook retries past the retention', { webhook_retry_hours: 200 }, 'webhook_retry_hours must be'],
      ['a CORS origin with a path', { upload_cors_origins: ['https://example.com/app'] }, 'upload_cors_origins'],
      ['an images CORS rule without origins', { images_cors: [{ origins: [] }] }, 'images_cors'],
      [
        'a build account that is not a service account',
        { build_service_account: 'me@example.com' },
        'build_service_account',
      ],
      ['an unknown serving mode', { serving: 'public' }, 'serving must be bucket, cdn or none'],
      ['serving = cdn without a domain', { serving: 'cdn' }, 'needs domain'],
      ['a domain with a scheme', { serving: 'cdn', domain: 'https://images.example.com' }, 'domain must be'],
      ['serving = none without public_base_url', { serving: 'none' }, 'serving = "none" needs public_base_url'],
      [
        'serving = cdn with a public_base_url of its own',
        { serving: 'cdn', domain: 'images.example.com', public_base_url: 'https://x.example.com' },
        'leave public_base_url null',
      ],
      ['a scheduler region that is not a region name', { scheduler_region: 'Europe West' }, 'scheduler_region'],
      ['an IAM propagation wait without unit', { iam_propagation_wait: '120' }, 'iam_propagation_wait'],
      ['a log-based metric wait in words', { log_metric_wait: '10 minutes' }, 'log_metric_wait must be a duration'],
      ['a zone as the Firestore location', { firestore_location: 'europe-west1-b' }, 'firestore_location must be'],
      [
        'a Cloud Storage multi-region as the Firestore location',
        { firestore_location: 'EU' },
        'firestore_location must be',
      ],
      [
        'a point-in-time recovery setting Firestore does not know',
        { firestore_point_in_time_recovery_enablement: 'ENABLED' },
        'firestore_point_in_time_recovery_enablement must be',
      ],
      // Fail closed (issue 21): a public upload authenticates its callers itself.
      [
        'a public upload without any authentication of its own',
        { allow_unauthenticated_upload: true },
        'allow_unauthenticated_upload = true makes upload public, and upload_auth is "none": anyone on the internet could upload',
      ],
      [
        'a public upload with upload_auth none, even with IAM members',
        { allow_unauthenticated_upload: true, upload_auth: 'none', upload_invoker_members: ['user:a@example.com'] },
        'anyone on the internet could upload',
      ],
      ['an unknown authentication mode', { upload_auth: 'oidc' }, 'upload_auth must be jwt, token or none'],
      ['jwt without an issuer', { ...JWT, jwt_issuer: null }, 'needs jwt_issuer and jwt_audience'],
      ['jwt without an audience', { ...JWT, jwt_audience: null }, 'needs jwt_issuer and jwt_audience'],
      ['token without its secret', { upload_auth: 'token' }, 'upload_auth = "token" needs upload_token_secret_id'],
      [
        'none with a token secret (upload would refuse to start)',
        { upload_auth: 'none', upload_token_secret_id: 'upload-token' },
        'upload refuses to start with a token it would not check',
      ],
      [
        'an issuer over plain http',
        { ...JWT, jwt_issuer: 'http://issuer.example.com' },
        'jwt_issuer must be an https URL',
      ],
      [
        'an issuer with a query',
        { ...JWT, jwt_issuer: 'https://issuer.example.com/?a=b' },
        'jwt_issuer must be an https URL',
      ],
      [
        'a key set URL over plain http',
        { ...JWT, jwt_jwks_url: 'http://keys.example.com/jwks' },
        'jwt_jwks_url must be an https URL',
      ],
      ['an empty audience', { ...JWT, jwt_audience: ' ' }, 'jwt_audience must not be empty'],
      [
        'an issuer without upload_auth jwt (nothing would check the tokens)',
        { jwt_issuer: 'https://securetoken.google.com/my-project-123' },
        'jwt_issuer, jwt_audience or jwt_jwks_url is set but upload_auth is not "jwt": nothing would check the tokens',
      ],
      [
        'an audience with upload_auth token',
        { upload_auth: 'token', upload_token_secret_id: 't', jwt_audience: 'x' },
        'is set but upload_auth is not "jwt"',
      ],
      ['a negative daily upload quota', { ...JWT, quotas: { uploads_per_day: -1 } }, 'quotas.uploads_per_day must be'],
      ['a fractional byte quota', { ...JWT, quotas: { bytes_per_day: 1.5 } }, 'quotas.bytes_per_day must be'],
      [
        'more open tickets than the code allows',
        { ...JWT, quotas: { open_tickets: 100001 } },
        'quotas.open_tickets must be',
      ],
      // Secrets belong in Secret Manager, and extra_env cannot undo what the module sets.
      ...['UPLOAD_TOKEN', 'WEBHOOK_SECRET', 'GITHUB_TOKEN', 'DB_PASSWORD', 'STRIPE_API_KEY', 'SIGNING_KEYS'].map(
        (key): [string, Record<string, unknown>, string] => [
          `a secret in extra_env (${key})`,
          { extra_env: { [key]: 'x'.repeat(20) } },
          `extra_env must not carry secrets (${key})`,
        ],
      ),
      [
        'UPLOAD_AUTH none in extra_env (it would undo the public-upload rule)',
        { ...JWT, extra_env: { UPLOAD_AUTH: 'none' } },
        'extra_env sets variables the module sets itself: UPLOAD_AUTH (use upload_auth)',
      ],
      [
        'settings with a variable of their own in extra_env',
        { extra_env: { WIDTHS: '320,640', QUOTA_OPEN_TICKETS: '5' } },
        'QUOTA_OPEN_TICKETS (use quotas.open_tickets); WIDTHS (use widths)',
      ],
    ];

    for (const [name, vars, message] of invalid) {
      it(`refuses ${name}`, function () {
        this.timeout(60_000);
        const result = plan({ project_id: 'my-project-123', ...vars });
        expect(result.status, result.output).not.to.equal(0);
        expect(result.output).to.include('Invalid value for variable');
        expect(result.output.replace(/\s+/g, ' ')).to.include(message);
      });
    }
  });
});
