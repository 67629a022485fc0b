/**
 * How the local stack authenticates (local/stack-auth.ts): jwt against an issuer it starts and
 * stops, jwt against an issuer given in the environment (none started), and none.
 */
import { expect } from 'chai';
import { type OidcIssuer, startOidcIssuer } from '../../local/oidc-issuer.js';
import { listeningPorts, startTestStack, type TestStack } from './helpers.js';

const UNKNOWN = '/uploads/0123456789abcdef0123456789abcdef';

async function get(url: string, token?: string): Promise<{ status: number; reason?: string }> {
  const response = await fetch(url, token ? { headers: { Authorization: `Bearer ${token}` } } : {});
  const body = (await response.json().catch(() => undefined)) as
    | { error?: { details?: { reason?: string } } }
    | undefined;
  return { status: response.status, ...(body?.error?.details?.reason ? { reason: body.error.details.reason } : {}) };
}

describe('local stack: authentication modes', function () {
  this.timeout(120_000);
  let t: TestStack | undefined;
  let external: OidcIssuer | undefined;
  afterEach(async () => {
    await t?.stop();
    t = undefined;
    await external?.stop();
    external = undefined;
  });

  it('UPLOAD_AUTH=jwt without JWT_ISSUER: an issuer of its own, signed in from the page, stopped with the stack', async () => {
    t = await startTestStack({ env: { UPLOAD_AUTH: 'jwt' } });
    const { auth, urls, config } = t.stack;
    expect(auth).to.include({ mode: 'jwt', audience: 'local-upload-api' });
    expect(config).to.include({ UPLOAD_AUTH: 'jwt', JWT_ISSUER: auth.issuer, JWT_AUDIENCE: 'local-upload-api' });
    const web = urls.web.replace(/\/+$/, '');
    const page = (await (await fetch(`${web}/page-config.json`)).json()) as Record<string, unknown>;
    expect(page).to.deep.equal({ auth: 'jwt', signInUrl: auth.signInUrl, users: ['alice', 'bob', 'carol'] });
    // The page's origin may call the dev sign-in.
    const signIn = await fetch(`${auth.signInUrl}?user=carol`, { headers: { Origin: web } });
    expect(signIn.headers.get('access-control-allow-origin')).to.equal(web);
    const { idToken } = (await signIn.json()) as { idToken: string };
    expect(await get(`${web}${UNKNOWN}`, idToken)).to.deep.equal({ status: 404 });
    expect(await get(`${web}${UNKNOWN}`)).to.deep.equal({ status: 401, reason: 'missing' });
    const issuerPort = Number(new URL(auth.issuer ?? '').port);
    await t.stop();
    t = undefined;
    expect(await listeningPorts([issuerPort])).to.deep.equal([]);
  });

  it('UPLOAD_AUTH=jwt with JWT_ISSUER: that issuer, and none of its own', async () => {
    external = await startOidcIssuer({ audience: 'my-app' });
    t = await startTestStack({
      env: { UPLOAD_AUTH: 'jwt', JWT_ISSUER: external.url, JWT_AUDIENCE: 'my-app' },
    });
    expect(t.stack.auth).to.deep.equal({ mode: 'jwt', issuer: external.url, audience: 'my-app', users: [] });
    const web = t.stack.urls.web.replace(/\/+$/, '');
    expect(await (await fetch(`${web}/page-config.json`)).json()).to.deep.equal({ auth: 'jwt' });
    expect(await get(`${web}${UNKNOWN}`, (await external.idToken('bob')).idToken)).to.deep.equal({ status: 404 });
  });

  it('UPLOAD_AUTH=none: open, and the page shows no sign-in', async () => {
    t = await startTestStack({ env: { UPLOAD_AUTH: 'none' } });
    expect(t.stack.auth).to.deep.equal({ mode: 'none', users: [] });
    const web = t.stack.urls.web.replace(/\/+$/, '');
    expect(await (await fetch(`${web}/page-config.json`)).json()).to.deep.equal({ auth: 'none' });
    expect(await get(`${web}${UNKNOWN}`)).to.deep.equal({ status: 404 });
  });
});
