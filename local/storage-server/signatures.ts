/**
 * V4 signed URLs on the XML API path `PUT /{bucket}/{object}`, checked the way Cloud Storage
 * checks them (https://cloud.google.com/storage/docs/authentication/signatures):
 *
 * 1. the query carries `X-Goog-Algorithm=GOOG4-RSA-SHA256`, a credential
 *    `{email}/{yyyymmdd}/auto/storage/goog4_request`, `X-Goog-Date`, `X-Goog-Expires` (at most 7
 *    days), `X-Goog-SignedHeaders` (with `host`) and `X-Goog-Signature`;
 * 2. the URL is valid now (400 `ExpiredToken` after `X-Goog-Date + X-Goog-Expires`);
 * 3. the canonical request (method, path, query without the signature, the signed headers' values
 *    as this request sent them, `UNSIGNED-PAYLOAD`) hashed into the string to sign verifies with
 *    RSA-SHA256 against the public half of the credential's key (403 `SignatureDoesNotMatch`);
 * 4. a body outside `x-goog-content-length-range` is refused (400 `EntityTooLarge`/`EntityTooSmall`).
 *
 * Errors are XML, as the XML API answers. One liberty: `host` is compared without its port,
 * because @google-cloud/storage signs the endpoint's hostname only (Cloud Storage never has one).
 * Keys are registered by the local stack (a throwaway key made at start); without any key every
 * XML PUT is refused. Browser PUTs get CORS headers for the configured origins, as the uploads
 * bucket's CORS policy gives them in production.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RequestContext } from './http.js';
import { commitNewGeneration } from './objects.js';
import { parsePreconditions } from './preconditions.js';
import type { WritableObjectFields } from './records.js';

/** The longest a V4 signature may be valid, in seconds. */
const MAX_EXPIRES_SECONDS = 7 * 24 * 60 * 60;

/** A refusal in the XML API's shape. */
export class XmlApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: string,
    readonly extra: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'XmlApiError';
  }

  toXml(): string {
    const fields: Record<string, string | undefined> = { Code: this.code, Message: this.message, Details: this.details, ...this.extra };
    const body = Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `<${k}>${escapeXml(v!)}</${k}>`)
      .join('');
    return `<?xml version='1.0' encoding='UTF-8'?><Error>${body}</Error>`;
  }
}

function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]!);
}

/** Signing keys the server trusts and origins whose browsers may PUT: one per server. */
export class SignedUrlPolicy {
  private readonly keys = new Map<string, KeyObject>();
  private origins: readonly string[] = [];

  /** Trusts URLs signed by `clientEmail` with the private half of `publicKeyPem`. */
  addKey(clientEmail: string, publicKeyPem: string): void {
    this.keys.set(clientEmail, createPublicKey(publicKeyPem));
  }

  key(clientEmail: string): KeyObject | undefined {
    return this.keys.get(clientEmail);
  }

  /** Origins allowed to PUT from a browser (`*` for any), like a bucket's CORS policy. */
  setCorsOrigins(origins: readonly string[]): void {
    this.origins = [...origins];
  }

  allowsOrigin(origin: string): boolean {
    return this.origins.includes('*') || this.origins.includes(origin);
  }
}

/** Percent-encoding of the V4 canonical form: RFC 3986 unreserved characters stay as they are. */
function encodeRfc3986(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The canonical path: each segment decoded and re-encoded, so any valid encoding of the name matches. */
function canonicalPath(pathname: string): string {
  return pathname
    .split('/')
    .map((segment) => {
      try {
        return encodeRfc3986(decodeURIComponent(segment));
      } catch {
        return segment;
      }
    })
    .join('/');
}

function canonicalQuery(params: URLSearchParams): string {
  return [...params.entries()]
    .filter(([key]) => key !== 'X-Goog-Signature')
    .map(([key, value]) => [encodeRfc3986(key), encodeRfc3986(value)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

function headerValue(req: IncomingMessage, name: string): string {
  const raw = req.headers[name];
  const value = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
  // The signer signs the endpoint's hostname only; the Host header carries the port too.
  const canonical = name === 'host' ? value.replace(/:\d+$/, '') : value;
  return canonical.trim().replace(/\s{2,}/g, ' ');
}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (value === null || value === '') {
    throw new XmlApiError(400, 'InvalidArgument', 'Invalid argument.', `Missing required query parameter ${name}.`);
  }
  return value;
}

/** `20261202T033736Z` as a Date, or undefined. */
function parseGoogDate(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const date = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** What a verified signed request allows. */
export interface VerifiedSignature {
  readonly clientEmail: string;
  readonly expiresAt: Date;
}

/**
 * Verifies the request's V4 signature (see the module comment); throws {@link XmlApiError}.
 * `now` is the server's clock.
 */
export function verifySignedRequest(ctx: Pick<RequestContext, 'req' | 'url'>, policy: SignedUrlPolicy, now = new Date()): VerifiedSignature {
  const params = ctx.url.searchParams;
  if (!params.has('X-Goog-Signature') && !params.has('X-Goog-Algorithm')) {
    throw new XmlApiError(403, 'AccessDenied', 'Access denied.', 'Anonymous caller does not have storage.objects.create access; use a signed URL.');
  }
  const algorithm = required(params, 'X-Goog-Algorithm');
  if (algorithm !== 'GOOG4-RSA-SHA256') {
    throw new XmlApiError(400, 'InvalidArgument', 'Invalid argument.', `Unsupported X-Goog-Algorithm ${algorithm}; this server checks GOOG4-RSA-SHA256.`);
  }
  const credential = required(params, 'X-Goog-Credential');
  const dateText = required(params, 'X-Goog-Date');
  const expiresText = required(params, 'X-Goog-Expires');
  const signedHeaders = required(params, 'X-Goog-SignedHeaders');
  const signature = required(params, 'X-Goog-Signature');

  const date = parseGoogDate(dateText);
  if (!date) throw new XmlApiError(400, 'InvalidArgument', 'Invalid argument.', `X-Goog-Date ${dateText} is not of the form YYYYMMDDTHHMMSSZ.`);
  if (!/^\d{1,7}$/.test(expiresText) || Number(expiresText) < 1 || Number(expiresText) > MAX_EXPIRES_SECONDS) {
    throw new XmlApiError(400, 'InvalidArgument', 'Invalid argument.', `X-Goog-Expires must be 1 to ${MAX_EXPIRES_SECONDS} seconds.`);
  }
  const expiresAt = new Date(date.getTime() + Number(expiresText) * 1000);
  if (now.getTime() > expiresAt.getTime()) {
    throw new XmlApiError(400, 'ExpiredToken', 'Invalid argument.', `Request has expired: ${Math.floor(expiresAt.getTime() / 1000)}`);
  }
  if (now.getTime() < date.getTime()) {
    throw new XmlApiError(400, 'InvalidArgument', 'Invalid argument.', `Request is not yet valid: it starts at ${dateText}.`);
  }

  const parts = credential.split('/');
  const scope = parts.slice(-4).join('/');
  const clientEmail = parts.slice(0, -4).join('/');
  if (parts.length < 5 || parts[parts.length - 4] !== dateText.slice(0, 8) || scope.slice(9) !== 'auto/storage/goog4_request') {
    throw new XmlApiError(400, 'AuthorizationQueryParametersError', 'Invalid argument.', `Malformed X-Goog-Credential ${credential}.`);
  }
  const key = policy.key(clientEmail);
  if (!key) throw new XmlApiError(403, 'AccessDenied', 'Access denied.', `No signing key is trusted for ${clientEmail}.`);

  const headerNames = signedHeaders.split(';');
  if (!headerNames.includes('host')) {
    throw new XmlApiError(400, 'AuthorizationQueryParametersError', 'Invalid argument.', 'X-Goog-SignedHeaders must include host.');
  }
  const canonicalHeaders = headerNames.map((name) => `${name}:${headerValue(ctx.req, name)}\n`).join('');
  const payload = headerNames.includes('x-goog-content-sha256') ? headerValue(ctx.req, 'x-goog-content-sha256') : 'UNSIGNED-PAYLOAD';
  const canonicalRequest = [
    (ctx.req.method ?? 'GET').toUpperCase(),
    canonicalPath(ctx.url.pathname),
    canonicalQuery(params),
    canonicalHeaders,
    signedHeaders,
    payload,
  ].join('\n');
  const stringToSign = ['GOOG4-RSA-SHA256', dateText, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const valid = /^[0-9a-f]+$/i.test(signature) && verify('sha256', Buffer.from(stringToSign), key, Buffer.from(signature, 'hex'));
  if (!valid) {
    throw new XmlApiError(403, 'SignatureDoesNotMatch', 'Access denied.', 'The request signature we calculated does not match the signature you provided. Check your Google secret key and signing method.', {
      StringToSign: stringToSign,
      CanonicalRequest: canonicalRequest,
    });
  }
  return { clientEmail, expiresAt };
}

/** `x-goog-content-length-range: min,max`, if the request carries one. */
function lengthRange(req: IncomingMessage): { min: number; max: number } | undefined {
  const raw = headerValue(req, 'x-goog-content-length-range');
  if (raw === '') return undefined;
  const m = /^(\d+),(\d+)$/.exec(raw.replace(/\s/g, ''));
  if (!m || Number(m[1]) > Number(m[2])) {
    throw new XmlApiError(400, 'InvalidArgument', 'Invalid argument.', `Invalid x-goog-content-length-range ${JSON.stringify(raw)}.`);
  }
  return { min: Number(m[1]), max: Number(m[2]) };
}

function tooLarge(max: number): XmlApiError {
  return new XmlApiError(400, 'EntityTooLarge', 'Your proposed upload is larger than the maximum object size specified in your Policy Document.', `Content-length exceeds upper bound on range (${max}).`);
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
    throw new XmlApiError(400, 'EntityTooSmall', 'Your proposed upload is smaller than the minimum object size specified in your Policy Document.', `Content-length is smaller than lower bound on range (${range.min}).`);
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
  ctx.res.writeHead(error.status, { ...cors, 'Content-Type': 'application/xml; charset=UTF-8', 'Content-Length': Buffer.byteLength(body) });
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
export async function handleSignedPut(ctx: RequestContext, policy: SignedUrlPolicy, bucket: string, name: string): Promise<void> {
  const cors = corsHeaders(ctx, policy);
  try {
    verifySignedRequest(ctx, policy);
    const data = await readBodyInRange(ctx.req, lengthRange(ctx.req));
    const fields: WritableObjectFields = {};
    const contentType = ctx.req.headers['content-type'];
    if (contentType) fields.contentType = contentType;
    const metadata: Record<string, string> = {};
    for (const [header, value] of Object.entries(ctx.req.headers)) {
      if (header.startsWith('x-goog-meta-') && typeof value === 'string') metadata[header.slice('x-goog-meta-'.length)] = value;
    }
    if (Object.keys(metadata).length > 0) fields.metadata = metadata;
    const conditions = new URLSearchParams();
    const ifGeneration = ctx.req.headers['x-goog-if-generation-match'];
    if (typeof ifGeneration === 'string') conditions.set('ifGenerationMatch', ifGeneration);
    const record = await commitNewGeneration(ctx, { bucket, name, data, fields, preconditions: parsePreconditions(conditions) });
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
