/**
 * Verifies an end user's OpenID Connect ID token (UPLOAD_AUTH=jwt) with `jose`: the signature
 * against the issuer's published keys (JWKS), RS256 or ES256 only, `iss`, `aud`, the time claims
 * (60 s tolerance) and a usable `sub`. A refused token is a 401 `unauthorized` whose
 * `details.reason` says why ({@link AUTH_REASONS}); an issuer that cannot be asked for its keys is
 * a 503 `auth_unavailable`, never an accept.
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { PipelineError, permanent } from '../core/errors.js';
import { parseSubject } from './principal.js';

/** Why a request was not authenticated: `details.reason` of a 401 `unauthorized`. */
export const AUTH_REASONS = {
  missing: 'The request has no `Authorization: Bearer` credential.',
  malformed: 'The credential is not a well-formed ID token (three base64url parts, JSON header and claims, exp).',
  expired: 'The ID token has expired (`exp`).',
  not_yet_valid: 'The ID token is not valid yet (`nbf` or `iat` in the future).',
  wrong_issuer: 'The ID token was issued by another issuer (`iss`).',
  wrong_audience: 'The ID token was issued for another audience (`aud`).',
  unknown_key: "The ID token is signed with a key (`kid`) the issuer's key set does not publish.",
  bad_signature: 'The ID token does not match its signature.',
  algorithm_not_allowed: 'The ID token is not signed with RS256 or ES256 (e.g. `none`, HS256).',
  no_subject: 'The ID token has no usable subject (`sub`).',
  wrong_token: 'The bearer token is not the shared token (UPLOAD_AUTH=token).',
} as const;

/** One of {@link AUTH_REASONS}. */
export type AuthReason = keyof typeof AUTH_REASONS;

/** The only signature algorithms accepted: what Firebase, Identity Platform, Auth0 and Google sign with. */
export const ALLOWED_ALGORITHMS = ['RS256', 'ES256'] as const;

/** Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. */
export const CLOCK_TOLERANCE_SECONDS = 60;

/** A 401 `unauthorized` with its reason, in words and in `details.reason`. */
export function unauthorized(reason: AuthReason, message: string = AUTH_REASONS[reason]): PipelineError {
  return permanent('unauthorized', message, { reason });
}

/** Where and for whom ID tokens are issued (the jwt branch of UploadAuth). */
export interface IssuerSettings {
  readonly issuer: string;
  readonly audience: string;
  /** The JWKS; default: `jwks_uri` of the issuer's discovery document. */
  readonly jwksUrl?: string;
}

export interface VerifierOptions {
  /**
   * Least time between two JWKS fetches, in ms. A token with an unknown `kid` refetches the key
   * set (that is how a rotated key is picked up) but at most once per cooldown, so a stream of
   * forged `kid`s cannot make every request fetch from the issuer. Default 30 s; tests set 0 to
   * see a rotation at once without sleeping.
   */
  readonly cooldownMs?: number;
  /** How long a JWKS or discovery fetch may take, in ms (default 5 s). */
  readonly timeoutMs?: number;
  /** How long a fetched key set is used before it is fetched again, in ms (default 10 min). */
  readonly cacheMaxAgeMs?: number;
}

/** Verifies a compact ID token; resolves to its subject. */
export type IdTokenVerifier = (token: string) => Promise<string>;

const DEFAULTS = { cooldownMs: 30_000, timeoutMs: 5_000, cacheMaxAgeMs: 10 * 60_000 };

function unavailable(what: string, cause: unknown): PipelineError {
  return new PipelineError('auth_unavailable', `The identity provider's ${what} could not be fetched; retry later.`, {
    cause,
  });
}

/** The discovery document's URL (OpenID Connect Discovery §4: the issuer without its trailing slash). */
export function discoveryUrl(issuer: string): string {
  return `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
}

/** `jwks_uri` of the issuer's discovery document. */
async function discoverJwksUrl(issuer: string, timeoutMs: number): Promise<URL> {
  try {
    const response = await fetch(discoveryUrl(issuer), { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) throw new Error(`discovery answered ${response.status}`);
    const document = (await response.json()) as { jwks_uri?: unknown };
    if (typeof document.jwks_uri !== 'string') throw new Error('discovery has no jwks_uri');
    return new URL(document.jwks_uri);
  } catch (error) {
    throw unavailable('discovery document', error);
  }
}

/**
 * A key getter over the issuer's JWKS: discovered once (a failed discovery is asked again on the
 * next request, a successful one kept), then jose's remote key set (fetched, cached, refetched for
 * an unknown `kid` after the cooldown). Any failure to fetch keys is `auth_unavailable`.
 */
function remoteKeys(settings: IssuerSettings, options: Required<VerifierOptions>): JWTVerifyGetKey {
  let keys: Promise<JWTVerifyGetKey> | undefined;
  const load = async (): Promise<JWTVerifyGetKey> => {
    const url = settings.jwksUrl
      ? new URL(settings.jwksUrl)
      : await discoverJwksUrl(settings.issuer, options.timeoutMs);
    return createRemoteJWKSet(url, {
      cooldownDuration: options.cooldownMs,
      timeoutDuration: options.timeoutMs,
      cacheMaxAge: options.cacheMaxAgeMs,
    });
  };
  return async (header, token) => {
    keys ??= load().catch((error: unknown) => {
      keys = undefined;
      throw error;
    });
    const getKey = await keys;
    try {
      return await getKey(header, token);
    } catch (error) {
      // Selection failures are about the token; everything else (non-200, timeout, bad JSON,
      // network) is about reaching the issuer.
      if (
        error instanceof errors.JWKSNoMatchingKey ||
        error instanceof errors.JWKSMultipleMatchingKeys ||
        error instanceof errors.JOSENotSupported
      )
        throw error;
      throw unavailable('key set (JWKS)', error);
    }
  };
}

/** Turns a jose refusal into the 401 that names its reason. */
function refusal(error: unknown): PipelineError {
  if (error instanceof PipelineError) return error;
  if (error instanceof errors.JWTExpired) return unauthorized('expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === 'iss') return unauthorized('wrong_issuer');
    if (error.claim === 'aud') return unauthorized('wrong_audience');
    if ((error.claim === 'nbf' || error.claim === 'iat') && error.reason === 'check_failed')
      return unauthorized('not_yet_valid');
    return unauthorized('malformed', `The ID token's \`${error.claim}\` claim is missing or not valid.`);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return unauthorized('algorithm_not_allowed');
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return unauthorized('unknown_key');
  if (error instanceof errors.JWSSignatureVerificationFailed) return unauthorized('bad_signature');
  if (error instanceof errors.JOSEError) return unauthorized('malformed');
  // A bug or an unexpected failure: never an accept, and not the caller's fault.
  return unavailable('answer', error);
}

/** A verifier for one issuer and audience, with its own key cache. */
export function createIdTokenVerifier(settings: IssuerSettings, options: VerifierOptions = {}): IdTokenVerifier {
  const resolved = { ...DEFAULTS, ...options };
  const keys = remoteKeys(settings, resolved);
  return async (token) => {
    let payload: { sub?: unknown; iat?: unknown };
    try {
      ({ payload } = await jwtVerify(token, keys, {
        algorithms: [...ALLOWED_ALGORITHMS],
        issuer: settings.issuer,
        audience: settings.audience,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        requiredClaims: ['exp'],
      }));
    } catch (error) {
      throw refusal(error);
    }
    // jose checks `iat` only against a maximum age; an ID token from the future is not valid yet.
    if (typeof payload.iat === 'number' && payload.iat > Date.now() / 1000 + CLOCK_TOLERANCE_SECONDS)
      throw unauthorized('not_yet_valid');
    try {
      return parseSubject(payload.sub, 'The ID token');
    } catch (error) {
      throw unauthorized('no_subject', error instanceof Error ? error.message : AUTH_REASONS.no_subject);
    }
  };
}

const shared = new Map<string, IdTokenVerifier>();

/**
 * The instance's verifier for these settings, made once, so the guard and the handler share its
 * discovery and key cache.
 */
export function idTokenVerifier(settings: IssuerSettings): IdTokenVerifier {
  const key = JSON.stringify([settings.issuer, settings.audience, settings.jwksUrl ?? null]);
  let verifier = shared.get(key);
  if (!verifier) {
    verifier = createIdTokenVerifier(settings);
    shared.set(key, verifier);
  }
  return verifier;
}
