/**
 * The reprocess backfill: finds ready images whose manifest has another recipe than the deployed
 * one and dispatches update jobs for them, bounded three ways against runaway cost (the failure
 * mode that made the Firebase extension drop its backfill): at most REPROCESS_MAX_PER_PASS images
 * per pass, at most REPROCESS_CPU_SECONDS_PER_DAY estimated CPU-seconds per UTC day, and a
 * persistent cursor (`cleanup/reprocess`, shared/state/cursors.ts) so a pass resumes where the
 * last stopped instead of starting over. The outdated images are found by query (ready, another
 * recipe), so a pass reads only those. The dry run prices the whole backlog first.
 * docs/state.md ("Updates") has the protocol; docs/performance.md the measured run.
 */
import { randomUUID } from 'node:crypto';
import { FieldPath, type Query } from '@google-cloud/firestore';
import type { PipelineDeps } from '../cloud/deps.js';
import { dispatchImage } from './dispatch.js';
import type { OriginalInfo } from '../core/schemas.js';
import { REPROCESS_BUDGET_METADATA, variantName } from '../core/naming.js';
import { estimateJobCost, planImage, planVariants, splitIntoJobs } from '../image/plan.js';
import { recipeOf } from '../core/recipe.js';
import { advanceStep, claimStep, readCursor } from '../state/cursors.js';
import {
  countFirestore,
  guardFirestore,
  IMAGES_COLLECTION,
  type ImageDoc,
  imageDocFrom,
  transactImage,
} from '../state/image-doc.js';
import { claimUpdate } from '../state/transitions.js';

/**
 * CPU milliseconds of one unit of shared/plan.ts's cost model ("one megapixel of plain JPEG
 * encode"): the bench's floor measured JPEG q80 at 16 ms per output megapixel on the reference
 * machine (docs/performance.md, "Where the CPU goes"; bench/report.ts `costModel`).
 */
export const CPU_MS_PER_COST_UNIT = 16;
/**
 * Cloud Run (functions gen2) request-based prices, tier 1 regions, as published on
 * https://cloud.google.com/run/pricing (read 2026-12): $0.000024 per vCPU-second and $0.0000025
 * per GiB-second. The resize function has 2 vCPU and 2 GiB (terraform), and the bench keeps both
 * vCPUs busy, so one CPU-second holds the instance's memory for half a second.
 */
export const PRICES = { vcpuSecond: 0.000024, gibSecond: 0.0000025, vcpus: 2, gib: 2 } as const;

/** Estimated dollars for some CPU-seconds of resize work. */
export function costOf(cpuSeconds: number): number {
  return cpuSeconds * PRICES.vcpuSecond + (cpuSeconds / PRICES.vcpus) * PRICES.gib * PRICES.gibSecond;
}

/** The cursor step whose document is `cleanup/reprocess` (its budget fields: REPROCESS_BUDGET_METADATA). */
export const REPROCESS_STEP = 'reprocess';

/** Estimated CPU-seconds to bring one image up to date: the decodes and encodes of its missing variants. */
export function estimateUpdateCpuSeconds(
  info: OriginalInfo,
  existing: ReadonlySet<string>,
  id: string,
  config: Parameters<typeof planImage>[1] & { FANOUT_STRATEGY: Parameters<typeof splitIntoJobs>[2] },
): number {
  const missing = planImage(info, config).variants.filter(
    (v) => !existing.has(variantName(id, v.width, v.format, undefined, v.animated)),
  );
  if (missing.length === 0) return 0;
  const units = splitIntoJobs(missing, info, config.FANOUT_STRATEGY).reduce(
    (sum, group) => sum + estimateJobCost(group, info),
    0,
  );
  return (units * CPU_MS_PER_COST_UNIT) / 1000;
}

/** What one reprocess run did (or, dry, would do). */
export interface ReprocessSummary {
  dryRun: boolean;
  recipe: string;
  /** Documents looked at (ready with another recipe: all `ready` and `outdated`), and those lacking an original. */
  reviewed: number;
  ready: number;
  outdated: number;
  noOriginal: number;
  /** Outdated images whose update was dispatched now, or was still in flight. */
  dispatched: number;
  inFlight: number;
  /** Estimated CPU-seconds and dollars: of every outdated image reviewed (dry) or of the dispatches. */
  estimatedCpuSeconds: number;
  estimatedCostUsd: number;
  /** Images whose update alone exceeds the daily budget: never dispatched, counted. */
  overBudget: number;
  /** The day's budget: spent before and after this run, and the limit. */
  budget: { day: string; spentBefore: number; spentAfter: number; limit: number };
  /** Why the run ended: the listing's end, the per-pass cap, the day's budget, time, or another run holds the cursor. */
  stoppedBy: 'end' | 'max-per-pass' | 'budget' | 'time' | 'busy';
  seconds: number;
}

/** Ready images made with another recipe, in a stable order the cursor can resume in. */
function outdatedQuery(deps: PipelineDeps, recipe: string, after: string | undefined): Query {
  let query = deps.firestore
    .collection(IMAGES_COLLECTION)
    .where('status', '==', 'ready')
    .where('recipe', '!=', recipe)
    .orderBy('recipe')
    .orderBy(FieldPath.documentId());
  if (after) {
    const [lastRecipe, lastId] = JSON.parse(after) as [string, string];
    query = query.startAfter(lastRecipe, lastId);
  }
  return query;
}

/**
 * One bounded pass. A dry run reads every outdated image from the start (no cursor, no writes)
 * and prices the backlog; a real one claims the cursor, dispatches until a bound, and moves the
 * cursor past the last image it finished (to the start again at the end).
 */
export async function runReprocess(
  deps: PipelineDeps,
  options: { dryRun: boolean; until?: number },
): Promise<ReprocessSummary> {
  const { config } = deps;
  const started = Date.now();
  const until = options.until ?? started + config.CLEANUP_MAX_SECONDS * 1000;
  const recipe = recipeOf(config).hash;
  const day = deps.now().toISOString().slice(0, 10);
  const summary: ReprocessSummary = {
    dryRun: options.dryRun,
    recipe,
    reviewed: 0,
    ready: 0,
    outdated: 0,
    noOriginal: 0,
    dispatched: 0,
    inFlight: 0,
    estimatedCpuSeconds: 0,
    estimatedCostUsd: 0,
    overBudget: 0,
    budget: { day, spentBefore: 0, spentAfter: 0, limit: config.REPROCESS_CPU_SECONDS_PER_DAY },
    stoppedBy: 'end',
    seconds: 0,
  };
  const claim = options.dryRun
    ? undefined
    : await claimStep(
        deps,
        REPROCESS_STEP,
        randomUUID(),
        new Date(deps.now().getTime() + Math.max(0, until - Date.now()) + 60_000),
      );
  if (claim === 'busy') {
    summary.stoppedBy = 'busy';
    return summary;
  }
  const cursor = claim ? claim.after : options.dryRun ? undefined : await readCursor(deps, REPROCESS_STEP);
  let spent =
    claim && claim.fields[REPROCESS_BUDGET_METADATA.day] === day
      ? Number(claim.fields[REPROCESS_BUDGET_METADATA.spent]) || 0
      : 0;
  summary.budget.spentBefore = spent;
  let last = cursor;

  /** Reviews one outdated image; 'stop' leaves the cursor before it. */
  const review = async (doc: ImageDoc): Promise<'done' | 'stop'> => {
    summary.ready++;
    summary.outdated++;
    if (!doc.original) {
      // Deleted by retention: only a re-upload of the bytes can update it.
      summary.noOriginal++;
      return 'done';
    }
    const existing = new Set(doc.manifest?.variants.map((v) => v.name) ?? []);
    const cost = estimateUpdateCpuSeconds(doc.info, existing, doc.id, config);
    if (options.dryRun) {
      summary.estimatedCpuSeconds += cost;
      return 'done';
    }
    if (cost > config.REPROCESS_CPU_SECONDS_PER_DAY) {
      summary.overBudget++;
      deps.log.warn('image update exceeds the daily reprocess budget alone; skipped', {
        event: 'reprocess.skip',
        imageId: doc.id,
        cpuSeconds: cost,
      });
      return 'done';
    }
    if (summary.dispatched >= config.REPROCESS_MAX_PER_PASS) {
      summary.stoppedBy = 'max-per-pass';
      return 'stop';
    }
    if (spent + cost > config.REPROCESS_CPU_SECONDS_PER_DAY) {
      summary.stoppedBy = 'budget';
      return 'stop';
    }
    const planned = planVariants(doc.info, config).length;
    const decision = await transactImage(deps, doc.id, claimUpdate(recipe, planned, { requireOriginal: true }));
    if (decision.kind !== 'claimed' || !decision.original) {
      if (decision.kind === 'in-flight') summary.inFlight++;
      return 'done';
    }
    deps.log.info('image made with another recipe; updating', {
      event: 'accept.update',
      imageId: doc.id,
      replaces: decision.replaces,
      recipe,
      dispatch: decision.dispatch,
      source: 'reprocess',
    });
    await dispatchImage(deps, {
      id: doc.id,
      original: decision.original,
      info: doc.info,
      dispatch: decision.dispatch,
      replaces: decision.replaces,
    });
    summary.dispatched++;
    spent += cost;
    summary.estimatedCpuSeconds += cost;
    return 'done';
  };

  try {
    let after = cursor;
    outer: for (;;) {
      if (Date.now() >= until) {
        summary.stoppedBy = 'time';
        break;
      }
      const page = await guardFirestore('query outdated images', () =>
        outdatedQuery(deps, recipe, after).limit(500).get(),
      );
      countFirestore(Math.max(1, page.size));
      for (const snapshot of page.docs) {
        const doc = imageDocFrom(snapshot);
        if (!doc) continue;
        if (Date.now() >= until) {
          summary.stoppedBy = 'time';
          break outer;
        }
        if ((await review(doc)) === 'stop') break outer;
        summary.reviewed++;
        last = JSON.stringify([doc.recipe, doc.id]);
        after = last;
      }
      if (page.docs.length < 500) {
        // The end: the next pass starts from the beginning again.
        last = undefined;
        break;
      }
    }
  } finally {
    if (claim) {
      const moved = await advanceStep(claim, last, {
        [REPROCESS_BUDGET_METADATA.day]: day,
        [REPROCESS_BUDGET_METADATA.spent]: String(Math.round(spent * 10) / 10),
      });
      if (!moved) deps.log.warn('reprocess cursor was taken over; not moved', { step: REPROCESS_STEP });
    }
  }
  summary.budget.spentAfter = Math.round(spent * 10) / 10;
  summary.estimatedCpuSeconds = Math.round(summary.estimatedCpuSeconds * 10) / 10;
  summary.estimatedCostUsd = Math.round(costOf(summary.estimatedCpuSeconds) * 10_000) / 10_000;
  summary.seconds = Math.round((Date.now() - started) / 100) / 10;
  deps.log.notice(options.dryRun ? 'reprocess dry run finished' : 'reprocess pass finished', {
    event: 'reprocess',
    summary,
  });
  return summary;
}
