/**
 * cleanup's pass, run by Cloud Scheduler every 15 minutes. Most of its work is found by query on
 * the image documents, so a pass costs what is due, not how many images exist: stuck processing
 * (`staleAt` passed), events left in an outbox (`outboxDueAt` passed), originals past retention
 * (`retainUntil`), deleted images whose objects may be left (`purgeAt`). Dead-lettered jobs come
 * from their subscription; stale `incoming/` objects from a listing; and a slow sweep with its own
 * cursor removes objects that no document accounts for (cleanup-sweep.ts). docs/cleanup.md.
 */
import { randomUUID } from 'node:crypto';
import type { Query } from '@google-cloud/firestore';
import type { PipelineDeps } from '../cloud/deps.js';
import { dispatchImage } from './dispatch.js';
import { drainDeadLetters } from './dead-letters.js';
import { deleteIfPresent } from '../cloud/objects.js';
import { runReprocess, type ReprocessSummary } from './reprocess.js';
import {
  countFirestore,
  guardFirestore,
  IMAGES_COLLECTION,
  type ImageDoc,
  imageDocFrom,
  transactImage,
} from '../state/image-doc.js';
import { drainOutbox, purgeImageObjects } from '../state/outbox.js';
import { stateSettingsOf } from '../state/policy.js';
import { redispatchStuck, releaseOriginal } from '../state/upkeep.js';
import { reviewIncoming, sweepOrphans } from './cleanup-sweep.js';
import { parseTraceparent, runWithTrace } from '../cloud/trace.js';

/** The steps of a pass, in order. */
export const CLEANUP_STEPS = ['deadLetters', 'stuck', 'outbox', 'retention', 'purge', 'incoming', 'orphans'] as const;
/** One of {@link CLEANUP_STEPS}. */
export type CleanupStep = (typeof CLEANUP_STEPS)[number];

/**
 * Each step's share of CLEANUP_MAX_SECONDS. A step's deadline is its share of the time still
 * left, so a step that finishes early passes its time on and a slow one cannot starve the rest.
 */
const TIME_SHARES: Readonly<Record<CleanupStep, number>> = {
  deadLetters: 2,
  stuck: 3,
  outbox: 1,
  retention: 1,
  purge: 1,
  incoming: 1,
  orphans: 2,
};

/** How a step ended in one pass. */
export type StepOutcome =
  /** It did everything that was due (or reviewed its whole listing once). */
  | 'complete'
  /** Its object or time budget, or the re-dispatch cap, ended it: the rest waits for the next pass. */
  | 'partial'
  /** Another pass holds its cursor. */
  | 'skipped'
  /** Not run (dead letters in a dry run). */
  | 'not-run'
  /** It threw; counted in `errors` and logged. */
  | 'failed';

/** Counts of one pass, logged as one line. */
export interface CleanupSummary {
  dryRun: boolean;
  examined: number;
  originalsDeleted: number;
  redispatched: number;
  /** Re-dispatches left for later passes because REDISPATCH_MAX_PER_PASS was reached. */
  redispatchDeferred: number;
  gaveUp: number;
  deadLettered: number;
  incomingDeleted: number;
  orphansDeleted: number;
  /** Deleted images whose leftover objects were looked for (and removed). */
  purged: number;
  /** Events published from an outbox whose writer did not. */
  announcementsSettled: number;
  errors: number;
  /** True when a budget ended some step before it had done everything due. */
  truncated: boolean;
  steps: Record<CleanupStep, { outcome: StepOutcome; reviewed: number }>;
  /** The reprocess backfill's pass, when REPROCESS=on (shared/reprocess.ts). */
  reprocess?: ReprocessSummary;
  seconds: number;
}

/** What a review says: go on, or stop the step here (this item not done). */
export type ReviewResult = 'done' | 'stop';

/** What the steps of one pass share. */
export interface PassContext {
  readonly deps: PipelineDeps;
  readonly now: Date;
  readonly dryRun: boolean;
  readonly passId: string;
  readonly summary: CleanupSummary;
  readonly log: PipelineDeps['log'];
  /** Re-dispatches this pass may still make. */
  redispatchesLeft: number;
}

/** Workers per step: each review is a few round trips. */
export const CONCURRENCY = 8;

/**
 * Reviews `items` in order with `limit` workers, starting no item once `expired()` says so.
 * Returns how many items, from the first, are done.
 */
export async function reviewInOrder<T>(
  items: readonly T[],
  limit: number,
  expired: () => boolean,
  work: (item: T) => Promise<ReviewResult>,
): Promise<number> {
  const done = new Array<boolean>(items.length).fill(false);
  const queue = items.entries();
  let stopAt = items.length;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (!expired()) {
        const next = queue.next();
        if (next.done || next.value[0] >= stopAt) break;
        const [index, item] = next.value;
        if ((await work(item)) === 'stop') stopAt = Math.min(stopAt, index);
        else done[index] = true;
      }
    }),
  );
  let count = 0;
  while (count < stopAt && done[count]) count++;
  return count;
}

/** Runs a review; an error on one item is counted and logged, and the step goes on. */
export async function guarded(
  ctx: PassContext,
  what: string,
  work: () => Promise<ReviewResult>,
): Promise<ReviewResult> {
  try {
    return await work();
  } catch (error) {
    ctx.summary.errors++;
    ctx.log.error(`cleanup step failed: ${what}`, { error });
    return 'done';
  }
}

/** The documents a query finds (at most CLEANUP_MAX_OBJECTS), each reviewed within the step's time. */
async function queryStep(
  ctx: PassContext,
  step: CleanupStep,
  query: Query,
  until: number,
  review: (doc: ImageDoc) => Promise<ReviewResult>,
): Promise<{ outcome: StepOutcome; reviewed: number }> {
  const limit = ctx.deps.config.CLEANUP_MAX_OBJECTS;
  const snapshot = await guardFirestore(`query for ${step}`, () => query.limit(limit).get());
  countFirestore(Math.max(1, snapshot.size));
  const docs = snapshot.docs.flatMap((d) => imageDocFrom(d) ?? []);
  const reviewed = await reviewInOrder(
    docs,
    CONCURRENCY,
    () => Date.now() >= until,
    (doc) => guarded(ctx, `${step} ${doc.id}`, () => review(doc)),
  );
  ctx.summary.examined += reviewed;
  return { outcome: reviewed === docs.length && docs.length < limit ? 'complete' : 'partial', reviewed };
}

/** Re-dispatches (or gives up on) an image whose work went quiet. */
async function reviewStuck(ctx: PassContext, doc: ImageDoc): Promise<ReviewResult> {
  const { deps, summary } = ctx;
  const settings = stateSettingsOf(deps.config);
  const preview = redispatchStuck(`cleanup:${ctx.passId}`, settings)(doc, ctx.now).result;
  if (preview.kind === 'not-due') return 'done';
  if (preview.kind === 'redispatch') {
    // The cap bounds what one pass adds to the jobs queue; the rest are found again next pass.
    if (ctx.redispatchesLeft <= 0) {
      summary.redispatchDeferred++;
      return 'stop';
    }
    ctx.redispatchesLeft--;
  }
  deps.log.info('cleanup decision', { event: 'cleanup', imageId: doc.id, action: preview.kind, dryRun: ctx.dryRun });
  if (ctx.dryRun) {
    if (preview.kind === 'redispatch') summary.redispatched++;
    else if (preview.kind === 'failed') summary.gaveUp++;
    return 'done';
  }
  const decision = await transactImage(deps, doc.id, redispatchStuck(`cleanup:${ctx.passId}`, settings));
  if (decision.kind === 'redispatch') {
    summary.redispatched++;
    const { doc: next } = decision;
    const dispatch = () =>
      dispatchImage(deps, {
        id: next.id,
        original: decision.original,
        info: next.info,
        dispatch: decision.dispatch,
        replaces: next.update?.replaces,
        acceptedAt: next.acceptedAt.toISOString(),
      });
    // Re-dispatched in its upload's trace (docs/observability.md).
    const trace = parseTraceparent(next.traceparent);
    await (trace ? runWithTrace(deps.config.GOOGLE_CLOUD_PROJECT, trace, dispatch) : dispatch());
  } else if (decision.kind === 'failed') {
    summary.gaveUp++;
    deps.log.warn('image failed', {
      event: 'image.failed',
      imageId: doc.id,
      code: decision.code,
      writer: `cleanup:${ctx.passId}`,
      recorded: true,
    });
    if (decision.outbox) await drainOutbox(deps, doc.id, `cleanup:${ctx.passId}`, decision.outbox);
  }
  return 'done';
}

/** Finishes an outbox whose writer did not. */
async function reviewOutbox(ctx: PassContext, doc: ImageDoc): Promise<ReviewResult> {
  if (ctx.dryRun) return 'done';
  if ((await drainOutbox(ctx.deps, doc.id, `cleanup:${ctx.passId}`)) === 'drained') ctx.summary.announcementsSettled++;
  return 'done';
}

/** Deletes a finished image's original past retention: the document lets go of it first. */
async function reviewRetention(ctx: PassContext, doc: ImageDoc): Promise<ReviewResult> {
  if (ctx.dryRun) {
    ctx.summary.originalsDeleted++;
    return 'done';
  }
  const { original } = await transactImage(ctx.deps, doc.id, releaseOriginal());
  if (!original) return 'done';
  ctx.deps.log.info('cleanup decision', { event: 'cleanup', imageId: doc.id, action: 'delete', reason: 'retention' });
  if (await deleteIfPresent(ctx.deps.storage.bucket(original.bucket).file(original.name), original.generation))
    ctx.summary.originalsDeleted++;
  return 'done';
}

/** Looks again for a deleted image's objects, after any late writer. */
async function reviewPurge(ctx: PassContext, doc: ImageDoc): Promise<ReviewResult> {
  ctx.summary.purged++;
  if (ctx.dryRun) return 'done';
  const removed = await purgeImageObjects(ctx.deps, doc.id, { final: true });
  if (removed > 0)
    ctx.deps.log.info('leftovers of a deleted image removed', { event: 'cleanup', imageId: doc.id, removed });
  return 'done';
}

/** Runs one bounded cleanup pass. Errors on single items are counted and logged, not thrown. */
export async function runCleanup(deps: PipelineDeps): Promise<CleanupSummary> {
  const { config } = deps;
  const started = Date.now();
  const deadline = started + config.CLEANUP_MAX_SECONDS * 1000;
  const dryRun = config.DRY_RUN;
  const log = deps.log.child({ event: 'cleanup', dryRun });
  const summary: CleanupSummary = {
    dryRun,
    examined: 0,
    originalsDeleted: 0,
    redispatched: 0,
    redispatchDeferred: 0,
    gaveUp: 0,
    deadLettered: 0,
    incomingDeleted: 0,
    orphansDeleted: 0,
    purged: 0,
    announcementsSettled: 0,
    errors: 0,
    truncated: false,
    steps: Object.fromEntries(
      CLEANUP_STEPS.map((step) => [step, { outcome: 'not-run', reviewed: 0 }]),
    ) as CleanupSummary['steps'],
    seconds: 0,
  };
  const now = deps.now();
  const ctx: PassContext = {
    deps,
    now,
    dryRun,
    passId: randomUUID(),
    summary,
    log,
    redispatchesLeft: config.REDISPATCH_MAX_PER_PASS,
  };
  const images = deps.firestore.collection(IMAGES_COLLECTION);
  const queries: Partial<Record<CleanupStep, [Query, (doc: ImageDoc) => Promise<ReviewResult>]>> = {
    stuck: [
      images.where('status', 'in', ['processing', 'ready']).where('staleAt', '<=', now).orderBy('staleAt'),
      (doc) => reviewStuck(ctx, doc),
    ],
    outbox: [images.where('outboxDueAt', '<=', now).orderBy('outboxDueAt'), (doc) => reviewOutbox(ctx, doc)],
    retention: [
      images.where('status', 'in', ['ready', 'failed']).where('retainUntil', '<=', now).orderBy('retainUntil'),
      (doc) => reviewRetention(ctx, doc),
    ],
    purge: [
      images.where('status', '==', 'deleted').where('purgeAt', '<=', now).orderBy('purgeAt'),
      (doc) => reviewPurge(ctx, doc),
    ],
  };

  for (const [index, step] of CLEANUP_STEPS.entries()) {
    const sharesLeft = CLEANUP_STEPS.slice(index).reduce((sum, s) => sum + TIME_SHARES[s], 0);
    const until = Date.now() + Math.max(0, deadline - Date.now()) * (TIME_SHARES[step] / sharesLeft);
    try {
      const query = queries[step];
      if (query) summary.steps[step] = await queryStep(ctx, step, query[0], until, query[1]);
      else if (step === 'deadLetters') {
        if (!dryRun) summary.steps.deadLetters = await drainDeadLetters(ctx, until);
      } else if (step === 'incoming') summary.steps.incoming = await reviewIncoming(ctx, until);
      else summary.steps.orphans = await sweepOrphans(ctx, until);
    } catch (error) {
      summary.errors++;
      summary.steps[step] = { outcome: 'failed', reviewed: summary.steps[step].reviewed };
      log.error(`cleanup step failed: ${step}`, { step, error });
    }
  }
  // Last, in the time the steps left: bounded by its own cursor, per-pass cap and daily budget.
  if (config.REPROCESS === 'on') {
    try {
      summary.reprocess = await runReprocess(deps, { dryRun, until: deadline });
    } catch (error) {
      summary.errors++;
      log.error('cleanup step failed: reprocess', { step: 'reprocess', error });
    }
  }
  summary.truncated = Object.values(summary.steps).some((s) => s.outcome === 'partial');
  summary.seconds = Math.round((Date.now() - started) / 100) / 10;
  log.notice('cleanup pass finished', { summary });
  return summary;
}
