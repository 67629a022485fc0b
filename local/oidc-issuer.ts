/**
 * A local OpenID Connect issuer for `npm start` and the tests: real HTTP on a loopback address
 * with a discovery document, a key set (JWKS) and a dev sign-in for a few named users
 * (`GET /dev/token?user=alice` → `{idToken, expiresAt, sub}`), so the upload API verifies ID tokens
 * exactly as it does against Firebase Authentication or Auth0. Tokens are RS256 (or ES256) with a `kid`.
 *
 * The in-process controls ({@link OidcIssuer.sign}, {@link OidcIssuer.forge},
 * {@link OidcIssuer.rotate}, {@link OidcIssuer.failJwks}) exist for tests and are never reachable
 * over HTTP: nobody on the network can make the issuer sign arbitrary claims.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';
import { freePort } from './ports.js';
import { listen } from './web-server.js';

/** The users the dev sign-in knows; each one's `sub` is its name. */
export const DEV_USERS = ['alice', 'bob', 'carol'] as const;

/** One of {@link DEV_USERS}. */
export type DevUser = (typeof DEV_USERS)[number];

/** The audience the local stack's upload API expects (JWT_AUDIENCE). */
export const LOCAL_AUDIENCE = 'local-upload-api';

/** What the dev sign-in answers. */
export interface DevToken {
  readonly idToken: string;
  /** ISO time the token expires. */
  readonly expiresAt: string;
  readonly sub: string;
}

export interface OidcIssuerOptions {
  /** Interface to listen on; default 127.0.0.1 (the issuer is for this machine only). */
  readonly host?: string;
  /** Port; default: a free one ({@link freePort}). */
  readonly port?: number;
  /** `aud` of the tokens it issues; default {@link LOCAL_AUDIENCE}. */
  readonly audience?: string;
  /** Token lifetime in seconds; default 3600. */
  readonly lifetimeSeconds?: number;
  /** What its keys sign with; default RS256 (as Firebase and Auth0). */
  readonly algorithm?: 'RS256' | 'ES256';
}

/** Which key signs: the published one, or one the JWKS does not (yet) list. */
export type SigningKey = 'current' | 'unpublished';

/** Tokens no honest issuer makes: `none` (no signature), and HS256 keyed with the public key's PEM. */
export type Forgery = 'none' | 'hs256-public-key';

export interface OidcIssuer {
  /** The issuer URL (`iss`, JWT_ISSUER), e.g. `http://127.0.0.1:9123`. */
  readonly url: string;
  readonly audience: string;
  readonly jwksUrl: string;
  readonly port: number;
  /** An ID token for a dev user, as `GET /dev/token?user=` answers. */
  idToken(user: DevUser): Promise<DevToken>;
  /** The claims a valid token for `user` would carry, issued now. */
  claimsFor(user: string): JWTPayload;
  /** Signs any claims (and extra header parameters) with the current or the unpublished key. */
  sign(claims: JWTPayload, options?: { key?: SigningKey; header?: Record<string, unknown> }): Promise<string>;
  /** A forged token carrying `claims`, see {@link Forgery}. */
  forge(kind: Forgery, claims: JWTPayload): Promise<string>;
  /** Publishes the unpublished key and signs with it from now on (the old key stays published). */
  rotate(): Promise<void>;
  /** Makes the JWKS answer `status` (e.g. 500) until called with undefined. */
  failJwks(status: number | undefined): void;
  /** Origins the dev sign-in answers with CORS headers (the local page). */
  setCorsOrigins(origins: readonly string[]): void;
  stop(): Promise<void>;
}

interface Key {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly publicPem: string;
}

async function newKey(alg: Key['alg']): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return {
    kid,
    alg,
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' },
    publicPem: await exportSPKI(publicKey),
  };
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Starts an issuer; stop it with {@link OidcIssuer.stop}. */
export async function startOidcIssuer(options: OidcIssuerOptions = {}): Promise<OidcIssuer> {
  const host = options.host ?? '127.0.0.1';
  const audience = options.audience ?? LOCAL_AUDIENCE;
  const lifetime = options.lifetimeSeconds ?? 3600;
  const algorithm = options.algorithm ?? 'RS256';
  const published: Key[] = [await newKey(algorithm)];
  let current = published[0] as Key;
  let unpublished = await newKey(algorithm);
  let jwksFailure: number | undefined;
  let corsOrigins: readonly string[] = [];

  const port = options.port ?? (await freePort(host));
  const url = `http://${host}:${port}`;
  const jwksUrl = `${url}/.well-known/jwks.json`;

  const claimsFor = (user: string): JWTPayload => {
    const now = Math.floor(Date.now() / 1000);
    return { iss: url, aud: audience, sub: user, iat: now, exp: now + lifetime, name: user };
  };
  const sign: OidcIssuer['sign'] = (claims, signOptions = {}) => {
    const key = signOptions.key === 'unpublished' ? unpublished : current;
    return new SignJWT(claims)
      .setProtectedHeader({ typ: 'JWT', ...signOptions.header, alg: key.alg, kid: key.kid })
      .sign(key.privateKey);
  };
  const idToken = async (user: DevUser): Promise<DevToken> => {
    const claims = claimsFor(user);
    return {
      idToken: await sign(claims),
      expiresAt: new Date(Number(claims.exp) * 1000).toISOString(),
      sub: user,
    };
  };

  const answer = (req: IncomingMessage, res: ServerResponse, status: number, body: unknown) => {
    const origin = req.headers.origin;
    const cors = typeof origin === 'string' && corsOrigins.includes(origin) ? origin : undefined;
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Cache-Control': 'no-store',
      ...(cors ? { 'Access-Control-Allow-Origin': cors, Vary: 'Origin' } : {}),
    });
    res.end(JSON.stringify(body));
  };
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', url);
    if (req.method !== 'GET') return answer(req, res, 405, { error: 'use GET' });
    if (path.pathname === '/.well-known/openid-configuration') {
      return answer(req, res, 200, {
        issuer: url,
        jwks_uri: jwksUrl,
        id_token_signing_alg_values_supported: [algorithm],
        subject_types_supported: ['public'],
        response_types_supported: ['id_token'],
        authorization_endpoint: `${url}/dev/token`,
      });
    }
    if (path.pathname === '/.well-known/jwks.json') {
      if (jwksFailure !== undefined) return answer(req, res, jwksFailure, { error: 'failing on purpose' });
      return answer(req, res, 200, { keys: published.map((k) => k.publicJwk) });
    }
    if (path.pathname === '/dev/token') {
      const user = path.searchParams.get('user') ?? '';
      if (!(DEV_USERS as readonly string[]).includes(user))
        return answer(req, res, 404, { error: `no such user; try ${DEV_USERS.join(', ')}` });
      idToken(user as DevUser).then(
        (token) => answer(req, res, 200, token),
        () => answer(req, res, 500, { error: 'signing failed' }),
      );
      return;
    }
    answer(req, res, 404, { error: 'not found' });
  });
  await listen(server, port, host);

  return {
    url,
    audience,
    jwksUrl,
    port: (server.address() as AddressInfo).port,
    idToken,
    claimsFor,
    sign,
    forge: async (kind, claims) => {
      if (kind === 'none') return `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(claims)}.`;
      // The classic key confusion: a verifier that let the token pick HMAC would use the public key as its secret.
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT', kid: current.kid })
        .sign(new TextEncoder().encode(current.publicPem));
    },
    rotate: async () => {
      published.push(unpublished);
      current = unpublished;
      unpublished = await newKey(algorithm);
    },
    failJwks: (status) => {
      jwksFailure = status;
    },
    setCorsOrigins: (origins) => {
      corsOrigins = [...origins];
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
