/**
 * serving = bucket | cdn | none: for each mode, who may read the images bucket and the base URL
 * manifests use must agree (issue 11: after a default apply every manifest URL loads). The
 * expressions are taken from the parsed module and evaluated by Terraform itself, in a scratch
 * module made of variables.tf, settings.tf and those expressions as outputs, with the two
 * provider-computed values (the images bucket's name, the project number) as stand-ins: no
 * provider is needed, so it runs here.
 */
import { expect } from 'chai';
import { block, expr, loadModule, TERRAFORM_DIR, type Body, type Module } from './hcl.js';
import { scratchModule, type ScratchModule } from './scratch.js';

const STAND_INS: Array<[RegExp, string]> = [
  [/google_storage_bucket\.images\.name/g, '"my-images"'],
  [/data\.google_project\.this\.number/g, '"123"'],
];

/** An HCL expression for a parsed value: "${x}" → x, a literal → its JSON, with the stand-ins. */
function hclOf(value: unknown): string {
  let text = expr(value) ?? JSON.stringify(value);
  for (const [pattern, replacement] of STAND_INS) text = text.replace(pattern, replacement);
  return text;
}

interface Evaluated {
  images_public_read: number;
  images_prevention: string;
  cdn_reader: number;
  cdn_reader_member: string;
  https_rule: number;
  certificate_domains: string[];
  certificate_name: string | null;
  fill_agent_key: number;
  fill_agent_key_value: string;
  public_base_url: string | null;
  env_public_base_url: string | null;
}

describe('terraform: serving modes (images bucket reader vs manifest base URL)', function () {
  let mod: Module;
  let scratch: ScratchModule;

  before(async function () {
    this.timeout(120_000);
    mod = await loadModule(TERRAFORM_DIR);
    const images = mod.resources.google_storage_bucket!.images!;
    const cdnReader = mod.resources.google_storage_bucket_iam_member!.cdn_reader!;
    const fillKey = mod.resources.google_compute_backend_bucket_signed_url_key!.cdn_fill_agent!;
    const outputs: Record<string, string> = {
      images_public_read: hclOf(mod.resources.google_storage_bucket_iam_member!.images_public!.count),
      images_prevention: hclOf(images.public_access_prevention),
      cdn_reader: hclOf(cdnReader.count),
      cdn_reader_member: hclOf(cdnReader.member),
      https_rule: hclOf(mod.resources.google_compute_global_forwarding_rule!.https!.count),
      certificate_domains: hclOf(block(mod.resources.google_compute_managed_ssl_certificate!.cdn, 'managed')!.domains),
      certificate_name: hclOf(mod.resources.google_compute_managed_ssl_certificate!.cdn!.name),
      fill_agent_key: hclOf(fillKey.count),
      fill_agent_key_value: hclOf(fillKey.key_value),
      public_base_url: hclOf(mod.locals.public_base_url),
      env_public_base_url: hclOf((mod.locals.env_common as Body).PUBLIC_BASE_URL),
    };
    const locals: Record<string, string> = {
      cdn_count: hclOf(mod.locals.cdn_count),
      public_base_url: outputs.public_base_url!,
      cdn_service_agent: hclOf(mod.locals.cdn_service_agent),
      cdn_name: hclOf(mod.locals.cdn_name),
      cdn_certificate_name: hclOf(mod.locals.cdn_certificate_name),
    };
    const hcl = [
      'locals {',
      ...Object.entries(locals).map(([name, value]) => `  ${name} = ${value}`),
      '}',
      ...Object.entries(outputs).map(([name, value]) => `output "${name}" {\n  value = ${value}\n}`),
    ].join('\n');
    scratch = scratchModule('tf-serving', { 'serving.tf': `${hcl}\n` });
  });

  after(function () {
    scratch?.remove();
  });

  function evaluate(vars: Record<string, unknown>): Evaluated {
    return scratch.evaluate(vars) as unknown as Evaluated;
  }

  it('bucket (default): anyone may read the images bucket, and manifests point at it', function () {
    this.timeout(60_000);
    const r = evaluate({});
    expect(r.images_public_read).to.equal(1);
    expect(r.images_prevention).to.equal('inherited');
    expect(r.cdn_reader).to.equal(0);
    expect(r.https_rule).to.equal(0);
    expect(r.public_base_url).to.equal('https://storage.googleapis.com/my-images');
    expect(r.env_public_base_url).to.equal(r.public_base_url);
  });

  it('bucket with a public_base_url of ones own: still public, manifests use the given URL', function () {
    this.timeout(60_000);
    const r = evaluate({ public_base_url: 'https://img.example.com' });
    expect(r.images_public_read).to.equal(1);
    expect(r.public_base_url).to.equal('https://img.example.com');
  });

  it('cdn: the bucket is private, only the Cloud CDN agent reads it, manifests point at https://{domain}', function () {
    this.timeout(60_000);
    const r = evaluate({ serving: 'cdn', domain: 'images.example.com' });
    expect(r.images_public_read).to.equal(0);
    expect(r.images_prevention).to.equal('enforced');
    expect(r.cdn_reader).to.equal(1);
    expect(r.cdn_reader_member).to.equal('serviceAccount:service-123@cloud-cdn-fill.iam.gserviceaccount.com');
    expect(r.https_rule).to.equal(1);
    expect(r.certificate_domains).to.deep.equal(['images.example.com']);
    expect(r.fill_agent_key, 'a signed URL key brings the fill agent into being').to.equal(1);
    expect(r.public_base_url).to.equal('https://images.example.com');
    expect(r.env_public_base_url).to.equal(r.public_base_url);
  });

  it('none: the bucket is private, nobody is granted read, manifests use public_base_url as given', function () {
    this.timeout(60_000);
    const r = evaluate({ serving: 'none', public_base_url: 'https://img.example.com/pipeline' });
    expect(r.images_public_read).to.equal(0);
    expect(r.images_prevention).to.equal('enforced');
    expect(r.cdn_reader).to.equal(0);
    expect(r.https_rule).to.equal(0);
    expect(r.public_base_url).to.equal('https://img.example.com/pipeline');
  });

  it('cdn: the grant to the fill agent waits for the signed URL key that creates the agent (first apply)', function () {
    const key = mod.resources.google_compute_backend_bucket_signed_url_key!.cdn_fill_agent!;
    expect(key.backend_bucket).to.equal('${google_compute_backend_bucket.images[0].name}');
    expect(block(key, 'lifecycle')!.ignore_changes, 'a random key read once').to.deep.equal(['${key_value}']);
    const sleep = mod.resources.time_sleep!.cdn_fill_agent!;
    expect(sleep.count).to.equal('${local.cdn_count}');
    expect(sleep.depends_on).to.deep.equal(['${google_compute_backend_bucket_signed_url_key.cdn_fill_agent}']);
    const reader = mod.resources.google_storage_bucket_iam_member!.cdn_reader!;
    expect(reader.depends_on).to.deep.equal(['${time_sleep.cdn_fill_agent}']);
  });

  it('cdn: the signing key is 128 random bits in base64url, as the API takes it', function () {
    this.timeout(120_000);
    const a = evaluate({ serving: 'cdn', domain: 'images.example.com' }).fill_agent_key_value;
    const b = evaluate({ serving: 'cdn', domain: 'images.example.com' }).fill_agent_key_value;
    for (const key of [a, b]) {
      expect(key).to.match(/^[A-Za-z0-9_-]{22}==$/);
      expect(Buffer.from(key, 'base64url').length).to.equal(16);
    }
    expect(a, 'a new random key each time it is created').not.to.equal(b);
    expect(evaluate({}).fill_agent_key, 'no key without cdn').to.equal(0);
  });

  it('cdn: a new domain gets a certificate of another name, created before the old one goes', function () {
    this.timeout(120_000);
    const first = evaluate({ serving: 'cdn', domain: 'images.example.com' }).certificate_name;
    const again = evaluate({ serving: 'cdn', domain: 'images.example.com' }).certificate_name;
    const other = evaluate({ serving: 'cdn', domain: 'img.example.org' }).certificate_name;
    expect(first).to.equal(again);
    expect(other).not.to.equal(first);
    for (const name of [first, other]) {
      expect(name).to.match(/^[a-z]([-a-z0-9]*[a-z0-9])?$/);
      expect(name!.length).to.be.at.most(63);
    }
    const certificate = mod.resources.google_compute_managed_ssl_certificate!.cdn!;
    expect(block(certificate, 'lifecycle')!.create_before_destroy).to.equal(true);
  });

  it('wires the load balancer: backend bucket with CDN on the images bucket, HTTPS with the certificate, HTTP redirected', function () {
    const backend = mod.resources.google_compute_backend_bucket!.images!;
    expect(backend).to.include({ bucket_name: '${google_storage_bucket.images.name}', enable_cdn: true });
    expect(block(backend, 'cdn_policy')!.cache_mode, "honours the variants' immutable Cache-Control").to.equal(
      'USE_ORIGIN_HEADERS',
    );
    expect(mod.resources.google_compute_url_map!.cdn!.default_service).to.equal(
      '${google_compute_backend_bucket.images[0].id}',
    );
    const https = mod.resources.google_compute_target_https_proxy!.cdn!;
    expect(https.ssl_certificates).to.deep.equal(['${google_compute_managed_ssl_certificate.cdn[0].id}']);
    const redirect = block(mod.resources.google_compute_url_map!.http_redirect, 'default_url_redirect')!;
    expect(redirect.https_redirect).to.equal(true);
    const rules = mod.resources.google_compute_global_forwarding_rule!;
    expect(rules.https).to.include({
      port_range: '443',
      target: '${google_compute_target_https_proxy.cdn[0].id}',
      load_balancing_scheme: 'EXTERNAL_MANAGED',
    });
    expect(rules.http).to.include({
      port_range: '80',
      target: '${google_compute_target_http_proxy.http_redirect[0].id}',
      load_balancing_scheme: 'EXTERNAL_MANAGED',
    });
    expect(rules.https!.ip_address).to.equal(rules.http!.ip_address);
  });

  it('outputs the base URL manifests use', function () {
    expect(mod.outputs.public_base_url!.value).to.equal('${local.public_base_url}');
    expect(mod.outputs.cdn_ip_address, "the address for the domain's A record").to.exist;
  });
});
