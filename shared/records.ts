/**
 * The two terminal records of an image, `{id}/manifest.json` and `{id}/error.json`, and the
 * event each one announces. Pub/Sub delivers at least once and a function can die between any
 * two calls, so "exactly one event per image" is built from object preconditions:
 *
 * 1. The record is created with `ifGenerationMatch: 0`, metadata `eventState=pending` and the
 *    writer's identity. Only the creator goes on to announce.
 * 2. The creator publishes the event, then sets `eventState=published`.
 * 3. If the creator died or its publish failed, the record stays `pending`. Its own redelivery
 *    (same writer) or cleanup takes it over once it is older than {@link ANNOUNCE_STALE_MS},
 *    claiming it with `ifMetagenerationMatch` so that exactly one party publishes.
 *
 * The only way to see a second event is a publish that succeeded followed by a failed metadata
 * write and a takeover; consumers should treat events as idempotent per image id.
 */
import { variantCount } from './manifest.js';
import type { File, FileMetadata } from '@google-cloud/storage';
import type { PipelineDeps } from './deps.js';
import { isPreconditionFailed, transient, type PipelineError } from './errors.js';
import type { EventMessage, FailureRecord, Manifest } from './messages.js';
import { errorRecordName, manifestName, RECORD_CACHE_CONTROL } from './naming.js';
import { createIfAbsent, guardStorage, metadataOrUndefined } from './objects.js';
import { publishEvent } from './publish.js';

/** Metadata key of a record's announcement state. */
export const EVENT_STATE = 'eventState';
/** Metadata key naming who created a record (e.g. `job:2`, `ingest`, `cleanup`). */
export const RECORD_WRITER = 'writer';
/** A pending record older than this may be taken over by its writer's retry or by cleanup. */
export const ANNOUNCE_STALE_MS = 60_000;

/** The event a record announces. */
export function eventFor(record: { kind: 'manifest'; manifest: Manifest; bucket: string } | { kind: 'failure'; record: FailureRecord }, at: Date): EventMessage {
  if (record.kind === 'manifest') {
    return {
      v: 1,
      type: 'image.ready',
      imageId: record.manifest.id,
      manifest: { bucket: record.bucket, name: manifestName(record.manifest.id) },
      variants: variantCount(record.manifest),
      at: at.toISOString(),
    };
  }
  return { v: 1, type: 'image.failed', imageId: record.record.id, code: record.record.code, message: record.record.message, at: at.toISOString() };
}

async function markPublished(file: File, metageneration: number | string | undefined): Promise<void> {
  try {
    await guardStorage(`mark ${file.name} published`, () =>
      file.setMetadata(
        { metadata: { [EVENT_STATE]: 'published' } },
        metageneration === undefined ? {} : { ifMetagenerationMatch: Number(metageneration) },
      ),
    );
  } catch (error) {
    // Someone else moved the record on: they own the announcement now.
    if (!isPreconditionFailed(error)) throw error;
  }
}

/** Outcome of creating a record. */
export type RecordOutcome = 'created' | 'exists';

async function createAndAnnounce(deps: PipelineDeps, file: File, body: unknown, writer: string, event: EventMessage): Promise<RecordOutcome> {
  const result = await createIfAbsent(file, JSON.stringify(body, null, 2), {
    contentType: 'application/json',
    cacheControl: RECORD_CACHE_CONTROL,
    metadata: { [EVENT_STATE]: 'pending', [RECORD_WRITER]: writer },
  });
  if (!result.created) return 'exists';
  await publishEvent(deps.pubsub, deps.config.EVENTS_TOPIC, event);
  await markPublished(file, 1);
  deps.log.info(`${event.type} published`, { event: event.type, imageId: event.imageId, writer });
  return 'created';
}

/**
 * Finishes an announcement left pending. `writer` is who asks: the record's own writer may take
 * over a stale pending record (and must wait for a fresh one, by throwing so its trigger
 * retries); `cleanup` may take over any stale one; anybody else leaves it alone.
 *
 * @returns true when the record's event is known to be published (now or before).
 */
export async function settleAnnouncement(
  deps: PipelineDeps,
  file: File,
  metadata: FileMetadata,
  writer: string,
  makeEvent: () => Promise<EventMessage | undefined>,
): Promise<boolean> {
  const state = metadata.metadata?.[EVENT_STATE];
  if (state !== 'pending') return true;
  const owner = metadata.metadata?.[RECORD_WRITER];
  if (writer !== 'cleanup' && owner !== writer) return false;
  const age = deps.now().getTime() - new Date(metadata.updated ?? metadata.timeCreated ?? 0).getTime();
  if (age < ANNOUNCE_STALE_MS) {
    if (writer === 'cleanup') return false;
    throw transient('unavailable', `${file.name}: announcement still in progress; retrying later.`);
  }
  // Claim it: only one of the parties racing here gets the metageneration it read.
  try {
    await guardStorage(`claim ${file.name}`, () =>
      file.setMetadata({ metadata: { [EVENT_STATE]: 'pending', [RECORD_WRITER]: `${writer}:takeover` } }, { ifMetagenerationMatch: Number(metadata.metageneration) }),
    );
  } catch (error) {
    if (isPreconditionFailed(error)) return false;
    throw error;
  }
  const event = await makeEvent();
  if (event) {
    await publishEvent(deps.pubsub, deps.config.EVENTS_TOPIC, event);
    deps.log.info(`${event.type} published by takeover`, { event: event.type, imageId: event.imageId, writer });
  }
  await markPublished(file, undefined);
  return true;
}

/**
 * Writes the manifest if absent, and unless the image is already recorded as failed (a duplicate
 * delivery can finish the variants after another one failed for good); the writer that creates it
 * publishes `image.ready`.
 */
export async function writeManifest(deps: PipelineDeps, manifest: Manifest, writer: string): Promise<RecordOutcome> {
  const bucket = deps.config.IMAGES_BUCKET;
  const file = deps.storage.bucket(bucket).file(manifestName(manifest.id));
  // One image, one outcome: never announce image.ready after image.failed. (Two writers checking
  // at the same instant can still both create; this closes the window a whole job wide.)
  if (await metadataOrUndefined(deps.storage.bucket(bucket).file(errorRecordName(manifest.id)))) return 'exists';
  return createAndAnnounce(deps, file, manifest, writer, eventFor({ kind: 'manifest', manifest, bucket }, deps.now()));
}

/**
 * Records a permanent failure in `{id}/error.json` (unless a manifest or record already exists)
 * and publishes `image.failed` once.
 */
export async function recordFailure(
  deps: PipelineDeps,
  id: string,
  error: PipelineError,
  writer: string,
  source?: { bucket: string; name: string },
): Promise<RecordOutcome> {
  const record: FailureRecord = {
    v: 1,
    id,
    code: error.code,
    message: error.message,
    ...(source ? { source } : {}),
    failedAt: deps.now().toISOString(),
  };
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  // A finished image stays finished: a late duplicate that fails (time budget) must not record
  // a failure, nor announce image.failed, next to an existing manifest.
  const finished = (await metadataOrUndefined(images.file(manifestName(id)))) !== undefined;
  const file = images.file(errorRecordName(id));
  const outcome = finished ? 'exists' : await createAndAnnounce(deps, file, record, writer, eventFor({ kind: 'failure', record }, deps.now()));
  deps.log.warn('image failed', { event: 'image.failed', imageId: id, code: error.code, reason: error.message, writer, recorded: outcome === 'created' });
  return outcome;
}
