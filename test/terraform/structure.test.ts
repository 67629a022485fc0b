/**
 * Structural tests of terraform/ on HCL parsed with @cdktf/hcl2json. `terraform init`/`validate`
 * need the google provider, which cannot be downloaded here, so these tests check what the
 * deployment must get right against the code and shared/core/topology.json: entry points, environment,
 * names, the dead-lettered OIDC push subscription, and least-privilege IAM.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV_VARS, REQUIRED_ENV_VARS } from '../../shared/core/config.js';
import {
  allResources,
  at,
  block,
  blocks,
  dynamicBlock,
  envKeys,
  expr,
  functionDefaults,
  loadModule,
  REPO_ROOT,
  resolveLocalPath,
  TERRAFORM_DIR,
  type Body,
  type Module,
} from './hcl.js';

interface TopologyJson {
  buckets: Record<string, { suffix: string; env: string }>;
  prefixes: Record<string, string>;
  topics: Record<string, { name: string; env: string }>;
  subscriptions: Record<
    string,
    {
      name: string;
      topic: string;
      push?: string;
      pull?: string;
      ackDeadlineSeconds: number;
      messageRetentionSeconds: number;
      minimumBackoffSeconds?: number;
      maximumBackoffSeconds?: number;
      maxDeliveryAttempts?: number;
      deadLetterTopic?: string;
    }
  >;
  functions: Record<
    string,
    { entryPoint: string; trigger: string; bucket?: string; topic?: string; subscription?: string }
  >;
  schedule: { cleanup: { cron: string; timeZone: string } };
}

const topology = JSON.parse(readFileSync(join(REPO_ROOT, 'shared', 'core', 'topology.json'), 'utf8')) as TopologyJson;
const FUNCTION_KEYS = Object.keys(topology.functions);
const INDEX_TS = join(REPO_ROOT, 'functions', 'index.ts');

/** Names `functions/index.ts` exports (export const/let/function/class, export { a, b as c }). */
function exportedNames(source: string): Set<string> {
  const names = new Set<string>();
  for (const m of source.matchAll(
    /^\s*export\s+(?:declare\s+)?(?:const|let|var|async\s+function\*?|function\*?|class)\s+([A-Za-z_$][\w$]*)/gm,
  ))
    names.add(m[1]!);
  for (const m of source.matchAll(/^\s*export\s*\{([^}]*)\}/gm)) {
    for (const part of m[1]!.split(',')) {
      const name = part
        .trim()
        .split(/\s+as\s+/)
        .pop()
        ?.trim();
      if (name) names.add(name);
    }
  }
  return names;
}

/** Declarative registrations in `functions/index.ts`: name → 'http' | 'cloudEvent'. */
function registrations(source: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const m of source.matchAll(/\b(http|cloudEvent)\(\s*['"]([^'"]+)['"]/g)) found.set(m[2]!, m[1]!);
  return found;
}

/** The one google_cloudfunctions2_function, a for_each over the topology's functions. */
function fn(mod: Module): Body {
  const body = mod.resources.google_cloudfunctions2_function?.this;
  expect(body, 'google_cloudfunctions2_function.this').to.exist;
  return body!;
}

/** `role`/`member` pairs of every IAM member resource, with where they come from. */
function iamMembers(mod: Module): Array<{ type: string; name: string; role: unknown; member: unknown; body: Body }> {
  return allResources(mod)
    .filter(([type]) => type.endsWith('_iam_member'))
    .map(([type, name, body]) => ({ type, name, role: body.role, member: body.member, body }));
}

/**
 * Environment variables that another branch adds to shared/core/config.ts (UPLOAD_AUTH: `token` |
 * `none`, issue 11's interface with the upload helper). Remove once ENV_SCHEMA has them.
 */

const PRIMITIVE_ROLES = ['roles/owner', 'roles/editor', 'roles/viewer'];
const FORBIDDEN_ROLES = /^roles\/(storage\.(admin|objectAdmin)|pubsub\.(admin|editor))$/;

describe('terraform: structure (HCL parsed with @cdktf/hcl2json)', function () {
  let mod: Module;

  before(async function () {
    mod = await loadModule(TERRAFORM_DIR);
  });

  describe('one source of names: shared/core/topology.json', function () {
    it('reads shared/core/topology.json with jsondecode(file(...))', function () {
      const topologyExpr = expr(mod.locals.topology);
      expect(topologyExpr).to.match(/^jsondecode\(file\("\$\{path\.module\}\/\.\.\/shared\/core\/topology\.json"\)\)$/);
    });

    it('hardcodes no topic or subscription name, entry point or schedule of the topology', function () {
      const literals = [
        ...Object.values(topology.topics).map((t) => t.name),
        ...Object.values(topology.subscriptions).map((s) => s.name),
        topology.schedule.cleanup.cron,
      ];
      for (const [file, text] of Object.entries(mod.sources)) {
        for (const literal of literals) {
          expect(
            text.includes(`"${literal}"`),
            `${file} contains the literal "${literal}"; read it from local.topology instead`,
          ).to.equal(false);
        }
        expect(/entry_point\s*=\s*"/.test(text), `${file} has a literal entry_point`).to.equal(false);
      }
    });

    it('creates every topic of the topology, named from it', function () {
      const topics = mod.resources.google_pubsub_topic ?? {};
      expect(Object.keys(topics), 'one for_each topic resource').to.deep.equal(['this']);
      expect(topics.this!.for_each).to.equal('${local.topology.topics}');
      expect(topics.this!.name).to.equal('${each.value.name}');
    });

    it('creates every subscription of the topology, named from it', function () {
      const subs = mod.resources.google_pubsub_subscription ?? {};
      // Pull subscriptions: a for_each over the topology's subscriptions without a push endpoint.
      expect(subs.pull?.for_each).to.equal('${local.pull_subscriptions}');
      expect(subs.pull?.name).to.equal('${each.value.name}');
      expect(expr(mod.locals.pull_subscriptions)).to.match(
        /for\s+key,\s*sub\s+in\s+local\.topology\.subscriptions\s*:.*if\s+try\(sub\.push,\s*null\)\s*==\s*null/,
      );
      // Push subscriptions: the rest, one for_each resource keyed by the topology's name (adapted
      // from one resource each: jobs_push, webhooks_push).
      const pushed = Object.entries(topology.subscriptions).filter(([, s]) => s.push);
      expect(pushed.map(([key]) => key).sort()).to.deep.equal(['jobsPush', 'webhooksPush']);
      expect(Object.keys(subs).sort()).to.deep.equal(['pull', 'push']);
      expect(subs.push?.for_each).to.equal('${local.push_subscriptions}');
      expect(subs.push?.name).to.equal('${each.value.name}');
      expect(expr(mod.locals.push_subscriptions)).to.match(
        /for\s+key,\s*sub\s+in\s+local\.topology\.subscriptions\s*:.*if\s+try\(sub\.push,\s*null\)\s*!=\s*null/,
      );
    });

    it('moves the two push subscriptions of earlier versions into the for_each (no destroy/create)', function () {
      const moved = (mod.other.moved ?? []).flat() as Body[];
      for (const [from, key] of [
        ['jobs_push', 'jobsPush'],
        ['webhooks_push', 'webhooksPush'],
      ]) {
        expect(topology.subscriptions[key!]?.push, `${key} is still a push subscription`).to.be.a('string');
        expect(moved, from).to.deep.include({
          from: `\${google_pubsub_subscription.${from}}`,
          to: `\${google_pubsub_subscription.push["${key}"]}`,
        });
      }
    });

    it('names the uploads and images buckets "{name_prefix}-{suffix}" from the topology', function () {
      for (const key of Object.keys(topology.buckets)) {
        const bucket = mod.resources.google_storage_bucket?.[key];
        expect(bucket, `google_storage_bucket.${key}`).to.exist;
        expect(bucket!.name).to.equal(`\${local.name_prefix}-\${local.topology.buckets.${key}.suffix}`);
      }
      expect(expr(mod.locals.name_prefix)).to.equal('var.name_prefix == null ? var.project_id : var.name_prefix');
    });

    it('keeps every bucket name within 63 characters for the longest name_prefix allowed', function () {
      const condition = String(block(mod.variables.name_prefix, 'validation')!.condition);
      const maxPrefix = Number(/length\(coalesce\(var\.name_prefix, "xx"\)\) <= (\d+)/.exec(condition)?.[1]);
      expect(maxPrefix).to.be.greaterThan(0);
      const suffixes = [...Object.values(topology.buckets).map((b) => b.suffix), 'gcf-source'];
      for (const suffix of suffixes) expect(maxPrefix + 1 + suffix.length, suffix).to.be.at.most(63);
      expect(mod.resources.google_storage_bucket!.source!.name).to.equal('${local.name_prefix}-gcf-source');
    });

    it('takes the cleanup schedule from the topology unless a variable overrides it', function () {
      expect(expr(mod.locals.cleanup_schedule)).to.equal(
        'var.cleanup_schedule == null ? local.topology.schedule.cleanup.cron : var.cleanup_schedule',
      );
      expect(expr(mod.locals.cleanup_time_zone)).to.equal(
        'var.cleanup_time_zone == null ? local.topology.schedule.cleanup.timeZone : var.cleanup_time_zone',
      );
      const job = mod.resources.google_cloud_scheduler_job?.cleanup;
      expect(job?.schedule).to.equal('${local.cleanup_schedule}');
      expect(job?.time_zone).to.equal('${local.cleanup_time_zone}');
      expect(mod.variables.cleanup_schedule!.default).to.equal(null);
      expect(mod.variables.cleanup_time_zone!.default).to.equal(null);
    });
  });

  describe('functions', function () {
    it('deploys exactly the functions of the topology, as gen2 functions on nodejs22', function () {
      // One resource with for_each over the topology's functions (adapted from four resources).
      expect(Object.keys(mod.resources.google_cloudfunctions2_function ?? {})).to.deep.equal(['this']);
      expect(fn(mod).for_each).to.equal('${local.topology.functions}');
      expect(mod.locals.function_runtime).to.equal('nodejs22');
      expect(block(fn(mod), 'build_config')!.runtime).to.equal('${local.function_runtime}');
      expect(Object.keys(mod.locals.function_descriptions as Body).sort()).to.deep.equal([...FUNCTION_KEYS].sort());
    });

    it('moves the four resources of earlier versions into the for_each (no redeploy)', function () {
      const moved = (mod.other.moved ?? []).flat() as Body[];
      // webhooks came after the for_each: it has nothing to move.
      for (const key of FUNCTION_KEYS.filter((k) => k !== 'webhooks')) {
        expect(moved, key).to.deep.include({
          from: `\${google_cloudfunctions2_function.${key}}`,
          to: `\${google_cloudfunctions2_function.this["${key}"]}`,
        });
      }
    });

    for (const key of Object.keys(topology.functions)) {
      it(`${key}: entry_point comes from the topology and is exported by functions/index.ts`, function () {
        // each.value of the for_each over local.topology.functions is topology.functions[key].
        const entry = block(fn(mod), 'build_config')!.entry_point;
        expect(entry, `${key} entry_point`).to.equal('${each.value.entryPoint}');
        const entryPoint = topology.functions[key]!.entryPoint;
        expect(existsSync(INDEX_TS), 'functions/index.ts exists').to.equal(true);
        const source = readFileSync(INDEX_TS, 'utf8');
        expect([...exportedNames(source)], `exports of functions/index.ts`).to.include(entryPoint);
        // The signature must suit the trigger: resize is pushed by Pub/Sub to an HTTP endpoint, and
        // functions-framework hands it a CloudEvent only if it is registered as one.
        const registered = registrations(source).get(entryPoint);
        if (registered !== undefined) {
          expect(registered, `${entryPoint} registration`).to.equal(
            topology.functions[key]!.trigger === 'http' ? 'http' : 'cloudEvent',
          );
        }
      });
    }

    it('runs each function as its own service account', function () {
      const accounts = mod.resources.google_service_account ?? {};
      expect(accounts.function?.for_each).to.equal('${local.topology.functions}');
      // The for_each key picks each function's own account (was: one literal key per resource).
      const email = block(fn(mod), 'service_config')!.service_account_email;
      expect(email).to.equal('${google_service_account.function[each.key].email}');
    });

    it('gives each event-driven function a separate invoker identity, never its runtime account', function () {
      const invokers = mod.resources.google_service_account?.invoker;
      expect(invokers?.for_each).to.equal('${local.event_functions}');
      expect(expr(mod.locals.event_functions)).to.match(/if\s+fn\.trigger\s*!=\s*"http"/);
      const trigger = dynamicBlock(fn(mod), 'event_trigger');
      expect(trigger?.content.service_account_email).to.equal('${google_service_account.invoker[each.key].email}');
      // Each push subscription's token is of the invoker of the function it pushes to (jobsPush: resize).
      const oidc = block(block(mod.resources.google_pubsub_subscription!.push, 'push_config'), 'oidc_token');
      expect(oidc?.service_account_email).to.equal('${google_service_account.invoker[each.value.push].email}');
      expect(topology.subscriptions.jobsPush!.push).to.equal('resize');
    });

    it('wires each trigger as the topology says', function () {
      // Adapted to the for_each: one dynamic "event_trigger" fed by local.event_triggers, whose
      // entries are chosen by the topology's trigger kind (the same facts as before, per kind).
      const trigger = dynamicBlock(fn(mod), 'event_trigger')!;
      expect(trigger.forEach).to.equal(
        '${contains(keys(local.event_triggers), each.key) ? [local.event_triggers[each.key]] : []}',
      );
      expect(trigger.content).to.include({
        trigger_region: '${event_trigger.value.region}',
        event_type: '${event_trigger.value.event_type}',
        pubsub_topic: '${event_trigger.value.pubsub_topic}',
        retry_policy: '${event_trigger.value.retry_policy}',
      });
      const filters = dynamicBlock(trigger.content, 'event_filters');
      expect(filters?.forEach).to.equal('${event_trigger.value.event_filters}');
      const triggers = expr(mod.locals.event_triggers)!.replace(/\s+/g, ' ');
      expect(triggers).to.match(/for key, fn in local\.topology\.functions : key => \{/);
      expect(triggers).to.match(/\} if contains\(\["storage-finalize", "pubsub"\], fn\.trigger\) ?\}$/);
      for (const [key, spec] of Object.entries(topology.functions)) {
        if (spec.trigger === 'http' || spec.trigger === 'pubsub-push') {
          expect(['storage-finalize', 'pubsub'], `${key} has no Eventarc trigger`).not.to.include(spec.trigger);
        } else if (spec.trigger === 'storage-finalize') {
          expect(triggers).to.include(
            'event_type = fn.trigger == "storage-finalize" ? "google.cloud.storage.object.v1.finalized"',
          );
          expect(triggers).to.include('retry_policy = fn.trigger == "storage-finalize" ? "RETRY_POLICY_RETRY"');
          expect(triggers).to.include(
            'event_filters = fn.trigger == "storage-finalize" ? [{ attribute = "bucket", value = local.buckets[fn.bucket].name }] : []',
          );
          expect(triggers).to.include(
            'region = fn.trigger == "storage-finalize" ? lower(local.buckets[fn.bucket].location)',
          );
          expect(expr(mod.locals.buckets) ?? JSON.stringify(mod.locals.buckets)).to.include(
            `\${google_storage_bucket.${spec.bucket}}`,
          );
        } else if (spec.trigger === 'pubsub') {
          expect(triggers).to.include('"google.cloud.pubsub.topic.v1.messagePublished"');
          expect(triggers).to.include(
            'pubsub_topic = fn.trigger == "pubsub" ? google_pubsub_topic.this[fn.topic].id : null',
          );
          expect(triggers).to.include('"RETRY_POLICY_DO_NOT_RETRY"');
          expect(topology.topics[spec.topic!], `topic ${spec.topic}`).to.exist;
        } else {
          expect.fail(`unknown trigger ${spec.trigger} for ${key}`);
        }
      }
    });

    it('deploys the packaged source, named by its MD5 so that a code change redeploys', function () {
      const archive = mod.data.archive_file?.function_source;
      expect(archive?.type).to.equal('zip');
      expect(archive?.source_dir).to.equal('${local.function_source_dir}');
      expect(archive?.output_file_mode).to.equal('0644');
      const object = mod.resources.google_storage_bucket_object?.function_source;
      expect(object?.name).to.equal('function-source-${data.archive_file.function_source.output_md5}.zip');
      expect(object?.bucket).to.equal('${google_storage_bucket.source.name}');
      const storage = block(block(block(fn(mod), 'build_config'), 'source'), 'storage_source');
      expect(storage?.object).to.equal('${google_storage_bucket_object.function_source.name}');
      expect(storage?.bucket).to.equal('${google_storage_bucket.source.name}');
    });

    it("takes memory, CPU, timeout, instances and concurrency from each function's settings", function () {
      // Adapted: one map(object) variable (var.functions) over per-function defaults, merged in
      // local.function_settings, instead of four object variables.
      const service = block(fn(mod), 'service_config')!;
      const v = 'local.function_settings[each.key]';
      expect(service.available_memory).to.equal(`\${${v}.memory}`);
      expect(service.available_cpu).to.equal(`\${${v}.cpu}`);
      expect(service.timeout_seconds).to.equal(`\${${v}.timeout_seconds}`);
      expect(service.max_instance_count).to.equal(`\${${v}.max_instances}`);
      expect(service.min_instance_count).to.equal(`\${${v}.min_instances}`);
      expect(service.max_instance_request_concurrency).to.equal(`\${${v}.concurrency}`);
      expect(Object.keys(mod.locals.function_sizes as Body).sort()).to.deep.equal([...FUNCTION_KEYS].sort());
      expect(expr(mod.locals.function_settings)).to.match(
        /merge\(defaults, \{ for name, value in try\(var\.functions\[key\], \{\}\) : name => value if value != null \}\)/,
      );
      expect(mod.variables.functions!.type).to.match(/^\$\{map\(object\(/);
    });

    it('lets HTTP functions take traffic from anywhere and keeps the event functions internal', function () {
      const service = block(fn(mod), 'service_config')!;
      expect(service.ingress_settings).to.equal(
        '${each.value.trigger == "http" ? "ALLOW_ALL" : var.event_functions_ingress}',
      );
    });
  });

  describe('environment variables', function () {
    it('gives each function its own environment (local.function_env[each.key])', function () {
      expect(block(fn(mod), 'service_config')!.environment_variables).to.equal('${local.function_env[each.key]}');
      expect(Object.keys(mod.locals.function_env as Body).sort()).to.deep.equal([...FUNCTION_KEYS].sort());
    });

    for (const key of Object.keys(topology.functions)) {
      it(`${key}: every variable is one shared/core/config.ts knows, and every required one is set`, function () {
        const service = block(fn(mod), 'service_config')!;
        const { keys, maps, expression } = envKeys(mod, `\${local.function_env.${key}}`);
        expect(maps, `${key} reads local.env_common`).to.include('env_common');
        // The only other input is var.extra_env, free-form by design (documented in the README deploy section).
        const others = [...expression.matchAll(/\b(var|local)\.([A-Za-z0-9_]+)/g)]
          .map((m) => `${m[1]}.${m[2]}`)
          .filter((r) => !r.startsWith('local.env_'));
        expect(others, `${key}: inputs other than env_* maps`).to.deep.equal(['var.extra_env']);
        for (const name of keys) expect(ENV_VARS, `${key} sets ${name}`).to.include(name);
        for (const name of REQUIRED_ENV_VARS) expect([...keys], `${key} must set ${name}`).to.include(name);
        const secret = dynamicBlock(service, 'secret_environment_variables');
        if (secret) expect(ENV_VARS, `${key} secret ${String(secret.content.key)}`).to.include(secret.content.key);
        for (const literal of blocks(service, 'secret_environment_variables')) expect(ENV_VARS).to.include(literal.key);
      });
    }

    it('passes bucket and topic names under the variables the topology names', function () {
      const common = mod.locals.env_common as Body;
      for (const [key, bucket] of Object.entries(topology.buckets)) {
        if (ENV_VARS.includes(bucket.env))
          expect(common[bucket.env], bucket.env).to.equal(`\${google_storage_bucket.${key}.name}`);
      }
      // The webhook dead-letter topic goes to webhooks only (env_webhooks), the others to all.
      const webhooks = mod.locals.env_webhooks as Body;
      for (const [key, topic] of Object.entries(topology.topics)) {
        if (ENV_VARS.includes(topic.env))
          expect((key === 'webhooksDeadLetter' ? webhooks : common)[topic.env], topic.env).to.equal(
            `\${google_pubsub_topic.this["${key}"].name}`,
          );
      }
      expect(common.GOOGLE_CLOUD_PROJECT).to.equal('${var.project_id}');
      expect(common.PUBLIC_BASE_URL, 'the base URL serving chose (serving.tf)').to.equal('${local.public_base_url}');
    });

    it('passes the subscription cleanup drains under its variable, when the code reads one', function () {
      if (!ENV_VARS.includes('JOBS_DEAD_LETTER_SUBSCRIPTION')) this.skip();
      const drained = Object.entries(topology.subscriptions).find(([, s]) => s.pull === 'cleanup');
      expect(drained).to.exist;
      expect((mod.locals.env_cleanup as Body).JOBS_DEAD_LETTER_SUBSCRIPTION).to.equal(
        `\${google_pubsub_subscription.pull["${drained![0]}"].name}`,
      );
    });

    it('sets the sharp runtime settings on resize (SHARP_CONCURRENCY, SHARP_CACHE, MALLOC_ARENA_MAX)', function () {
      const resize = mod.locals.env_resize as Body;
      expect(resize.SHARP_CONCURRENCY).to.equal('${tostring(var.sharp_concurrency)}');
      expect(resize.SHARP_CACHE).to.equal('${tostring(var.sharp_cache)}');
      expect(resize.MALLOC_ARENA_MAX).to.equal('${tostring(var.malloc_arena_max)}');
      expect(mod.variables.sharp_concurrency!.default).to.equal(2);
      expect(mod.variables.malloc_arena_max!.default).to.equal(2);
      expect(mod.variables.sharp_cache!.default).to.equal(false);
    });

    it('gives UPLOAD_TOKEN to upload from Secret Manager only when a secret is named', function () {
      // Adapted to the for_each: the secret block exists for the upload instance only.
      const secret = dynamicBlock(block(fn(mod), 'service_config'), 'secret_environment_variables');
      expect(secret?.forEach).to.equal(
        '${each.key == "upload" && var.upload_token_secret_id != null ? [var.upload_token_secret_id] : []}',
      );
      expect(secret?.content.key).to.equal('UPLOAD_TOKEN');
      expect(mod.variables.upload_token_secret_id!.default).to.equal(null);
      // No literal token anywhere: the value never enters the configuration or the state.
      expect(Object.values(mod.sources).join('\n')).not.to.match(/UPLOAD_TOKEN\s*=/);
      expect(mod.data.google_secret_manager_secret_version, 'no secret version read into the state').to.equal(
        undefined,
      );
    });

    it('tells upload how it authenticates: upload_auth, else token with a token secret and none without (IAM then)', function () {
      // Adapted (issue 21): UPLOAD_AUTH comes from upload_auth (jwt | token | none), whose default
      // keeps the earlier rule; a public upload without jwt or token is refused by a variable
      // validation (test/terraform/variables.test.ts plans it), no longer a warning of a check block.
      expect((mod.locals.env_upload as Body).UPLOAD_AUTH).to.equal('${local.upload_auth}');
      expect(expr(mod.locals.upload_auth)).to.equal(
        'var.upload_auth != null ? var.upload_auth : (var.upload_token_secret_id == null ? "none" : "token")',
      );
      expect(mod.sources['settings.tf'], 'validations can read it').to.match(/^\s+upload_auth\s+=/m);
      for (const name of ['env_common', 'env_ingest', 'env_resize', 'env_cleanup'])
        expect(mod.locals[name] as Body, name).not.to.have.property('UPLOAD_AUTH');
      expect(mod.other.check, 'no check block: a validation refuses the plan instead').to.equal(undefined);
      const validations = JSON.stringify(mod.variables.allow_unauthenticated_upload!.validation);
      expect(validations).to.include(
        '!var.allow_unauthenticated_upload || contains([\\"jwt\\", \\"token\\"], local.upload_auth)',
      );
    });

    it('passes the sign-in and quota settings to upload only (JWT_*, QUOTA_*), unset when null', function () {
      const upload = mod.locals.env_upload as Body;
      expect(upload).to.include({
        JWT_ISSUER: '${var.jwt_issuer == null ? "" : var.jwt_issuer}',
        JWT_AUDIENCE: '${var.jwt_audience == null ? "" : var.jwt_audience}',
        JWT_JWKS_URL: '${var.jwt_jwks_url == null ? "" : var.jwt_jwks_url}',
        QUOTA_UPLOADS_PER_DAY: '${var.quotas.uploads_per_day == null ? "" : tostring(var.quotas.uploads_per_day)}',
        QUOTA_BYTES_PER_DAY: '${var.quotas.bytes_per_day == null ? "" : tostring(var.quotas.bytes_per_day)}',
        QUOTA_OPEN_TICKETS: '${var.quotas.open_tickets == null ? "" : tostring(var.quotas.open_tickets)}',
      });
      for (const name of ['env_common', 'env_ingest', 'env_resize', 'env_cleanup'])
        for (const key of Object.keys(mod.locals[name] as Body))
          expect(key, `${name}.${key}`).not.to.match(/^(JWT|QUOTA)_/);
      expect(mod.variables.quotas!.default).to.deep.equal({});
      for (const name of ['upload_auth', 'jwt_issuer', 'jwt_audience', 'jwt_jwks_url'])
        expect(mod.variables[name]!.default, name).to.equal(null);
    });

    it('lists in local.module_env exactly the variables the env_* maps set, each with its source', function () {
      const moduleEnv = mod.locals.module_env as Record<string, string>;
      const set = new Set<string>();
      for (const [name, value] of Object.entries(mod.locals))
        if (name.startsWith('env_')) for (const key of Object.keys(value as Body)) set.add(key);
      expect(Object.keys(moduleEnv).sort()).to.deep.equal([...set].sort());
      for (const [key, source] of Object.entries(moduleEnv)) {
        const variable = /^[a-z_]+/.exec(source)![0];
        if (source !== 'shared/core/topology.json')
          expect(Object.keys(mod.variables), `${key}: ${source}`).to.include(variable);
      }
    });

    it("keeps extra_env free-form but empty by default, and lets the module's own values win", function () {
      expect(mod.variables.extra_env!.default).to.deep.equal({});
      expect(mod.variables.extra_env!.type).to.equal('${map(string)}');
      for (const key of FUNCTION_KEYS)
        expect(expr(resolveLocalPath(mod, `\${local.function_env.${key}}`)), key).to.match(/merge\(var\.extra_env, /);
    });
  });

  describe('the jobs push subscription', function () {
    const jobsPush = topology.subscriptions.jobsPush!;
    let sub: Body;
    before(function () {
      // One instance of the for_each over local.push_subscriptions: each.value is topology.subscriptions.jobsPush.
      sub = mod.resources.google_pubsub_subscription!.push!;
    });

    it('pushes to the resize function at /projects/{project}/topics/{topic} with an OIDC token', function () {
      expect(jobsPush.push).to.equal('resize');
      const push = block(sub, 'push_config')!;
      expect(push.push_endpoint).to.equal(
        '${google_cloudfunctions2_function.this[each.value.push].service_config[0].uri}/projects/${var.project_id}/topics/${google_pubsub_topic.this[each.value.topic].name}',
      );
      expect(block(push, 'oidc_token')!.audience).to.equal(
        '${google_cloudfunctions2_function.this[each.value.push].service_config[0].uri}',
      );
      expect(block(push, 'no_wrapper'), 'functions-framework needs the wrapped push format').to.equal(undefined);
      expect(sub.topic).to.equal('${google_pubsub_topic.this[each.value.topic].id}');
    });

    it("dead-letters after the topology's delivery attempts, with exponential backoff", function () {
      // A dynamic block: present exactly for the subscriptions that name a deadLetterTopic (jobsPush).
      const dlq = dynamicBlock(sub, 'dead_letter_policy')!;
      expect(dlq.forEach).to.equal('${try(each.value.deadLetterTopic, null) == null ? [] : [each.value]}');
      expect(dlq.content.dead_letter_topic).to.equal(
        '${google_pubsub_topic.this[dead_letter_policy.value.deadLetterTopic].id}',
      );
      expect(dlq.content.max_delivery_attempts).to.equal('${dead_letter_policy.value.maxDeliveryAttempts}');
      expect(block(sub, 'dead_letter_policy'), 'only the dynamic block').to.equal(undefined);
      expect(jobsPush.deadLetterTopic).to.equal('jobsDeadLetter');
      expect(jobsPush.maxDeliveryAttempts).to.be.within(5, 100); // Pub/Sub's limits
      const retry = block(sub, 'retry_policy')!;
      expect(retry.minimum_backoff).to.equal('${each.value.minimumBackoffSeconds}s');
      expect(retry.maximum_backoff).to.equal('${each.value.maximumBackoffSeconds}s');
      expect(jobsPush.minimumBackoffSeconds!).to.be.within(0, 600);
      expect(jobsPush.maximumBackoffSeconds!).to.be.within(jobsPush.minimumBackoffSeconds!, 600);
      expect(sub.message_retention_duration).to.equal('${each.value.messageRetentionSeconds}s');
    });

    it('is created after the grants its first deliveries need (one depends_on for both push subscriptions)', function () {
      // The union of what jobs_push and webhooks_push waited for before the for_each.
      expect(sub.depends_on).to.have.members([
        '${google_cloud_run_service_iam_member.invoker}',
        '${google_service_account_iam_member.pubsub_token_creator}',
        '${google_pubsub_topic_iam_member.dead_letter_publisher}',
      ]);
    });

    it('keeps the dead letters: a pull subscription on the dead-letter topic', function () {
      const keepers = Object.values(topology.subscriptions).filter(
        (s) => s.topic === jobsPush.deadLetterTopic && !s.push,
      );
      expect(keepers.length).to.be.greaterThan(0);
      const pull = mod.resources.google_pubsub_subscription!.pull!;
      expect(block(pull, 'expiration_policy')!.ttl, 'pull subscriptions never expire').to.equal('');
    });

    it("takes the ack deadline from the topology, within Pub/Sub's 600 s, and keeps the resize timeout below it", function () {
      // Changed on purpose: the ack deadline is the topology's (which sits above the function
      // timeout), and var.functions refuses a resize timeout that is not strictly below it.
      expect(sub.ack_deadline_seconds).to.equal('${each.value.ackDeadlineSeconds}');
      expect(jobsPush.ackDeadlineSeconds).to.be.within(10, 600);
      const validation = JSON.stringify(mod.variables.functions!.validation);
      expect(validation).to.include(
        'coalesce(f.timeout_seconds, 1) < try(local.topology.subscriptions[local.topology.functions[key].subscription].ackDeadlineSeconds, 3601)',
      );
      const defaults = functionDefaults(mod) as Record<string, { timeout_seconds: number }>;
      expect(defaults.resize!.timeout_seconds, 'default resize timeout').to.be.below(jobsPush.ackDeadlineSeconds);
      expect(topology.functions.resize!.subscription).to.equal('jobsPush');
    });

    it('lets the Pub/Sub service agent mint tokens, publish dead letters and ack the source subscription', function () {
      expect(expr(mod.locals.pubsub_service_agent)).to.equal(undefined); // a template string, not an expression
      expect(mod.locals.pubsub_service_agent).to.equal(
        'serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com',
      );
      const publisher = mod.resources.google_pubsub_topic_iam_member!.dead_letter_publisher!;
      expect(publisher).to.include({ role: 'roles/pubsub.publisher', member: '${local.pubsub_service_agent}' });
      expect(publisher.topic).to.equal('${google_pubsub_topic.this[local.jobs_push.deadLetterTopic].name}');
      const subscriber = mod.resources.google_pubsub_subscription_iam_member!.dead_letter_subscriber!;
      expect(subscriber).to.include({ role: 'roles/pubsub.subscriber', member: '${local.pubsub_service_agent}' });
      expect(subscriber.subscription).to.equal('${google_pubsub_subscription.push["jobsPush"].name}');
      const tokens = mod.resources.google_service_account_iam_member!.pubsub_token_creator!;
      expect(tokens).to.include({
        role: 'roles/iam.serviceAccountTokenCreator',
        member: '${local.pubsub_service_agent}',
        for_each: '${local.event_functions}',
      });
      expect(tokens.service_account_id).to.equal('${google_service_account.invoker[each.key].name}');
    });

    it('lets only the resize invoker (and the other invokers, each on its own function) call the event functions', function () {
      const invoker = mod.resources.google_cloud_run_service_iam_member!.invoker!;
      expect(invoker).to.include({ for_each: '${local.event_functions}', role: 'roles/run.invoker' });
      expect(invoker.member).to.equal('serviceAccount:${google_service_account.invoker[each.key].email}');
      expect(invoker.service).to.equal('${google_cloudfunctions2_function.this[each.key].name}');
    });
  });

  describe('storage', function () {
    it('uses uniform bucket-level access everywhere, and no force_destroy by default', function () {
      const buckets = mod.resources.google_storage_bucket ?? {};
      expect(Object.keys(buckets).sort()).to.deep.equal(['images', 'source', 'uploads']);
      for (const [name, bucket] of Object.entries(buckets)) {
        expect(bucket.uniform_bucket_level_access, name).to.equal(true);
        expect(bucket.force_destroy, name).to.equal('${var.force_destroy}');
      }
      expect(mod.variables.force_destroy!.default).to.equal(false);
    });

    it('enforces public access prevention on uploads and source, and on images unless it serves the variants itself', function () {
      // Changed on purpose (issue 11): images_public_read became serving, whose default "bucket"
      // makes the images bucket public so that manifest URLs load after a default apply.
      const buckets = mod.resources.google_storage_bucket!;
      expect(buckets.uploads!.public_access_prevention).to.equal('enforced');
      expect(buckets.source!.public_access_prevention).to.equal('enforced');
      expect(buckets.images!.public_access_prevention).to.equal(
        '${var.serving == "bucket" ? "inherited" : "enforced"}',
      );
      expect(mod.variables.serving!.default).to.equal('bucket');
      expect(mod.variables.images_public_read, 'replaced by serving').to.equal(undefined);
    });

    it('deletes abandoned incoming/ objects with a lifecycle rule', function () {
      const rules = blocks(mod.resources.google_storage_bucket!.uploads, 'lifecycle_rule');
      const incoming = rules.find((r) => block(r, 'action')!.type === 'Delete');
      expect(incoming, 'a Delete rule').to.exist;
      const condition = block(incoming, 'condition')!;
      expect(condition.matches_prefix).to.deep.equal(['${local.topology.prefixes.incoming}']);
      expect(condition.age).to.equal('${var.incoming_max_age_days}');
      expect(topology.prefixes.incoming).to.equal('incoming/');
    });

    it("takes the images bucket's CORS rules from a variable", function () {
      const cors = dynamicBlock(mod.resources.google_storage_bucket!.images, 'cors');
      expect(cors?.forEach).to.equal('${var.images_cors}');
      expect(cors?.content).to.include({ origin: '${cors.value.origins}', method: '${cors.value.methods}' });
      expect(mod.variables.images_cors!.default).to.deep.equal([]);
    });
  });

  describe('IAM: least privilege', function () {
    it('uses only additive *_iam_member resources (no authoritative bindings or policies)', function () {
      const authoritative = allResources(mod).filter(([type]) => /_iam_(binding|policy)$/.test(type));
      expect(authoritative.map(([t, n]) => `${t}.${n}`)).to.deep.equal([]);
    });

    it('grants no primitive role and no storage or Pub/Sub admin role anywhere', function () {
      const roles = [
        ...iamMembers(mod).map((m) => ({ where: `${m.type}.${m.name}`, role: m.role })),
        ...(mod.locals.function_bucket_roles as Body[]).map((b) => ({
          where: `local.function_bucket_roles ${String(b.function)}`,
          role: b.role,
        })),
      ];
      expect(roles.length).to.be.greaterThan(10);
      for (const { where, role } of roles) {
        expect(PRIMITIVE_ROLES, where).not.to.include(role);
        expect(FORBIDDEN_ROLES.test(String(role)), `${where}: ${String(role)}`).to.equal(false);
      }
      const allText = Object.values(mod.sources).join('\n');
      for (const role of PRIMITIVE_ROLES) expect(allText.includes(`"${role}"`), role).to.equal(false);
    });

    it("grants project-level roles only where no narrower resource exists: the two Eventarc ones, the build account's and the functions' Firestore access", function () {
      // Adapted: the build service account (issue 11) adds one for_each resource of project roles.
      const projectLevel = Object.entries(mod.resources.google_project_iam_member ?? {}).map(([name, b]) => ({
        name,
        role: b.role,
        member: b.member,
      }));
      expect(projectLevel).to.have.deep.members([
        {
          name: 'ingest_event_receiver',
          role: 'roles/eventarc.eventReceiver',
          member: 'serviceAccount:${google_service_account.invoker["ingest"].email}',
        },
        {
          name: 'gcs_pubsub_publisher',
          role: 'roles/pubsub.publisher',
          member: 'serviceAccount:${data.google_storage_project_service_account.gcs.email_address}',
        },
        { name: 'build', role: '${each.value.role}', member: 'serviceAccount:${local.build_service_account_email}' },
        {
          name: 'function_firestore',
          role: 'roles/datastore.user',
          member: 'serviceAccount:${google_service_account.function[each.key].email}',
        },
      ]);
      const buildRoles = Object.values(mod.locals.build_roles as Record<string, { role: string }>).map((r) => r.role);
      expect(buildRoles.sort()).to.deep.equal([
        'roles/artifactregistry.writer',
        'roles/logging.logWriter',
        'roles/storage.objectViewer',
      ]);
      for (const type of [
        'google_project_iam_binding',
        'google_project_iam_policy',
        'google_organization_iam_member',
        'google_folder_iam_member',
      ]) {
        expect(mod.resources[type], type).to.equal(undefined);
      }
    });

    it('binds allUsers/allAuthenticatedUsers only behind their variables: upload off by default, images by serving', function () {
      // Adapted: public read of the images bucket follows serving (default "bucket", public), see
      // test/terraform/serving.test.ts; the upload gate is unchanged.
      const gates: Record<string, [string, string, unknown]> = {
        'google_cloud_run_service_iam_member.upload_public': [
          '${var.allow_unauthenticated_upload ? 1 : 0}',
          'allow_unauthenticated_upload',
          false,
        ],
        'google_storage_bucket_iam_member.images_public': ['${var.serving == "bucket" ? 1 : 0}', 'serving', 'bucket'],
      };
      const publicMembers = allResources(mod).filter(([, , body]) =>
        /^all(Authenticated)?Users$/.test(String(body.member)),
      );
      expect(publicMembers.map(([t, n]) => `${t}.${n}`).sort()).to.deep.equal(Object.keys(gates).sort());
      for (const [type, name, body] of publicMembers) {
        const [count, variable, defaultValue] = gates[`${type}.${name}`]!;
        expect(body.count, `${type}.${name}`).to.equal(count);
        expect(mod.variables[variable]!.default, variable).to.equal(defaultValue);
      }
      const allText = Object.values(mod.sources).join('\n');
      expect((allText.match(/"all(Authenticated)?Users"/g) ?? []).length, 'literal allUsers bindings').to.equal(2);
    });

    it('binds bucket roles to function accounts only, on the pipeline buckets, with object roles', function () {
      const resource = mod.resources.google_storage_bucket_iam_member!.function!;
      expect(resource.member).to.equal('serviceAccount:${google_service_account.function[each.value.function].email}');
      expect(resource.bucket).to.equal('${local.pipeline_buckets[each.value.bucket]}');
      const table = mod.locals.function_bucket_roles as Array<{ function: string; bucket: string; role: string }>;
      const allowed = ['roles/storage.objectViewer', 'roles/storage.objectCreator', 'roles/storage.objectUser'];
      for (const row of table) {
        expect(FUNCTION_KEYS, JSON.stringify(row)).to.include(row.function);
        expect(Object.keys(topology.buckets), JSON.stringify(row)).to.include(row.bucket);
        expect(allowed, JSON.stringify(row)).to.include(row.role);
      }
      // Table-driven expectations: who may write where.
      const roleOf = (f: string, b: string) =>
        table.filter((r) => r.function === f && r.bucket === b).map((r) => r.role);
      expect(roleOf('resize', 'uploads'), 'resize only reads originals').to.deep.equal(['roles/storage.objectViewer']);
      // DELETE /uploads/{id} removes variants, manifest and error.json (issue 14): objectUser, not viewer.
      expect(roleOf('upload', 'images'), 'upload reads for status and deletes images').to.deep.equal([
        'roles/storage.objectUser',
      ]);
      // On uploads, upload stays conditioned to its own prefix (originals/): the delete's
      // original is under it (its tombstone is a Firestore document), incoming/ stays out of reach.
      const uploadsRow = table.find((r) => r.function === 'upload' && r.bucket === 'uploads') as
        | { role: string; condition: string }
        | undefined;
      expect(uploadsRow?.role).to.equal('roles/storage.objectUser');
      expect(uploadsRow?.condition).to.equal('${local.upload_uploads_condition}');
      const condition = JSON.stringify(mod.locals.upload_uploads_condition);
      expect(condition).to.include('local.topology.prefixes.originals');
      expect(condition).not.to.include('prefixes.incoming');
      expect(condition).not.to.include('outcomes');
      // Every function but webhooks (which only reads Firestore and sends events) works on images.
      for (const f of FUNCTION_KEYS.filter((k) => k !== 'webhooks'))
        expect(roleOf(f, 'images').length, `${f} on images`).to.be.greaterThan(0);
      expect(
        table.filter((r) => r.function === 'webhooks'),
        'webhooks touches no bucket',
      ).to.deep.equal([]);
    });

    it('lets each function publish only to the topics it uses, and subscribe only where the topology says', function () {
      const publishers = mod.locals.function_topic_publishers as Array<{ function: string; topic: string }>;
      for (const row of publishers) {
        expect(FUNCTION_KEYS).to.include(row.function);
        expect(Object.keys(topology.topics)).to.include(row.topic);
      }
      expect(
        publishers
          .filter((p) => p.topic === 'jobs')
          .map((p) => p.function)
          .sort(),
      ).to.deep.equal(['cleanup', 'ingest', 'upload']);
      expect(publishers.filter((p) => p.function === 'resize').map((p) => p.topic)).to.deep.equal(['events']);
      expect(
        publishers.filter((p) => p.function === 'upload').map((p) => p.topic),
        'upload dispatches and announces image.deleted',
      ).to.deep.equal(['jobs', 'events']);
      const pub = mod.resources.google_pubsub_topic_iam_member!.function_publisher!;
      expect(pub).to.include({
        role: 'roles/pubsub.publisher',
        topic: '${google_pubsub_topic.this[each.value.topic].name}',
      });
      const subscriber = mod.resources.google_pubsub_subscription_iam_member!.function_subscriber!;
      expect(subscriber).to.include({
        role: 'roles/pubsub.subscriber',
        for_each: '${local.function_pull_subscriptions}',
      });
      expect(subscriber.member).to.equal('serviceAccount:${google_service_account.function[each.value.pull].email}');
      expect(expr(mod.locals.function_pull_subscriptions)).to.match(/if\s+try\(sub\.pull,\s*null\)\s*!=\s*null/);
    });

    it('gives upload access to its token secret only when one is named', function () {
      const secret = mod.resources.google_secret_manager_secret_iam_member!.upload_token!;
      expect(secret).to.include({
        count: '${var.upload_token_secret_id == null ? 0 : 1}',
        secret_id: '${var.upload_token_secret_id}',
        role: 'roles/secretmanager.secretAccessor',
        member: 'serviceAccount:${google_service_account.function["upload"].email}',
      });
    });

    it('otherwise lets only the listed members invoke upload', function () {
      const members = mod.resources.google_cloud_run_service_iam_member!.upload_invoker!;
      expect(members).to.include({
        for_each: '${toset(var.upload_invoker_members)}',
        role: 'roles/run.invoker',
        member: '${each.value}',
      });
      expect(mod.variables.upload_invoker_members!.default).to.deep.equal([]);
      expect(mod.variables.allow_unauthenticated_upload!.default).to.equal(false);
    });
  });

  describe('references (what terraform validate would catch first)', function () {
    type Node = string;
    function refsOf(value: unknown): { nodes: Node[]; vars: string[] } {
      const text = JSON.stringify(value);
      const nodes = new Set<Node>();
      for (const m of text.matchAll(/(?<![\w.])(google_[a-z0-9_]+)\.([a-z0-9_]+)/g)) nodes.add(`${m[1]}.${m[2]}`);
      for (const m of text.matchAll(/(?<![\w.])data\.([a-z0-9_]+)\.([a-z0-9_]+)/g)) nodes.add(`data.${m[1]}.${m[2]}`);
      for (const m of text.matchAll(/(?<![\w.])local\.([a-z0-9_]+)/g)) nodes.add(`local.${m[1]}`);
      const vars = [...new Set([...text.matchAll(/(?<![\w.])var\.([a-z0-9_]+)/g)].map((m) => m[1]!))];
      return { nodes: [...nodes], vars };
    }
    function graph(): Map<Node, Node[]> {
      const edges = new Map<Node, Node[]>();
      for (const [type, name, body] of allResources(mod)) edges.set(`${type}.${name}`, refsOf(body).nodes);
      for (const [type, byName] of Object.entries(mod.data))
        for (const [name, body] of Object.entries(byName)) edges.set(`data.${type}.${name}`, refsOf(body).nodes);
      for (const [name, value] of Object.entries(mod.locals)) edges.set(`local.${name}`, refsOf(value).nodes);
      return edges;
    }

    it('refers only to declared resources, data sources, locals and variables', function () {
      const edges = graph();
      const everything: Array<[string, unknown]> = [
        ...[...edges.keys()].map(
          (k) => [k, k.startsWith('local.') ? mod.locals[k.slice(6)] : undefined] as [string, unknown],
        ),
        ...Object.entries(mod.outputs).map(([n, b]) => [`output.${n}`, b] as [string, unknown]),
      ];
      for (const [from, targets] of edges) {
        for (const target of targets)
          expect(edges.has(target), `${from} refers to ${target}, which is not declared`).to.equal(true);
      }
      const bodies = [
        ...allResources(mod).map(([, , b]) => b),
        ...Object.values(mod.data).flatMap((byName) => Object.values(byName)),
        ...Object.values(mod.locals),
        ...Object.values(mod.outputs),
        ...(mod.other.check ?? []),
      ];
      for (const body of bodies) {
        for (const name of refsOf(body).vars) expect(Object.keys(mod.variables), `var.${name}`).to.include(name);
      }
      for (const [name, body] of everything)
        if (name.startsWith('output.'))
          for (const node of refsOf(body).nodes) expect(edges.has(node), `${name} refers to ${node}`).to.equal(true);
    });

    it('has no dependency cycle', function () {
      const edges = graph();
      const state = new Map<Node, 'visiting' | 'done'>();
      const visit = (node: Node, path: Node[]): void => {
        if (state.get(node) === 'done') return;
        if (state.get(node) === 'visiting') expect.fail(`dependency cycle: ${[...path, node].join(' -> ')}`);
        state.set(node, 'visiting');
        for (const next of edges.get(node) ?? []) if (next !== node) visit(next, [...path, node]);
        state.set(node, 'done');
      };
      for (const node of edges.keys()) visit(node, []);
    });
  });

  describe('project, providers, outputs', function () {
    it('enables the APIs the pipeline needs', function () {
      const services = expr(mod.locals.services) ?? '';
      for (const api of [
        'cloudfunctions',
        'run',
        'cloudbuild',
        'artifactregistry',
        'eventarc',
        'pubsub',
        'storage',
        'cloudscheduler',
        'iam',
      ]) {
        expect(services, api).to.include(`"${api}.googleapis.com"`);
      }
      const resource = mod.resources.google_project_service!.this!;
      expect(resource.disable_on_destroy).to.equal(false);
    });

    it('pins hashicorp/google to a range and uses hashicorp/archive', function () {
      const terraform = (mod.other.terraform ?? []).flat() as Body[];
      const providers = terraform.map((t) => block(t, 'required_providers')).find(Boolean) as
        | Record<string, { source: string; version: string }>
        | undefined;
      expect(providers?.google?.source).to.equal('hashicorp/google');
      expect(providers?.google?.version).to.match(/>=\s*\d.*<\s*\d/);
      expect(providers?.archive?.source).to.equal('hashicorp/archive');
      expect(Object.keys(providers ?? {}), 'no google-beta').not.to.include('google-beta');
    });

    it('outputs the upload URL, bucket names, topics and subscriptions', function () {
      for (const name of ['upload_url', 'uploads_bucket', 'images_bucket', 'topics', 'subscriptions']) {
        expect(mod.outputs[name], name).to.exist;
        expect(mod.outputs[name]!.description, `${name} description`).to.be.a('string').and.not.empty;
      }
      expect(mod.outputs.upload_url!.value).to.equal(
        '${google_cloudfunctions2_function.this["upload"].service_config[0].uri}',
      );
    });

    it('publishes the scheduler tick to the cleanup topic', function () {
      const target = block(mod.resources.google_cloud_scheduler_job!.cleanup, 'pubsub_target')!;
      expect(target.topic_name).to.equal('${google_pubsub_topic.this[local.topology.functions.cleanup.topic].id}');
      expect(String(target.data)).to.match(/^\$\{base64encode\(/);
    });

    it('resolves every alias local the tests follow', function () {
      expect(resolveLocalPath(mod, '${local.function_env.resize}')).to.be.a('string');
      expect(at(topology, ['functions', 'resize', 'entryPoint'])).to.equal('resize');
    });
  });
});
