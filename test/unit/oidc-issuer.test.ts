/**
 * The local OpenID Connect issuer (local/oidc-issuer.ts) over real HTTP: discovery, the key set,
 * the dev sign-in, and that what it signs is what shared/auth/jwt.ts accepts.
 */
import { expect } from 'chai';
import { decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { createIdTokenVerifier, discoveryUrl } from '../../shared/auth/jwt.js';
import { DEV_USERS, type OidcIssuer, startOidcIssuer } from '../../local/oidc-issuer.js';

describe('local OIDC issuer', function () {
  this.timeout(20_000);
  let issuer: OidcIssuer;
  before(async () => {
    issuer = await startOidcIssuer();
  });
  after(async () => issuer?.stop());

  it('publishes a discovery document naming itself and its key set, on loopback', async () => {
    expect(issuer.url).to.match(/^http:\/\/127\.0\.0\.1:\d+$/);
    const document = (await (await fetch(discoveryUrl(issuer.url))).json()) as Record<string, unknown>;
    expect(document).to.include({ issuer: issuer.url, jwks_uri: issuer.jwksUrl });
    const jwks = (await (await fetch(issuer.jwksUrl)).json()) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys).to.have.length(1);
    expect(jwks.keys[0]).to.include({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(jwks.keys[0]).not.to.have.property('d');
  });

  it('signs in each dev user with an hour-long RS256 token that verifies', async () => {
    const verify = createIdTokenVerifier({ issuer: issuer.url, audience: issuer.audience });
    for (const user of DEV_USERS) {
      const response = await fetch(`${issuer.url}/dev/token?user=${user}`);
      expect(response.status).to.equal(200);
      const token = (await response.json()) as { idToken: string; expiresAt: string; sub: string };
      expect(token.sub).to.equal(user);
      const lifetime = Date.parse(token.expiresAt) - Date.now();
      expect(lifetime).to.be.within(3590_000, 3600_000);
      expect(decodeProtectedHeader(token.idToken)).to.include({ alg: 'RS256' }).and.to.have.property('kid');
      expect(await verify(token.idToken)).to.equal(user);
    }
  });

  it('knows no other user, and answers CORS only for the origins it is given', async () => {
    expect((await fetch(`${issuer.url}/dev/token?user=mallory`)).status).to.equal(404);
    const before = await fetch(`${issuer.url}/dev/token?user=alice`, { headers: { Origin: 'http://127.0.0.1:8080' } });
    expect(before.headers.get('access-control-allow-origin')).to.equal(null);
    issuer.setCorsOrigins(['http://127.0.0.1:8080']);
    const after = await fetch(`${issuer.url}/dev/token?user=alice`, { headers: { Origin: 'http://127.0.0.1:8080' } });
    expect(after.headers.get('access-control-allow-origin')).to.equal('http://127.0.0.1:8080');
  });

  it('publishes the next key on rotation and keeps the old one', async () => {
    const old = decodeProtectedHeader((await issuer.idToken('bob')).idToken).kid;
    const next = decodeProtectedHeader(await issuer.sign(issuer.claimsFor('bob'), { key: 'unpublished' })).kid;
    await issuer.rotate();
    const kids = ((await (await fetch(issuer.jwksUrl)).json()) as { keys: Array<{ kid: string }> }).keys.map(
      (k) => k.kid,
    );
    expect(kids).to.deep.equal([old, next]);
    expect(decodeProtectedHeader((await issuer.idToken('bob')).idToken).kid).to.equal(next);
  });

  it('fails its JWKS on demand, and only in process', async () => {
    issuer.failJwks(500);
    expect((await fetch(issuer.jwksUrl)).status).to.equal(500);
    issuer.failJwks(undefined);
    expect((await fetch(issuer.jwksUrl)).status).to.equal(200);
    // No HTTP way to sign arbitrary claims or to change the issuer.
    expect((await fetch(`${issuer.url}/dev/token?user=alice`, { method: 'POST' })).status).to.equal(405);
  });

  it('signs ES256 too, which the verifier accepts; RS384 it refuses as not allowed', async () => {
    const es = await startOidcIssuer({ algorithm: 'ES256' });
    try {
      const verify = createIdTokenVerifier({ issuer: es.url, audience: es.audience });
      const token = (await es.idToken('carol')).idToken;
      expect(decodeProtectedHeader(token)).to.include({ alg: 'ES256' });
      expect(await verify(token)).to.equal('carol');
      const { privateKey } = await generateKeyPair('RS384');
      const rs384 = await new SignJWT(es.claimsFor('carol')).setProtectedHeader({ alg: 'RS384' }).sign(privateKey);
      const refusal = await verify(rs384).then(
        () => undefined,
        (error: { code?: string; details?: { reason?: string } }) => [error.code, error.details?.reason],
      );
      expect(refusal).to.deep.equal(['unauthorized', 'algorithm_not_allowed']);
    } finally {
      await es.stop();
    }
  });

  it('builds the discovery URL of an issuer with or without its trailing slash', () => {
    expect(discoveryUrl('https://tenant.auth0.com/')).to.equal(
      'https://tenant.auth0.com/.well-known/openid-configuration',
    );
    expect(discoveryUrl('https://securetoken.google.com/p')).to.equal(
      'https://securetoken.google.com/p/.well-known/openid-configuration',
    );
  });
});
