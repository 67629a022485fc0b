/**
 * The transitions cleanup and ingest decide by: re-dispatch or give up on quiet work, dead
 * letters, retention, the purge of a deleted image, and an image refused before it was claimed.
 * Pure, like transitions.ts, and run in a transaction on the image's document.
 */
import type { FailureRecord, OriginalRef } from '../core/schemas.js';
import type { ImageDoc, Transition } from './image-doc.js';
import { type FailOutcome, failImage, type LeasedOutbox } from './transitions.js';
import { at, clean, isCurrentDispatch, PURGE_LEASE_MS, type StateSettings, UNDISPATCHED_GRACE_MS } from './policy.js';

/** What cleanup decided for an image whose work went quiet. */
export type StuckDecision =
  | { readonly kind: 'not-due' }
  | {
      readonly kind: 'redispatch';
      readonly dispatch: number;
      readonly original: OriginalRef;
      readonly doc: ImageDoc;
    }
  | { readonly kind: 'failed'; readonly code: string; readonly outbox: LeasedOutbox }
  | { readonly kind: 'update-dropped' };

/**
 * Cleanup's re-dispatch: an image processing (or updating) past `staleAt` gets a new dispatch,
 * unless it had MAX_REDISPATCHES already (it fails, retryable) or has no stored original.
 */
export function redispatchStuck(holder: string, settings: StateSettings): Transition<StuckDecision> {
  return (doc, now) => {
    if (!doc || !isCurrentDispatch(doc, doc.dispatch) || !doc.staleAt || doc.staleAt.getTime() > now.getTime())
      return { result: { kind: 'not-due' } };
    const giveUp = (code: string, message: string) => {
      const failed = failImage('current', { code, message, retryable: true }, holder, settings)(doc, now);
      const result = failed.result;
      return {
        next: failed.next,
        result:
          result.kind === 'failed'
            ? ({ kind: 'failed', code, outbox: result.outbox } as const)
            : ({ kind: 'update-dropped' } as const),
      };
    };
    if (!doc.original)
      return giveUp('original_missing', 'The original was never stored; upload the same file again to retry.');
    const attempt = doc.dispatchedAt ? doc.redispatches + 1 : doc.redispatches;
    if (doc.dispatchedAt && doc.redispatches >= settings.maxRedispatches)
      return giveUp(
        'processing_gave_up',
        `Processing did not finish after ${doc.redispatches + 1} dispatches; upload the same file again to retry.`,
      );
    const next = clean({
      ...doc,
      dispatch: doc.dispatch + 1,
      redispatches: attempt,
      jobCount: 0,
      jobsDone: [],
      dispatchedAt: undefined,
      staleAt: at(now, UNDISPATCHED_GRACE_MS),
    });
    return { next, result: { kind: 'redispatch', dispatch: next.dispatch, original: doc.original, doc: next } };
  };
}

/** A dead-lettered job of `dispatch`: the image fails (retryable) unless it moved on. */
export function deadLetter(dispatch: number, holder: string, settings: StateSettings): Transition<FailOutcome> {
  return failImage(
    dispatch,
    {
      code: 'dead_lettered',
      message: 'Processing failed repeatedly; the job was dead-lettered. Upload the same file again to retry.',
      retryable: true,
    },
    holder,
    settings,
  );
}

/**
 * Retention: a finished image past `retainUntil` gives up its original (the document stops
 * pointing at it first; the caller then deletes that generation).
 */
export function releaseOriginal(): Transition<{ readonly original?: OriginalRef | undefined }> {
  return (doc, now) => {
    if (!doc || (doc.status !== 'ready' && doc.status !== 'failed') || doc.update) return { result: {} };
    if (!doc.retainUntil || doc.retainUntil.getTime() > now.getTime()) return { result: {} };
    return { next: clean({ ...doc, original: undefined, retainUntil: undefined }), result: { original: doc.original } };
  };
}

/**
 * Before a purge: the image must still be deleted, and no other purge at work; the purge then
 * has PURGE_LEASE_MS during which the same bytes are not claimed again.
 */
export function claimPurge(): Transition<{ readonly original?: OriginalRef | undefined } | undefined> {
  return (doc, now) => {
    if (doc?.status !== 'deleted') return { result: undefined };
    return {
      next: { ...doc, purgingUntil: at(now, PURGE_LEASE_MS) },
      result: { original: doc.deletedOriginal },
    };
  };
}

/**
 * After a purge: the same bytes may be claimed again; with `final` (cleanup's look after
 * PURGE_AFTER_MS) nothing more is looked for.
 */
export function purged(final: boolean): Transition<'done' | 'not-deleted'> {
  return (doc) =>
    doc?.status === 'deleted'
      ? { next: clean({ ...doc, purgingUntil: undefined, ...(final ? { purgeAt: undefined } : {}) }), result: 'done' }
      : { result: 'not-deleted' };
}

/**
 * An offered image that was refused before it could be claimed (ingest: a bad or oversized
 * object): recorded as failed, with `image.failed`, unless the image already has a document that
 * says otherwise; one still being claimed fails in its current dispatch.
 */
export function rejectImage(
  id: string,
  failure: Omit<FailureRecord, 'v' | 'id' | 'failedAt' | 'dispatch'>,
  facts: { readonly source: string; readonly bytes: number },
  holder: string,
): Transition<FailOutcome> {
  return (doc, now) => {
    if (doc) return failImage('current', failure, holder, { retentionDays: 0 })(doc, now);
    const base: ImageDoc = {
      v: 1,
      id,
      status: 'processing',
      dispatch: 0,
      jobCount: 0,
      jobsDone: [],
      redispatches: 0,
      recipe: '',
      info: { format: 'unknown', width: 0, height: 0, bytes: facts.bytes, contentType: 'application/octet-stream' },
      source: facts.source,
      acceptedAt: now,
      plannedVariants: 0,
      variants: [],
      events: [],
      nextSeq: 1,
      createdAt: now,
      updatedAt: now,
    };
    return failImage(0, failure, holder, { retentionDays: 0 })(base, now);
  };
}
