/**
 * cleanup's dead-letter step: jobs that Pub/Sub gave up on (after the subscription's delivery
 * attempts) mark their image failed, retryable, unless the image moved on: a dead letter of an
 * old dispatch, arriving late after hours of backoff, never fails a newer retry (the transition
 * is fenced by the dispatch number).
 */
import type { Message } from '@google-cloud/pubsub';
import type { PassContext, StepOutcome } from './cleanup.js';
import { parseJob } from '../core/schemas.js';
import { transactImage } from '../state/image-doc.js';
import { drainOutbox } from '../state/outbox.js';
import { stateSettingsOf } from '../state/policy.js';
import { deadLetter } from '../state/upkeep.js';

/** Longest the dead-letter drain listens, within its share. */
const DRAIN_MAX_MS = 10_000;
/** The drain ends after this long without a new message. */
const DRAIN_QUIET_MS = 1_500;

/**
 * Pulls what is waiting on the dead-letter subscription and marks each job's image failed
 * unless it moved on. A message is acked only after its transaction, so a crash here loses
 * nothing. Bounded: it stops at `until` (or after DRAIN_MAX_MS, or CLEANUP_MAX_OBJECTS messages),
 * does not wait for reviews still running then, and closing
 * the subscription nacks what was not acked, so Pub/Sub delivers it again to the next pass.
 */
export async function drainDeadLetters(
  ctx: PassContext,
  until: number,
): Promise<{ outcome: StepOutcome; reviewed: number }> {
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
      const outcome = await transactImage(
        deps,
        job.imageId,
        deadLetter(job.dispatch, `cleanup:${ctx.passId}`, stateSettingsOf(deps.config)),
      );
      if (outcome.kind === 'failed') {
        summary.deadLettered++;
        deps.log.warn('image failed', {
          event: 'image.failed',
          imageId: job.imageId,
          code: 'dead_lettered',
          writer: `cleanup:${ctx.passId}`,
          recorded: true,
        });
        if (outcome.outbox) await drainOutbox(deps, job.imageId, `cleanup:${ctx.passId}`, outcome.outbox);
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
    if ((failure as { code?: number }).code !== 5) throw failure;
    // Nothing was left undone: the step did not run (and the pass is not truncated for it).
    deps.log.warn('dead-letter subscription not found; skipped', { subscription: subscription.name });
    return { outcome: 'not-run', reviewed };
  }
  const complete = unfinished === 0 && received <= limit && Date.now() - lastMessageAt >= DRAIN_QUIET_MS;
  return { outcome: complete ? 'complete' : 'partial', reviewed };
}
