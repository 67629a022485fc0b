/**
 * The request context every route handler receives, and the few HTTP helpers they share.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { constants as bufferConstants } from 'node:buffer';
import { StorageApiError, badRequest } from './errors.js';
import type { Notifier } from './notifications.js';
import type { Store } from './store.js';
import type { UploadSessions } from './uploads.js';
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
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, length);
}

/** Sends a JSON body with `status`. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=UTF-8',
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/** Sends an empty response (204 for deletes, 308 for incomplete uploads). */
export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'Content-Length': 0, ...headers });
  res.end();
}

/** Sends an error in Google's JSON shape; 304 has no body by HTTP's rules. */
export function sendError(res: ServerResponse, error: StorageApiError): void {
  if (error.status === 304) return sendEmpty(res, 304);
  sendJson(res, error.status, error.toBody());
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
  if (!/^\d{1,15}$/.test(raw)) throw new StorageApiError(400, `Invalid argument for parameter ${name}: ${JSON.stringify(raw)}`, 'invalidParameter');
  return Number(raw);
}
