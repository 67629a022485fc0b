/**
 * What upload is told about its callers (issue 21): local.env_upload, taken from the parsed module
 * and evaluated by Terraform itself in a scratch module (variables.tf, settings.tf and that map as
 * an output, its empty values dropped as function_env drops them), for the authentication modes a
 * deployment can choose. The values must be ones shared/core/config.ts accepts.
 */
import { expect } from 'chai';
import { loadConfig } from '../../shared/core/config.js';
import { expr, loadModule, TERRAFORM_DIR, type Body } from './hcl.js';
import { scratchModule, type ScratchModule } from './scratch.js';

const ISSUER = 'https://securetoken.google.com/my-project-123';

describe('terraform: the upload function learns how to authenticate and its quotas (env_upload)', function () {
  let scratch: ScratchModule;

  before(async function () {
    this.timeout(120_000);
    const mod = await loadModule(TERRAFORM_DIR);
    const upload = mod.locals.env_upload as Body;
    const entries = Object.entries(upload)
      .map(([key, value]) => `    ${key} = ${expr(value) ?? JSON.stringify(value)}`)
      .join('\n');
    const hcl = `locals {\n  env_upload = {\n${entries}\n  }\n}\noutput "env" {\n  value = { for k, v in local.env_upload : k => v if v != "" }\n}\n`;
    scratch = scratchModule('tf-upload-env', { 'env.tf': hcl });
  });

  after(function () {
    scratch?.remove();
  });

  function env(vars: Record<string, unknown>): Record<string, string> {
    return scratch.evaluate(vars).env as Record<string, string>;
  }

  /** The environment upload would start with (the buckets stand in for the module's). */
  function config(values: Record<string, string>, token?: string) {
    return loadConfig({
      ...values,
      UPLOADS_BUCKET: 'my-uploads',
      IMAGES_BUCKET: 'my-images',
      ...(token ? { UPLOAD_TOKEN: 'x'.repeat(24) } : {}),
    });
  }

  it('by default: none without a token secret (IAM alone), no JWT_* and no QUOTA_* (the code decides)', function () {
    this.timeout(60_000);
    const values = env({});
    expect(values.UPLOAD_AUTH).to.equal('none');
    expect(Object.keys(values).filter((k) => /^(JWT|QUOTA)_/.test(k))).to.deep.equal([]);
    expect(config(values).UPLOAD_AUTH).to.equal('none');
  });

  it('token when a token secret is named, as before upload_auth existed', function () {
    this.timeout(60_000);
    const values = env({ upload_token_secret_id: 'upload-token' });
    expect(values.UPLOAD_AUTH).to.equal('token');
    expect(config(values, 'token').UPLOAD_AUTH).to.equal('token');
  });

  it('jwt: issuer, audience, key URL and each quota set, as the code reads them', function () {
    this.timeout(60_000);
    const values = env({
      allow_unauthenticated_upload: true,
      upload_auth: 'jwt',
      jwt_issuer: ISSUER,
      jwt_audience: 'my-project-123',
      jwt_jwks_url: 'https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com',
      quotas: { uploads_per_day: 50, bytes_per_day: 5 * 1024 ** 3, open_tickets: 0 },
    });
    expect(values).to.include({
      UPLOAD_AUTH: 'jwt',
      JWT_ISSUER: ISSUER,
      JWT_AUDIENCE: 'my-project-123',
      QUOTA_UPLOADS_PER_DAY: '50',
      QUOTA_BYTES_PER_DAY: String(5 * 1024 ** 3),
      QUOTA_OPEN_TICKETS: '0',
    });
    const parsed = config(values);
    expect(parsed).to.include({
      UPLOAD_AUTH: 'jwt',
      JWT_ISSUER: ISSUER,
      QUOTA_UPLOADS_PER_DAY: 50,
      QUOTA_BYTES_PER_DAY: 5 * 1024 ** 3,
      QUOTA_OPEN_TICKETS: 0,
    });
  });

  it('jwt with a quota left out: that one stays unset, so the code keeps its default', function () {
    this.timeout(60_000);
    const values = env({
      upload_auth: 'jwt',
      jwt_issuer: ISSUER,
      jwt_audience: 'my-project-123',
      upload_token_secret_id: 'upload-token',
      quotas: { open_tickets: 3 },
    });
    expect(values.QUOTA_OPEN_TICKETS).to.equal('3');
    expect(values).not.to.have.property('QUOTA_UPLOADS_PER_DAY');
    expect(values).not.to.have.property('QUOTA_BYTES_PER_DAY');
    expect(values).not.to.have.property('JWT_JWKS_URL');
    expect(config(values, 'token').UPLOAD_AUTH).to.equal('jwt');
  });
});
