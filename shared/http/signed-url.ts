/**
 * Direct uploads to Cloud Storage by V4 signed URL (docs/signed-urls.md): the upload function
 * signs a PUT for one new object under `incoming/` and records the ticket for the caller
 * (state/tickets.ts, charged to its quotas), the client sends the bytes straight to the bucket,
 * `ingest` takes the first object that uses the ticket and records what it became, and the
 * status route follows the ticket to the image for its owner only.
 *
 * Signing calls `getSignedUrl` of the storage client: in production it has no key and signs
 * through IAM `signBlob` as the function's own service account; locally it is given a
 * throwaway key whose public half the local storage server checks.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { PipelineDeps } from '../cloud/deps.js';
import { permanent } from '../core/errors.js';
import { parseMetadata, UploadMetadata } from '../core/metadata.js';
import { incomingTicketName, newTicketId, sanitizeFilename, TICKET_PATTERN } from '../core/naming.js';
import { listPage } from '../cloud/objects.js';
import type { OwnerKey } from '../auth/principal.js';
import { mintTicket, readTicket, TICKET_GRACE_MS, type TicketUse } from '../state/tickets.js';
import { ACCEPTED_INPUT_FORMATS, INPUT_CONTENT_TYPE_ALIASES, INPUT_CONTENT_TYPES } from '../image/probe.js';
import { topology } from '../core/topology.js';

/** Fallback object file name when the client gave none that survives sanitising. */
const DEFAULT_FILENAME = 'upload';

/** The request body of `POST /uploads/signed-url`. */
export const SignedUploadRequest = z.object({
  filename: z.string().max(4096).optional(),
  contentType: z.string().max(200),
  size: z.number().int().positive(),
  metadata: UploadMetadata.optional(),
});

/** As parsed: the metadata is checked apart, so that a bad one is `invalid_metadata`, not `bad_request`. */
const SignedUploadFields = SignedUploadRequest.extend({ metadata: z.unknown().optional() });

/** What a client needs to upload: `PUT uploadUrl` with exactly `headers`, before `expiresAt`. */
export interface SignedUpload {
  readonly ticket: string;
  readonly uploadUrl: string;
  readonly method: 'PUT';
  readonly headers: Record<string, string>;
  readonly expiresAt: string;
  /** The object the URL may create, `incoming/{ticket}/{filename}`. */
  readonly objectName: string;
  /** The most bytes the URL accepts. */
  readonly maxBytes: number;
}

/** Content types a signed URL may be issued for: what the probe accepts. */
export function signableContentTypes(config: PipelineDeps['config']): string[] {
  return ACCEPTED_INPUT_FORMATS.filter((format) => format !== 'svg' || config.ALLOW_SVG).flatMap((format) => [
    INPUT_CONTENT_TYPES[format],
    ...(INPUT_CONTENT_TYPE_ALIASES[format] ?? []),
  ]);
}

/** Parses and checks a signing request: 400 malformed, 415 unsupported type, 413 too large. */
export function parseSignedUploadRequest(deps: PipelineDeps, body: Buffer): z.infer<typeof SignedUploadRequest> {
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    throw permanent(
      'bad_request',
      'Send a JSON body: {"filename": "...", "contentType": "image/jpeg", "size": 12345}.',
    );
  }
  const parsed = SignedUploadFields.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw permanent(
      'bad_request',
      `Invalid ${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'does not match the schema'}.`,
    );
  }
  const contentType = parsed.data.contentType.trim().toLowerCase();
  const allowed = signableContentTypes(deps.config);
  if (!allowed.includes(contentType)) {
    throw permanent('format_not_allowed', `Signed uploads accept ${allowed.join(', ')}.`, { contentType, allowed });
  }
  const max = deps.config.MAX_INGEST_BYTES;
  if (parsed.data.size > max) {
    throw permanent('payload_too_large', `The file is ${parsed.data.size} bytes; the limit is ${max} bytes.`, {
      maxBytes: max,
    });
  }
  const { metadata: rawMetadata, ...rest } = parsed.data;
  const metadata = rawMetadata === undefined ? undefined : parseMetadata(rawMetadata, 'signed-URL request');
  return { ...rest, contentType, ...(metadata ? { metadata } : {}) };
}

/**
 * Signs a PUT of one new object under `incoming/`, bound to the content type, through
 * `x-goog-content-length-range` to at most `size` bytes (already checked against
 * MAX_INGEST_BYTES), and through `x-goog-if-generation-match: 0` to creating, never replacing;
 * then records the ticket for `owner`, charging one upload of `size` bytes and one open ticket
 * (429 `quota_exceeded` otherwise: the URL is then never handed out, and ingest would refuse an
 * object without a ticket anyway). Signing failures (IAM signBlob refused or unavailable)
 * propagate as they are: they are the deployment's problem and answer 503.
 */
export async function issueSignedUpload(deps: PipelineDeps, body: Buffer, owner: OwnerKey): Promise<SignedUpload> {
  const request = parseSignedUploadRequest(deps, body);
  // Whole seconds: the ticket carries its expiry in seconds, and the URL is signed for that instant.
  const expiresAt = new Date(Math.floor(deps.now().getTime() / 1000 + deps.config.SIGNED_URL_TTL_SECONDS) * 1000);
  const ticket = newTicketId(expiresAt, randomBytes(12));
  const objectName = incomingTicketName(ticket, sanitizeFilename(request.filename) ?? DEFAULT_FILENAME);
  // Bound by the signature: the size range, and create-only (a PUT onto an object already
  // there, e.g. the URL replayed before ingest took the first one, fails with 412).
  const extensionHeaders = { 'x-goog-content-length-range': `1,${request.size}`, 'x-goog-if-generation-match': '0' };
  const [uploadUrl] = await deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(objectName).getSignedUrl({
    version: 'v4',
    action: 'write',
    expires: expiresAt,
    accessibleAt: deps.now(),
    contentType: request.contentType,
    extensionHeaders,
  });
  await mintTicket(deps, {
    ticket,
    owner,
    objectName,
    expiresAt,
    size: request.size,
    contentType: request.contentType,
    ...(request.metadata ? { metadata: request.metadata } : {}),
  });
  deps.log.info('signed upload URL issued', {
    event: 'upload.signed',
    ticket,
    owner,
    object: objectName,
    bytes: request.size,
    contentType: request.contentType,
  });
  return {
    ticket,
    uploadUrl,
    method: 'PUT',
    headers: { 'Content-Type': request.contentType, ...extensionHeaders },
    expiresAt: expiresAt.toISOString(),
    objectName,
    maxBytes: request.size,
  };
}

/** Where a ticket stands, for its owner. */
export type TicketStatus =
  | { readonly state: 'used'; readonly use: TicketUse & { readonly imageId: string } }
  | { readonly state: 'waiting' }
  | { readonly state: 'unknown' };

/**
 * Follows a ticket for `owner`: to what its object became once ingest recorded it; `waiting`
 * until then, while the URL is valid plus {@link TICKET_GRACE_MS}, or for as long as its object
 * is still in `incoming/`; `unknown` for a malformed or unrecorded ticket, another owner's, or an
 * expired unused one.
 */
export async function ticketStatus(deps: PipelineDeps, ticket: string, owner: OwnerKey): Promise<TicketStatus> {
  if (!TICKET_PATTERN.test(ticket)) return { state: 'unknown' };
  const doc = await readTicket(deps, ticket);
  if (!doc || doc.owner !== owner) return { state: 'unknown' };
  const use = doc.used;
  if (use?.imageId !== undefined) return { state: 'used', use: { ...use, imageId: use.imageId } };
  // Not used yet, or used and ingest still at work on it.
  if (deps.now().getTime() <= doc.expiresAt.getTime() + TICKET_GRACE_MS) return { state: 'waiting' };
  // Long expired: still waiting only if its object arrived and ingest has not finished with it.
  const uploads = deps.storage.bucket(deps.config.UPLOADS_BUCKET);
  const page = await listPage(uploads, { prefix: `${topology.prefixes.incoming}${ticket}/`, maxResults: 1 });
  return page.files.length > 0 ? { state: 'waiting' } : { state: 'unknown' };
}
