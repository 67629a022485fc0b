/**
 * cleanup's pass: retention, re-dispatch of stuck work, dead-lettered jobs, unsettled outcome
 * records, orphans and stale `incoming/` objects. The decisions are pure functions of object
 * facts and a clock. The pass runs one step per listing, each from its own persistent cursor
 * with its own budget of objects and seconds, so every object is reached within
 * ⌈N ÷ CLEANUP_MAX_OBJECTS⌉ + 1 passes however many there are (docs/cleanup.md).
 */
import { randomUUID } from 'node:crypto';
import type { Bucket, File } from '@google-cloud/storage';
import type { Message } from '@google-cloud/pubsub';
import type { Config } from '../core/config.js';
import type { PipelineDeps } from '../cloud/deps.js';
import { dispatchOriginal, originalInfoFromMetadata } from './dispatch.js';
import { transient } from '../core/errors.js';
import { parseJob, type OriginalInfo } from '../core/schemas.js';
import {
  idFromImagesName,
  idFromOriginalName,
  idFromOutcomeMarkerName,
  isUnsettledOutcome,
  manifestName,
  ORIGINAL_METADATA,
  originalName,
  OUTCOME_MARKER,
  outcomeMarkerName,
} from '../core/naming.js';
import { advanceStep, claimStep, readCursor, type StepClaim } from '../state/cleanup-state.js';
import { deleteIfPresent, guardStorage, listObjects, metadataOrUndefined } from '../cloud/objects.js';
import { outcomeKind, recordFailure, settlePendingOutcome } from '../state/records.js';
import { runReprocess, type ReprocessSummary } from './reprocess.js';
import { topology } from '../core/topology.js';
import { parseTraceparent, runWithTrace } from '../cloud/trace.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * An original that was stored but never stamped as dispatched (its publish failed) is
 * dispatched once it is this old, long enough for an in-flight upload to finish its own publish.
 */
export const UNDISPATCHED_GRACE_MS = 2 * MINUTE;

/** The settings cleanup decides by. */
export type CleanupPolicy = Pick<
  Config,
  | 'ORIGINAL_RETENTION_DAYS'
  | 'REDISPATCH_AFTER_MINUTES'
  | 'MAX_REDISPATCHES'
  | 'ORPHAN_GRACE_DAYS'
  | 'INCOMING_MAX_AGE_HOURS'
>;

/** What cleanup knows of one original. */
export interface OriginalFacts {
  readonly createdAt: Date;
  readonly dispatchedAt: Date | undefined;
  readonly redispatches: number;
  readonly hasManifest: boolean;
  readonly hasFailure: boolean;
  /** Newest object under `{id}/` in the images bucket (a variant), if any: evidence of progress. */
  readonly lastOutputAt?: Date | undefined;
}

/** What to do with an original. */
export type OriginalDecision =
  | { readonly action: 'keep' }
  | { readonly action: 'delete'; readonly reason: 'retention' }
  | { readonly action: 'redispatch'; readonly attempt: number }
  | { readonly action: 'give-up' };

/**
 * Decides an original's fate. Pure. Work counts as lost only when nothing of the image was
 * written for REDISPATCH_AFTER_MINUTES since its last dispatch or its newest output, whichever
 * is later: an image whose variants keep appearing (jobs queued behind others, or partly done)
 * is neither re-dispatched nor given up.
 */
export function decideOriginal(facts: OriginalFacts, policy: CleanupPolicy, now: Date): OriginalDecision {
  const age = now.getTime() - facts.createdAt.getTime();
  if (facts.hasManifest || facts.hasFailure) {
    const retention = policy.ORIGINAL_RETENTION_DAYS;
    return retention > 0 && age > retention * DAY ? { action: 'delete', reason: 'retention' } : { action: 'keep' };
  }
  if (!facts.dispatchedAt) {
    return age > UNDISPATCHED_GRACE_MS ? { action: 'redispatch', attempt: facts.redispatches } : { action: 'keep' };
  }
  const quietSince = Math.max(facts.dispatchedAt.getTime(), facts.lastOutputAt?.getTime() ?? 0);
  if (now.getTime() - quietSince <= policy.REDISPATCH_AFTER_MINUTES * MINUTE) return { action: 'keep' };
  return facts.redispatches >= policy.MAX_REDISPATCHES
    ? { action: 'give-up' }
    : { action: 'redispatch', attempt: facts.redispatches + 1 };
}

/** True when an object under `incoming/` is old enough to be an abandoned leftover. Pure. */
export function isStaleIncoming(createdAt: Date, policy: CleanupPolicy, now: Date): boolean {
  return now.getTime() - createdAt.getTime() > policy.INCOMING_MAX_AGE_HOURS * HOUR;
}

/** What cleanup knows of one image's folder in the images bucket whose original is gone. */
export interface OrphanFacts {
  readonly hasManifest: boolean;
  /** Newest object in the folder. */
  readonly newestAt: Date;
}

/**
 * True when an image's outputs should go because its original is gone: always for incomplete
 * outputs, and for finished ones only when originals are kept forever (retention 0), since with
 * retention the original is deleted on purpose and the variants are what users keep. Pure.
 */
export function isOrphan(facts: OrphanFacts, policy: CleanupPolicy, now: Date): boolean {
  if (facts.hasManifest && policy.ORIGINAL_RETENTION_DAYS > 0) return false;
  return now.getTime() - facts.newestAt.getTime() > policy.ORPHAN_GRACE_DAYS * DAY;
}

/** The steps of a pass, in order. */
export const CLEANUP_STEPS = ['deadLetters', 'originals', 'records', 'incoming', 'orphans'] as const;
/** One of {@link CLEANUP_STEPS}. */
export type CleanupStep = (typeof CLEANUP_STEPS)[number];

/**
 * Each step's share of CLEANUP_MAX_SECONDS. A step's deadline is its share of the time still
 * left, so a step that finishes early passes its time on and a slow one cannot starve the rest.
 */
const TIME_SHARES: Readonly<Record<CleanupStep, number>> = {
  deadLetters: 2,
  originals: 4,
  records: 1,
  incoming: 1,
  orphans: 2,
};

/** How a step ended in one pass. */
export type StepOutcome =
  /** It reviewed everything once, from its cursor round to it. */
  | 'complete'
  /** Its object or time budget, or the re-dispatch cap, ended it; its cursor holds the place. */
  | 'partial'
  /** Another pass holds it (or won the race to claim it). */
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
  announcementsSettled: number;
  errors: number;
  /** True when a budget ended some step before it had reviewed everything. */
  truncated: boolean;
  steps: Record<CleanupStep, { outcome: StepOutcome; reviewed: number }>;
  /** The reprocess backfill's pass, when REPROCESS=on (shared/pipeline/reprocess.ts). */
  reprocess?: ReprocessSummary;
  seconds: number;
}

function dateOf(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Workers per step: each review is a few storage round trips. */
const CONCURRENCY = 8;
/** Longest the dead-letter drain listens, within its share. */
const DRAIN_MAX_MS = 10_000;
/** The drain ends after this long without a new message. */
const DRAIN_QUIET_MS = 1_500;

/** What a review says: go on, or stop the step here (this item not done). */
type ReviewResult = 'done' | 'stop';

/**
 * Reviews `items` in order with `limit` workers, starting no item once `expired()` says so.
 * Returns how many items, from the first, are done: the cursor may move past exactly those.
 */
async function reviewInOrder<T>(
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

/** Cloud Storage's listing order: UTF-8 bytes. */
function after(a: string, b: string): boolean {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')) > 0;
}

/** What a cursor step lists: objects, or (with `folders`) the `{id}/` prefixes. */
interface Listing {
  readonly bucket: Bucket;
  readonly prefix: string;
  readonly folders?: boolean;
}

/** One listed entry: an object (with its metadata) or a folder prefix. */
interface Entry {
  readonly name: string;
  readonly file?: File;
}

async function listEntries(
  listing: Listing,
  maxResults: number,
  startOffset: string | undefined,
  pageToken: string | undefined,
) {
  const options = {
    prefix: listing.prefix,
    maxResults,
    autoPaginate: false,
    ...(listing.folders ? { delimiter: '/' } : {}),
    ...(startOffset ? { startOffset } : {}),
    ...(pageToken ? { pageToken } : {}),
  };
  const [files, nextQuery, apiResponse] = await guardStorage(`list ${listing.bucket.name}/${listing.prefix}`, () =>
    listing.bucket.getFiles(options),
  );
  const entries: Entry[] = listing.folders
    ? ((apiResponse as { prefixes?: string[] } | undefined)?.prefixes ?? []).map((name) => ({ name }))
    : files.map((file) => ({ name: file.name, file }));
  return { entries, nextPageToken: (nextQuery as { pageToken?: string } | null | undefined)?.pageToken };
}

/** How a scan from a cursor ended. */
interface ScanResult {
  readonly after: string | undefined;
  readonly reviewed: number;
  readonly complete: boolean;
}

/**
 * Reviews at most `budget` entries from just after the cursor, wrapping round to the start of
 * the listing and ending at the cursor, so consecutive passes walk the whole listing in turn.
 */
async function scanFrom(
  listing: Listing,
  cursor: string | undefined,
  budget: number,
  until: number,
  review: (entry: Entry) => Promise<ReviewResult>,
): Promise<ScanResult> {
  let last = cursor;
  let reviewed = 0;
  let wrapped = cursor === undefined;
  let pageToken: string | undefined;
  for (;;) {
    if (reviewed >= budget || Date.now() >= until) return { after: last, reviewed, complete: false };
    const page = await listEntries(listing, Math.min(500, budget - reviewed), wrapped ? undefined : cursor, pageToken);
    let entries = page.entries;
    let cycleEnds = false;
    if (cursor !== undefined) {
      if (!wrapped) entries = entries.filter((e) => after(e.name, cursor));
      else {
        const end = entries.findIndex((e) => after(e.name, cursor));
        if (end >= 0) [entries, cycleEnds] = [entries.slice(0, end), true];
      }
    }
    entries = entries.slice(0, budget - reviewed);
    const done = await reviewInOrder(entries, CONCURRENCY, () => Date.now() >= until, review);
    reviewed += done;
    const lastDone = entries[done - 1];
    if (lastDone) last = lastDone.name;
    if (done < entries.length) return { after: last, reviewed, complete: false };
    if (cycleEnds) return { after: last, reviewed, complete: true };
    pageToken = page.nextPageToken;
    if (!pageToken) {
      if (wrapped) return { after: last, reviewed, complete: true };
      wrapped = true;
    }
  }
}

/** What the steps of one pass share. */
interface PassContext {
  readonly deps: PipelineDeps;
  readonly now: Date;
  readonly dryRun: boolean;
  readonly passId: string;
  readonly summary: CleanupSummary;
  readonly log: PipelineDeps['log'];
  /** Re-dispatches this pass may still make. */
  redispatchesLeft: number;
}

/** Runs one bounded cleanup pass. Errors on single objects are counted and logged, not thrown. */
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
    announcementsSettled: 0,
    errors: 0,
    truncated: false,
    steps: Object.fromEntries(
      CLEANUP_STEPS.map((step) => [step, { outcome: 'not-run', reviewed: 0 }]),
    ) as CleanupSummary['steps'],
    seconds: 0,
  };
  const ctx: PassContext = {
    deps,
    now: deps.now(),
    dryRun,
    passId: randomUUID(),
    summary,
    log,
    redispatchesLeft: config.REDISPATCH_MAX_PER_PASS,
  };
  const uploads = deps.storage.bucket(config.UPLOADS_BUCKET);
  const images = deps.storage.bucket(config.IMAGES_BUCKET);

  for (const [index, step] of CLEANUP_STEPS.entries()) {
    const sharesLeft = CLEANUP_STEPS.slice(index).reduce((sum, s) => sum + TIME_SHARES[s], 0);
    const until = Date.now() + Math.max(0, deadline - Date.now()) * (TIME_SHARES[step] / sharesLeft);
    try {
      if (step === 'deadLetters') {
        if (!dryRun) summary.steps.deadLetters = await drainDeadLetters(ctx, until);
        continue;
      }
      const listing: Listing =
        step === 'originals'
          ? { bucket: uploads, prefix: topology.prefixes.originals }
          : step === 'incoming'
            ? { bucket: uploads, prefix: topology.prefixes.incoming }
            : step === 'records'
              ? { bucket: uploads, prefix: OUTCOME_MARKER.prefix }
              : { bucket: images, prefix: '', folders: true };
      const review = (entry: Entry): Promise<ReviewResult> =>
        guarded(ctx, entry.name, async () => {
          // Folder listings (the images step) have no file; object listings always have one.
          const { file } = entry;
          if (!file) await reviewImageFolder(ctx, entry.name);
          else if (step === 'originals') return reviewOriginal(ctx, file);
          else if (step === 'incoming') await reviewIncoming(ctx, file);
          else await reviewRecord(ctx, file);
          return 'done';
        });
      summary.steps[step] = await cursorStep(ctx, step, listing, until, review);
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

/** Runs a review; an error on one object is counted and logged, and the step goes on. */
async function guarded(ctx: PassContext, what: string, work: () => Promise<ReviewResult>): Promise<ReviewResult> {
  try {
    return await work();
  } catch (error) {
    ctx.summary.errors++;
    ctx.log.error(`cleanup step failed: ${what}`, { error });
    return 'done';
  }
}

/** Claims the step's cursor, scans from it within the budgets, and moves the cursor on. */
async function cursorStep(
  ctx: PassContext,
  step: CleanupStep,
  listing: Listing,
  until: number,
  review: (entry: Entry) => Promise<ReviewResult>,
): Promise<{ outcome: StepOutcome; reviewed: number }> {
  const { deps } = ctx;
  let claim: StepClaim | undefined;
  let cursor: string | undefined;
  if (ctx.dryRun) cursor = await readCursor(deps, step);
  else {
    // The claim outlives the step's own deadline a little: a pass that died is taken over after.
    const result = await claimStep(
      deps,
      step,
      ctx.passId,
      new Date(deps.now().getTime() + Math.max(0, until - Date.now()) + 60_000),
    );
    if (typeof result === 'string') {
      ctx.log.info('cleanup step skipped: another pass holds it', { step, reason: result });
      return { outcome: 'skipped', reviewed: 0 };
    }
    claim = result;
    cursor = result.after;
  }
  const scan = await scanFrom(listing, cursor, deps.config.CLEANUP_MAX_OBJECTS, until, review).catch(
    async (error: unknown) => {
      if (claim) await advanceStep(claim, cursor).catch(() => undefined);
      throw error;
    },
  );
  ctx.summary.examined += scan.reviewed;
  if (claim && !(await advanceStep(claim, scan.after)))
    ctx.log.warn('cleanup cursor was taken over; not moved', { step });
  return { outcome: scan.complete ? 'complete' : 'partial', reviewed: scan.reviewed };
}

async function reviewOriginal(ctx: PassContext, file: File): Promise<ReviewResult> {
  const { deps, now, summary, dryRun } = ctx;
  const id = idFromOriginalName(file.name);
  if (!id) return 'done';
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  // Records written before outcome markers existed are reachable only from here.
  if (!dryRun && (await settlePendingOutcome(deps, id)) === 'settled') summary.announcementsSettled++;
  // The marker decides: a re-submitted retry can leave an old error.json behind until its first job.
  const outcome = await outcomeKind(deps, id);
  // A tombstone's holder (or the records step, settling it) removes the original.
  if (outcome === 'deleted') return 'done';

  const custom = file.metadata.metadata ?? {};
  let facts: OriginalFacts = {
    createdAt: dateOf(file.metadata.timeCreated) ?? now,
    dispatchedAt: dateOf(custom[ORIGINAL_METADATA.dispatchedAt] as string | undefined),
    redispatches: Number(custom[ORIGINAL_METADATA.redispatches] ?? 0) || 0,
    hasManifest: outcome === 'ready',
    hasFailure: outcome === 'failed',
  };
  let decision = decideOriginal(facts, deps.config, now);
  if ((decision.action === 'redispatch' || decision.action === 'give-up') && facts.dispatchedAt) {
    // Only now look for evidence that its jobs are alive: the newest object in its folder.
    const outputs = await listObjects(images, `${id}/`);
    const newest = Math.max(0, ...outputs.map((f) => dateOf(f.metadata.timeCreated)?.getTime() ?? 0));
    facts = { ...facts, lastOutputAt: newest > 0 ? new Date(newest) : undefined };
    decision = decideOriginal(facts, deps.config, now);
  }
  if (decision.action === 'keep') return 'done';
  if (decision.action === 'redispatch') {
    // The cap bounds what one pass adds to the jobs queue; the cursor stays on this image.
    if (ctx.redispatchesLeft <= 0) {
      summary.redispatchDeferred++;
      return 'stop';
    }
    ctx.redispatchesLeft--;
  }
  deps.log.info('cleanup decision', { event: 'cleanup', imageId: id, ...decision, dryRun });
  if (decision.action === 'delete') {
    summary.originalsDeleted++;
    if (!dryRun) await deleteIfPresent(file, file.metadata.generation);
  } else if (decision.action === 'redispatch') {
    summary.redispatched++;
    const info = originalInfoFromMetadata(file.metadata);
    if (!dryRun) {
      if (info) await redispatchOriginal(deps, file, id, info, decision.attempt);
      else
        await recordFailure(
          deps,
          id,
          transient('original_missing', 'The original has no probe metadata; upload the same file again to retry.'),
          'cleanup',
          undefined,
          facts.redispatches,
        );
    }
  } else {
    summary.gaveUp++;
    if (!dryRun) {
      const error = transient(
        'processing_gave_up',
        `Processing did not finish after ${facts.redispatches + 1} dispatches; upload the same file again to retry.`,
      );
      await recordFailure(
        deps,
        id,
        error,
        'cleanup',
        { bucket: file.bucket.name, name: file.name },
        facts.redispatches,
      );
    }
  }
  return 'done';
}

/** Re-dispatches an original in its upload's trace, keeping its upload time (both stored on it). */
async function redispatchOriginal(
  deps: PipelineDeps,
  file: File,
  id: string,
  info: OriginalInfo,
  attempt: number,
): Promise<void> {
  const custom = file.metadata.metadata ?? {};
  const acceptedAt =
    dateOf(custom[ORIGINAL_METADATA.acceptedAt] as string | undefined) ?? dateOf(file.metadata.timeCreated);
  const dispatch = () =>
    dispatchOriginal(deps, file, String(file.metadata.generation), id, info, attempt, {
      acceptedAt: acceptedAt?.toISOString(),
    });
  const trace = parseTraceparent(custom[ORIGINAL_METADATA.traceparent]);
  await (trace ? runWithTrace(deps.config.GOOGLE_CLOUD_PROJECT, trace, dispatch) : dispatch());
}

async function reviewIncoming(ctx: PassContext, file: File): Promise<void> {
  const created = dateOf(file.metadata.timeCreated);
  if (!created || !isStaleIncoming(created, ctx.deps.config, ctx.now)) return;
  ctx.log.info('stale incoming object', { action: 'delete', object: file.name });
  if (!ctx.dryRun) await deleteIfPresent(file, file.metadata.generation);
  ctx.summary.incomingDeleted++;
}

/** An outcome marker found by listing `outcomes/`: settle it if its announcement is unsettled. */
async function reviewRecord(ctx: PassContext, file: File): Promise<void> {
  const id = idFromOutcomeMarkerName(file.name);
  if (!id || !isUnsettledOutcome(file.metadata.metadata) || ctx.dryRun) return;
  if ((await settlePendingOutcome(ctx.deps, id)) === 'settled') ctx.summary.announcementsSettled++;
}

async function reviewImageFolder(ctx: PassContext, prefix: string): Promise<void> {
  const { deps, now, summary, dryRun } = ctx;
  const id = idFromImagesName(prefix);
  if (!id) return;
  const original = await metadataOrUndefined(deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(originalName(id)));
  if (original) return;
  const files = await listObjects(deps.storage.bucket(deps.config.IMAGES_BUCKET), prefix);
  if (files.length === 0) return;
  const newestAt = new Date(
    Math.max(...files.map((f) => dateOf(f.metadata.updated ?? f.metadata.timeCreated)?.getTime() ?? now.getTime())),
  );
  const hasManifest = files.some((f) => f.name === manifestName(id));
  if (!isOrphan({ hasManifest, newestAt }, deps.config, now)) return;
  deps.log.info('cleanup decision', {
    event: 'cleanup',
    imageId: id,
    action: 'delete-orphan',
    objects: files.length,
    dryRun,
  });
  summary.orphansDeleted++;
  if (dryRun) return;
  for (const file of files) await deleteIfPresent(file, file.metadata.generation);
  await deleteIfPresent(deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(outcomeMarkerName(id)));
}

/**
 * Pulls what is waiting on the dead-letter subscription and marks each job's image failed
 * unless it finished meanwhile. A message is acked only after its record is written, so a
 * crash here loses nothing. Bounded: it stops at `until` (or after DRAIN_MAX_MS, or
 * CLEANUP_MAX_OBJECTS messages), does not wait for reviews still running then, and closing
 * the subscription nacks what was not acked, so Pub/Sub delivers it again to the next pass.
 */
async function drainDeadLetters(ctx: PassContext, until: number): Promise<{ outcome: StepOutcome; reviewed: number }> {
  const { deps, summary } = ctx;
  const limit = deps.config.CLEANUP_MAX_OBJECTS;
  const subscription = deps.pubsub.subscription(deps.config.JOBS_DEAD_LETTER_SUBSCRIPTION, {
    flowControl: { maxMessages: 20, allowExcessMessages: false },
    streamingOptions: { maxStreams: 1 },
  });
  const stopAt = Math.min(until, Date.now() + DRAIN_MAX_MS);
  let lastMessageAt = Date.now();
  let received = 0;
  let reviewed = 0;
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, ms));
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  /** Waits for `work` but no longer than `ms`, leaving no timer behind. */
  const atMost = async (work: Promise<unknown>, ms: number) => {
    const timeout = sleep(ms);
    await Promise.race([work, timeout]);
    wake?.();
  };

  const handle = async (message: Message) => {
    lastMessageAt = Date.now();
    try {
      const job = parseJob(message.data);
      if ((await outcomeKind(deps, job.imageId)) !== 'ready') {
        const error = transient(
          'dead_lettered',
          'Processing failed repeatedly; the job was dead-lettered. Upload the same file again to retry.',
        );
        if ((await recordFailure(deps, job.imageId, error, 'cleanup', undefined, job.dispatch)) === 'created')
          summary.deadLettered++;
      }
      message.ack();
      reviewed++;
    } catch (error) {
      if ((error as { code?: string }).code === 'invalid_job') {
        deps.log.error('unreadable dead-lettered message dropped', { messageId: message.id, error });
        message.ack();
        return;
      }
      summary.errors++;
      message.nack();
    }
  };
  subscription.on('message', (message: Message) => {
    if (++received > limit || Date.now() >= stopAt) {
      message.nack();
      return;
    }
    const work = handle(message).finally(() => inFlight.delete(work));
    inFlight.add(work);
  });
  subscription.on('error', (error: Error) => {
    failure = error;
    wake?.();
  });
  while (!failure && Date.now() < stopAt && received < limit && Date.now() - lastMessageAt < DRAIN_QUIET_MS)
    await sleep(100);
  // Reviews still running at the deadline are left to finish on their own; their messages are
  // nacked by the close below (an ack after it is dropped) and come back next pass.
  await atMost(Promise.all(inFlight), until - Date.now());
  const unfinished = inFlight.size;
  await atMost(subscription.close(), until - Date.now() + 1_000);
  ctx.summary.examined += reviewed;
  if (unfinished > 0) deps.log.warn('dead-letter drain stopped at its deadline', { step: 'deadLetters', unfinished });
  if (failure) {
    if ((failure as { code?: number }).code === 5)
      deps.log.warn('dead-letter subscription not found; skipped', { subscription: subscription.name });
    else throw failure;
  }
  const complete = unfinished === 0 && received <= limit && Date.now() - lastMessageAt >= DRAIN_QUIET_MS;
  return { outcome: complete ? 'complete' : 'partial', reviewed };
}
