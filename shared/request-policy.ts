/**
 * Who may call the upload API: CORS for configured origins only, and an optional bearer token
 * compared in constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

/** Methods the upload API answers. */
export const ALLOWED_METHODS = 'GET, POST, DELETE, OPTIONS';

/** The CORS verdict for a request's `Origin` header. */
export type CorsVerdict =
  | { readonly allowed: true; readonly headers: Record<string, string> }
  | { readonly allowed: false };

/**
 * CORS headers for an origin. No `Origin` header (curl, servers) is allowed without CORS
 * headers; a browser origin must be listed (or `*` configured), otherwise it is refused.
 */
export function corsFor(origin: string | undefined, allowedOrigins: readonly string[]): CorsVerdict {
  if (origin === undefined) return { allowed: true, headers: {} };
  const wildcard = allowedOrigins.includes('*');
  if (!wildcard && !allowedOrigins.includes(origin)) return { allowed: false };
  return {
    allowed: true,
    headers: {
      'Access-Control-Allow-Origin': wildcard ? '*' : origin,
      'Access-Control-Allow-Methods': ALLOWED_METHODS,
      'Access-Control-Allow-Headers': 'Authorization, Content-Type',
      'Access-Control-Max-Age': '600',
      Vary: 'Origin',
    },
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

/**
 * True when the `Authorization` header carries the bearer token, or no token is configured.
 * Both sides are hashed to equal length first, so the comparison time says nothing about the
 * token's length or content.
 */
export function isAuthorized(authorization: string | undefined, token: string | undefined): boolean {
  if (token === undefined) return true;
  const match = /^Bearer\s+(.+)$/i.exec(authorization ?? '');
  const presented = match?.[1]?.trim() ?? '';
  return timingSafeEqual(digest(presented), digest(token)) && presented.length > 0;
}
