/**
 * Turning a claimed image into jobs on the jobs topic: the fan-out. Used by `upload`, `ingest`,
 * cleanup's re-dispatch and the reprocess backfill, so all of them plan the same way. An accept
 * that holds the original's bytes runs a job 0 of the preview alone itself instead of publishing
 * it (preview.ts; docs/state.md "Progressive status").
 */
import type { Config } from '../core/config.js';
import type { PipelineDeps } from '../cloud/deps.js';
import type { JobMessage, OriginalInfo, OriginalRef } from '../core/schemas.js';
import { planImage } from '../image/plan.js';
import { isPreviewJob, jobGroups, previewAlone } from '../image/preview.js';
import { publishJobs } from '../cloud/publish.js';
import { type RECIPE_KEYS, recipeOf } from '../core/recipe.js';
import { transactImage } from '../state/image-doc.js';
import { markDispatched, releaseClaim } from '../state/transitions.js';
import { stateSettingsOf } from '../state/policy.js';
import { type JobResult, runJob } from './run-job.js';

/** Optional facts a dispatch carries into its jobs. */
export interface JobExtras {
  /** The recipe hash an update job brings the image up from (docs/state.md, "Updates"). */
  readonly replaces?: string | undefined;
  /** When the image was accepted (ISO time), for upload→ready. */
  readonly acceptedAt?: string | undefined;
}

/**
 * The jobs for one image: plan its variants, then split them by the fan-out strategy, the
 * preview scheduled by PREVIEW (preview.ts jobGroups).
 */
export function buildJobs(
  config: Pick<Config, (typeof RECIPE_KEYS)[number] | 'FANOUT_STRATEGY'> & Partial<Pick<Config, 'ASPECTS' | 'PREVIEW'>>,
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
  const groups = jobGroups(plan, info, config, replaces !== undefined);
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

/** What a dispatch needs to know of its image. */
export interface DispatchTarget {
  readonly id: string;
  readonly original: OriginalRef;
  readonly info: OriginalInfo;
  readonly dispatch: number;
  /** The recipe hash an update replaces (update jobs). */
  readonly replaces?: string | undefined;
  /** When the image was accepted (ISO time), for upload→ready. */
  readonly acceptedAt?: string | undefined;
  /** The original's bytes, when the caller holds them (accept): job 0 of the preview alone runs here. */
  readonly bytes?: Buffer | undefined;
}

/** What a dispatch did: its jobs, and the variants its job 0 wrote when it ran here. */
export interface Dispatched {
  readonly jobs: JobMessage[];
  readonly inline?: JobResult;
}

/**
 * Publishes an image's jobs for a dispatch it has claimed, then marks the document dispatched.
 * Given the bytes, it first runs a job 0 of the preview alone here ({@link runHere}) and
 * publishes the others. A failed publish gives the claim back (due at once for the next identical
 * upload or cleanup) and throws a transient error; nothing is lost.
 */
export async function dispatchImage(deps: PipelineDeps, target: DispatchTarget): Promise<Dispatched> {
  const { id, original, info, dispatch, replaces, acceptedAt, bytes } = target;
  const jobs = buildJobs(deps.config, id, original, info, dispatch, deps.now(), { replaces, acceptedAt });
  const [first] = jobs;
  const here =
    bytes &&
    first &&
    previewAlone(info, deps.config.PREVIEW, replaces !== undefined) &&
    isPreviewJob(first.variants, first.plan)
      ? await runHere(deps, first, bytes)
      : undefined;
  // The image failed for good in job 0 (recorded, image.failed queued): the other jobs would only skip.
  if (here?.outcome === 'failed') return { jobs, inline: here };
  try {
    await publishJobs(deps.pubsub, deps.config.JOBS_TOPIC, here ? jobs.slice(1) : jobs);
  } catch (error) {
    await transactImage(deps, id, releaseClaim(dispatch)).catch(() => undefined);
    throw error;
  }
  await transactImage(
    deps,
    id,
    markDispatched(dispatch, jobs.length, jobs[0]?.plan.length ?? 0, stateSettingsOf(deps.config)),
  );
  deps.log.info('jobs published', {
    event: 'dispatch',
    imageId: id,
    jobs: jobs.length,
    published: here ? jobs.length - 1 : jobs.length,
    variants: jobs[0]?.plan.length,
    dispatch,
    ...(replaces !== undefined ? { replaces } : {}),
  });
  return { jobs, ...(here ? { inline: here } : {}) };
}

/**
 * Runs job 0 (the preview alone) in this process from the bytes already here, before the other
 * jobs are published so that nothing of this image competes with it: no publish, no download.
 * Undefined when it failed for any reason but the image's own (which runJob records): the job is
 * then published with the others and retried like any job. If this process dies first, the claim
 * is never marked dispatched and cleanup dispatches the image after the grace.
 */
async function runHere(deps: PipelineDeps, job: JobMessage, bytes: Buffer): Promise<JobResult | undefined> {
  try {
    return await runJob(deps, job, bytes);
  } catch (error) {
    deps.log.warn('preview job not run here; published with the others', {
      event: 'dispatch.inline',
      imageId: job.imageId,
      dispatch: job.dispatch,
      reason: error instanceof Error ? error.message : String(error),
    });
    return undefined;
  }
}
