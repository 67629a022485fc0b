/**
 * How the local stack's upload API authenticates, from the environment `npm start` is given:
 *
 * - nothing set: UPLOAD_AUTH=jwt against an issuer of its own (local/oidc-issuer.ts), started
 *   with the stack and stopped with it; the page signs in as alice, bob or carol;
 * - UPLOAD_AUTH=jwt with JWT_ISSUER (and JWT_AUDIENCE, JWT_JWKS_URL): that issuer, none started;
 * - UPLOAD_TOKEN set (UPLOAD_AUTH unset or token): the shared token, as before;
 * - UPLOAD_AUTH=none: no authentication.
 */
import type { UploadAuth } from '../shared/core/domain.js';

type UploadAuthMode = UploadAuth['mode'];
import { DEV_USERS, type DevToken, type DevUser, type OidcIssuer, startOidcIssuer } from './oidc-issuer.js';

/** The stack's authentication, as the banner, the page and `.local/stack.json` show it. */
export interface StackAuth {
  readonly mode: UploadAuthMode;
  /** With jwt: JWT_ISSUER. */
  readonly issuer?: string;
  /** With jwt: JWT_AUDIENCE. */
  readonly audience?: string;
  /** The stack's own issuer's dev sign-in (`?user=alice`); absent with an external issuer. */
  readonly signInUrl?: string;
  /** The dev users the sign-in knows. */
  readonly users: readonly DevUser[];
  /** An ID token from the stack's own issuer; absent with an external issuer. */
  readonly idToken?: (user: DevUser) => Promise<DevToken>;
}

/** What {@link startStackAuth} gives the stack. */
export interface StartedAuth {
  readonly auth: StackAuth;
  /** Settings that win over the user's (the own issuer's JWT_ISSUER/JWT_AUDIENCE), or defaults the user's win over. */
  readonly settings: { readonly defaults: Record<string, string>; readonly overrides: Record<string, string> };
  /** The issuer the stack started, to stop with it. */
  readonly issuer: OidcIssuer | undefined;
}

/** The mode `env` asks for; {@link StackAuth} says what each means. */
export function stackAuthMode(env: Readonly<Record<string, string | undefined>>): UploadAuthMode {
  const explicit = env.UPLOAD_AUTH?.trim();
  // A value that is no mode is passed on for loadConfig to name.
  if (explicit) return explicit as UploadAuthMode;
  return env.UPLOAD_TOKEN === undefined ? 'jwt' : 'token';
}

/** Decides the mode and, for jwt without JWT_ISSUER, starts the stack's own issuer on loopback. */
export async function startStackAuth(env: Readonly<Record<string, string | undefined>>): Promise<StartedAuth> {
  const mode = stackAuthMode(env);
  const defaults = { UPLOAD_AUTH: mode };
  if (mode !== 'jwt') return { auth: { mode, users: [] }, settings: { defaults, overrides: {} }, issuer: undefined };
  if (env.JWT_ISSUER?.trim()) {
    const auth: StackAuth = {
      mode,
      issuer: env.JWT_ISSUER.trim(),
      ...(env.JWT_AUDIENCE?.trim() ? { audience: env.JWT_AUDIENCE.trim() } : {}),
      users: [],
    };
    return { auth, settings: { defaults, overrides: {} }, issuer: undefined };
  }
  // Always loopback, whatever interface the stack listens on: JWT_ISSUER may be plain http only there.
  const issuer = await startOidcIssuer();
  return {
    auth: {
      mode,
      issuer: issuer.url,
      audience: issuer.audience,
      signInUrl: `${issuer.url}/dev/token`,
      users: DEV_USERS,
      idToken: (user) => issuer.idToken(user),
    },
    settings: { defaults, overrides: { UPLOAD_AUTH: 'jwt', JWT_ISSUER: issuer.url, JWT_AUDIENCE: issuer.audience } },
    issuer,
  };
}

/**
 * `env` with UPLOAD_AUTH=none unless it sets UPLOAD_AUTH or UPLOAD_TOKEN: for the benchmarks and
 * test suites that measure the pipeline, not sign-in.
 */
export function withoutSignIn<T extends Readonly<Record<string, string | undefined>>>(
  env: T | undefined,
): T | Record<string, string> {
  if (env?.UPLOAD_AUTH !== undefined || env?.UPLOAD_TOKEN !== undefined) return env as T;
  return { ...env, UPLOAD_AUTH: 'none' };
}
