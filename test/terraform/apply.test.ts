/**
 * What a first `terraform apply` on a new project in a new organisation needs, and what reuse as a
 * module needs (issue 11, "Apply on a fresh project"), checked on the parsed HCL: the build runs as
 * a service account with the roles a gen2 build needs; the functions wait for IAM propagation;
 * data sources are read at plan time so that bindings are never replaced; the project-wide grant
 * to the Cloud Storage agent can be left out; Cloud Scheduler has a region of its own; the module
 * configures no provider. `terraform plan` cannot run here (no provider download).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { block, dynamicBlock, expr, loadModule, TERRAFORM_DIR, type Body, type Module } from './hcl.js';

function requiredProviders(mod: Module): Record<string, { source: string; version: string }> {
  const terraform = (mod.other.terraform ?? []).flat() as Body[];
  return (terraform.map((t) => block(t, 'required_providers')).find(Boolean) ?? {}) as Record<
    string,
    { source: string; version: string }
  >;
}

describe('terraform: first apply on a fresh project, and reuse as a module', function () {
  let mod: Module;
  let fn: Body;
  before(async function () {
    mod = await loadModule(TERRAFORM_DIR);
    fn = mod.resources.google_cloudfunctions2_function!.this!;
  });

  describe('1. builds run as a build service account with the roles a gen2 build needs', function () {
    it('creates the account unless build_service_account names one, and builds with it', function () {
      const account = mod.resources.google_service_account!.build!;
      expect(account.count).to.equal('${var.build_service_account == null ? 1 : 0}');
      expect(mod.variables.build_service_account!.default).to.equal(null);
      expect(expr(mod.locals.build_service_account_email)).to.equal(
        'var.build_service_account == null ? google_service_account.build[0].email : var.build_service_account',
      );
      expect(mod.locals.build_service_account).to.equal(
        'projects/${var.project_id}/serviceAccounts/${local.build_service_account_email}',
      );
      expect(block(fn, 'build_config')!.service_account).to.equal('${local.build_service_account}');
    });

    it('grants logs writer, Artifact Registry writer and read of the gcf-v2-sources-* buckets only', function () {
      const grants = mod.resources.google_project_iam_member!.build!;
      expect(grants.for_each).to.equal('${var.build_service_account == null ? local.build_roles : {}}');
      const roles = mod.locals.build_roles as Record<string, { role: string; condition: Body | null }>;
      expect(roles.logs).to.deep.equal({ role: 'roles/logging.logWriter', condition: null });
      expect(roles.artifacts).to.deep.equal({ role: 'roles/artifactregistry.writer', condition: null });
      expect(roles.sources!.role).to.equal('roles/storage.objectViewer');
      expect(roles.sources!.condition!.expression).to.equal(
        'resource.name.startsWith("projects/_/buckets/gcf-v2-sources-${data.google_project.this.number}-")',
      );
      const condition = dynamicBlock(grants, 'condition');
      expect(condition?.content).to.deep.equal({
        title: '${condition.value.title}',
        expression: '${condition.value.expression}',
      });
    });

    it('no longer says that the build reads our source bucket', function () {
      const description = String(mod.variables.build_service_account!.description);
      expect(description).to.include('gcf-v2-sources');
      expect(description).not.to.match(/read access to the source objects/);
      expect(description).to.include('never reads the source bucket');
    });
  });

  describe('2. the functions wait for API enablement and IAM propagation (time_sleep)', function () {
    it("depends on a time_sleep that follows the APIs, the service-agent grants, the build grants and the functions' Firestore grants", function () {
      expect(fn.depends_on).to.include('${time_sleep.iam_propagation}');
      const sleep = mod.resources.time_sleep?.iam_propagation;
      expect(sleep?.create_duration).to.equal('${var.iam_propagation_wait}');
      expect(sleep?.depends_on).to.have.members([
        '${google_project_service.this}',
        '${google_project_iam_member.build}',
        '${google_project_iam_member.gcs_pubsub_publisher}',
        '${google_project_iam_member.ingest_event_receiver}',
        '${google_service_account_iam_member.pubsub_token_creator}',
        '${google_project_iam_member.function_firestore}',
      ]);
      expect(mod.variables.iam_propagation_wait!.default).to.equal('120s');
      expect(requiredProviders(mod).time?.source).to.equal('hashicorp/time');
    });

    it('quotes the Eventarc error of the first apply in the comments and the variable', function () {
      expect(mod.sources['functions.tf']).to.include('Permission denied while using the Eventarc');
      expect(mod.sources['functions.tf']).to.include('hashicorp/terraform-provider-google#25294');
      expect(String(mod.variables.iam_propagation_wait!.description)).to.include(
        'Permission denied while using the Eventarc Service Agent',
      );
    });
  });

  describe('3. data sources are read at plan time, so an added API never replaces a binding', function () {
    it('has no depends_on on any data source', function () {
      for (const [type, byName] of Object.entries(mod.data)) {
        for (const [name, body] of Object.entries(byName))
          expect(body.depends_on, `data.${type}.${name}`).to.equal(undefined);
      }
      expect(mod.data.google_project?.this, 'data.google_project.this').to.exist;
      expect(mod.data.google_storage_project_service_account?.gcs).to.exist;
    });

    it('reads no resource attribute in the data sources that the service-agent bindings use', function () {
      for (const body of [mod.data.google_project!.this!, mod.data.google_storage_project_service_account!.gcs!]) {
        expect(JSON.stringify(body)).not.to.match(/google_[a-z0-9_]+\.[a-z0-9_]+/);
      }
    });
  });

  describe('4. the project-wide publisher grant of the Cloud Storage agent can be left out', function () {
    it('is behind grant_storage_agent_publisher, on by default', function () {
      const grant = mod.resources.google_project_iam_member!.gcs_pubsub_publisher!;
      expect(grant.count).to.equal('${var.grant_storage_agent_publisher ? 1 : 0}');
      expect(mod.variables.grant_storage_agent_publisher!.default).to.equal(true);
      expect(String(mod.variables.grant_storage_agent_publisher!.description)).to.match(/destroy/);
    });
  });

  describe('5. Cloud Scheduler has a region of its own', function () {
    it('places the job in scheduler_region, which defaults to region', function () {
      expect(mod.resources.google_cloud_scheduler_job!.cleanup!.region).to.equal('${local.scheduler_region}');
      expect(expr(mod.locals.scheduler_region)).to.equal(
        'var.scheduler_region == null ? var.region : var.scheduler_region',
      );
      expect(mod.variables.scheduler_region!.default).to.equal(null);
      expect(block(mod.variables.scheduler_region, 'validation'), 'validated').to.exist;
      expect(String(mod.variables.scheduler_region!.description)).to.include(
        'https://cloud.google.com/scheduler/docs/locations',
      );
    });
  });

  describe('6. the module configures no provider; the examples do', function () {
    it('has no provider block, and declares google, archive and time in required_providers', function () {
      expect(mod.other.provider, 'provider blocks in terraform/').to.equal(undefined);
      expect(Object.keys(requiredProviders(mod)).sort()).to.deep.equal(['archive', 'google', 'time']);
    });

    for (const example of ['basic', 'cdn']) {
      it(`configures the google provider in examples/${example}, which calls the module with declared variables only`, async function () {
        const configuration = await loadModule(join(TERRAFORM_DIR, 'examples', example));
        const provider = (configuration.other.provider ?? []).flat()[0] as Record<string, Body[]> | undefined;
        expect(provider?.google, `provider "google" in examples/${example}`).to.exist;
        expect(Object.keys(requiredProviders(configuration)).sort()).to.deep.equal(['archive', 'google', 'time']);
        const call = block((configuration.other.module ?? []).flat()[0] as Body, 'image_pipeline')!;
        expect(call.source).to.equal('../..');
        for (const name of Object.keys(call).filter((k) => k !== 'source'))
          expect(Object.keys(mod.variables), name).to.include(name);
        for (const output of Object.values(configuration.outputs)) {
          const used = /module\.image_pipeline\.([a-z0-9_]+)/.exec(String(output.value))?.[1];
          expect(Object.keys(mod.outputs), String(used)).to.include(used);
        }
      });
    }
  });

  describe('7. organisation policies: the grants they refuse, and why the default serving is bucket (issue 24)', function () {
    const readme = readFileSync(join(TERRAFORM_DIR, 'README.md'), 'utf8');
    const firstApplyErrors = readme.slice(
      readme.indexOf('\n### First-apply errors, and what to do\n'),
      readme.indexOf('\n### Applying again\n'),
    );

    it('names, in the first-apply errors, every grant to allUsers or to a Google agent outside the domain', function () {
      const outside = Object.entries(mod.resources).flatMap(([type, byName]) =>
        Object.entries(byName)
          .filter(([, body]) => body.member === 'allUsers' || body.member === '${local.cdn_service_agent}')
          .map(([name]) => `${type}.${name}`),
      );
      expect(outside).to.have.members([
        'google_storage_bucket_iam_member.images_public',
        'google_cloud_run_service_iam_member.upload_public',
        'google_storage_bucket_iam_member.cdn_reader',
      ]);
      expect(firstApplyErrors.length, 'the section exists').to.be.greaterThan(1000);
      for (const address of outside) expect(firstApplyErrors, address).to.include(`\`${address}\``);
      // The errors these policies answer with, as the API words them.
      expect(firstApplyErrors).to.include("Request violates constraint 'constraints/storage.publicAccessPrevention'");
      expect(firstApplyErrors).to.include('One or more users named in the');
    });

    it('keeps bucket as the default deliberately, and says why and when to choose otherwise', function () {
      const serving = mod.variables.serving!;
      expect(serving.default).to.equal('bucket');
      const description = String(serving.description);
      expect(description).to.include('default deliberately');
      expect(description).to.include('storage.publicAccessPrevention').and.include('iam.allowedPolicyMemberDomains');
      expect(readme).to.include('**Why `bucket` is the default.**');
    });
  });
});
