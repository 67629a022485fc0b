/**
 * An image's one outcome and its one event. Pub/Sub and Eventarc deliver at least once and a
 * function can die between any two calls, so "one outcome, one event per image" is built from
 * object preconditions on a single arbiter, the outcome marker `outcomes/{id}` in the uploads
 * bucket (docs/record-protocol.md has the whole protocol and the reasoning behind the numbers):
 *
 * 1. The ready writer (resize fan-in) and every failed writer (resize, ingest, cleanup) create
 *    the marker with `ifGenerationMatch: 0`, `eventState=pending` and their identity. Only the
 *    creator goes on; `image.ready` and `image.failed` can never both be announced.
 * 2. The holder writes the derived record (`{id}/manifest.json` or `{id}/error.json`), publishes
 *    the event, then sets `eventState=published`. If it cannot publish it sets `released`.
 * 3. A `released` marker, or a `pending` one older than {@link ANNOUNCE_STALE_MS}, is claimed
 *    (`ifMetagenerationMatch`) by the holder's own retry or by cleanup, and the claimer
 *    announces. A writer whose create gets 412 on its own marker settles it.
 *
 * Failed outcomes whose cause is about the world are `retryable`; re-submitting the same bytes
 * deletes the marker (generation-matched) and dispatches again ({@link clearRetryableFailure}).
 */
import { performance } from 'node:perf_hooks';
import { variantCount } from '../image/manifest.js';
import type { File, FileMetadata } from '@google-cloud/storage';
import type { PipelineDeps } from '../cloud/deps.js';
import { isPreconditionFailed, isRetryableCause, PipelineError, transient } from '../core/errors.js';
import {
  FailureRecordV1,
  ManifestV1,
  OutcomeMarkerV1,
  type EventMessage,
  type FailureRecord,
  type Manifest,
  type OutcomeMarker,
} from '../core/schemas.js';
import {
  errorRecordName,
  isOmittedVariantName,
  isUnsettledOutcome,
  isVariantName,
  manifestName,
  omittedVariantName,
  OUTCOME_MARKER,
  originalName,
  outcomeMarkerName,
  RECORD_CACHE_CONTROL,
} from '../core/naming.js';
import {
  createIfAbsent,
  deleteIfPresent,
  guardStorage,
  listObjects,
  metadataOrUndefined,
  readJsonObject,
  STORAGE_CALL_DEADLINE_MS,
  withDeadline,
} from '../cloud/objects.js';
import { METRIC_LINES } from '../core/observability.js';
import { NO_RECIPE, recipeHashOf } from '../core/recipe.js';
import { publishEvent, PUBLISH_WORST_MS } from '../cloud/publish.js';

const KEYS = OUTCOME_MARKER.keys;
const STATES = OUTCOME_MARKER.states;

/** A holder publishes only if it gets to the publish within this long of taking the marker. */
export const PUBLISH_START_LIMIT_MS = STORAGE_CALL_DEADLINE_MS;
/** Allowance for the difference between an instance's clock and Cloud Storage's. */
export const CLOCK_SKEW_MS = 30_000;
/**
 * A pending announcement older than this (by the marker's `updated` time) may be taken over: the
 * holder has by then either published and marked it (start limit + publish + marking, each
 * bounded) or will never publish. 30 + 30 + 30 + 30 s = 120 s; see docs/record-protocol.md.
 */
export const ANNOUNCE_STALE_MS = PUBLISH_START_LIMIT_MS + PUBLISH_WORST_MS + STORAGE_CALL_DEADLINE_MS + CLOCK_SKEW_MS;

/** Writers that may settle anybody's stale or released announcement. */
const ARBITERS: ReadonlySet<string> = new Set(['cleanup']);

/** How old a marker's (or legacy record's) last change is, by the caller's clock. */
function ageOf(deps: PipelineDeps, metadata: FileMetadata): number {
  return deps.now().getTime() - new Date(metadata.updated ?? metadata.timeCreated ?? 0).getTime();
}

/** The event a record announces. */
export function eventFor(
  record: { kind: 'manifest'; manifest: Manifest; bucket: string } | { kind: 'failure'; record: FailureRecord },
  at: Date,
): EventMessage {
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
  const { id, code, message, retryable } = record.record;
  return {
    v: 1,
    type: 'image.failed',
    imageId: id,
    code,
    message,
    ...(retryable !== undefined ? { retryable } : {}),
    at: at.toISOString(),
  };
}

function eventOfMarker(marker: OutcomeMarker, at: Date): EventMessage {
  if (marker.outcome === 'deleted') return { v: 1, type: 'image.deleted', imageId: marker.id, at: at.toISOString() };
  if (marker.outcome === 'ready' && marker.update) {
    const { manifest } = marker;
    return {
      v: 1,
      type: 'image.updated',
      imageId: manifest.id,
      manifest: { bucket: marker.bucket, name: manifestName(manifest.id) },
      variants: manifest.variants.length,
      recipe: recipeHashOf(manifest),
      previousRecipe: marker.update.from,
      at: at.toISOString(),
    };
  }
  return marker.outcome === 'ready'
    ? eventFor({ kind: 'manifest', manifest: marker.manifest, bucket: marker.bucket }, at)
    : eventFor({ kind: 'failure', record: marker.record }, at);
}

function idOfMarker(marker: OutcomeMarker): string {
  return marker.outcome === 'ready' ? marker.manifest.id : marker.outcome === 'deleted' ? marker.id : marker.record.id;
}

function markerFile(deps: PipelineDeps, id: string): File {
  return deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(outcomeMarkerName(id));
}

/** Outcome of creating a record. */
export type RecordOutcome = 'created' | 'exists';

/** Who holds a marker's announcement, and since when (monotonic ms, before the take). */
interface Holding {
  readonly file: File;
  /** The marker generation held: a tombstone or an update replaces it, and the holder notices. */
  readonly generation: string;
  readonly metageneration: number;
  readonly startedAt: number;
  readonly writer: string;
}

async function setState(holding: Holding, state: string, what: string): Promise<void> {
  await withDeadline(`${what} ${holding.file.name}`, () =>
    guardStorage(`${what} ${holding.file.name}`, () =>
      holding.file.setMetadata(
        { metadata: { [KEYS.eventState]: state } },
        { ifGenerationMatch: Number(holding.generation), ifMetagenerationMatch: holding.metageneration },
      ),
    ),
  );
}

/** Gives the announcement up so that anyone may settle it at once; best effort. */
async function release(deps: PipelineDeps, holding: Holding): Promise<void> {
  try {
    await setState(holding, STATES.released, 'release');
  } catch (error) {
    // 412: somebody took it over already. Otherwise it stays pending and goes stale.
    if (!isPreconditionFailed(error))
      deps.log.warn('could not release an announcement', { event: 'record.release', object: holding.file.name, error });
  }
}

/**
 * Removes every object of a deleted image: its outputs in the images bucket and (unless
 * `outputsOnly`: resize may not delete originals, and never writes one) its original, each
 * generation-matched to what was listed (an object replaced meanwhile is listed again).
 */
export async function removeImageObjects(deps: PipelineDeps, id: string, outputsOnly = false): Promise<number> {
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  let removed = 0;
  for (let round = 0; round < 3; round++) {
    const files = await listObjects(images, `${id}/`);
    if (files.length === 0) break;
    for (const file of files) if (await deleteIfPresent(file, file.metadata.generation)) removed++;
  }
  if (outputsOnly) return removed;
  const original = deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(originalName(id));
  const metadata = await metadataOrUndefined(original);
  if (metadata && (await deleteIfPresent(original, metadata.generation))) removed++;
  return removed;
}

/**
 * Variants (and omission markers) of an updated image that its new manifest no longer lists;
 * removed after it is written.
 */
async function removeStaleVariants(deps: PipelineDeps, manifest: Manifest): Promise<void> {
  const keep = new Set([
    ...manifest.variants.map((v) => v.name),
    ...Object.values(manifest.aspects ?? {}).flatMap((aspect) => aspect.variants.map((v) => v.name)),
    ...(manifest.omitted ?? []).map((o) => omittedVariantName(manifest.id, o.width, o.format, o.aspect)),
  ]);
  const files = await listObjects(deps.storage.bucket(deps.config.IMAGES_BUCKET), `${manifest.id}/`);
  for (const file of files) {
    const stale = (isVariantName(file.name) || isOmittedVariantName(file.name)) && !keep.has(file.name);
    if (stale) await deleteIfPresent(file, file.metadata.generation);
  }
}

/** `{id}/manifest.json` or `{id}/error.json`, derived from the marker, for readers of the images bucket. */
async function writeDerivedRecord(deps: PipelineDeps, marker: OutcomeMarker): Promise<void> {
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  const id = idOfMarker(marker);
  if (marker.outcome === 'deleted') {
    await removeImageObjects(deps, id);
    return;
  }
  if (marker.outcome === 'ready' && marker.update) {
    // The marker is the arbiter; the derived copy is overwritten, then the old recipe's extras go.
    const file = images.file(manifestName(id));
    await guardStorage(`write ${file.name}`, () =>
      file.save(JSON.stringify(marker.manifest, null, 2), {
        resumable: false,
        contentType: 'application/json',
        metadata: { contentType: 'application/json', cacheControl: RECORD_CACHE_CONTROL },
      }),
    );
    await removeStaleVariants(deps, marker.manifest);
    return;
  }
  if (marker.outcome === 'ready') {
    await createIfAbsent(images.file(manifestName(id)), JSON.stringify(marker.manifest, null, 2), {
      contentType: 'application/json',
      cacheControl: RECORD_CACHE_CONTROL,
    });
    // A failure record left from a cleared retryable failure is stale now.
    await deleteIfPresent(images.file(errorRecordName(id)));
    return;
  }
  // Overwritten, not created: a cleared earlier failure may have left one behind.
  const file = images.file(errorRecordName(id));
  await guardStorage(`write ${file.name}`, () =>
    file.save(JSON.stringify(marker.record, null, 2), {
      resumable: false,
      contentType: 'application/json',
      metadata: { contentType: 'application/json', cacheControl: RECORD_CACHE_CONTROL },
    }),
  );
}

/**
 * The holder's part: derived record, publish, mark published. Publishes only within
 * {@link PUBLISH_START_LIMIT_MS} of the take, so that a holder slower than that can never publish
 * after a takeover did; on any failure before the publish succeeded the marker is released.
 */
async function announce(deps: PipelineDeps, holding: Holding, marker: OutcomeMarker, how: string): Promise<void> {
  const event = eventOfMarker(marker, deps.now());
  try {
    await withDeadline(`write the record of ${holding.file.name}`, () => writeDerivedRecord(deps, marker));
    if (marker.outcome !== 'deleted' && (await replacedByTombstone(deps, holding, idOfMarker(marker)))) return;
    if (performance.now() - holding.startedAt > PUBLISH_START_LIMIT_MS) {
      throw transient(
        'unavailable',
        `${event.type} for ${event.imageId} not published: storage was too slow; the announcement is released for a retry.`,
      );
    }
    await publishEvent(deps.pubsub, deps.config.EVENTS_TOPIC, event);
  } catch (error) {
    await release(deps, holding);
    throw error;
  }
  try {
    await setState(holding, STATES.published, 'mark published');
  } catch (error) {
    // Somebody moved the marker on after our publish: theirs is the announcement now.
    if (!isPreconditionFailed(error)) throw error;
  }
  // image.ready carries what the image cost (upload→ready, CPU-seconds), for the log-based metrics.
  const cost = marker.outcome === 'ready' ? marker.manifest.processing : undefined;
  deps.log.info(`${event.type} published${how}`, {
    event: event.type,
    imageId: event.imageId,
    writer: holding.writer,
    ...cost,
  });
}

/**
 * After writing a derived record: if the marker was replaced by a tombstone meanwhile (a delete
 * raced this announcement), removes what this holder may have written after the delete listed
 * the folder, and announces nothing. The delete wrote its tombstone before listing, so every
 * object is either listed by the delete or removed here.
 */
async function replacedByTombstone(deps: PipelineDeps, holding: Holding, id: string): Promise<boolean> {
  const now = await metadataOrUndefined(holding.file);
  if (now?.metadata?.[KEYS.outcome] !== 'deleted') return false;
  await removeImageObjects(deps, id, true);
  deps.log.info('announcement dropped: the image was deleted meanwhile', {
    event: 'record.deleted',
    imageId: id,
    writer: holding.writer,
  });
  return true;
}

/** True when the image's marker is a tombstone (the image was deleted). */
export async function isDeleted(deps: PipelineDeps, id: string): Promise<boolean> {
  return (await metadataOrUndefined(markerFile(deps, id)))?.metadata?.[KEYS.outcome] === 'deleted';
}

/**
 * Settles an unsettled announcement if `writer` may: its holder (its own retry) once it is
 * released or stale, and cleanup likewise. A fresh `pending` one is
 * left alone (`pending`): its holder is at work, e.g. a duplicate delivery running alongside;
 * if that holder dies without releasing it, cleanup's scan of `outcomes/` settles it once stale.
 */
async function settleMarker(
  deps: PipelineDeps,
  file: File,
  metadata: FileMetadata,
  writer: string,
): Promise<'settled' | 'pending' | 'none'> {
  const custom = metadata.metadata ?? {};
  if (!isUnsettledOutcome(custom)) return 'none';
  if (!ARBITERS.has(writer) && custom[KEYS.writer] !== writer) return 'pending';
  if (custom[KEYS.eventState] !== STATES.released) {
    if (ageOf(deps, metadata) < ANNOUNCE_STALE_MS) return 'pending';
  }
  const startedAt = performance.now();
  let claimed: FileMetadata;
  try {
    [claimed] = await withDeadline(`claim ${file.name}`, () =>
      guardStorage(`claim ${file.name}`, () =>
        file.setMetadata(
          { metadata: { [KEYS.eventState]: STATES.pending, [KEYS.writer]: writer } },
          { ifGenerationMatch: Number(metadata.generation), ifMetagenerationMatch: Number(metadata.metageneration) },
        ),
      ),
    );
  } catch (error) {
    // Only one of the parties racing here gets the metageneration it read.
    if (isPreconditionFailed(error)) return 'pending';
    throw error;
  }
  const marker = await readJsonObject(
    deps.storage.bucket(file.bucket.name).file(file.name, { generation: Number(metadata.generation) }),
    OutcomeMarkerV1,
  );
  const holding: Holding = {
    file,
    generation: String(metadata.generation),
    metageneration: Number(claimed.metageneration),
    startedAt,
    writer,
  };
  if (!marker) {
    // Unreadable (hand-edited?): nothing can be announced; stop everybody from trying forever.
    deps.log.error('outcome marker unreadable; announcement abandoned', {
      event: 'record.unreadable',
      object: file.name,
    });
    await setState(holding, STATES.published, 'abandon');
    return 'settled';
  }
  await announce(deps, holding, marker, ' by takeover');
  return 'settled';
}

/**
 * Creates the image's outcome marker and announces it. On 412 the outcome exists: if it is this
 * writer's own (an earlier attempt whose publish failed and released it, or a stale one) it is
 * settled as its own writer, else the other outcome stands.
 */
async function claimOutcome(
  deps: PipelineDeps,
  marker: OutcomeMarker,
  writer: string,
  ifGenerationMatch: string | number = 0,
): Promise<RecordOutcome> {
  const file = markerFile(deps, idOfMarker(marker));
  const startedAt = performance.now();
  const result = await createIfAbsent(file, JSON.stringify(marker), {
    contentType: 'application/json',
    cacheControl: RECORD_CACHE_CONTROL,
    ifGenerationMatch,
    metadata: {
      [KEYS.outcome]: marker.outcome,
      [KEYS.eventState]: STATES.pending,
      [KEYS.writer]: writer,
      ...(marker.outcome === 'failed' ? { [KEYS.retryable]: String(marker.record.retryable === true) } : {}),
      ...(marker.outcome === 'ready' ? { [KEYS.recipe]: recipeHashOf(marker.manifest) } : {}),
    },
  });
  if (result.created) {
    await announce(
      deps,
      { file, generation: String(result.generation), metageneration: 1, startedAt, writer },
      marker,
      '',
    );
    return 'created';
  }
  const metadata = await metadataOrUndefined(file);
  // Cleared by a re-submission between our create and this read: the retry will decide.
  if (!metadata) throw transient('unavailable', `${file.name} changed while being written; retrying.`);
  if (metadata.metadata?.[KEYS.writer] === writer) await settleMarker(deps, file, metadata, writer);
  return 'exists';
}

/**
 * Replaces a ready manifest made with recipe `replaces` by `manifest` (made with the deployed
 * recipe), and announces `image.updated`. The new marker overwrites the old one with
 * `ifGenerationMatch` = the generation read, so of several updaters (duplicate deliveries, two
 * jobs finishing together, a re-upload and the backfill) exactly one wins and announces; the
 * others get 412 and stop. Only a settled ready marker that still has recipe `replaces` is
 * replaced: a stale update job, a failed or deleted image, or one already updated stays as is.
 * A ready announcement still in its holder's hands is waited for (transient error: retry).
 */
export async function writeUpdatedManifest(
  deps: PipelineDeps,
  manifest: Manifest,
  writer: string,
  replaces: string,
): Promise<RecordOutcome> {
  const file = markerFile(deps, manifest.id);
  const metadata = await metadataOrUndefined(file);
  const custom = metadata?.metadata ?? {};
  if (!metadata || custom[KEYS.outcome] !== 'ready') return 'exists';
  const current = String(custom[KEYS.recipe] ?? NO_RECIPE);
  if (current !== replaces) {
    // Updated already (perhaps by this writer, whose announcement may need settling) or stale.
    if (custom[KEYS.writer] === writer) await settleMarker(deps, file, metadata, writer);
    return 'exists';
  }
  if (isUnsettledOutcome(custom)) {
    if ((await settleMarker(deps, file, metadata, 'cleanup')) !== 'settled') {
      throw transient(
        'unavailable',
        `${manifest.id}: its ready announcement is still in progress; the update is retried.`,
      );
    }
    return writeUpdatedManifest(deps, manifest, writer, replaces);
  }
  const outcome = await claimOutcome(
    deps,
    { v: 1, outcome: 'ready', bucket: deps.config.IMAGES_BUCKET, manifest, update: { from: replaces } },
    writer,
    String(metadata.generation),
  );
  if (outcome === 'created') return outcome;
  // Lost the generation match: whoever won announces (and settles if it is this writer's own).
  return 'exists';
}

/** A record written before outcome markers existed (it carries its own `eventState`). */
async function legacyRecord(
  deps: PipelineDeps,
  id: string,
  kind: 'manifest' | 'failure',
): Promise<{ file: File; metadata: FileMetadata } | undefined> {
  const file = deps.storage
    .bucket(deps.config.IMAGES_BUCKET)
    .file(kind === 'manifest' ? manifestName(id) : errorRecordName(id));
  const metadata = await metadataOrUndefined(file);
  return metadata?.metadata?.[KEYS.eventState] ? { file, metadata } : undefined;
}

/**
 * Records the image as ready (manifest in the marker, then `{id}/manifest.json`) unless it
 * already has an outcome; the writer that wins publishes `image.ready`.
 */
export async function writeManifest(deps: PipelineDeps, manifest: Manifest, writer: string): Promise<RecordOutcome> {
  // One image, one outcome, also against a failure recorded before markers existed.
  if (await legacyRecord(deps, manifest.id, 'failure')) return 'exists';
  return claimOutcome(deps, { v: 1, outcome: 'ready', bucket: deps.config.IMAGES_BUCKET, manifest }, writer);
}

/**
 * Records a failure (marker, then `{id}/error.json`) unless the image already has an outcome,
 * and publishes `image.failed` once. The record is `retryable` when the cause is about the world
 * ({@link isRetryableCause}).
 */
export async function recordFailure(
  deps: PipelineDeps,
  id: string,
  error: PipelineError,
  writer: string,
  source?: { bucket: string; name: string },
  dispatch?: number,
): Promise<RecordOutcome> {
  const record: FailureRecord = {
    v: 1,
    id,
    code: error.code,
    message: error.message,
    ...(source ? { source } : {}),
    failedAt: deps.now().toISOString(),
    retryable: isRetryableCause(error.code),
    ...(dispatch !== undefined ? { dispatch } : {}),
  };
  const finished = (await legacyRecord(deps, id, 'manifest')) !== undefined;
  const outcome = finished ? 'exists' : await claimOutcome(deps, { v: 1, outcome: 'failed', record }, writer);
  deps.log.warn('image failed', {
    event: METRIC_LINES.imageFailed.event,
    imageId: id,
    [METRIC_LINES.imageFailed.code]: error.code,
    reason: error.message,
    retryable: record.retryable,
    writer,
    [METRIC_LINES.imageFailed.recorded]: outcome === 'created',
  });
  return outcome;
}

/** An image's outcome as its marker says (or a record from before markers), if it has one. */
export interface StoredOutcome {
  readonly marker: OutcomeMarker;
  /** The marker's metadata; undefined for a record from before markers. */
  readonly metadata: FileMetadata | undefined;
}

/** Reads the image's outcome: the marker, else a record written before markers existed. */
export async function readOutcome(deps: PipelineDeps, id: string): Promise<StoredOutcome | undefined> {
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  const file = markerFile(deps, id);
  const [metadata, manifest, record] = await Promise.all([
    metadataOrUndefined(file),
    readJsonObject(images.file(manifestName(id)), ManifestV1),
    readJsonObject(images.file(errorRecordName(id)), FailureRecordV1),
  ]);
  if (metadata) {
    const marker = await readJsonObject(
      deps.storage.bucket(file.bucket.name).file(file.name, { generation: Number(metadata.generation) }),
      OutcomeMarkerV1,
    );
    if (marker) return { marker, metadata };
  }
  if (manifest) return { marker: { v: 1, outcome: 'ready', bucket: images.name, manifest }, metadata: undefined };
  // An error.json with `retryable` was derived from a marker; without its marker it was cleared.
  if (record && record.retryable === undefined)
    return { marker: { v: 1, outcome: 'failed', record }, metadata: undefined };
  return undefined;
}

/**
 * The image's outcome kind from metadata only (no object read): the marker's `outcome`, else a
 * record from before markers. For cleanup's "is this image finished?": `{id}/error.json` alone
 * is not an answer, as a cleared retryable failure can leave one behind while the image is
 * processed again.
 */
export async function outcomeKind(deps: PipelineDeps, id: string): Promise<'ready' | 'failed' | 'deleted' | undefined> {
  const [marker, manifest, failure] = await Promise.all([
    metadataOrUndefined(markerFile(deps, id)),
    legacyRecord(deps, id, 'manifest'),
    legacyRecord(deps, id, 'failure'),
  ]);
  const kind = marker?.metadata?.[KEYS.outcome];
  if (kind === 'ready' || kind === 'failed' || kind === 'deleted') return kind;
  return manifest ? 'ready' : failure ? 'failed' : undefined;
}

/**
 * For a re-submission of an image whose failure is retryable: deletes the marker (generation-
 * and metageneration-matched) so the image can be dispatched again. An announcement that is
 * released or stale is dropped with it (its holder will never publish, and the retry's outcome
 * gets announced instead); one still fresh in its holder's hands makes this throw a transient
 * error (retry in a minute), as does a marker that changed meanwhile. `prepare` runs after
 * that check and before anything is deleted.
 *
 * @returns the dispatch number the failure happened in (the retry uses a higher one).
 */
export async function clearRetryableFailure(
  deps: PipelineDeps,
  id: string,
  outcome: StoredOutcome,
  prepare?: () => Promise<void>,
): Promise<number> {
  const metadata = outcome.metadata;
  if (outcome.marker.outcome !== 'failed' || outcome.marker.record.retryable !== true || !metadata) {
    throw new Error(`${id}: only a retryable failure marker can be cleared`);
  }
  const custom = metadata.metadata ?? {};
  if (
    isUnsettledOutcome(custom) &&
    custom[KEYS.eventState] !== STATES.released &&
    ageOf(deps, metadata) < ANNOUNCE_STALE_MS
  ) {
    throw transient('unavailable', 'The earlier failure of this image is still being announced; retry in a minute.');
  }
  await prepare?.();
  // The derived error.json goes first where this function may delete in the images bucket
  // (ingest, cleanup); otherwise the retry's first job removes it (settleOwnOutcome).
  const errorFile = deps.storage.bucket(deps.config.IMAGES_BUCKET).file(errorRecordName(id));
  try {
    await deleteIfPresent(errorFile);
  } catch (error) {
    if (!(error instanceof PipelineError && error.code === 'storage_refused')) throw error;
  }
  const file = markerFile(deps, id);
  if (
    !(await deleteIfPresent(file, metadata.generation, metadata.metageneration)) &&
    (await metadataOrUndefined(file))
  ) {
    throw transient('unavailable', 'The image changed while being retried; retry shortly.');
  }
  deps.log.info('retryable failure cleared', {
    event: 'record.clear',
    imageId: id,
    code: outcome.marker.record.code,
    announced: !isUnsettledOutcome(custom),
  });
  return outcome.marker.record.dispatch ?? 0;
}

/**
 * For a job starting: true when the image already has an outcome (the job is skipped). If the
 * outcome is this writer's and its announcement released or stale, settles it.
 */
export async function settleOwnOutcome(
  deps: PipelineDeps,
  id: string,
  writer: string,
  replaces?: string,
): Promise<boolean> {
  const file = markerFile(deps, id);
  const errorFile = deps.storage.bucket(deps.config.IMAGES_BUCKET).file(errorRecordName(id));
  const [metadata, manifest, errorMetadata] = await Promise.all([
    metadataOrUndefined(file),
    legacyRecord(deps, id, 'manifest'),
    metadataOrUndefined(errorFile),
  ]);
  if (metadata) {
    const custom = metadata.metadata ?? {};
    // An update job goes on while the ready manifest still has the recipe it replaces.
    if (
      replaces !== undefined &&
      custom[KEYS.outcome] === 'ready' &&
      String(custom[KEYS.recipe] ?? NO_RECIPE) === replaces
    )
      return false;
    if (metadata.metadata?.[KEYS.writer] === writer) await settleMarker(deps, file, metadata, writer);
    return true;
  }
  const failure = errorMetadata?.metadata?.[KEYS.eventState] ? { file: errorFile, metadata: errorMetadata } : undefined;
  // A derived error.json without its marker is what a cleared retryable failure left behind
  // (the upload function may not delete in the images bucket): the retry removes it.
  if (errorMetadata && !failure) await deleteIfPresent(errorFile, errorMetadata.generation);
  const legacy = manifest ?? failure;
  if (!legacy) return false;
  await settleLegacy(deps, legacy.file, legacy.metadata, writer);
  return true;
}

/**
 * Settles the image's outcome announcement if it is unsettled and stale (or released), as
 * `cleanup`. For cleanup's scan of `outcomes/` (OUTCOME_MARKER in naming.ts); with no marker it
 * settles a pending record written before markers existed.
 *
 * @returns `settled` when this call published the event, `pending` when it is unsettled but a
 *   writer may still be at work (or another party claimed it just now), `none` when there is no
 *   unsettled announcement.
 */
export async function settlePendingOutcome(
  deps: PipelineDeps,
  imageId: string,
): Promise<'settled' | 'pending' | 'none'> {
  const file = markerFile(deps, imageId);
  const metadata = await metadataOrUndefined(file);
  if (metadata) return settleMarker(deps, file, metadata, 'cleanup');
  for (const kind of ['manifest', 'failure'] as const) {
    const legacy = await legacyRecord(deps, imageId, kind);
    if (!legacy) continue;
    if (legacy.metadata.metadata?.[KEYS.eventState] !== STATES.pending) return 'none';
    return (await settleLegacy(deps, legacy.file, legacy.metadata, 'cleanup')) ? 'settled' : 'pending';
  }
  return 'none';
}

/**
 * The protocol before markers: `{id}/manifest.json` or `{id}/error.json` itself carried
 * `eventState`. Kept so that announcements left pending by the previous version still settle.
 */
async function settleLegacy(deps: PipelineDeps, file: File, metadata: FileMetadata, writer: string): Promise<boolean> {
  if (metadata.metadata?.[KEYS.eventState] !== STATES.pending) return true;
  if (!ARBITERS.has(writer) && metadata.metadata?.[KEYS.writer] !== writer) return false;
  if (ageOf(deps, metadata) < ANNOUNCE_STALE_MS) {
    if (ARBITERS.has(writer)) return false;
    throw transient('unavailable', `${file.name}: announcement still in progress; retrying later.`);
  }
  try {
    await guardStorage(`claim ${file.name}`, () =>
      file.setMetadata(
        { metadata: { [KEYS.eventState]: STATES.pending, [KEYS.writer]: `${writer}:takeover` } },
        { ifMetagenerationMatch: Number(metadata.metageneration) },
      ),
    );
  } catch (error) {
    if (isPreconditionFailed(error)) return false;
    throw error;
  }
  const isManifest = file.name.endsWith('/manifest.json');
  const event = isManifest
    ? await readJsonObject(file, ManifestV1).then(
        (manifest) => manifest && eventFor({ kind: 'manifest', manifest, bucket: file.bucket.name }, deps.now()),
      )
    : await readJsonObject(file, FailureRecordV1).then(
        (record) => record && eventFor({ kind: 'failure', record }, deps.now()),
      );
  if (event) {
    await publishEvent(deps.pubsub, deps.config.EVENTS_TOPIC, event);
    deps.log.info(`${event.type} published by takeover`, { event: event.type, imageId: event.imageId, writer });
  }
  try {
    await guardStorage(`mark ${file.name} published`, () =>
      file.setMetadata({ metadata: { [KEYS.eventState]: STATES.published } }),
    );
  } catch (error) {
    if (!isPreconditionFailed(error)) throw error;
  }
  return true;
}

/**
 * Deletes an image: replaces its marker (whatever it says, generation-matched) with a tombstone,
 * whose holder removes the original, every output and the derived records, then announces
 * `image.deleted`. A concurrent or retried delete that finds the tombstone removes what is left
 * too (idempotent) but announces nothing.
 *
 * @returns `not-found` when there is no trace of the image at all.
 */
export async function deleteImageRecords(
  deps: PipelineDeps,
  id: string,
  writer: string,
): Promise<'deleted' | 'already-deleted' | 'not-found'> {
  const file = markerFile(deps, id);
  for (let attempt = 0; attempt < 3; attempt++) {
    const [metadata, original, outputs] = await Promise.all([
      metadataOrUndefined(file),
      metadataOrUndefined(deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(originalName(id))),
      listObjects(deps.storage.bucket(deps.config.IMAGES_BUCKET), `${id}/`),
    ]);
    if (metadata?.metadata?.[KEYS.outcome] === 'deleted') {
      await removeImageObjects(deps, id);
      return 'already-deleted';
    }
    if (!metadata && !original && outputs.length === 0) return 'not-found';
    const dispatch = Number(original?.metadata?.redispatches ?? 0) || 0;
    const tombstone: OutcomeMarker = { v: 1, outcome: 'deleted', id, deletedAt: deps.now().toISOString(), dispatch };
    if ((await claimOutcome(deps, tombstone, writer, metadata?.generation ?? 0)) === 'created') return 'deleted';
    // The marker changed between our read and our write (a job finished, another delete won): look again.
  }
  throw transient('unavailable', `${id} kept changing while being deleted; retry shortly.`);
}

/**
 * For a re-upload of deleted bytes: removes the tombstone once its announcement is settled
 * (generation-matched), so the image is processed afresh. A delete still being announced makes
 * this throw a transient error (retry in a moment).
 *
 * @returns the dispatch number to use (higher than any before the delete).
 */
export async function clearTombstone(deps: PipelineDeps, id: string): Promise<number> {
  const file = markerFile(deps, id);
  const metadata = await metadataOrUndefined(file);
  if (metadata?.metadata?.[KEYS.outcome] !== 'deleted') return 0;
  if (isUnsettledOutcome(metadata.metadata) && (await settleMarker(deps, file, metadata, 'cleanup')) !== 'settled') {
    throw transient('unavailable', 'This image is still being deleted; retry in a minute.');
  }
  const marker = await readJsonObject(
    deps.storage.bucket(file.bucket.name).file(file.name, { generation: Number(metadata.generation) }),
    OutcomeMarkerV1,
  );
  const fresh = await metadataOrUndefined(file);
  if (
    fresh &&
    !(await deleteIfPresent(file, fresh.generation, fresh.metageneration)) &&
    (await metadataOrUndefined(file))
  ) {
    throw transient('unavailable', 'The image changed while being uploaded again; retry shortly.');
  }
  deps.log.info('deleted image uploaded again', { event: 'record.undelete', imageId: id });
  return (marker?.outcome === 'deleted' ? (marker.dispatch ?? 0) : 0) + 1;
}
