/**
 * Accepting an image into the pipeline, shared by `upload` (bytes in a request) and `ingest`
 * (an object under `incoming/`): probe, name by content, store the original once, dispatch.
 */
import type { File } from '@google-cloud/storage';
import type { PipelineDeps } from './deps.js';
import { chooseCrops, type Focus } from './crop.js';
import { cropsToMetadata, dispatchOriginal, ORIGINAL_METADATA, originalInfoFromMetadata } from './dispatch.js';
import { isPreconditionFailed } from './errors.js';
import { FailureRecordV1, ManifestV1, type FailureRecord, type Manifest, type OriginalInfo, type VariantSpec } from './messages.js';
import { errorRecordName, imageIdOf, manifestName, originalName } from './naming.js';
import { createIfAbsent, guardStorage, metadataOrUndefined, readJsonObject } from './objects.js';
import { planVariants } from './plan.js';
import { probeImage, probeLimitsFromConfig } from './probe.js';

/** What happened to an accepted image. */
export type AcceptOutcome =
  | { readonly state: 'processing'; readonly id: string; readonly variants: VariantSpec[]; readonly dispatched: boolean }
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
}

/** The terminal state of an image, if it has one. */
export async function terminalState(deps: PipelineDeps, id: string): Promise<AcceptOutcome | undefined> {
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  const [manifest, record] = await Promise.all([
    readJsonObject(images.file(manifestName(id)), ManifestV1),
    readJsonObject(images.file(errorRecordName(id)), FailureRecordV1),
  ]);
  if (manifest) return { state: 'ready', id, manifest };
  if (record) return { state: 'failed', id, record };
  return undefined;
}

async function storeOriginal(file: File, input: AcceptInput, id: string, info: OriginalInfo): Promise<string | undefined> {
  const metadata: Record<string, string> = {
    [ORIGINAL_METADATA.imageId]: id,
    [ORIGINAL_METADATA.format]: info.format,
    [ORIGINAL_METADATA.width]: String(info.width),
    [ORIGINAL_METADATA.height]: String(info.height),
    [ORIGINAL_METADATA.bytes]: String(info.bytes),
    [ORIGINAL_METADATA.source]: input.source,
    ...(input.filename ? { [ORIGINAL_METADATA.filename]: input.filename } : {}),
    ...(info.crops ? { [ORIGINAL_METADATA.crops]: cropsToMetadata(info.crops) } : {}),
  };
  if (!input.copyFrom) {
    const result = await createIfAbsent(file, input.bytes, { contentType: info.contentType, metadata });
    return result.created ? result.generation : undefined;
  }
  const source = input.copyFrom.file.bucket.file(input.copyFrom.file.name, { generation: Number(input.copyFrom.generation) });
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
  const probe = await probeImage(input.bytes, probeLimitsFromConfig(deps.config));
  const id = imageIdOf(input.bytes);
  const log = deps.log.child({ imageId: id });

  const terminal = await terminalState(deps, id);
  if (terminal) {
    log.info('image already finished', { event: 'accept', state: terminal.state, source: input.source });
    return terminal;
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
  const file = deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(originalName(id));
  let generation = await storeOriginal(file, input, id, info);
  if (generation === undefined) {
    // Stored before: dispatch again only if that earlier dispatch never completed.
    const existing = await metadataOrUndefined(file);
    if (!existing) throw new Error(`${file.name} vanished while being accepted`);
    // The crops stored with it win (a later focus must not split one image's jobs between two).
    const storedCrops = originalInfoFromMetadata(existing)?.crops;
    if (storedCrops) info = { ...info, crops: storedCrops };
    if (existing.metadata?.[ORIGINAL_METADATA.dispatchedAt]) {
      log.info('image already in flight', { event: 'accept', source: input.source });
      return { state: 'processing', id, variants: planVariants(info, deps.config), dispatched: false };
    }
    generation = String(existing.generation);
  }
  log.info('original stored', { event: 'accept', source: input.source, format: info.format, width: info.width, height: info.height, bytes: info.bytes });
  const jobs = await dispatchOriginal(deps, file, generation, id, info, 0);
  return { state: 'processing', id, variants: jobs[0]!.plan, dispatched: true };
}
