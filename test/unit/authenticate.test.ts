import { expect } from 'chai';
import { authenticate, authenticateRequest } from '../../shared/auth/authenticate.js';
import type { UploadAuth } from '../../shared/core/domain.js';
import { PipelineError } from '../../shared/core/errors.js';
import type { Principal } from '../../shared/auth/principal.js';

/** The principal, or `code/reason` of the refusal. */
async function verdict(promise: Promise<Principal>): Promise<Principal | string> {
  try {
    return await promise;
  } catch (error) {
    if (!(error instanceof PipelineError)) throw error;
    return `${error.status} ${error.code}/${String(error.details?.reason ?? '')}`;
  }
}

describe('authenticate: the caller from Authorization and X-Upload-Owner', () => {
  const token = 'a-very-long-secret-token';
  const tokenMode: UploadAuth = { mode: 'token', token };
  const none: UploadAuth = { mode: 'none' };
  const jwt: UploadAuth = { mode: 'jwt', issuer: 'https://issuer.example', audience: 'app', token };
  // Resolves the sub of a token "good:{sub}", refuses anything else: authenticate's own logic,
  // without an issuer (the real verifier is exercised in test/integration/jwt-auth.test.ts).
  const verify = async (bearer: string) => {
    if (bearer.startsWith('good:')) return bearer.slice(5);
    throw new PipelineError('unauthorized', 'bad', { details: { reason: 'bad_signature' } });
  };
  const cases: Array<[string, UploadAuth, string | undefined, string | undefined, Principal | string]> = [
    ['none: anyone is the service', none, undefined, undefined, { kind: 'service' }],
    ['none: a backend acting for a user', none, undefined, 'alice', { kind: 'user', sub: 'alice' }],
    ['token: the right token', tokenMode, `Bearer ${token}`, undefined, { kind: 'service' }],
    ['token: lower-case scheme', tokenMode, `bearer ${token}`, undefined, { kind: 'service' }],
    ['token: the token naming an owner', tokenMode, `Bearer ${token}`, 'bob', { kind: 'user', sub: 'bob' }],
    ['token: a wrong token', tokenMode, 'Bearer a-very-long-secret-tokem', undefined, '401 unauthorized/wrong_token'],
    ['token: a prefix of the token', tokenMode, 'Bearer a-very', undefined, '401 unauthorized/wrong_token'],
    ['token: no header', tokenMode, undefined, undefined, '401 unauthorized/missing'],
    ['token: an empty bearer', tokenMode, 'Bearer ', undefined, '401 unauthorized/malformed'],
    ['token: basic auth', tokenMode, `Basic ${token}`, undefined, '401 unauthorized/malformed'],
    ['jwt: the shared token', jwt, `Bearer ${token}`, undefined, { kind: 'service' }],
    ['jwt: the shared token naming an owner', jwt, `Bearer ${token}`, 'carol', { kind: 'user', sub: 'carol' }],
    ['jwt: a valid ID token', jwt, 'Bearer good:alice', undefined, { kind: 'user', sub: 'alice' }],
    ['jwt: a valid ID token naming an owner', jwt, 'Bearer good:alice', 'bob', '403 owner_not_allowed/'],
    ['jwt: a bad ID token naming an owner', jwt, 'Bearer forged', 'bob', '401 unauthorized/bad_signature'],
    ['jwt: no header', jwt, undefined, undefined, '401 unauthorized/missing'],
    ['jwt: two credentials', jwt, 'Bearer a b', undefined, '401 unauthorized/malformed'],
  ];
  for (const [what, auth, authorization, owner, expected] of cases) {
    it(`${what} → ${typeof expected === 'string' ? expected : JSON.stringify(expected)}`, async () => {
      expect(await verdict(authenticate({ authorization, owner }, auth, verify))).to.deep.equal(expected);
    });
  }

  it('verifies a request once however often it is asked', async () => {
    let calls = 0;
    const counting = async (bearer: string) => {
      calls += 1;
      return verify(bearer);
    };
    const request = {};
    const head = { authorization: 'Bearer good:alice', owner: undefined };
    const first = await authenticateRequest(request, head, jwt, counting);
    const second = await authenticateRequest(request, head, jwt, counting);
    expect([first, second, calls]).to.deep.equal([{ kind: 'user', sub: 'alice' }, { kind: 'user', sub: 'alice' }, 1]);
    await authenticateRequest({}, head, jwt, counting);
    expect(calls).to.equal(2);
  });
});
