/**
 * Who may call the upload API: CORS for configured origins only, and a bearer token compared in
 * constant time (unless UPLOAD_AUTH=none). Decided from the request's head alone, so the upload
 * guard can refuse before any byte of the body is read.
 */
import { permanent, type PipelineError } from '../core/errors.js';
import type { UploadAuth } from '../core/domain.js';
import { isSharedToken } from '../auth/principal.js';

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

/**
 * True when the request may go on to the handler as far as its head can tell: authentication off
 * (UPLOAD_AUTH=none), or the shared token. With UPLOAD_AUTH=jwt an ID token is verified
 * asynchronously (shared/auth); until then a head without the shared token is refused.
 */
export function isAuthorized(authorization: string | undefined, auth: UploadAuth): boolean {
  if (auth.mode === 'none') return true;
  return isSharedToken(authorization, auth.token);
}

/** A request path as the API routes it: without the query and trailing slashes. */
export function routePath(url: string): string {
  return withoutQuery(url).replace(/\/+$/, '') || '/';
}

/** A request URL up to its query string. */
export function withoutQuery(url: string): string {
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/** What a request's head says about it, before its body. */
export interface RequestHead {
  readonly method: string;
  /** See {@link routePath}. */
  readonly path: string;
  readonly origin: string | undefined;
  readonly authorization: string | undefined;
}

/** The verdict on a request's head: its CORS headers, and the error to answer with, if any. */
export interface Screening {
  readonly headers: Record<string, string>;
  readonly error?: PipelineError;
}

/**
 * Checks origin, then token: a browser origin not listed is refused (403) whatever the path;
 * every endpoint but the CORS preflight and `/healthz` needs the token (401).
 */
export function screenRequest(head: RequestHead, allowedOrigins: readonly string[], auth: UploadAuth): Screening {
  const cors = corsFor(head.origin, allowedOrigins);
  if (!cors.allowed)
    return { headers: {}, error: permanent('forbidden_origin', 'This origin may not call the upload API.') };
  const open = head.method === 'OPTIONS' || head.path === '/healthz';
  if (!open && !isAuthorized(head.authorization, auth)) {
    return { headers: cors.headers, error: permanent('unauthorized', 'A valid bearer token is required.') };
  }
  return { headers: cors.headers };
}
