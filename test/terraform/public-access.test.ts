/**
 * Nothing public can be listed (issue 21): no public member (allUsers, allAuthenticatedUsers)
 * holds a role with storage.objects.list anywhere in terraform/, and every member of a Cloud
 * Storage grant is either such a literal or a service account, so that no variable can smuggle a
 * public member into a listing grant. The images bucket is readable by anyone only through
 * roles/storage.legacyObjectReader (objects.get, no list). The checker is first shown to fail on
 * small modules that grant a listing role to the public in the ways HCL allows.
 */
import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { allResources, blocks, expr, loadModule, resolveLocalPath, TERRAFORM_DIR, type Module } from './hcl.js';

const PUBLIC = /\ball(Authenticated)?Users\b/;

/**
 * Predefined roles that hold storage.objects.list (IAM roles for Cloud Storage; the primitive
 * roles hold it on every bucket of the project). A public member must hold none of them.
 */
const LISTING_ROLES = [
  'roles/storage.objectViewer',
  'roles/storage.objectUser',
  'roles/storage.objectAdmin',
  'roles/storage.admin',
  'roles/storage.folderAdmin',
  'roles/storage.legacyBucketReader',
  'roles/storage.legacyBucketWriter',
  'roles/storage.legacyBucketOwner',
  'roles/owner',
  'roles/editor',
  'roles/viewer',
];

/** The only roles a public member may hold: object reads by exact name, and invoking upload. */
const PUBLIC_ROLES = ['roles/storage.legacyObjectReader', 'roles/run.invoker'];

interface Grant {
  readonly where: string;
  readonly role: unknown;
  readonly members: unknown[];
}

/** Every grant of the module: *_iam_member, *_iam_binding, and google_iam_policy bindings. */
function grants(mod: Module): Grant[] {
  const out: Grant[] = [];
  for (const [type, name, body] of allResources(mod)) {
    if (type.endsWith('_iam_member')) out.push({ where: `${type}.${name}`, role: body.role, members: [body.member] });
    else if (type.endsWith('_iam_binding'))
      out.push({ where: `${type}.${name}`, role: body.role, members: [body.members].flat() });
  }
  for (const [name, body] of Object.entries(mod.data.google_iam_policy ?? {}))
    for (const binding of blocks(body, 'binding'))
      out.push({ where: `data.google_iam_policy.${name}`, role: binding.role, members: [binding.members].flat() });
  return out;
}

/** What is wrong with the module's public grants (empty: nothing public can be listed). */
function publicAccessProblems(mod: Module): string[] {
  const problems: string[] = [];
  for (const grant of grants(mod)) {
    const role = String(grant.role);
    for (const raw of grant.members) {
      const member = resolveLocalPath(mod, raw);
      const text = JSON.stringify(member);
      const storage = grant.where.startsWith('google_storage_') || role.startsWith('roles/storage.');
      if (PUBLIC.test(text)) {
        if (LISTING_ROLES.includes(role)) problems.push(`${grant.where}: a public member holds ${role}, which lists`);
        else if (!PUBLIC_ROLES.includes(role))
          problems.push(`${grant.where}: a public member holds ${role}, not one of ${PUBLIC_ROLES.join(', ')}`);
      } else if (storage && !/^serviceAccount:/.test(String(member))) {
        // A member from a variable or an expression could be allUsers: storage grants name
        // service accounts (or the public, literally, above).
        problems.push(`${grant.where}: member ${text} is neither a literal public member nor a service account`);
      }
    }
  }
  return problems;
}

async function moduleOf(text: string): Promise<Module> {
  const dir = mkdtempSync(join(tmpdir(), 'tf-public-'));
  try {
    writeFileSync(join(dir, 'main.tf'), text);
    return await loadModule(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('terraform: nothing public can be listed', function () {
  describe('the checker, on small modules', function () {
    const member = (role: string, who = 'allUsers') =>
      `resource "google_storage_bucket_iam_member" "m" {\n  bucket = "b"\n  role   = "${role}"\n  member = "${who}"\n}\n`;

    it('accepts legacyObjectReader for allUsers and objectViewer for a service account', async function () {
      expect(publicAccessProblems(await moduleOf(member('roles/storage.legacyObjectReader')))).to.deep.equal([]);
      expect(
        publicAccessProblems(await moduleOf(member('roles/storage.objectViewer', 'serviceAccount:${local.sa}'))),
      ).to.deep.equal([]);
    });

    for (const role of LISTING_ROLES) {
      it(`fails on ${role} for allUsers`, async function () {
        expect(publicAccessProblems(await moduleOf(member(role)))).to.deep.equal([
          `google_storage_bucket_iam_member.m: a public member holds ${role}, which lists`,
        ]);
      });
    }

    it('fails on allAuthenticatedUsers, on a binding, through a local, and on a policy document', async function () {
      expect(
        publicAccessProblems(await moduleOf(member('roles/storage.legacyBucketReader', 'allAuthenticatedUsers'))),
      ).to.have.length(1);
      const binding = `resource "google_storage_bucket_iam_binding" "b" {\n  bucket  = "b"\n  role    = "roles/storage.objectViewer"\n  members = ["serviceAccount:a@p.iam.gserviceaccount.com", "allUsers"]\n}\n`;
      expect(publicAccessProblems(await moduleOf(binding))).to.deep.equal([
        'google_storage_bucket_iam_binding.b: a public member holds roles/storage.objectViewer, which lists',
      ]);
      const viaLocal = `locals {\n  reader = "allUsers"\n}\n${member('roles/storage.objectViewer', '${local.reader}')}`;
      expect(publicAccessProblems(await moduleOf(viaLocal))).to.have.length(1);
      const policy = `data "google_iam_policy" "p" {\n  binding {\n    role    = "roles/storage.objectViewer"\n    members = ["allUsers"]\n  }\n}\n`;
      expect(publicAccessProblems(await moduleOf(policy))).to.have.length(1);
    });

    it('fails on a storage grant whose member comes from a variable (it could be allUsers)', async function () {
      expect(publicAccessProblems(await moduleOf(member('roles/storage.objectViewer', '${var.reader}')))).to.deep.equal(
        [
          'google_storage_bucket_iam_member.m: member "${var.reader}" is neither a literal public member nor a service account',
        ],
      );
    });
  });

  describe('terraform/', function () {
    let mod: Module;
    before(async function () {
      mod = await loadModule(TERRAFORM_DIR);
    });

    it('grants no public member a role that lists, and storage roles only to service accounts otherwise', function () {
      expect(grants(mod).length).to.be.greaterThan(10);
      expect(publicAccessProblems(mod)).to.deep.equal([]);
    });

    it('lets anyone read the images bucket by exact name only (legacyObjectReader), with serving = "bucket"', function () {
      const grant = mod.resources.google_storage_bucket_iam_member!.images_public!;
      expect(grant).to.include({
        bucket: '${google_storage_bucket.images.name}',
        role: 'roles/storage.legacyObjectReader',
        member: 'allUsers',
        count: '${var.serving == "bucket" ? 1 : 0}',
      });
      // The upgrade from objectViewer replaces the member: the new grant comes first.
      expect(grant.lifecycle).to.deep.equal([{ create_before_destroy: true }]);
      const publicGrants = grants(mod).filter((g) => g.members.some((m) => PUBLIC.test(JSON.stringify(m))));
      expect(publicGrants.map((g) => `${g.where} ${String(g.role)}`).sort()).to.deep.equal([
        'google_cloud_run_service_iam_member.upload_public roles/run.invoker',
        'google_storage_bucket_iam_member.images_public roles/storage.legacyObjectReader',
      ]);
    });

    it('lets the Cloud CDN fill agent, a service agent and not the public, read the private bucket', function () {
      const cdn = mod.resources.google_storage_bucket_iam_member!.cdn_reader!;
      expect(cdn.member).to.equal('${local.cdn_service_agent}');
      expect(String(resolveLocalPath(mod, cdn.member))).to.match(/^serviceAccount:service-.*@cloud-cdn-fill\./);
      expect(expr(cdn.count)).to.equal('local.cdn_count');
    });
  });
});
