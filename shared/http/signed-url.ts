/**
 * Direct uploads to Cloud Storage by V4 signed URL (docs/signed-urls.md): the upload function
 * signs a PUT for one new object under `incoming/`, the client sends the bytes straight to the
 * bucket, `ingest` takes the object as it takes any other and records which image the ticket
 * became, and the status route follows the ticket to the image.
 *
 * Signing calls `getSignedUrl` of the storage client: in production it has no key and signs
 * through IAM `signBlob` as the function's own service account; locally it is given a
 * throwaway key whose public half the local storage server checks.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { PipelineDeps } from '../cloud/deps.js';
import { permanent } from '../core/errors.js';
import {
  incomingTicketName,
  newTicketId,
  sanitizeFilename,
  TICKET_METADATA,
  ticketExpiry,
  ticketFromIncomingName,
  ticketMarkerName,
} from '../core/naming.js';
import { createIfAbsent, listPage, metadataOrUndefined } from '../cloud/objects.js';
import { ACCEPTED_INPUT_FORMATS, INPUT_CONTENT_TYPE_ALIASES, INPUT_CONTENT_TYPES } from '../image/probe.js';
import { topology } from '../core/topology.js';

/**
 * How long after its URL expired a ticket still answers `waiting` instead of 404: Cloud Storage
 * checks the expiry when a PUT starts, so a large upload begun in time may finish, and be
 * ingested, well after it.
 */
export const TICKET_GRACE_MS = 60 * 60 * 1000;

/** The longest a V4 signed URL can live (Cloud Storage's limit); later expiries are forged. */
const MAX_TICKET_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;

/** Fallback object file name when the client gave none that survives sanitising. */
const DEFAULT_FILENAME = 'upload';

/** The request body of `POST /uploads/signed-url`. */
const SignedUploadRequest = z.object({
  filename: z.string().max(4096).optional(),
  contentType: z.string().max(200),
  size: z.number().int().positive(),
});

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
  const parsed = SignedUploadRequest.safeParse(json);
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
  return { ...parsed.data, contentType };
}

/**
 * Signs a PUT of one new object under `incoming/`, bound to the content type, through
 * `x-goog-content-length-range` to at most `size` bytes (already checked against
 * MAX_INGEST_BYTES), and through `x-goog-if-generation-match: 0` to creating, never replacing. Signing failures (IAM signBlob refused or unavailable) propagate as they
 * are: they are the deployment's problem and answer 503.
 */
export async function issueSignedUpload(deps: PipelineDeps, body: Buffer): Promise<SignedUpload> {
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
  deps.log.info('signed upload URL issued', {
    event: 'upload.signed',
    ticket,
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

/** Where a ticket stands. */
export type TicketStatus =
  | { readonly state: 'ingested'; readonly imageId: string }
  | { readonly state: 'waiting' }
  | { readonly state: 'unknown' };

/**
 * Follows a ticket: to its image once ingest recorded one; `waiting` until then, while the URL
 * is valid plus {@link TICKET_GRACE_MS}, or for as long as its object is still in `incoming/`;
 * `unknown` for a malformed ticket, an impossible expiry, or an expired unused one.
 */
export async function ticketStatus(deps: PipelineDeps, ticket: string): Promise<TicketStatus> {
  const expiry = ticketExpiry(ticket);
  const now = deps.now().getTime();
  if (!expiry || expiry.getTime() > now + MAX_TICKET_LIFETIME_MS) return { state: 'unknown' };
  const uploads = deps.storage.bucket(deps.config.UPLOADS_BUCKET);
  const marker = await metadataOrUndefined(uploads.file(ticketMarkerName(ticket)));
  const imageId = marker?.metadata?.[TICKET_METADATA.imageId];
  if (typeof imageId === 'string' && imageId !== '') return { state: 'ingested', imageId };
  if (now <= expiry.getTime() + TICKET_GRACE_MS) return { state: 'waiting' };
  // Long expired: still waiting only if its object arrived and ingest has not finished with it.
  const page = await listPage(uploads, { prefix: `${topology.prefixes.incoming}${ticket}/`, maxResults: 1 });
  return page.files.length > 0 ? { state: 'waiting' } : { state: 'unknown' };
}

/**
 * Records which image an `incoming/{ticket}/...` object became (or failed as), for the ticket's
 * status route. Called by ingest before it deletes the object, so a crash in between redelivers
 * and records again; a marker already there is kept. Other incoming names are left alone.
 */
export async function recordTicket(deps: PipelineDeps, objectName: string, imageId: string): Promise<void> {
  const ticket = ticketFromIncomingName(objectName);
  if (!ticket) return;
  const file = deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(ticketMarkerName(ticket));
  await createIfAbsent(file, '', { contentType: 'text/plain', metadata: { [TICKET_METADATA.imageId]: imageId } });
}
