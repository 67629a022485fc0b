/**
 * Where the upload API may be called from (CORS for configured origins only) and which requests
 * need a credential at all (all but the CORS preflight, `/healthz` and `/openapi.json`); who the caller is, is
 * shared/auth/authenticate.ts's answer. Decided from the request's head alone, so the upload
 * guard can refuse before any byte of the body is read.
 */
import { permanent, type PipelineError } from '../core/errors.js';

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
}

/** Paths answered without a credential: the health check and the API's contract (nothing about anyone's uploads). */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/healthz', '/openapi.json']);

/** The verdict on a request's head: its CORS headers, the error to answer with, if any, and whether it needs a credential. */
export interface Screening {
  readonly headers: Record<string, string>;
  readonly error?: PipelineError;
  /** The CORS preflight and {@link OPEN_PATHS}: answered without a credential. */
  readonly open: boolean;
}

/**
 * Checks the origin: a browser origin not listed is refused (403) whatever the path, before any
 * credential is looked at; every endpoint but the CORS preflight and {@link OPEN_PATHS} then needs one.
 */
export function screenRequest(head: RequestHead, allowedOrigins: readonly string[]): Screening {
  const open = head.method === 'OPTIONS' || OPEN_PATHS.has(head.path);
  const cors = corsFor(head.origin, allowedOrigins);
  if (!cors.allowed)
    return { headers: {}, open, error: permanent('forbidden_origin', 'This origin may not call the upload API.') };
  return { headers: cors.headers, open };
}
