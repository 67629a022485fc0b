/**
 * `ingest`'s work: an object that landed under `incoming/` in the uploads bucket (gcloud,
 * console, signed URL) is checked like an upload, copied to `originals/{id}`, dispatched, and
 * removed from `incoming/`. A bad one is recorded as failed and removed; it is never retried.
 * One that storage refuses to copy (401/403) is recorded as a retryable failure and kept.
 * A signed URL's object, `incoming/{ticket}/{filename}`, is taken only as the first object that
 * used its ticket (state/tickets.ts), for the ticket's owner; any other is refused and removed.
 */
import type { PipelineDeps } from '../cloud/deps.js';
import { acceptImage, identityFocus } from './accept.js';
import { classifyError, permanent, PipelineError } from '../core/errors.js';
import {
  FOCUS_METADATA_KEY,
  imageIdOf,
  isIncomingName,
  sanitizeFilename,
  ticketFromIncomingName,
  assetIdOf,
} from '../core/naming.js';
import { parseFocus } from '../image/crop.js';
import { deleteIfPresent, downloadOrUndefined } from '../cloud/objects.js';
import { quotas } from '../auth/settings.js';
import { type AssetClaim, transactAsset } from '../state/assets.js';
import { drainOutbox } from '../state/outbox.js';
import { rejectImage } from '../state/upkeep.js';
import { isRetryableCause } from '../core/errors.js';
import { claimTicket, recordTicketOutcome, type TicketRefusal, type TicketUse } from '../state/tickets.js';
import { type OwnerKey, SERVICE_OWNER } from '../auth/principal.js';
import { METADATA_FIELDS, parseMetadataText, type UploadMetadata } from '../core/metadata.js';
import { announcerOf } from '../state/upload-events.js';
import { randomUUID } from 'node:crypto';

/** The fields of a Cloud Storage object resource (the finalize event's data) that ingest reads. */
export interface StorageObjectData {
  readonly bucket: string;
  readonly name: string;
  readonly generation: string | number;
  readonly size?: string | number;
  readonly contentType?: string;
  /** When the object was written (ISO time): the image's upload time. */
  readonly timeCreated?: string;
  /** Custom metadata; `focus` (x,y from 0 to 1) places the aspect crops. */
  readonly metadata?: Readonly<Record<string, unknown>> | null | undefined;
}

/** What ingest did with an object. */
export type IngestOutcome =
  | { readonly outcome: 'ignored'; readonly reason: string }
  | {
      readonly outcome: 'accepted';
      readonly id: string;
      readonly assetId: string;
      readonly state: 'processing' | 'ready' | 'failed';
    }
  /** `id` absent when the object was refused before its bytes were read (bad metadata). */
  | { readonly outcome: 'rejected'; readonly id?: string; readonly code: string }
  | { readonly outcome: 'refused'; readonly reason: TicketRefusal };

/** The `metadata` custom metadata of a plain incoming object (JSON text), checked. */
function metadataOfObject(object: StorageObjectData): UploadMetadata | undefined {
  const raw = object.metadata?.[METADATA_FIELDS.objectKey];
  if (raw === undefined || raw === null) return undefined;
  return parseMetadataText(String(raw), 'object metadata');
}

/**
 * The owner an incoming object is accepted for: a signed URL's ticket owner, once this object
 * generation has claimed the ticket; the service owner for other names (IAM decides who writes
 * those). `refused` when the ticket refuses the object, which is then removed and logged.
 */
async function ownerOfIncoming(
  deps: PipelineDeps,
  log: PipelineDeps['log'],
  object: StorageObjectData,
  ticket: string | undefined,
  remove: () => Promise<unknown>,
): Promise<{ owner: OwnerKey; metadata?: UploadMetadata | undefined } | { refused: TicketRefusal }> {
  if (!ticket) return { owner: SERVICE_OWNER };
  const claim = await claimTicket(deps, ticket, object.name, String(object.generation));
  if (claim.kind === 'claimed') return { owner: claim.ticket.owner, metadata: claim.ticket.metadata };
  await remove();
  log.warn('incoming object refused by its ticket; removed', {
    event: 'ingest.ticket_refused',
    ticket,
    reason: claim.reason,
    ...(claim.usedBy ? { usedBy: claim.usedBy } : {}),
  });
  return { refused: claim.reason };
}

/**
 * Ingests one finalized object. Returns for every permanent outcome (the event is acknowledged);
 * throws transient errors so Eventarc redelivers.
 */
export async function ingestObject(deps: PipelineDeps, object: StorageObjectData): Promise<IngestOutcome> {
  if (object.bucket !== deps.config.UPLOADS_BUCKET) return { outcome: 'ignored', reason: 'not the uploads bucket' };
  // Only incoming/ is ingested: originals/ is written by upload and ingest themselves, so
  // reacting to it would make the pipeline trigger itself.
  if (!isIncomingName(object.name)) return { outcome: 'ignored', reason: 'not under incoming/' };

  const generation = String(object.generation);
  const file = deps.storage.bucket(object.bucket).file(object.name, { generation: Number(generation) });
  const source = { bucket: object.bucket, name: object.name };
  const log = deps.log.child({ source: object.name, generation });
  const ticket = ticketFromIncomingName(object.name);
  const owned = await ownerOfIncoming(deps, log, object, ticket, () => deleteIfPresent(file, generation));
  if ('refused' in owned) return { outcome: 'refused', reason: owned.refused };
  // What the object became, on its ticket (the status route answers from it).
  const recordUse = (use: Omit<TicketUse, 'generation'>): Promise<void> =>
    ticket ? recordTicketOutcome(deps, ticket, generation, use) : Promise.resolve();

  // A ticket's upload was charged when its URL was minted; other incoming objects are the service's,
  // which has no quota.
  const owner = owned.owner;
  const chargeQuota = false;
  const holder = `ingest:${randomUUID()}`;
  // A signed URL's metadata was checked when it was minted; the object's own is the service's.
  let metadata = owned.metadata;
  if (!ticket) {
    try {
      metadata = metadataOfObject(object);
    } catch (error) {
      if (!(error instanceof PipelineError)) throw error;
      // The bytes may be fine and shared with other uploads: nothing is recorded on the image.
      await deleteIfPresent(file, generation);
      log.warn('incoming object rejected', { event: 'ingest.reject', code: error.code, message: error.message });
      return { outcome: 'rejected', code: error.code };
    }
  }
  const assetOf = (id: string, bytes: number): AssetClaim => ({
    owner,
    imageId: id,
    source: object.name,
    bytes,
    chargeQuota,
    quotas: quotas(deps.config),
    metadata,
    announcer: announcerOf(deps.config, holder),
  });

  // The failure is the owner's asset too, so the owner can see (and delete) what became of the object.
  const recordFailure = async (id: string, error: PipelineError, bytes: number): Promise<void> => {
    const failure = { code: error.code, message: error.message, source, retryable: isRetryableCause(error.code) };
    const reject = rejectImage(id, failure, { source: object.name, bytes }, 'ingest');
    const { result, outbox } = await transactAsset(deps, assetOf(id, bytes), reject, () => true);
    const leased = outbox ?? (result.kind === 'failed' ? result.outbox : undefined);
    if (leased) await drainOutbox(deps, id, holder, leased);
    await recordUse({
      imageId: id,
      assetId: assetIdOf(owner, id),
      failure: { code: failure.code, message: failure.message, retryable: failure.retryable },
    });
  };
  const reject = async (id: string, error: PipelineError, bytes: number): Promise<IngestOutcome> => {
    await recordFailure(id, error, bytes);
    await deleteIfPresent(file, generation);
    log.warn('incoming object rejected', { event: 'ingest.reject', imageId: id, code: error.code });
    return { outcome: 'rejected', id, code: error.code };
  };

  const size = Number(object.size ?? 0);
  if (size > deps.config.MAX_INGEST_BYTES) {
    // Too big to read: name the failure after the object, since its content is never hashed.
    const id = imageIdOf(Buffer.from(`incoming:${object.bucket}/${object.name}#${generation}`));
    const error = permanent(
      'payload_too_large',
      `The file is ${size} bytes; the limit is ${deps.config.MAX_INGEST_BYTES} bytes.`,
      {
        maxBytes: deps.config.MAX_INGEST_BYTES,
      },
    );
    return reject(id, error, size);
  }

  const bytes = await downloadOrUndefined(file);
  if (!bytes) {
    // A redelivery after we deleted it, or replaced since: nothing to do.
    log.info('incoming object already gone', { event: 'ingest.skip' });
    return { outcome: 'ignored', reason: 'object no longer exists' };
  }
  const filename = sanitizeFilename(object.name.split('/').pop());
  // The image id accept gives these bytes (and focus), for recording a failure under it.
  let imageId = imageIdOf(bytes);
  try {
    const rawFocus = object.metadata?.[FOCUS_METADATA_KEY];
    const focus = parseFocus(rawFocus === undefined || rawFocus === null ? undefined : String(rawFocus));
    imageId = imageIdOf(bytes, identityFocus(focus, deps.config));
    const accepted = await acceptImage(deps, {
      bytes,
      owner,
      chargeQuota,
      source: object.name,
      copyFrom: { file, generation },
      ...(object.timeCreated ? { acceptedAt: new Date(object.timeCreated).toISOString() } : {}),
      ...(filename ? { filename } : {}),
      ...(focus ? { focus } : {}),
      ...(metadata ? { metadata } : {}),
    });
    await recordUse({ imageId: accepted.id, assetId: accepted.assetId });
    // Another delivery's claim that has not stored the original may still be copying this very
    // object: it removes the object once stored (a claim from elsewhere leaves it to cleanup's sweep).
    const copying = accepted.state === 'processing' && !accepted.stored;
    if (!copying) await deleteIfPresent(file, generation);
    log.info('incoming object ingested', {
      event: 'ingest.accept',
      imageId: accepted.id,
      assetId: accepted.assetId,
      state: accepted.state,
      ...(copying ? { kept: 'another claim is storing the original' } : {}),
    });
    return { outcome: 'accepted', id: accepted.id, assetId: accepted.assetId, state: accepted.state };
  } catch (error) {
    if (error instanceof PipelineError && classifyError(error) === 'permanent')
      return reject(imageId, error, bytes.length);
    if (error instanceof PipelineError && error.code === 'storage_refused') {
      // Permissions changed under us (e.g. a 403 after an IAM edit). Retrying would go on
      // until Eventarc drops the event after a day, silently; instead the image is recorded as
      // a retryable failure with an image.failed event, and the incoming object is kept, so
      // writing it again (or uploading the bytes) once access is fixed processes it.
      const id = imageId;
      await recordFailure(id, error, bytes.length);
      log.error('incoming object refused by storage; recorded as retryable', {
        event: 'ingest.refused',
        imageId: id,
        error,
      });
      return { outcome: 'rejected', id, code: error.code };
    }
    throw error;
  }
}
