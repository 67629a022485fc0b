/**
 * One resize job, start to finish: skip what exists, render the rest from one decode, write each
 * variant once, then the fan-in. Safe under duplicate and concurrent delivery: every write is
 * create-if-absent, and the manifest's creator alone announces `image.ready`.
 */
import { performance } from 'node:perf_hooks';
import type { File } from '@google-cloud/storage';
import { publicBaseUrl } from '../core/config.js';
import type { PipelineDeps } from '../cloud/deps.js';
import { classifyError, PipelineError, transient } from '../core/errors.js';
import {
  buildManifest,
  missingVariants,
  type OmissionObject,
  placeholderVariantOf,
  renderOmissions,
  type VariantObject,
} from '../image/manifest.js';
import type { JobMessage } from '../core/schemas.js';
import {
  isOmittedVariantName,
  OMITTED_METADATA,
  omittedVariantName,
  RECORD_CACHE_CONTROL,
  VARIANT_CACHE_CONTROL,
  VARIANT_METADATA,
  variantName,
} from '../core/naming.js';
import { LARGER_THAN_ORIGINAL, omitAsLarger } from '../image/plan.js';
import { createIfAbsent, downloadOrUndefined, listObjects } from '../cloud/objects.js';
import { METRIC_LINES } from '../core/observability.js';
import {
  isDeleted,
  recordFailure,
  removeImageObjects,
  settleOwnOutcome,
  writeManifest,
  writeUpdatedManifest,
} from '../state/records.js';
import { renderVariants, type StageTiming } from '../image/render.js';
import { encoderSettingsFromConfig } from '../image/encode.js';
import { parsePlaceholderMetadata, placeholderMetadata } from '../image/placeholder.js';
import { cropMetadata, parseCropMetadata } from '../image/crop.js';
import { autoQualityFromConfig, type QualitySearch } from '../image/auto-quality.js';

/**
 * `job.done`'s `stages`: `decode`, `resize {w}`, `encode {format} {w}`, `write {format} {w}`, and with
 * QUALITY_MODE=auto `quality {w}` (the search's decode) and `quality {format} {w}` (its trials) → ms.
 */
export function stageFields(timings: readonly StageTiming[]): Record<string, number> {
  const stages: Record<string, number> = {};
  for (const { stage, width, format, ms } of timings) {
    const key = stage === 'decode' ? stage : [stage, format, width].filter((part) => part !== undefined).join(' ');
    stages[key] = (stages[key] ?? 0) + ms;
  }
  return stages;
}

/**
 * `job.done`'s `qualitySearch` (QUALITY_MODE=auto): per format, the quality chosen, how many trial
 * encodes it took and whether the target was met (their wall time is in `stages`, `quality …`).
 */
export function qualitySearchFields(
  searches: readonly QualitySearch[],
): Record<string, { quality: number; trials: number; met: boolean }> {
  return Object.fromEntries(
    searches.map((s) => [s.format, { quality: s.quality, trials: s.trials.length, met: s.outcome === 'met' }]),
  );
}

const DONE = METRIC_LINES.jobDone;

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return Math.round((used.user + used.system) / 1000);
}

/** The image's CPU-seconds as its variants record them (variants from before the key count 0). */
function cpuSecondsOf(files: readonly File[]): number {
  const ms = files.reduce((sum, file) => sum + (Number(file.metadata.metadata?.[VARIANT_METADATA.cpuMs]) || 0), 0);
  return Math.round(ms) / 1000;
}

/** How a job ended. */
export interface JobResult {
  readonly outcome: 'completed' | 'partial' | 'already-finished' | 'failed';
  /** Variants this delivery wrote. */
  readonly written: number;
  /** Omission markers this delivery wrote: variants left out for being larger than the original. */
  readonly omitted: number;
  /** Variants that already existed (duplicate delivery) or lost a create race. */
  readonly skipped: number;
  /** True when this delivery created the manifest. */
  readonly manifestWritten: boolean;
}

/** Who a job is, in record metadata: duplicates of the same job share it. */
export function jobWriter(job: JobMessage): string {
  return `job:${job.imageId}:${job.dispatch}:${job.job.index}`;
}

/** The omission markers among an image's objects, keyed by name (naming.ts omittedVariantName). */
function omissionObjectsOf(files: readonly File[]): Map<string, OmissionObject> {
  const omissions = new Map<string, OmissionObject>();
  for (const file of files) {
    if (!isOmittedVariantName(file.name)) continue;
    const custom = file.metadata.metadata ?? {};
    omissions.set(file.name, {
      height: Number(custom[OMITTED_METADATA.height]),
      bytes: Number(custom[OMITTED_METADATA.bytes]),
      reason: String(custom[OMITTED_METADATA.reason] ?? LARGER_THAN_ORIGINAL),
    });
  }
  return omissions;
}

function variantObjectsOf(files: readonly File[]): Map<string, VariantObject> {
  const objects = new Map<string, VariantObject>();
  for (const file of files) {
    if (isOmittedVariantName(file.name)) continue;
    const custom = file.metadata.metadata ?? {};
    const width = Number(custom[VARIANT_METADATA.width]);
    const height = Number(custom[VARIANT_METADATA.height]);
    if (!Number.isInteger(width) || !Number.isInteger(height)) continue;
    const crop = parseCropMetadata(custom[VARIANT_METADATA.crop]);
    const placeholder = parsePlaceholderMetadata(custom[VARIANT_METADATA.placeholder]);
    const quality = Number(custom[VARIANT_METADATA.quality]);
    objects.set(file.name, {
      name: file.name,
      bytes: Number(file.metadata.size ?? 0),
      width,
      height,
      ...(crop ? { crop } : {}),
      ...(placeholder ? { placeholder } : {}),
      ...(Number.isInteger(quality) && quality >= 1 && quality <= 100 ? { quality } : {}),
    });
  }
  return objects;
}

/**
 * Runs a job. Returns normally when the job is done or failed for good (the caller acks);
 * throws a transient error when a retry can help (the caller lets Pub/Sub redeliver).
 */
export async function runJob(deps: PipelineDeps, job: JobMessage): Promise<JobResult> {
  const log = deps.log.child({ imageId: job.imageId, job: `${job.job.index + 1}/${job.job.count}` });
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  const writer = jobWriter(job);
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  const timings: StageTiming[] = [];
  const searches: QualitySearch[] = [];
  const doneFields = () => ({
    [DONE.durationMs]: Math.round(performance.now() - started),
    [DONE.cpuMs]: cpuMsSince(cpuStart),
    [DONE.stages]: stageFields(timings),
    ...(searches.length > 0 ? { qualitySearch: qualitySearchFields(searches) } : {}),
  });

  if (await settleOwnOutcome(deps, job.imageId, writer, job.replaces)) {
    log.info('image already finished; job skipped', { event: 'job.skip' });
    return {
      outcome: 'already-finished',
      written: 0,
      omitted: 0,
      skipped: job.variants.length,
      manifestWritten: false,
    };
  }

  const prefix = `${job.imageId}/`;
  const before = new Set((await listObjects(images, prefix)).map((file) => file.name));
  const needed = missingVariants(job.imageId, job.variants, before);
  let written = 0;
  let omitted = 0;

  if (needed.length > 0) {
    const source = deps.storage
      .bucket(job.original.bucket)
      .file(job.original.name, { generation: Number(job.original.generation) });
    const original = await downloadOrUndefined(source);
    if (!original) {
      // Retryable: the bytes are not the problem, and re-submitting them stores a new original.
      const error = transient('original_missing', 'The original image is gone; upload the same file again to retry.');
      await recordFailure(deps, job.imageId, error, writer, undefined, job.dispatch);
      return { outcome: 'failed', written: 0, omitted: 0, skipped: 0, manifestWritten: false };
    }
    let cpuMark = cpuStart;
    try {
      await renderVariants(
        original,
        needed,
        {
          encoders: encoderSettingsFromConfig(deps.config),
          keepMetadata: deps.config.KEEP_METADATA,
          limitInputPixels: deps.config.MAX_INPUT_PIXELS,
          maxFrames: deps.config.MAX_INPUT_FRAMES,
          deadline: deps.now().getTime() + deps.config.JOB_TIME_BUDGET_SECONDS * 1000,
          timings,
          crops: job.info.crops,
          placeholderFor: placeholderVariantOf(job.plan),
          autoQuality: autoQualityFromConfig(deps.config, searches),
        },
        async (variant) => {
          const cpuMs = cpuMsSince(cpuMark);
          cpuMark = process.cpuUsage();
          const spec = {
            width: variant.width,
            format: variant.format,
            ...(variant.aspect ? { aspect: variant.aspect } : {}),
          };
          if (omitAsLarger(spec, variant.data.length, original.length, job.plan)) {
            // Not written: the original serves better. The marker settles it for the fan-in.
            const marker = await createIfAbsent(
              images.file(omittedVariantName(job.imageId, variant.width, variant.format, variant.aspect)),
              '',
              {
                contentType: 'text/plain',
                cacheControl: RECORD_CACHE_CONTROL,
                metadata: {
                  [OMITTED_METADATA.width]: String(variant.width),
                  [OMITTED_METADATA.height]: String(variant.height),
                  [OMITTED_METADATA.bytes]: String(variant.data.length),
                  [OMITTED_METADATA.reason]: LARGER_THAN_ORIGINAL,
                  [OMITTED_METADATA.sourceGeneration]: job.original.generation,
                  [OMITTED_METADATA.cpuMs]: String(cpuMs),
                },
              },
            );
            if (marker.created) omitted++;
            return;
          }
          const result = await createIfAbsent(
            images.file(variantName(job.imageId, variant.width, variant.format, variant.aspect)),
            variant.data,
            {
              contentType: variant.contentType,
              cacheControl: VARIANT_CACHE_CONTROL,
              metadata: {
                [VARIANT_METADATA.width]: String(variant.width),
                [VARIANT_METADATA.height]: String(variant.height),
                [VARIANT_METADATA.sourceGeneration]: job.original.generation,
                [VARIANT_METADATA.cpuMs]: String(cpuMs),
                [VARIANT_METADATA.quality]: String(variant.quality),
                ...(variant.crop ? { [VARIANT_METADATA.crop]: cropMetadata(variant.crop) } : {}),
                ...(variant.placeholder
                  ? { [VARIANT_METADATA.placeholder]: placeholderMetadata(variant.placeholder) }
                  : {}),
              },
            },
          );
          if (result.created) written++;
        },
      );
    } catch (error) {
      if (error instanceof PipelineError && classifyError(error) === 'permanent') {
        await recordFailure(deps, job.imageId, error, writer, undefined, job.dispatch);
        return {
          outcome: 'failed',
          written,
          omitted,
          skipped: job.variants.length - needed.length,
          manifestWritten: false,
        };
      }
      throw error;
    }
  }
  const skipped = job.variants.length - written - omitted;
  // A delete that raced this job: it wrote its tombstone before listing the folder, so what this
  // job wrote after that listing is found here and removed (docs/record-protocol.md, "Delete").
  if (written + omitted > 0 && (await isDeleted(deps, job.imageId))) {
    await removeImageObjects(deps, job.imageId, true);
    log.info('image deleted while the job ran; its variants removed', { event: 'job.deleted', written, omitted });
    return { outcome: 'already-finished', written, omitted, skipped, manifestWritten: false };
  }

  // Fan-in: listings are strongly consistent, so of two jobs finishing together at least one
  // sees the other's variants; the manifest's create-if-absent picks one writer.
  const files = await listObjects(images, prefix);
  const names = new Set(files.map((file) => file.name));
  if (missingVariants(job.imageId, job.plan, names).length > 0) {
    log.info('job done; other jobs still running', { event: DONE.event, written, omitted, skipped, ...doneFields() });
    return { outcome: 'partial', written, omitted, skipped, manifestWritten: false };
  }
  // Every planned variant is written or left out (its omission marker): the manifest lists each where it is.
  const leftOut = renderOmissions(job.imageId, job.plan, names, omissionObjectsOf(files));
  const allOmitted = [...(job.omitted ?? []), ...leftOut];
  const now = deps.now();
  const built = buildManifest({
    id: job.imageId,
    original: { ...job.info, name: job.original.name, generation: job.original.generation },
    plan: job.plan.filter((v) => names.has(variantName(job.imageId, v.width, v.format, v.aspect))),
    ...(allOmitted.length > 0 ? { omitted: allOmitted } : {}),
    objects: variantObjectsOf(files),
    baseUrl: publicBaseUrl(deps.config),
    now,
    ...(job.recipe ? { recipe: job.recipe } : {}),
  });
  const uploadToReadyMs = job.acceptedAt ? Math.max(0, now.getTime() - new Date(job.acceptedAt).getTime()) : undefined;
  const manifest = {
    ...built,
    processing: { ...(uploadToReadyMs !== undefined ? { uploadToReadyMs } : {}), cpuSeconds: cpuSecondsOf(files) },
  };
  const outcome =
    job.replaces === undefined
      ? await writeManifest(deps, manifest, writer)
      : await writeUpdatedManifest(deps, manifest, writer, job.replaces);
  log.info(outcome === 'created' ? 'image ready' : 'job done; manifest already written', {
    event: DONE.event,
    written,
    omitted,
    skipped,
    manifest: outcome,
    ...doneFields(),
  });
  return { outcome: 'completed', written, omitted, skipped, manifestWritten: outcome === 'created' };
}
