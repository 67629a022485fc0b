/**
 * V4 signed-URL verification (GOOG4-RSA-SHA256), as Cloud Storage checks it: the query's
 * parameters, the validity window, then the canonical request's signature against a trusted key.
 * The steps and the one liberty taken (`host` without its port) are in the README's
 * "Signed URLs" section.
 */
import { createHash, createPublicKey, verify, type KeyObject } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { XmlApiError } from './xml-errors.js';

/** The longest a V4 signature may be valid, in seconds. */
const MAX_EXPIRES_SECONDS = 7 * 24 * 60 * 60;

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

/** A header's value as the V4 canonical form takes it (the host without its port). */
export function signedHeaderValue(req: Pick<IncomingMessage, 'headers'>, name: string): string {
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
  const form = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
  if (!form.test(text)) return undefined;
  // As ISO 8601, which refuses out-of-range fields (month 13) instead of rolling them over.
  const date = new Date(text.replace(form, '$1-$2-$3T$4:$5:$6Z'));
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
export function verifySignedRequest(
  ctx: { readonly req: Pick<IncomingMessage, 'method' | 'headers'>; readonly url: URL },
  policy: SignedUrlPolicy,
  now = new Date(),
): VerifiedSignature {
  const params = ctx.url.searchParams;
  if (!params.has('X-Goog-Signature') && !params.has('X-Goog-Algorithm')) {
    throw new XmlApiError(
      403,
      'AccessDenied',
      'Access denied.',
      'Anonymous caller does not have storage.objects.create access; use a signed URL.',
    );
  }
  const algorithm = required(params, 'X-Goog-Algorithm');
  if (algorithm !== 'GOOG4-RSA-SHA256') {
    throw new XmlApiError(
      400,
      'InvalidArgument',
      'Invalid argument.',
      `Unsupported X-Goog-Algorithm ${algorithm}; this server checks GOOG4-RSA-SHA256.`,
    );
  }
  const credential = required(params, 'X-Goog-Credential');
  const dateText = required(params, 'X-Goog-Date');
  const expiresText = required(params, 'X-Goog-Expires');
  const signedHeaders = required(params, 'X-Goog-SignedHeaders');
  const signature = required(params, 'X-Goog-Signature');

  const date = parseGoogDate(dateText);
  if (!date)
    throw new XmlApiError(
      400,
      'InvalidArgument',
      'Invalid argument.',
      `X-Goog-Date ${dateText} is not of the form YYYYMMDDTHHMMSSZ.`,
    );
  if (!/^\d{1,7}$/.test(expiresText) || Number(expiresText) < 1 || Number(expiresText) > MAX_EXPIRES_SECONDS) {
    throw new XmlApiError(
      400,
      'InvalidArgument',
      'Invalid argument.',
      `X-Goog-Expires must be 1 to ${MAX_EXPIRES_SECONDS} seconds.`,
    );
  }
  const expiresAt = new Date(date.getTime() + Number(expiresText) * 1000);
  if (now.getTime() > expiresAt.getTime()) {
    throw new XmlApiError(
      400,
      'ExpiredToken',
      'Invalid argument.',
      `Request has expired: ${Math.floor(expiresAt.getTime() / 1000)}`,
    );
  }
  if (now.getTime() < date.getTime()) {
    throw new XmlApiError(
      400,
      'InvalidArgument',
      'Invalid argument.',
      `Request is not yet valid: it starts at ${dateText}.`,
    );
  }

  const parts = credential.split('/');
  const scope = parts.slice(-4).join('/');
  const clientEmail = parts.slice(0, -4).join('/');
  if (
    parts.length < 5 ||
    parts[parts.length - 4] !== dateText.slice(0, 8) ||
    scope.slice(9) !== 'auto/storage/goog4_request'
  ) {
    throw new XmlApiError(
      400,
      'AuthorizationQueryParametersError',
      'Invalid argument.',
      `Malformed X-Goog-Credential ${credential}.`,
    );
  }
  const key = policy.key(clientEmail);
  if (!key)
    throw new XmlApiError(403, 'AccessDenied', 'Access denied.', `No signing key is trusted for ${clientEmail}.`);

  const headerNames = signedHeaders.split(';');
  if (!headerNames.includes('host')) {
    throw new XmlApiError(
      400,
      'AuthorizationQueryParametersError',
      'Invalid argument.',
      'X-Goog-SignedHeaders must include host.',
    );
  }
  const canonicalHeaders = headerNames.map((name) => `${name}:${signedHeaderValue(ctx.req, name)}\n`).join('');
  const payload = headerNames.includes('x-goog-content-sha256')
    ? signedHeaderValue(ctx.req, 'x-goog-content-sha256')
    : 'UNSIGNED-PAYLOAD';
  const canonicalRequest = [
    (ctx.req.method ?? 'GET').toUpperCase(),
    canonicalPath(ctx.url.pathname),
    canonicalQuery(params),
    canonicalHeaders,
    signedHeaders,
    payload,
  ].join('\n');
  const stringToSign = [
    'GOOG4-RSA-SHA256',
    dateText,
    scope,
    createHash('sha256').update(canonicalRequest).digest('hex'),
  ].join('\n');
  const valid =
    /^[0-9a-f]+$/i.test(signature) && verify('sha256', Buffer.from(stringToSign), key, Buffer.from(signature, 'hex'));
  if (!valid) {
    throw new XmlApiError(
      403,
      'SignatureDoesNotMatch',
      'Access denied.',
      'The request signature we calculated does not match the signature you provided. Check your Google secret key and signing method.',
      {
        StringToSign: stringToSign,
        CanonicalRequest: canonicalRequest,
      },
    );
  }
  return { clientEmail, expiresAt };
}
