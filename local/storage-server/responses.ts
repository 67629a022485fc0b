/**
 * What handlers write back: JSON bodies, empty answers, Google's error JSON, object resources and
 * object bytes (with ranges and decompressive transcoding).
 */
import type { ServerResponse } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { StorageApiError, noSuchObject } from './api-errors.js';
import type { RequestContext } from './http.js';
import type { ObjectRecord } from './object-records.js';
import { objectResource } from './resources.js';
import { GenerationGoneError } from './store.js';

/** Sends a JSON body with `status`. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
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
  if (error.status === 304) {
    sendEmpty(res, 304);
    return;
  }
  sendJson(res, error.status, error.toBody());
}

/** Sends an object resource. */
export function sendObject(ctx: RequestContext, record: ObjectRecord, status = 200): void {
  sendJson(ctx.res, status, objectResource(record, ctx.baseUrl));
}

/** A satisfiable byte range, inclusive. */
interface ByteRange {
  start: number;
  end: number;
}

/**
 * Parses a single-range `Range` header against `size`: `bytes=a-b`, `bytes=a-` or `bytes=-n`.
 * Returns undefined to send the whole object (no header, a header this server does not
 * understand, or several ranges), 'unsatisfiable' for a range past the end.
 */
function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const match = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!match) return undefined;
  const [, first, last] = match as unknown as [string, string, string];
  if (first === '' && last === '') return undefined;
  if (size === 0) return undefined;
  if (first === '') {
    const suffix = Number(last);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/**
 * Sends an object's bytes with the headers the clients rely on: `x-goog-hash` (validated by
 * `File.createReadStream`), `x-goog-generation`, `x-goog-stored-content-encoding` (without
 * which the Node client skips validation), and `Range` support (206/416).
 */
export async function sendMedia(ctx: RequestContext, record: ObjectRecord): Promise<void> {
  const { req, res } = ctx;
  const hashes = record.md5Hash ? `crc32c=${record.crc32c},md5=${record.md5Hash}` : `crc32c=${record.crc32c}`;
  const headers: Record<string, string> = {
    'Content-Type': record.contentType ?? 'application/octet-stream',
    'Accept-Ranges': 'bytes',
    ETag: `"${record.md5Hash ?? record.crc32c}"`,
    'Last-Modified': new Date(record.updated).toUTCString(),
    'x-goog-hash': hashes,
    'x-goog-generation': record.generation,
    'x-goog-metageneration': String(record.metageneration),
    'x-goog-stored-content-encoding': record.contentEncoding ?? 'identity',
    'x-goog-stored-content-length': String(record.size),
    'x-goog-storage-class': record.storageClass,
    'Cache-Control': record.cacheControl ?? 'no-cache, no-store, max-age=0, must-revalidate',
  };
  if (record.contentDisposition) headers['Content-Disposition'] = record.contentDisposition;
  if (record.contentLanguage) headers['Content-Language'] = record.contentLanguage;
  for (const [key, value] of Object.entries(record.metadata ?? {})) {
    if (/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(key) && !/[\r\n]/.test(value)) headers[`x-goog-meta-${key}`] = value;
  }
  const head = req.method === 'HEAD';
  const gzipped = record.contentEncoding?.toLowerCase() === 'gzip';
  const acceptsGzip = /\bgzip\b/i.test(String(req.headers['accept-encoding'] ?? ''));

  let data: Buffer;
  try {
    if (gzipped && !acceptsGzip) {
      // Decompressive transcoding, as Cloud Storage does for clients that cannot take gzip.
      // Ranges do not apply to transcoded responses there either.
      data = gunzipSync(await ctx.store.readData(record));
      res.writeHead(200, { ...headers, 'Content-Length': data.length, Warning: '214 UploadServer gunzipped' });
      res.end(head ? undefined : data);
      return;
    }
    if (gzipped) headers['Content-Encoding'] = 'gzip';
    const range = parseRange(typeof req.headers.range === 'string' ? req.headers.range : undefined, record.size);
    if (range === 'unsatisfiable') {
      const error = new StorageApiError(
        416,
        'The requested range cannot be satisfied.',
        'requestedRangeNotSatisfiable',
      );
      const body = JSON.stringify(error.toBody());
      res.writeHead(416, {
        'Content-Type': 'application/json; charset=UTF-8',
        'Content-Length': Buffer.byteLength(body),
        'Content-Range': `bytes */${record.size}`,
      });
      res.end(body);
      return;
    }
    if (range) {
      data = head ? Buffer.alloc(0) : await ctx.store.readData(record, range.start, range.end + 1);
      res.writeHead(206, {
        ...headers,
        'Content-Length': range.end - range.start + 1,
        'Content-Range': `bytes ${range.start}-${range.end}/${record.size}`,
      });
      res.end(head ? undefined : data);
      return;
    }
    data = head ? Buffer.alloc(0) : await ctx.store.readData(record);
  } catch (error) {
    if (error instanceof GenerationGoneError) throw noSuchObject(record.bucket, record.name);
    throw error;
  }
  res.writeHead(200, { ...headers, 'Content-Length': record.size });
  res.end(head ? undefined : data);
}
