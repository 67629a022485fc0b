/**
 * The request context every route handler receives, and the request-side helpers (body, query
 * parameters). What handlers write back is in responses.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as bufferConstants } from 'node:buffer';
import { StorageApiError, badRequest } from './api-errors.js';
import type { Notifier } from './notifications.js';
import type { Store } from './store.js';
import type { UploadSessions } from './upload-sessions.js';
import type { FaultInjector } from './faults.js';
import type { SignedUrlPolicy } from './signatures.js';

/** Everything a handler needs; one per request. */
export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The parsed request URL (path still percent-encoded in `pathname`). */
  readonly url: URL;
  /** Scheme, host and port the client used, so links in resources point back at this server. */
  readonly baseUrl: string;
  readonly store: Store;
  readonly notifier: Notifier;
  readonly sessions: UploadSessions;
  readonly faults: FaultInjector;
  /** Trusted signing keys and CORS origins for signed-URL PUTs on the XML path. */
  readonly signedUrls: SignedUrlPolicy;
  readonly autoCreateBuckets: boolean;
  readonly log: (line: string) => void;
}

/** The largest body the server buffers: Node's Buffer limit, which also bounds an object's size. */
export const MAX_BODY_BYTES = bufferConstants.MAX_LENGTH;

/** Reads the whole request body. */
export async function readBody(req: IncomingMessage, limit = MAX_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    length += buffer.length;
    if (length > limit) throw new StorageApiError(413, `The request body exceeds ${limit} bytes`, 'uploadTooLarge');
    chunks.push(buffer);
  }
  const [only] = chunks;
  return chunks.length === 1 && only ? only : Buffer.concat(chunks, length);
}

/** The base URL the client used to reach the server, taken from the Host header. */
export function baseUrlOf(req: IncomingMessage, fallback: string): string {
  const host = req.headers.host;
  if (!host || !/^[A-Za-z0-9.\-:[\]]+$/.test(host)) return fallback;
  return `http://${host}`;
}

/** A required query parameter, or a 400 naming it. */
export function requiredParam(url: URL, name: string): string {
  const value = url.searchParams.get(name);
  if (value === null || value === '') throw badRequest(`Required parameter: ${name}`, 'required');
  return value;
}

/** A non-negative integer query parameter, or `fallback` when absent; 400 when malformed. */
export function integerParam(url: URL, name: string, fallback: number): number {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d{1,15}$/.test(raw))
    throw new StorageApiError(
      400,
      `Invalid argument for parameter ${name}: ${JSON.stringify(raw)}`,
      'invalidParameter',
    );
  return Number(raw);
}
