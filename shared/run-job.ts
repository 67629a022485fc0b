/**
 * One resize job, start to finish: skip what exists, render the rest from one decode, write each
 * variant once, then the fan-in. Safe under duplicate and concurrent delivery: every write is
 * create-if-absent, and the manifest's creator alone announces `image.ready`.
 */
import type { File } from '@google-cloud/storage';
import { publicBaseUrl } from './config.js';
import type { PipelineDeps } from './deps.js';
import { classifyError, permanent, PipelineError } from './errors.js';
import { buildManifest, missingVariants, type VariantObject } from './manifest.js';
import { FailureRecordV1, ManifestV1, type JobMessage } from './messages.js';
import { errorRecordName, manifestName, VARIANT_CACHE_CONTROL, variantName } from './naming.js';
import { createIfAbsent, downloadOrUndefined, listObjects, metadataOrUndefined, readJsonObject } from './objects.js';
import { eventFor, recordFailure, settleAnnouncement, writeManifest } from './records.js';
import { encoderSettingsFromConfig, renderVariants } from './render.js';
import { cropMetadata, parseCropMetadata } from './crop.js';

/** Custom metadata keys on variant objects; the fan-in reads width and height back. */
export const VARIANT_METADATA = { width: 'width', height: 'height', sourceGeneration: 'sourceGeneration', crop: 'crop' } as const;

/** How a job ended. */
export interface JobResult {
  readonly outcome: 'completed' | 'partial' | 'already-finished' | 'failed';
  /** Variants this delivery wrote. */
  readonly written: number;
  /** Variants that already existed (duplicate delivery) or lost a create race. */
  readonly skipped: number;
  /** True when this delivery created the manifest. */
  readonly manifestWritten: boolean;
}

/** Who a job is, in record metadata: duplicates of the same job share it. */
export function jobWriter(job: JobMessage): string {
  return `job:${job.imageId}:${job.dispatch}:${job.job.index}`;
}

function variantObjectsOf(files: readonly File[]): Map<string, VariantObject> {
  const objects = new Map<string, VariantObject>();
  for (const file of files) {
    const custom = file.metadata.metadata ?? {};
    const width = Number(custom[VARIANT_METADATA.width]);
    const height = Number(custom[VARIANT_METADATA.height]);
    if (!Number.isInteger(width) || !Number.isInteger(height)) continue;
    const crop = parseCropMetadata(custom[VARIANT_METADATA.crop]);
    objects.set(file.name, { name: file.name, bytes: Number(file.metadata.size ?? 0), width, height, ...(crop ? { crop } : {}) });
  }
  return objects;
}

/** Finishes the announcement of an existing terminal record, if this job wrote it. */
async function settleExisting(deps: PipelineDeps, job: JobMessage): Promise<boolean> {
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  const writer = jobWriter(job);
  for (const [name, kind] of [
    [manifestName(job.imageId), 'manifest'],
    [errorRecordName(job.imageId), 'failure'],
  ] as const) {
    const file = images.file(name);
    const metadata = await metadataOrUndefined(file);
    if (!metadata) continue;
    await settleAnnouncement(deps, file, metadata, writer, async () => {
      if (kind === 'manifest') {
        const manifest = await readJsonObject(file, ManifestV1);
        return manifest && eventFor({ kind, manifest, bucket: images.name }, deps.now());
      }
      const record = await readJsonObject(file, FailureRecordV1);
      return record && eventFor({ kind, record }, deps.now());
    });
    return true;
  }
  return false;
}

/**
 * Runs a job. Returns normally when the job is done or failed for good (the caller acks);
 * throws a transient error when a retry can help (the caller lets Pub/Sub redeliver).
 */
export async function runJob(deps: PipelineDeps, job: JobMessage): Promise<JobResult> {
  const log = deps.log.child({ imageId: job.imageId, job: `${job.job.index + 1}/${job.job.count}` });
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  const writer = jobWriter(job);

  if (await settleExisting(deps, job)) {
    log.info('image already finished; job skipped', { event: 'job.skip' });
    return { outcome: 'already-finished', written: 0, skipped: job.variants.length, manifestWritten: false };
  }

  const prefix = `${job.imageId}/`;
  const before = new Set((await listObjects(images, prefix)).map((file) => file.name));
  const needed = missingVariants(job.imageId, job.variants, before);
  let written = 0;

  if (needed.length > 0) {
    const source = deps.storage.bucket(job.original.bucket).file(job.original.name, { generation: Number(job.original.generation) });
    const original = await downloadOrUndefined(source);
    if (!original) {
      await recordFailure(deps, job.imageId, permanent('image_failed', 'The original image is gone; it cannot be processed.'), writer);
      return { outcome: 'failed', written: 0, skipped: 0, manifestWritten: false };
    }
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
          crops: job.info.crops,
        },
        async (variant) => {
          const result = await createIfAbsent(images.file(variantName(job.imageId, variant.width, variant.format, variant.aspect)), variant.data, {
            contentType: variant.contentType,
            cacheControl: VARIANT_CACHE_CONTROL,
            metadata: {
              [VARIANT_METADATA.width]: String(variant.width),
              [VARIANT_METADATA.height]: String(variant.height),
              [VARIANT_METADATA.sourceGeneration]: job.original.generation,
              ...(variant.crop ? { [VARIANT_METADATA.crop]: cropMetadata(variant.crop) } : {}),
            },
          });
          if (result.created) written++;
        },
      );
    } catch (error) {
      if (error instanceof PipelineError && classifyError(error) === 'permanent') {
        await recordFailure(deps, job.imageId, error, writer);
        return { outcome: 'failed', written, skipped: job.variants.length - needed.length, manifestWritten: false };
      }
      throw error;
    }
  }
  const skipped = job.variants.length - written;

  // Fan-in: listings are strongly consistent, so of two jobs finishing together at least one
  // sees the other's variants; the manifest's create-if-absent picks one writer.
  const files = await listObjects(images, prefix);
  const names = new Set(files.map((file) => file.name));
  if (missingVariants(job.imageId, job.plan, names).length > 0) {
    log.info('job done; other jobs still running', { event: 'job.done', written, skipped });
    return { outcome: 'partial', written, skipped, manifestWritten: false };
  }
  const manifest = buildManifest({
    id: job.imageId,
    original: { ...job.info, name: job.original.name, generation: job.original.generation },
    plan: job.plan,
    ...(job.omitted ? { omitted: job.omitted } : {}),
    objects: variantObjectsOf(files),
    baseUrl: publicBaseUrl(deps.config),
    now: deps.now(),
  });
  const outcome = await writeManifest(deps, manifest, writer);
  if (outcome === 'exists') await settleExisting(deps, job);
  log.info(outcome === 'created' ? 'image ready' : 'job done; manifest already written', {
    event: 'job.done',
    written,
    skipped,
    manifest: outcome,
  });
  return { outcome: 'completed', written, skipped, manifestWritten: outcome === 'created' };
}
