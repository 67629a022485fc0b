/**
 * Turning a stored original into jobs on the jobs topic: the fan-out. Used by `upload`,
 * `ingest` and cleanup's re-dispatch, so all three plan the same way.
 */
import type { File, FileMetadata } from '@google-cloud/storage';
import type { Config } from '../core/config.js';
import type { PipelineDeps } from '../cloud/deps.js';
import { AspectCrop, Aspect, type JobMessage, type OriginalInfo, type OriginalRef } from '../core/schemas.js';
import { z } from 'zod';
import { guardStorage } from '../cloud/objects.js';
import { planImage, splitIntoJobs } from '../image/plan.js';
import { publishJobs } from '../cloud/publish.js';
import { type RECIPE_KEYS, recipeOf } from '../core/recipe.js';
import { ORIGINAL_METADATA } from '../core/naming.js';

/** Optional facts a dispatch carries into its jobs. */
export interface JobExtras {
  /** The recipe hash an update job brings the image up from (docs/record-protocol.md, "Updates"). */
  readonly replaces?: string | undefined;
  /** When the image was accepted (ISO time), for upload→ready. */
  readonly acceptedAt?: string | undefined;
}

/** The jobs for one image: plan its variants, then split them by the fan-out strategy. */
export function buildJobs(
  config: Pick<Config, (typeof RECIPE_KEYS)[number] | 'FANOUT_STRATEGY'> & Partial<Pick<Config, 'ASPECTS'>>,
  imageId: string,
  original: OriginalRef,
  info: OriginalInfo,
  dispatch: number,
  now: Date,
  extras: JobExtras = {},
): JobMessage[] {
  const { replaces, acceptedAt } = extras;
  const { variants: plan, omitted } = planImage(info, config);
  const recipe = recipeOf(config);
  const groups = splitIntoJobs(plan, info, config.FANOUT_STRATEGY);
  return groups.map((variants, index) => ({
    v: 1,
    kind: 'resize',
    imageId,
    original,
    info,
    job: { index, count: groups.length },
    variants,
    plan,
    ...(omitted.length > 0 ? { omitted } : {}),
    dispatch,
    recipe,
    ...(replaces !== undefined ? { replaces } : {}),
    createdAt: now.toISOString(),
    ...(acceptedAt ? { acceptedAt } : {}),
  }));
}

/** Reads back the probe facts stored on an original, or undefined if they are not all there. */
export function originalInfoFromMetadata(metadata: FileMetadata): OriginalInfo | undefined {
  const custom = metadata.metadata ?? {};
  const width = Number(custom[ORIGINAL_METADATA.width]);
  const height = Number(custom[ORIGINAL_METADATA.height]);
  const format = custom[ORIGINAL_METADATA.format];
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0 || typeof format !== 'string')
    return undefined;
  const filename = custom[ORIGINAL_METADATA.filename];
  const crops = cropsFromMetadata(custom[ORIGINAL_METADATA.crops]);
  return {
    format,
    width,
    height,
    bytes: Number(metadata.size ?? 0),
    contentType: metadata.contentType ?? 'application/octet-stream',
    ...(typeof filename === 'string' && filename ? { filename } : {}),
    ...(crops ? { crops } : {}),
  };
}

const StoredCrops = z.record(Aspect, AspectCrop);

/** `OriginalInfo.crops` as stored in an original's metadata. */
export function cropsToMetadata(crops: NonNullable<OriginalInfo['crops']>): string {
  return JSON.stringify(crops);
}

/** Reads {@link cropsToMetadata} back; undefined when absent or unreadable (no aspect variants then). */
function cropsFromMetadata(value: unknown): OriginalInfo['crops'] {
  if (typeof value !== 'string') return undefined;
  try {
    const parsed = StoredCrops.safeParse(JSON.parse(value));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Publishes an original's jobs and then stamps `dispatchedAt` (and the re-dispatch count) on it,
 * so cleanup knows the image is in flight. Throws transient errors; nothing is lost on failure,
 * because an original without `dispatchedAt` is dispatched by the next cleanup pass.
 */
export async function dispatchOriginal(
  deps: PipelineDeps,
  file: File,
  generation: string,
  imageId: string,
  info: OriginalInfo,
  dispatch: number,
  extras: JobExtras = {},
): Promise<JobMessage[]> {
  const original: OriginalRef = { bucket: file.bucket.name, name: file.name, generation };
  const jobs = buildJobs(deps.config, imageId, original, info, dispatch, deps.now(), extras);
  const { replaces } = extras;
  await publishJobs(deps.pubsub, deps.config.JOBS_TOPIC, jobs);
  await guardStorage(`stamp ${file.name}`, () =>
    file.setMetadata({
      metadata: {
        [ORIGINAL_METADATA.dispatchedAt]: deps.now().toISOString(),
        [ORIGINAL_METADATA.redispatches]: String(dispatch),
        [ORIGINAL_METADATA.plannedVariants]: String(jobs[0]?.plan.length ?? 0),
        ...(replaces !== undefined ? { [ORIGINAL_METADATA.updateRecipe]: jobs[0]?.recipe?.hash ?? '' } : {}),
      },
    }),
  );
  deps.log.info('jobs published', {
    event: 'dispatch',
    imageId,
    jobs: jobs.length,
    variants: jobs[0]?.plan.length,
    dispatch,
    ...(replaces !== undefined ? { replaces } : {}),
  });
  return jobs;
}
