/**
 * Uploads on `/upload/storage/v1/b/{bucket}/o` (and `/resumable/upload/…`): `uploadType=media`,
 * `multipart` and `resumable` (sessions in upload-sessions.ts). Claimed checksums are verified
 * before anything is stored. Details: the README's "What it covers".
 */
import { parseGoogHash, type ClaimedHashes } from '../checksums.js';
import { StorageApiError, badRequest } from '../api-errors.js';
import { readBody, type RequestContext } from '../http.js';
import { boundaryOf, parseMultipart } from '../multipart.js';
import { commitNewGeneration, resolveBucket, validateObjectName } from '../object-operations.js';
import { checkPreconditions, parsePreconditions } from '../preconditions.js';
import type { UploadSession } from '../upload-sessions.js';
import { applyWritableFields, encodeName, parseJsonBody } from '../resources.js';
import { sendEmpty, sendObject } from '../responses.js';
import type { WritableObjectFields } from '../object-records.js';

/** Non-final chunks of a resumable upload must be multiples of this, as in Cloud Storage. */
export const RESUMABLE_CHUNK_GRANULARITY = 256 * 1024;

function objectNameFrom(ctx: RequestContext, metadata: unknown): string {
  const fromQuery = ctx.url.searchParams.get('name');
  const fromMetadata =
    typeof metadata === 'object' && metadata !== null && typeof (metadata as { name?: unknown }).name === 'string'
      ? (metadata as { name: string }).name
      : undefined;
  const name = fromQuery ?? fromMetadata;
  if (name === undefined || name === '')
    throw badRequest('Required parameter: name (in the query or the metadata)', 'required');
  validateObjectName(name);
  return name;
}

/** Checksums claimed in a metadata body's `crc32c` / `md5Hash`, merged with `X-Goog-Hash`. */
function claimedHashes(ctx: RequestContext, metadata: unknown): ClaimedHashes {
  const claimed = parseGoogHash(ctx.req.headers['x-goog-hash']);
  if (typeof metadata === 'object' && metadata !== null) {
    const { crc32c, md5Hash } = metadata as { crc32c?: unknown; md5Hash?: unknown };
    if (typeof crc32c === 'string') claimed.crc32c = crc32c;
    if (typeof md5Hash === 'string') claimed.md5 = md5Hash;
  }
  return claimed;
}

function headerValue(ctx: RequestContext, name: string): string | undefined {
  const value = ctx.req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** POST to the upload path: dispatches on `uploadType`. */
export async function handleUploadStart(ctx: RequestContext, bucket: string): Promise<void> {
  const uploadType = ctx.url.searchParams.get('uploadType');
  if (uploadType === 'media') return mediaUpload(ctx, bucket);
  if (uploadType === 'multipart') return multipartUpload(ctx, bucket);
  if (uploadType === 'resumable') return startResumable(ctx, bucket);
  throw new StorageApiError(
    400,
    uploadType === null
      ? 'Upload requests must include an uploadType URL parameter'
      : `Invalid upload type: ${JSON.stringify(uploadType)}`,
    'invalidParameter',
  );
}

async function mediaUpload(ctx: RequestContext, bucket: string): Promise<void> {
  const name = objectNameFrom(ctx, undefined);
  const preconditions = parsePreconditions(ctx.url.searchParams);
  const data = await readBody(ctx.req);
  const fields: WritableObjectFields = {};
  const contentType = headerValue(ctx, 'content-type');
  if (contentType) fields.contentType = contentType;
  const contentEncoding = ctx.url.searchParams.get('contentEncoding');
  if (contentEncoding) fields.contentEncoding = contentEncoding;
  const record = await commitNewGeneration(ctx, {
    bucket,
    name,
    data,
    fields,
    preconditions,
    claimed: claimedHashes(ctx, undefined),
  });
  sendObject(ctx, record);
}

async function multipartUpload(ctx: RequestContext, bucket: string): Promise<void> {
  const boundary = boundaryOf(headerValue(ctx, 'content-type'));
  const preconditions = parsePreconditions(ctx.url.searchParams);
  const parts = parseMultipart(await readBody(ctx.req), boundary);
  if (parts.length !== 2)
    throw badRequest(`A multipart upload has exactly two parts (metadata, media); this one has ${parts.length}`);
  const [metadataPart, mediaPart] = parts as [(typeof parts)[0], (typeof parts)[0]];
  const metadata = parseJsonBody(metadataPart.body);
  const name = objectNameFrom(ctx, metadata);
  const fields = applyWritableFields({}, metadata, 'replace');
  fields.contentType ??= mediaPart.headers['content-type'];
  const record = await commitNewGeneration(ctx, {
    bucket,
    name,
    data: mediaPart.body,
    fields,
    preconditions,
    claimed: claimedHashes(ctx, metadata),
  });
  sendObject(ctx, record);
}

async function startResumable(ctx: RequestContext, bucket: string): Promise<void> {
  const metadata = parseJsonBody(await readBody(ctx.req, 1024 * 1024));
  const name = objectNameFrom(ctx, metadata);
  const preconditions = parsePreconditions(ctx.url.searchParams);
  await resolveBucket(ctx, bucket);
  // Checked again when the upload completes; checking now spares the client a doomed upload.
  checkPreconditions(ctx.store.getObject(bucket, name), preconditions, 'write');
  const fields = applyWritableFields({}, metadata, 'replace');
  const announcedType = headerValue(ctx, 'x-upload-content-type');
  if (announcedType) fields.contentType ??= announcedType;
  const announcedLength = headerValue(ctx, 'x-upload-content-length');
  let announcedSize: number | undefined;
  if (announcedLength !== undefined && announcedLength !== '') {
    if (!/^\d+$/.test(announcedLength))
      throw badRequest(`Invalid X-Upload-Content-Length: ${JSON.stringify(announcedLength)}`);
    announcedSize = Number(announcedLength);
  }
  const session = ctx.sessions.create({
    bucket,
    name,
    fields,
    preconditions,
    claimedInMetadata: claimedHashes(ctx, metadata),
    announcedSize,
  });
  // Clients follow this URI as given, so it points back at the host they used.
  const location = `${ctx.baseUrl}/upload/storage/v1/b/${encodeName(bucket)}/o?uploadType=resumable&name=${encodeName(name)}&upload_id=${session.id}`;
  sendEmpty(ctx.res, 200, { Location: location, 'X-GUploader-UploadID': session.id });
}

/** What a `Content-Range` header of a resumable PUT says. */
type ContentRange =
  | { kind: 'status'; total: number | undefined }
  | { kind: 'bytes'; start: number; end: number | undefined; total: number | undefined };

function parseContentRange(header: string | undefined): ContentRange | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const status = /^\s*bytes\s+\*\s*\/\s*(\d+|\*)\s*$/i.exec(header);
  if (status) return { kind: 'status', total: status[1] === '*' ? undefined : Number(status[1]) };
  const bytes = /^\s*bytes\s+(\d+)\s*-\s*(\d+|\*)\s*\/\s*(\d+|\*)\s*$/i.exec(header);
  if (!bytes) throw badRequest(`Invalid Content-Range header: ${JSON.stringify(header)}`);
  return {
    kind: 'bytes',
    start: Number(bytes[1]),
    end: bytes[2] === '*' ? undefined : Number(bytes[2]),
    total: bytes[3] === '*' ? undefined : Number(bytes[3]),
  };
}

function sendIncomplete(ctx: RequestContext, session: UploadSession): void {
  // No Range header at all means "nothing received yet", as in Cloud Storage.
  sendEmpty(ctx.res, 308, session.received > 0 ? { Range: `bytes=0-${session.received - 1}` } : {});
}

/** PUT (or POST) to a session URI: a chunk, the final bytes, or a status query. */
export async function handleUploadSession(ctx: RequestContext, bucket: string, uploadId: string): Promise<void> {
  const session = ctx.sessions.get(uploadId);
  if (!session || session.bucket !== bucket) {
    throw new StorageApiError(404, `No such upload session: ${uploadId}`, 'notFound');
  }
  // Read the body before queueing so a slow client does not hold up the session's status queries.
  const body = await readBody(ctx.req);
  const previous = session.queue;
  let done!: () => void;
  session.queue = new Promise<void>((resolve) => (done = resolve));
  await previous;
  try {
    await continueSession(ctx, session, body);
  } finally {
    done();
  }
}

async function continueSession(ctx: RequestContext, session: UploadSession, body: Buffer): Promise<void> {
  if (session.failure) throw session.failure;
  if (session.result) return sendObject(ctx, session.result);
  const range = parseContentRange(headerValue(ctx, 'content-range'));
  let final: boolean;
  if (!range) {
    // No Content-Range: the body is the whole object.
    if (session.received > 0) throw badRequest('A request without Content-Range must carry the whole object');
    session.chunks.push(body);
    session.received = body.length;
    final = true;
  } else if (range.kind === 'status') {
    if (body.length > 0) throw badRequest('Content-Range "bytes */N" must come with an empty body');
    // "bytes */N" with everything already received completes the upload (e.g. an empty object).
    final = range.total !== undefined && range.total === session.received;
    if (range.total !== undefined && range.total < session.received) {
      throw badRequest(
        `Content-Range total ${range.total} is less than the ${session.received} bytes already received`,
      );
    }
  } else {
    const { start, end, total } = range;
    if (end !== undefined && end - start + 1 !== body.length) {
      throw badRequest(`Content-Range says ${end - start + 1} bytes but the body has ${body.length}`);
    }
    if (start > session.received) {
      throw badRequest(
        `Invalid request. According to the Content-Range header, the upload offset is ${start} byte(s), ` +
          `which exceeds already uploaded size of ${session.received} byte(s).`,
      );
    }
    // Bytes the server already has (a retried chunk) are skipped, not appended twice.
    const fresh = body.subarray(session.received - start);
    if (fresh.length > 0) {
      session.chunks.push(fresh);
      session.received += fresh.length;
    }
    if (total !== undefined && session.received > total) {
      throw badRequest(`Received ${session.received} bytes, more than the declared total ${total}`);
    }
    // "bytes a-*/*" means "this request carries the rest" (the Node client's single-request mode).
    final = end === undefined || (total !== undefined && session.received === total);
    if (!final && session.received % RESUMABLE_CHUNK_GRANULARITY !== 0) {
      throw badRequest(
        `Non-final chunks must be a multiple of ${RESUMABLE_CHUNK_GRANULARITY} bytes; received ${session.received} so far`,
      );
    }
  }
  if (!final) return sendIncomplete(ctx, session);
  if (session.announcedSize !== undefined && session.announcedSize !== session.received) {
    session.failure = badRequest(
      `X-Upload-Content-Length announced ${session.announcedSize} bytes but ${session.received} arrived`,
    );
    throw session.failure;
  }
  const data = Buffer.concat(session.chunks, session.received);
  session.chunks = [];
  try {
    session.result = await commitNewGeneration(ctx, {
      bucket: session.bucket,
      name: session.name,
      data,
      fields: session.fields,
      preconditions: session.preconditions,
      claimed: { ...session.claimedInMetadata, ...parseGoogHash(ctx.req.headers['x-goog-hash']) },
    });
  } catch (error) {
    if (error instanceof StorageApiError && error.status < 500) session.failure = error;
    else session.chunks = [data];
    throw error;
  }
  sendObject(ctx, session.result);
}

/** DELETE on a session URI cancels it; Cloud Storage answers 499. */
export function cancelUploadSession(ctx: RequestContext, uploadId: string): void {
  if (!ctx.sessions.delete(uploadId)) throw new StorageApiError(404, `No such upload session: ${uploadId}`, 'notFound');
  sendEmpty(ctx.res, 499);
}
