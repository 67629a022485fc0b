/**
 * Turning a claimed image into jobs on the jobs topic: the fan-out. Used by `upload`, `ingest`,
 * cleanup's re-dispatch and the reprocess backfill, so all of them plan the same way.
 */
import type { Config } from '../core/config.js';
import type { PipelineDeps } from '../cloud/deps.js';
import type { JobMessage, OriginalInfo, OriginalRef } from '../core/schemas.js';
import { planImage, splitIntoJobs } from '../image/plan.js';
import { previewFirst } from '../image/preview.js';
import { publishJobs } from '../cloud/publish.js';
import { type RECIPE_KEYS, recipeOf } from '../core/recipe.js';
import { transactImage } from '../state/image-doc.js';
import { markDispatched, releaseClaim } from '../state/transitions.js';
import { stateSettingsOf } from '../state/policy.js';

/** Optional facts a dispatch carries into its jobs. */
export interface JobExtras {
  /** The recipe hash an update job brings the image up from (docs/state.md, "Updates"). */
  readonly replaces?: string | undefined;
  /** When the image was accepted (ISO time), for upload→ready. */
  readonly acceptedAt?: string | undefined;
}

/**
 * The jobs for one image: plan its variants, then split them by the fan-out strategy, the job
 * holding the preview first unless PREVIEW_FIRST is off (preview.ts).
 */
export function buildJobs(
  config: Pick<Config, (typeof RECIPE_KEYS)[number] | 'FANOUT_STRATEGY'> &
    Partial<Pick<Config, 'ASPECTS' | 'PREVIEW_FIRST'>>,
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
  const split = splitIntoJobs(plan, info, config.FANOUT_STRATEGY);
  const groups = config.PREVIEW_FIRST === false ? split : previewFirst(split, plan);
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
}

/**
 * Publishes an image's jobs for a dispatch it has claimed, then marks the document dispatched.
 * A failed publish gives the claim back (due at once for the next identical upload or cleanup)
 * and throws a transient error; nothing is lost.
 */
export async function dispatchImage(deps: PipelineDeps, target: DispatchTarget): Promise<JobMessage[]> {
  const { id, original, info, dispatch, replaces, acceptedAt } = target;
  const jobs = buildJobs(deps.config, id, original, info, dispatch, deps.now(), { replaces, acceptedAt });
  try {
    await publishJobs(deps.pubsub, deps.config.JOBS_TOPIC, jobs);
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
    variants: jobs[0]?.plan.length,
    dispatch,
    ...(replaces !== undefined ? { replaces } : {}),
  });
  return jobs;
}
