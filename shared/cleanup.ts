/**
 * cleanup's pass: retention, re-dispatch of stuck work, dead-lettered jobs, orphans and stale
 * `incoming/` objects. The decisions are pure functions of object facts and a clock; the pass
 * gathers facts page by page within a budget of objects and seconds and applies the decisions
 * (or only logs them with DRY_RUN).
 */
import type { File, FileMetadata } from '@google-cloud/storage';
import type { Message } from '@google-cloud/pubsub';
import type { Config } from './config.js';
import type { PipelineDeps } from './deps.js';
import { dispatchOriginal, ORIGINAL_METADATA, originalInfoFromMetadata } from './dispatch.js';
import { transient } from './errors.js';
import { parseJob } from './messages.js';
import { errorRecordName, idFromImagesName, idFromOriginalName, manifestName, originalName } from './naming.js';
import { deleteIfPresent, listObjects, listPage, metadataOrUndefined } from './objects.js';
import { recordFailure, settlePendingOutcome } from './records.js';
import { topology } from './topology.js';

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
}

/** What to do with an original. */
export type OriginalDecision =
  | { readonly action: 'keep' }
  | { readonly action: 'delete'; readonly reason: 'retention' }
  | { readonly action: 'redispatch'; readonly attempt: number }
  | { readonly action: 'give-up' };

/** Decides an original's fate. Pure. */
export function decideOriginal(facts: OriginalFacts, policy: CleanupPolicy, now: Date): OriginalDecision {
  const age = now.getTime() - facts.createdAt.getTime();
  if (facts.hasManifest || facts.hasFailure) {
    const retention = policy.ORIGINAL_RETENTION_DAYS;
    return retention > 0 && age > retention * DAY ? { action: 'delete', reason: 'retention' } : { action: 'keep' };
  }
  if (!facts.dispatchedAt) {
    return age > UNDISPATCHED_GRACE_MS ? { action: 'redispatch', attempt: facts.redispatches } : { action: 'keep' };
  }
  if (now.getTime() - facts.dispatchedAt.getTime() <= policy.REDISPATCH_AFTER_MINUTES * MINUTE) return { action: 'keep' };
  return facts.redispatches >= policy.MAX_REDISPATCHES ? { action: 'give-up' } : { action: 'redispatch', attempt: facts.redispatches + 1 };
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

/** Counts of one pass, logged as one line. */
export interface CleanupSummary {
  dryRun: boolean;
  examined: number;
  originalsDeleted: number;
  redispatched: number;
  gaveUp: number;
  deadLettered: number;
  incomingDeleted: number;
  orphansDeleted: number;
  announcementsSettled: number;
  errors: number;
  /** True when the object or time budget ended the pass early. */
  truncated: boolean;
  seconds: number;
}

function dateOf(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

async function mapLimit<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++]!);
    }),
  );
}

/** Runs one bounded cleanup pass. Errors on single objects are counted and logged, not thrown. */
export async function runCleanup(deps: PipelineDeps): Promise<CleanupSummary> {
  const { config } = deps;
  const started = Date.now();
  const deadline = started + config.CLEANUP_MAX_SECONDS * 1000;
  const now = deps.now();
  const dryRun = config.DRY_RUN;
  const log = deps.log.child({ event: 'cleanup', dryRun });
  const summary: CleanupSummary = {
    dryRun,
    examined: 0,
    originalsDeleted: 0,
    redispatched: 0,
    gaveUp: 0,
    deadLettered: 0,
    incomingDeleted: 0,
    orphansDeleted: 0,
    announcementsSettled: 0,
    errors: 0,
    truncated: false,
    seconds: 0,
  };
  const budgetLeft = () => {
    if (summary.examined >= config.CLEANUP_MAX_OBJECTS || Date.now() >= deadline) summary.truncated = true;
    return !summary.truncated;
  };
  const uploads = deps.storage.bucket(config.UPLOADS_BUCKET);
  const images = deps.storage.bucket(config.IMAGES_BUCKET);
  const guarded = async (what: string, work: () => Promise<void>) => {
    try {
      await work();
    } catch (error) {
      summary.errors++;
      log.error(`cleanup step failed: ${what}`, { error });
    }
  };

  // 1. Dead-lettered jobs: their images end as failed.
  if (!dryRun) await guarded('dead letters', () => drainDeadLetters(deps, summary, deadline));

  // 2. Originals: retention, re-dispatch, give up.
  await pages(uploads, topology.prefixes.originals, undefined, budgetLeft, async (files) => {
    summary.examined += files.length;
    await mapLimit(files, 8, (file) => guarded(file.name, () => reviewOriginal(deps, file, now, summary, dryRun)));
  });

  // 3. Abandoned incoming/ objects (ingest never ran or the object was rewritten).
  await pages(uploads, topology.prefixes.incoming, undefined, budgetLeft, async (files) => {
    summary.examined += files.length;
    for (const file of files) {
      const created = dateOf(file.metadata.timeCreated);
      if (!created || !isStaleIncoming(created, config, now)) continue;
      log.info('stale incoming object', { action: 'delete', object: file.name });
      if (!dryRun) await guarded(file.name, async () => void (await deleteIfPresent(file, file.metadata.generation)));
      summary.incomingDeleted++;
    }
  });

  // 4. Outputs whose original is gone.
  await pages(images, '', '/', budgetLeft, async (_files, prefixes) => {
    summary.examined += prefixes.length;
    await mapLimit(prefixes, 8, (prefix) => guarded(prefix, () => reviewImageFolder(deps, prefix, now, summary, dryRun)));
  });

  summary.seconds = Math.round((Date.now() - started) / 100) / 10;
  log.notice('cleanup pass finished', { summary });
  return summary;
}

async function pages(
  bucket: ReturnType<PipelineDeps['storage']['bucket']>,
  prefix: string,
  delimiter: string | undefined,
  budgetLeft: () => boolean,
  handle: (files: File[], prefixes: string[]) => Promise<void>,
): Promise<void> {
  let pageToken: string | undefined;
  do {
    if (!budgetLeft()) return;
    const page = await listPage(bucket, {
      prefix,
      maxResults: 500,
      ...(delimiter ? { delimiter } : {}),
      ...(pageToken ? { pageToken } : {}),
    });
    await handle(page.files, page.prefixes);
    pageToken = page.nextPageToken;
  } while (pageToken);
}

async function reviewOriginal(deps: PipelineDeps, file: File, now: Date, summary: CleanupSummary, dryRun: boolean): Promise<void> {
  const id = idFromOriginalName(file.name);
  if (!id) return;
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  const [manifest, failure] = await Promise.all([
    metadataOrUndefined(images.file(manifestName(id))),
    metadataOrUndefined(images.file(errorRecordName(id))),
  ]);
  if (!dryRun) await settleRecord(deps, manifest, failure, id, summary);

  const custom = file.metadata.metadata ?? {};
  const facts: OriginalFacts = {
    createdAt: dateOf(file.metadata.timeCreated) ?? now,
    dispatchedAt: dateOf(custom[ORIGINAL_METADATA.dispatchedAt] as string | undefined),
    redispatches: Number(custom[ORIGINAL_METADATA.redispatches] ?? 0) || 0,
    hasManifest: manifest !== undefined,
    hasFailure: failure !== undefined,
  };
  const decision = decideOriginal(facts, deps.config, now);
  if (decision.action === 'keep') return;
  deps.log.info('cleanup decision', { event: 'cleanup', imageId: id, ...decision, dryRun });
  if (decision.action === 'delete') {
    summary.originalsDeleted++;
    if (!dryRun) await deleteIfPresent(file, file.metadata.generation);
  } else if (decision.action === 'redispatch') {
    summary.redispatched++;
    const info = originalInfoFromMetadata(file.metadata);
    if (!dryRun) {
      if (info) await dispatchOriginal(deps, file, String(file.metadata.generation), id, info, decision.attempt);
      else await recordFailure(deps, id, transient('original_missing', 'The original has no probe metadata; upload the same file again to retry.'), 'cleanup', undefined, facts.redispatches);
    }
  } else {
    summary.gaveUp++;
    if (!dryRun) {
      const error = transient('processing_gave_up', `Processing did not finish after ${facts.redispatches + 1} dispatches; upload the same file again to retry.`);
      await recordFailure(deps, id, error, 'cleanup', { bucket: file.bucket.name, name: file.name }, facts.redispatches);
    }
  }
}

/** Finishes any announcement whose writer died (see records.ts). */
async function settleRecord(
  deps: PipelineDeps,
  _manifest: FileMetadata | undefined,
  _failure: FileMetadata | undefined,
  id: string,
  summary: CleanupSummary,
): Promise<void> {
  if ((await settlePendingOutcome(deps, id)) === 'settled') summary.announcementsSettled++;
}

async function reviewImageFolder(deps: PipelineDeps, prefix: string, now: Date, summary: CleanupSummary, dryRun: boolean): Promise<void> {
  const id = idFromImagesName(prefix);
  if (!id) return;
  const original = await metadataOrUndefined(deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(originalName(id)));
  if (original) return;
  const files = await listObjects(deps.storage.bucket(deps.config.IMAGES_BUCKET), prefix);
  if (files.length === 0) return;
  const newestAt = new Date(Math.max(...files.map((f) => dateOf(f.metadata.updated ?? f.metadata.timeCreated)?.getTime() ?? now.getTime())));
  const hasManifest = files.some((f) => f.name === manifestName(id));
  if (!isOrphan({ hasManifest, newestAt }, deps.config, now)) return;
  deps.log.info('cleanup decision', { event: 'cleanup', imageId: id, action: 'delete-orphan', objects: files.length, dryRun });
  summary.orphansDeleted++;
  if (!dryRun) for (const file of files) await deleteIfPresent(file, file.metadata.generation);
}

/**
 * Pulls what is waiting on the dead-letter subscription (for at most a few seconds) and marks
 * each job's image failed unless it finished meanwhile. A message is acked only after its
 * record is written, so a crash here loses nothing.
 */
async function drainDeadLetters(deps: PipelineDeps, summary: CleanupSummary, deadline: number): Promise<void> {
  const subscription = deps.pubsub.subscription(deps.config.JOBS_DEAD_LETTER_SUBSCRIPTION, {
    flowControl: { maxMessages: 20, allowExcessMessages: false },
    streamingOptions: { maxStreams: 1 },
  });
  const until = Math.min(deadline, Date.now() + 10_000);
  const quietMs = 1_500;
  let lastMessageAt = Date.now();
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;

  const handle = async (message: Message) => {
    lastMessageAt = Date.now();
    try {
      const job = parseJob(message.data);
      const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
      const finished = (await metadataOrUndefined(images.file(manifestName(job.imageId)))) !== undefined;
      if (!finished) {
        const error = transient('dead_lettered', 'Processing failed repeatedly; the job was dead-lettered. Upload the same file again to retry.');
        if ((await recordFailure(deps, job.imageId, error, 'cleanup', undefined, job.dispatch)) === 'created') summary.deadLettered++;
      }
      message.ack();
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
    const work = handle(message).finally(() => inFlight.delete(work));
    inFlight.add(work);
  });
  subscription.on('error', (error: Error) => {
    failure = error;
  });
  while (!failure && Date.now() < until && Date.now() - lastMessageAt < quietMs) await new Promise((r) => setTimeout(r, 100));
  await Promise.all(inFlight);
  await subscription.close();
  if (failure) {
    if ((failure as { code?: number }).code === 5) deps.log.warn('dead-letter subscription not found; skipped', { subscription: subscription.name });
    else throw failure;
  }
}
