/**
 * Accepting an image into the pipeline, shared by `upload` (bytes in a request) and `ingest`
 * (an object under `incoming/`): probe, name by content, store the original once, dispatch.
 */
import type { File } from '@google-cloud/storage';
import type { PipelineDeps } from '../cloud/deps.js';
import { chooseCrops, type Focus } from '../image/crop.js';
import { cropsToMetadata, dispatchOriginal, originalInfoFromMetadata } from './dispatch.js';
import { isPreconditionFailed, transient } from '../core/errors.js';
import type { FailureRecord, Manifest, OriginalInfo, OutcomeMarker, VariantSpec } from '../core/schemas.js';
import { imageIdOf, ORIGINAL_METADATA, originalName } from '../core/naming.js';
import { createIfAbsent, guardStorage, metadataOrUndefined } from '../cloud/objects.js';
import { planVariants } from '../image/plan.js';
import { probeImage, probeLimitsFromConfig } from '../image/probe.js';
import { recipeHashOf, recipeOf } from '../core/recipe.js';
import { clearRetryableFailure, clearTombstone, readOutcome } from '../state/records.js';
import { currentTrace, formatTraceparent } from '../cloud/trace.js';

/** What happened to an accepted image. */
export type AcceptOutcome =
  | {
      readonly state: 'processing';
      readonly id: string;
      readonly variants: VariantSpec[];
      readonly dispatched: boolean;
    }
  | { readonly state: 'ready'; readonly id: string; readonly manifest: Manifest }
  | { readonly state: 'failed'; readonly id: string; readonly record: FailureRecord };

/** An image offered to the pipeline. */
export interface AcceptInput {
  readonly bytes: Buffer;
  /** Sanitised original file name, kept in metadata. */
  readonly filename?: string;
  /** Who offered it, e.g. `upload` or `incoming/photo.jpg`. */
  readonly source: string;
  /** The uploader's focal point for aspect crops (overrides CROP_STRATEGY). */
  readonly focus?: Focus;
  /** Copy this object server-side instead of uploading the bytes again (ingest). */
  readonly copyFrom?: { readonly file: File; readonly generation: string };
  /** When the image reached us (ISO time; ingest: the incoming object's creation); default now. */
  readonly acceptedAt?: string;
}

function asAcceptOutcome(id: string, marker: Exclude<OutcomeMarker, { outcome: 'deleted' }>): AcceptOutcome {
  return marker.outcome === 'ready'
    ? { state: 'ready', id, manifest: marker.manifest }
    : { state: 'failed', id, record: marker.record };
}

/** The terminal state of an image, if it has one (`deleted` for a deleted image). */
export async function terminalState(
  deps: PipelineDeps,
  id: string,
): Promise<AcceptOutcome | { state: 'deleted'; id: string } | undefined> {
  const stored = await readOutcome(deps, id);
  if (!stored) return undefined;
  if (stored.marker.outcome === 'deleted') return { state: 'deleted', id };
  return asAcceptOutcome(id, stored.marker);
}

async function storeOriginal(
  file: File,
  input: AcceptInput,
  id: string,
  info: OriginalInfo,
  acceptedAt: string,
): Promise<string | undefined> {
  const trace = currentTrace();
  const metadata: Record<string, string> = {
    [ORIGINAL_METADATA.imageId]: id,
    [ORIGINAL_METADATA.format]: info.format,
    [ORIGINAL_METADATA.width]: String(info.width),
    [ORIGINAL_METADATA.height]: String(info.height),
    [ORIGINAL_METADATA.bytes]: String(info.bytes),
    [ORIGINAL_METADATA.source]: input.source,
    ...(input.filename ? { [ORIGINAL_METADATA.filename]: input.filename } : {}),
    [ORIGINAL_METADATA.acceptedAt]: acceptedAt,
    ...(trace ? { [ORIGINAL_METADATA.traceparent]: formatTraceparent(trace) } : {}),
    ...(info.crops ? { [ORIGINAL_METADATA.crops]: cropsToMetadata(info.crops) } : {}),
  };
  if (!input.copyFrom) {
    const result = await createIfAbsent(file, input.bytes, { contentType: info.contentType, metadata });
    return result.created ? result.generation : undefined;
  }
  const source = input.copyFrom.file.bucket.file(input.copyFrom.file.name, {
    generation: Number(input.copyFrom.generation),
  });
  try {
    const [, response] = await guardStorage(`copy ${source.name} to ${file.name}`, () =>
      source.copy(file, { preconditionOpts: { ifGenerationMatch: 0 }, contentType: info.contentType, metadata }),
    );
    // The rewrite response carries the new object's resource; the File object is not updated.
    const generation = (response as { resource?: { generation?: string | number } } | undefined)?.resource?.generation;
    if (generation === undefined) throw new Error(`copy to ${file.name} returned no generation`);
    return String(generation);
  } catch (error) {
    if (isPreconditionFailed(error)) return undefined;
    throw error;
  }
}

/**
 * Probes the bytes (limits before any decode), stores `originals/{id}` if it is new, and
 * publishes its jobs. The same bytes offered twice are stored and processed once: a finished
 * image answers with its manifest, one in flight with its plan.
 *
 * Throws permanent errors for bad images and transient ones for storage/Pub/Sub trouble; in the
 * latter case the original may be stored, and a retry or cleanup finishes the dispatch.
 */
export async function acceptImage(deps: PipelineDeps, input: AcceptInput): Promise<AcceptOutcome> {
  const acceptedAt = input.acceptedAt ?? deps.now().toISOString();
  const probe = await probeImage(input.bytes, probeLimitsFromConfig(deps.config, input.copyFrom ? 'ingest' : 'upload'));
  const id = imageIdOf(input.bytes);
  const log = deps.log.child({ imageId: id });

  const file = deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(originalName(id));
  // A retryable failure (dead-lettered, gave up, out of memory...) is cleared and dispatched
  // again with a higher dispatch number; any other outcome answers as it stands.
  let retry: number | undefined;
  /** Set when the image is ready with another recipe: the recipe hash the update replaces. */
  let replaces: string | undefined;
  const stored = await readOutcome(deps, id);
  if (stored) {
    if (stored.marker.outcome === 'deleted') {
      // Deleted before: the tombstone goes (once its announcement is settled) and the bytes are new again.
      retry = await clearTombstone(deps, id);
      log.info('deleted image uploaded again', { event: 'accept.undelete', dispatch: retry, source: input.source });
    } else if (
      stored.marker.outcome === 'ready' &&
      stored.metadata &&
      recipeHashOf(stored.marker.manifest) !== recipeOf(deps.config).hash
    ) {
      replaces = recipeHashOf(stored.marker.manifest);
    } else if (stored.marker.outcome === 'failed' && stored.marker.record.retryable === true && stored.metadata) {
      const recorded = stored.marker.record.dispatch ?? 0;
      await clearRetryableFailure(deps, id, stored, async () => {
        // Before the marker goes: un-stamp the original with the retry's dispatch number, so a
        // retry whose publish then fails is dispatched by the next identical upload or by
        // cleanup's undispatched rule, instead of looking in flight.
        const original = await metadataOrUndefined(file);
        retry = Math.max(recorded, Number(original?.metadata?.[ORIGINAL_METADATA.redispatches] ?? 0) || 0) + 1;
        if (original) {
          await guardStorage(`un-stamp ${file.name}`, () =>
            file.setMetadata(
              { metadata: { [ORIGINAL_METADATA.dispatchedAt]: null, [ORIGINAL_METADATA.redispatches]: String(retry) } },
              { ifMetagenerationMatch: Number(original.metageneration) },
            ),
          ).catch((error: unknown) => {
            if (isPreconditionFailed(error))
              throw transient('unavailable', 'The image changed while being retried; retry shortly.');
            throw error;
          });
        }
      });
      log.info('retrying an image whose failure was retryable', {
        event: 'accept.retry',
        code: stored.marker.record.code,
        dispatch: retry,
        source: input.source,
      });
    } else {
      const terminal = asAcceptOutcome(id, stored.marker);
      log.info('image already finished', { event: 'accept', state: terminal.state, source: input.source });
      return terminal;
    }
  }

  // Aspect crops are chosen here, once per image, so every job of the fan-out agrees (crop.ts).
  const crops = await chooseCrops(input.bytes, probe, {
    aspects: deps.config.ASPECTS,
    strategy: deps.config.CROP_STRATEGY,
    focus: input.focus,
    limitInputPixels: deps.config.MAX_INPUT_PIXELS,
  });
  let info: OriginalInfo = {
    format: probe.format,
    width: probe.width,
    height: probe.height,
    bytes: input.bytes.length,
    contentType: probe.contentType,
    ...(input.filename ? { filename: input.filename } : {}),
    ...(crops ? { crops } : {}),
  };
  let generation = await storeOriginal(file, input, id, info, acceptedAt);
  let dispatch = retry ?? 0;
  if (replaces !== undefined) return dispatchUpdate(deps, file, generation, id, info, replaces, input.source);
  if (generation === undefined) {
    // Stored before: dispatch again only if that earlier dispatch never completed (a failed
    // publish, or a retry whose publish failed: the original carries the number to use).
    const existing = await metadataOrUndefined(file);
    if (!existing) throw new Error(`${file.name} vanished while being accepted`);
    // The crops stored with it win (a later focus must not split one image's jobs between two).
    const storedCrops = originalInfoFromMetadata(existing)?.crops;
    if (storedCrops) info = { ...info, crops: storedCrops };
    if (existing.metadata?.[ORIGINAL_METADATA.dispatchedAt] && retry === undefined) {
      log.info('image already in flight', { event: 'accept', source: input.source });
      return { state: 'processing', id, variants: planVariants(info, deps.config), dispatched: false };
    }
    dispatch = Math.max(dispatch, Number(existing.metadata?.[ORIGINAL_METADATA.redispatches] ?? 0) || 0);
    generation = String(existing.generation);
  }
  log.info('original stored', {
    event: 'accept',
    source: input.source,
    format: info.format,
    width: info.width,
    height: info.height,
    bytes: info.bytes,
  });
  const jobs = await dispatchOriginal(deps, file, generation, id, info, dispatch, { acceptedAt });
  return { state: 'processing', id, variants: jobs[0]?.plan ?? [], dispatched: true };
}

/**
 * Brings a ready image made with another recipe up to date: update jobs (dispatch number + 1)
 * that make the missing variants, and whose fan-in replaces the manifest and announces
 * `image.updated` (docs/record-protocol.md, "Updates"). An update for the deployed recipe
 * dispatched less than REDISPATCH_AFTER_MINUTES ago is left to finish instead of dispatched again.
 */
export async function dispatchUpdate(
  deps: PipelineDeps,
  file: File,
  stored: string | undefined,
  id: string,
  info: OriginalInfo,
  replaces: string,
  source: string,
): Promise<AcceptOutcome & { state: 'processing' }> {
  const metadata = await metadataOrUndefined(file);
  if (!metadata) throw transient('unavailable', `${file.name} vanished while being updated; retry shortly.`);
  const custom = metadata.metadata ?? {};
  const recipe = recipeOf(deps.config).hash;
  const dispatchedAt = Date.parse(String(custom[ORIGINAL_METADATA.dispatchedAt] ?? ''));
  const plan = planVariants(info, deps.config);
  if (
    custom[ORIGINAL_METADATA.updateRecipe] === recipe &&
    deps.now().getTime() - dispatchedAt < deps.config.REDISPATCH_AFTER_MINUTES * 60_000
  ) {
    deps.log.info('image update already in flight', { event: 'accept.update', imageId: id, source });
    return { state: 'processing', id, variants: plan, dispatched: false };
  }
  const dispatch = (Number(custom[ORIGINAL_METADATA.redispatches] ?? 0) || 0) + 1;
  deps.log.info('image made with another recipe; updating', {
    event: 'accept.update',
    imageId: id,
    replaces,
    recipe,
    dispatch,
    source,
  });
  const jobs = await dispatchOriginal(deps, file, stored ?? String(metadata.generation), id, info, dispatch, {
    replaces,
  });
  return { state: 'processing', id, variants: jobs[0]?.plan ?? [], dispatched: true };
}
