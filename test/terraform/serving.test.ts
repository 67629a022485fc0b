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
import { scratchModule, terraform, type ScratchModule } from './scratch.js';

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
    const outputs: Record<string, string> = {
      images_public_read: hclOf(mod.resources.google_storage_bucket_iam_member!.images_public!.count),
      images_prevention: hclOf(images.public_access_prevention),
      cdn_reader: hclOf(cdnReader.count),
      cdn_reader_member: hclOf(cdnReader.member),
      https_rule: hclOf(mod.resources.google_compute_global_forwarding_rule!.https!.count),
      certificate_domains: hclOf(block(mod.resources.google_compute_managed_ssl_certificate!.cdn, 'managed')!.domains),
      public_base_url: hclOf(mod.locals.public_base_url),
      env_public_base_url: hclOf((mod.locals.env_common as Body).PUBLIC_BASE_URL),
    };
    const locals: Record<string, string> = {
      cdn_count: hclOf(mod.locals.cdn_count),
      public_base_url: outputs.public_base_url!,
      cdn_service_agent: hclOf(mod.locals.cdn_service_agent),
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
    const varFile = scratch.varFile({ project_id: 'my-project-123', ...vars });
    const apply = terraform(scratch.dir, [
      'apply',
      '-auto-approve',
      '-no-color',
      '-input=false',
      '-lock=false',
      varFile,
    ]);
    expect(apply.status, apply.output).to.equal(0);
    const out = terraform(scratch.dir, ['output', '-json', '-no-color']);
    expect(out.status, out.output).to.equal(0);
    const json = JSON.parse(out.stdout) as Record<string, { value: unknown }>;
    return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, v.value])) as unknown as Evaluated;
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
