/**
 * The XML API's signed-URL upload, `PUT /{bucket}/{object}`, and the CORS preflight a browser
 * sends before it. The signature itself is checked in signatures.ts; see
 * [docs/signed-urls.md](../../../docs/signed-urls.md).
 */
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from '../http.js';
import type { WritableObjectFields } from '../object-records.js';
import { commitNewGeneration } from '../object-operations.js';
import { parsePreconditions } from '../preconditions.js';
import { type SignedUrlPolicy, signedHeaderValue, verifySignedRequest } from '../signatures.js';
import { XmlApiError } from '../xml-errors.js';

/** `x-goog-content-length-range: min,max`, if the request carries one. */
function lengthRange(req: IncomingMessage): { min: number; max: number } | undefined {
  const raw = signedHeaderValue(req, 'x-goog-content-length-range');
  if (raw === '') return undefined;
  const m = /^(\d+),(\d+)$/.exec(raw.replace(/\s/g, ''));
  if (!m || Number(m[1]) > Number(m[2])) {
    throw new XmlApiError(
      400,
      'InvalidArgument',
      'Invalid argument.',
      `Invalid x-goog-content-length-range ${JSON.stringify(raw)}.`,
    );
  }
  return { min: Number(m[1]), max: Number(m[2]) };
}

function tooLarge(max: number): XmlApiError {
  return new XmlApiError(
    400,
    'EntityTooLarge',
    'Your proposed upload is larger than the maximum object size specified in your Policy Document.',
    `Content-length exceeds upper bound on range (${max}).`,
  );
}

/** Reads the body, refusing it (before reading, when Content-Length says so) outside the range. */
async function readBodyInRange(req: IncomingMessage, range: { min: number; max: number } | undefined): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (range && Number.isFinite(declared) && declared > range.max) throw tooLarge(range.max);
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req) {
    length += (chunk as Buffer).length;
    if (range && length > range.max) throw tooLarge(range.max);
    chunks.push(chunk as Buffer);
  }
  if (range && length < range.min) {
    throw new XmlApiError(
      400,
      'EntityTooSmall',
      'Your proposed upload is smaller than the minimum object size specified in your Policy Document.',
      `Content-length is smaller than lower bound on range (${range.min}).`,
    );
  }
  return Buffer.concat(chunks, length);
}

function corsHeaders(ctx: RequestContext, policy: SignedUrlPolicy): Record<string, string> {
  const origin = ctx.req.headers.origin;
  if (typeof origin !== 'string' || !policy.allowsOrigin(origin)) return {};
  return {
    'Access-Control-Allow-Origin': origin,
    'Access-Control-Expose-Headers': 'ETag, x-goog-generation, x-goog-hash',
    Vary: 'Origin',
  };
}

function sendXmlError(ctx: RequestContext, error: XmlApiError, cors: Record<string, string>): void {
  const body = error.toXml();
  // Unread bytes are drained, so the client reads the answer instead of a reset connection.
  ctx.req.resume();
  ctx.res.writeHead(error.status, {
    ...cors,
    'Content-Type': 'application/xml; charset=UTF-8',
    'Content-Length': Buffer.byteLength(body),
  });
  ctx.res.end(body);
}

/** `OPTIONS /{bucket}/{object}`: the CORS preflight of a browser's PUT. */
export function handleXmlPreflight(ctx: RequestContext, policy: SignedUrlPolicy): void {
  const origin = ctx.req.headers.origin;
  const method = String(ctx.req.headers['access-control-request-method'] ?? '').toUpperCase();
  if (typeof origin !== 'string' || !policy.allowsOrigin(origin) || !['PUT', 'GET', 'HEAD'].includes(method)) {
    ctx.res.writeHead(403, { 'Content-Length': 0 });
    ctx.res.end();
    return;
  }
  ctx.res.writeHead(200, {
    ...corsHeaders(ctx, policy),
    'Access-Control-Allow-Methods': 'PUT, GET, HEAD',
    'Access-Control-Allow-Headers': String(ctx.req.headers['access-control-request-headers'] ?? 'Content-Type'),
    'Access-Control-Max-Age': '3600',
    'Content-Length': 0,
  });
  ctx.res.end();
}

/**
 * `PUT /{bucket}/{object}` with a V4 signature: verifies it, stores the body as a new generation
 * (content type from the request, `x-goog-meta-*` as metadata, `x-goog-if-generation-match`
 * honoured) and answers 200 with the XML API's headers. Notifications fire as for any write.
 */
export async function handleSignedPut(
  ctx: RequestContext,
  policy: SignedUrlPolicy,
  bucket: string,
  name: string,
): Promise<void> {
  const cors = corsHeaders(ctx, policy);
  try {
    verifySignedRequest(ctx, policy);
    const data = await readBodyInRange(ctx.req, lengthRange(ctx.req));
    const fields: WritableObjectFields = {};
    const contentType = ctx.req.headers['content-type'];
    if (contentType) fields.contentType = contentType;
    const metadata: Record<string, string> = {};
    for (const [header, value] of Object.entries(ctx.req.headers)) {
      if (header.startsWith('x-goog-meta-') && typeof value === 'string')
        metadata[header.slice('x-goog-meta-'.length)] = value;
    }
    if (Object.keys(metadata).length > 0) fields.metadata = metadata;
    const conditions = new URLSearchParams();
    const ifGeneration = ctx.req.headers['x-goog-if-generation-match'];
    if (typeof ifGeneration === 'string') conditions.set('ifGenerationMatch', ifGeneration);
    const record = await commitNewGeneration(ctx, {
      bucket,
      name,
      data,
      fields,
      preconditions: parsePreconditions(conditions),
    });
    const md5 = record.md5Hash ? Buffer.from(record.md5Hash, 'base64').toString('hex') : '';
    ctx.res.writeHead(200, {
      ...cors,
      ETag: `"${md5}"`,
      'x-goog-generation': record.generation,
      'x-goog-metageneration': String(record.metageneration),
      'x-goog-hash': `crc32c=${record.crc32c}${record.md5Hash ? `,md5=${record.md5Hash}` : ''}`,
      'x-goog-stored-content-length': String(record.size),
      'Content-Length': 0,
    });
    ctx.res.end();
  } catch (error) {
    if (error instanceof XmlApiError) return sendXmlError(ctx, error, cors);
    // JSON-API errors (no such bucket, precondition) keep their status; the body becomes XML.
    const status = (error as { status?: unknown }).status;
    if (typeof status === 'number') {
      const code = status === 404 ? 'NoSuchBucket' : status === 412 ? 'PreconditionFailed' : 'InvalidArgument';
      return sendXmlError(ctx, new XmlApiError(status, code, (error as Error).message), cors);
    }
    throw error;
  }
}
