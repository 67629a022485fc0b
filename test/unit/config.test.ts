import { expect } from 'chai';
import { ConfigError, loadConfig, REQUIRED_ENV_VARS } from '../../shared/core/config.js';
import { uploadAuth } from '../../shared/auth/settings.js';

const base = { UPLOADS_BUCKET: 'demo-uploads', IMAGES_BUCKET: 'demo-images' };

describe('config', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(base);
    expect(config.WIDTHS).to.deep.equal([320, 640, 1024, 1600, 2048]);
    expect(config.FORMATS).to.deep.equal(['avif', 'webp', 'jpeg']);
    expect(config.MAX_UPLOAD_BYTES).to.equal(25 * 1024 * 1024);
    expect(config.MAX_INGEST_BYTES).to.equal(200 * 1024 * 1024);
    expect(config.SIGNED_URL_TTL_SECONDS).to.equal(900);
    expect(config.MAX_INPUT_PIXELS).to.equal(50_000_000);
    expect(config.ALLOW_SVG).to.equal(false);
  });

  it('requires exactly the bucket names', () => {
    expect(REQUIRED_ENV_VARS).to.deep.equal(['UPLOADS_BUCKET', 'IMAGES_BUCKET']);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ ...base, WIDTHS: '' }).WIDTHS).to.have.length(5);
  });

  it('sorts widths and parses lists', () => {
    const config = loadConfig({
      ...base,
      WIDTHS: '800, 200 ,400',
      FORMATS: 'webp,jpeg',
      CORS_ORIGINS: 'https://a.example,https://b.example',
    });
    expect(config.WIDTHS).to.deep.equal([200, 400, 800]);
    expect(config.FORMATS).to.deep.equal(['webp', 'jpeg']);
    expect(config.CORS_ORIGINS).to.deep.equal(['https://a.example', 'https://b.example']);
  });

  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['a missing bucket', { IMAGES_BUCKET: 'demo-images' }, /UPLOADS_BUCKET is required/],
    [
      'a bad bucket name',
      { ...base, IMAGES_BUCKET: 'Bad_Bucket!' },
      /IMAGES_BUCKET must be a valid Cloud Storage bucket name/,
    ],
    ['a non-numeric width', { ...base, WIDTHS: '320,wide' }, /WIDTHS must be a number/],
    ['a repeated width', { ...base, WIDTHS: '320,320' }, /WIDTHS must not repeat a width/],
    ['an unknown format', { ...base, FORMATS: 'avif,gif' }, /FORMATS each must be one of avif, webp, jpeg/],
    ['an unknown strategy', { ...base, FANOUT_STRATEGY: 'random' }, /FANOUT_STRATEGY must be one of/],
    ['a non-boolean', { ...base, ALLOW_SVG: 'maybe' }, /ALLOW_SVG must be true or false/],
    ['a quality out of range', { ...base, JPEG_QUALITY: '101' }, /JPEG_QUALITY must be at most 100/],
    ['a short token', { ...base, UPLOAD_TOKEN: 'short' }, /UPLOAD_TOKEN must be at least 16 characters \(set\)/],
    [
      "a request-body limit over Cloud Run's 32 MiB",
      { ...base, MAX_UPLOAD_BYTES: String(32 * 1024 * 1024 + 1) },
      /MAX_UPLOAD_BYTES must be at most 33554432/,
    ],
    [
      'a signed-URL lifetime over 1 hour',
      { ...base, SIGNED_URL_TTL_SECONDS: String(3601) },
      /SIGNED_URL_TTL_SECONDS must be at most 3600/,
    ],
    ['a bad endpoint', { ...base, STORAGE_API_ENDPOINT: 'not a url' }, /STORAGE_API_ENDPOINT must be a URL/],
  ];
  for (const [what, env, message] of bad) {
    it(`rejects ${what} with a message naming the variable`, () => {
      expect(() => loadConfig(env)).to.throw(ConfigError, message);
    });
  }

  describe('upload authentication (UPLOAD_AUTH, UPLOAD_TOKEN)', () => {
    const token = 'a-token-of-24-characters';
    it('requires a token by default: UPLOAD_AUTH is token', () => {
      expect(loadConfig(base).UPLOAD_AUTH).to.equal('token');
      expect(uploadAuth(loadConfig({ ...base, UPLOAD_TOKEN: token }))).to.deep.equal({ mode: 'token', token });
    });

    it('refuses to start upload with UPLOAD_AUTH=token and no token, naming both variables', () => {
      expect(() => uploadAuth(loadConfig(base))).to.throw(
        ConfigError,
        /UPLOAD_TOKEN is unset but UPLOAD_AUTH is token/,
      );
    });

    for (const [what, value] of [
      ['empty', ''],
      ['whitespace-only', ' \n\t '],
      ['empty with UPLOAD_AUTH=none', ''],
    ] as const) {
      it(`refuses a present but ${what} UPLOAD_TOKEN (an empty secret version) instead of turning authentication off`, () => {
        const env = { ...base, UPLOAD_TOKEN: value, ...(what.includes('none') ? { UPLOAD_AUTH: 'none' } : {}) };
        expect(() => loadConfig(env)).to.throw(ConfigError, /UPLOAD_TOKEN is set but empty/);
      });
    }

    it('runs without authentication only when UPLOAD_AUTH=none is set explicitly', () => {
      expect(uploadAuth(loadConfig({ ...base, UPLOAD_AUTH: 'none' }))).to.deep.equal({ mode: 'none' });
    });

    it('refuses UPLOAD_AUTH=none with a token (which would be ignored) and an unknown mode', () => {
      expect(() => loadConfig({ ...base, UPLOAD_AUTH: 'none', UPLOAD_TOKEN: token })).to.throw(
        ConfigError,
        /UPLOAD_TOKEN is set but UPLOAD_AUTH is none/,
      );
      expect(() => loadConfig({ ...base, UPLOAD_AUTH: 'basic' })).to.throw(
        ConfigError,
        /UPLOAD_AUTH must be one of jwt, token, none/,
      );
    });
  });

  describe('UPLOAD_AUTH=jwt', () => {
    const jwt = { ...base, UPLOAD_AUTH: 'jwt', JWT_AUDIENCE: 'my-project' };
    const token = 'a-token-of-24-characters';
    const issuers: Array<[string, boolean]> = [
      ['https://securetoken.google.com/my-project', true],
      ['https://tenant.auth0.com/', true],
      ['http://127.0.0.1:9123', true],
      ['http://localhost:9123', true],
      ['http://[::1]:9123', true],
      ['http://issuer.example', false],
      ['http://localhost.evil.example', false],
      ['http://127.0.0.1.nip.io', false],
      ['ftp://127.0.0.1', false],
      ['not a url', false],
    ];
    for (const [issuer, ok] of issuers) {
      it(`${ok ? 'takes' : 'refuses'} the issuer ${issuer}`, () => {
        const load = () => loadConfig({ ...jwt, JWT_ISSUER: issuer });
        if (ok) expect(uploadAuth(load())).to.include({ mode: 'jwt', issuer, audience: 'my-project' });
        else expect(load).to.throw(ConfigError, /JWT_ISSUER/);
      });
    }

    it('refuses a plain-http JWKS URL off loopback', () => {
      expect(() =>
        loadConfig({ ...jwt, JWT_ISSUER: 'https://issuer.example', JWT_JWKS_URL: 'http://keys.example/jwks' }),
      ).to.throw(ConfigError, /JWT_JWKS_URL/);
    });

    it('needs both an issuer and an audience, and keeps a shared token for trusted backends', () => {
      expect(() => uploadAuth(loadConfig({ ...base, UPLOAD_AUTH: 'jwt', JWT_AUDIENCE: 'a' }))).to.throw(
        ConfigError,
        /JWT_ISSUER or JWT_AUDIENCE is unset/,
      );
      expect(() =>
        uploadAuth(loadConfig({ ...base, UPLOAD_AUTH: 'jwt', JWT_ISSUER: 'https://issuer.example' })),
      ).to.throw(ConfigError, /JWT_ISSUER or JWT_AUDIENCE is unset/);
      expect(
        uploadAuth(loadConfig({ ...jwt, JWT_ISSUER: 'https://issuer.example', UPLOAD_TOKEN: token })),
      ).to.deep.equal({
        mode: 'jwt',
        issuer: 'https://issuer.example',
        audience: 'my-project',
        token,
      });
    });
  });

  it('never echoes the token value', () => {
    try {
      loadConfig({ ...base, UPLOAD_TOKEN: 'short-secret' });
      expect.fail('should throw');
    } catch (error) {
      expect((error as Error).message).not.to.contain('short-secret');
    }
  });
});
