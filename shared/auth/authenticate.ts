/**
 * Names the principal of a request from its `Authorization` and {@link OWNER_HEADER} headers,
 * whatever the mode: the shared token or UPLOAD_AUTH=none (a trusted caller, see
 * {@link trustedPrincipal}), else, with UPLOAD_AUTH=jwt, a verified ID token's subject. The
 * upload guard does it before the body is read; the handler asks again and gets the same answer
 * from {@link authenticateRequest}'s per-request cache.
 */
import type { UploadAuth } from '../core/domain.js';
import { permanent } from '../core/errors.js';
import { type IdTokenVerifier, idTokenVerifier, unauthorized } from './jwt.js';
import { OWNER_HEADER, type Principal, type PrincipalHead, trustedPrincipal } from './principal.js';

/** The bearer credential of an `Authorization` header; undefined when there is none. */
function bearerOf(authorization: string | undefined): string | undefined {
  if (authorization === undefined || authorization.trim() === '') return undefined;
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization);
  if (!match?.[1]) throw unauthorized('malformed', 'The Authorization header is not `Bearer <token>`.');
  return match[1];
}

/**
 * The principal of a request, or a 401 `unauthorized` naming the reason (a 503
 * `auth_unavailable` when the issuer's keys cannot be fetched). An end user's ID token together
 * with {@link OWNER_HEADER} is refused (403 `owner_not_allowed`): only a trusted backend may act
 * for another user, and ignoring the header would file the upload under a different owner than
 * the caller asked for.
 */
export async function authenticate(
  head: PrincipalHead,
  auth: UploadAuth,
  verify: IdTokenVerifier | undefined = undefined,
): Promise<Principal> {
  const trusted = trustedPrincipal(head, auth);
  if (trusted) return trusted;
  const bearer = bearerOf(head.authorization);
  if (bearer === undefined) throw unauthorized('missing');
  if (auth.mode !== 'jwt') throw unauthorized('wrong_token', 'The bearer token is not valid.');
  const sub = await (verify ?? idTokenVerifier(auth))(bearer);
  if (head.owner !== undefined)
    throw permanent(
      'owner_not_allowed',
      `An end user's ID token cannot name an owner (${OWNER_HEADER}); only the shared token can act for a user.`,
    );
  return { kind: 'user', sub };
}

const verdicts = new WeakMap<object, Promise<Principal>>();

/**
 * {@link authenticate}, once per request object (the guard's IncomingMessage is the handler's
 * Request): the verdict is kept, so a request is verified once however often it is asked.
 */
export function authenticateRequest(
  request: object,
  head: PrincipalHead,
  auth: UploadAuth,
  verify?: IdTokenVerifier,
): Promise<Principal> {
  let verdict = verdicts.get(request);
  if (!verdict) {
    verdict = authenticate(head, auth, verify);
    // Observed here so that a refusal nobody else awaits is not an unhandled rejection.
    verdict.catch(() => undefined);
    verdicts.set(request, verdict);
  }
  return verdict;
}
