/**
 * The pipeline's decisions about an image, each a pure function from its document (and the
 * clock) to the next document: accept, record the stored original, mark dispatched, finish a job
 * (the fan-in), fail, delete, update (cleanup's are in upkeep.ts). Each runs inside a Firestore
 * transaction (image-doc.ts transactImage), so two of them on one image are serialised: that is
 * what makes accept vs delete, fan-in vs give-up vs dead letter, retry vs retention and stale vs
 * current dispatch race-free. docs/state.md has the state diagram.
 */
import type { FailureRecord, Manifest, OriginalInfo, OriginalRef, EventMessage } from '../core/schemas.js';
import { manifestName } from '../core/naming.js';
import { manifestObjectNames, variantCount } from '../image/manifest.js';
import type { ImageDoc, Transition, UpdateInFlight, VariantFacts } from './image-doc.js';
import {
  at,
  clean,
  DAY,
  isCurrentDispatch,
  PURGE_AFTER_MS,
  PURGE_LEASE_MS,
  type StateSettings,
  UNDISPATCHED_GRACE_MS,
  withEvent,
} from './policy.js';
import { mergeVariants, queuePreview } from './progress.js';

/** What an accepting function knows of the bytes it was given. */
export interface AcceptFacts {
  readonly id: string;
  readonly info: OriginalInfo;
  readonly source: string;
  readonly acceptedAt: Date;
  readonly traceparent?: string | undefined;
  /** Recipe hash of the deployed configuration. */
  readonly recipe: string;
  readonly plannedVariants: number;
}

/** What accept decided. */
export type AcceptDecision =
  /** This caller dispatches `dispatch`; `original` is set when the stored original is still good. */
  | {
      readonly kind: 'claimed';
      readonly dispatch: number;
      readonly info: OriginalInfo;
      readonly original?: OriginalRef | undefined;
      readonly update?: UpdateInFlight | undefined;
      readonly retry?: string | undefined;
    }
  /** Another caller's claim; `stored` once its original is recorded (until then it may still be reading its source). */
  | { readonly kind: 'in-flight'; readonly info: OriginalInfo; readonly update: boolean; readonly stored: boolean }
  /** Deleted, and its objects are being removed right now: retry in a moment. */
  | { readonly kind: 'deleting' }
  | { readonly kind: 'ready'; readonly manifest: Manifest }
  | { readonly kind: 'failed'; readonly failure: FailureRecord };

/**
 * Accept: a new image, a retryable failure, a deleted image, or a claim nobody dispatched in time
 * is claimed with a new dispatch number; a ready image made with another recipe gets an update;
 * anything else answers as it stands.
 */
export function claimForAccept(facts: AcceptFacts): Transition<AcceptDecision> {
  return (doc, now) => {
    const claim = (base: ImageDoc | undefined, extra: Partial<ImageDoc> = {}): ImageDoc =>
      clean({
        v: 1,
        id: facts.id,
        status: 'processing',
        dispatch: base ? base.dispatch + 1 : 0,
        jobCount: 0,
        jobsDone: [],
        redispatches: 0,
        staleAt: at(now, UNDISPATCHED_GRACE_MS),
        recipe: facts.recipe,
        info: base?.info.crops ? { ...facts.info, crops: base.info.crops } : facts.info,
        source: facts.source,
        acceptedAt: facts.acceptedAt,
        traceparent: facts.traceparent,
        plannedVariants: facts.plannedVariants,
        variants: base?.status === 'deleted' ? [] : (base?.variants ?? []),
        events: base?.events ?? [],
        nextSeq: base?.nextSeq ?? 1,
        outboxDueAt: base?.outboxDueAt,
        outboxLease: base?.outboxLease,
        deletedOriginal: base?.deletedOriginal,
        assets: base?.assets,
        createdAt: base?.createdAt ?? now,
        updatedAt: now,
        ...extra,
      });
    const claimed = (next: ImageDoc, retry?: string): ReturnType<Transition<AcceptDecision>> => ({
      next,
      result: {
        kind: 'claimed',
        dispatch: next.dispatch,
        info: next.info,
        original: next.original,
        update: next.update,
        retry,
      },
    });
    if (!doc) return claimed(claim(undefined));
    switch (doc.status) {
      case 'deleted':
        if (doc.purgingUntil && doc.purgingUntil.getTime() > now.getTime()) return { result: { kind: 'deleting' } };
        return claimed(claim(doc), 'deleted');
      case 'failed':
        if (doc.failure?.retryable !== true)
          return { result: { kind: 'failed', failure: doc.failure as FailureRecord } };
        // An original found missing is stored again from these bytes: the recorded generation is gone.
        return claimed(
          claim(doc, doc.failure.code === 'original_missing' ? {} : { original: doc.original }),
          doc.failure.code,
        );
      case 'processing':
        if (doc.dispatchedAt || (doc.staleAt && doc.staleAt.getTime() > now.getTime()))
          return { result: { kind: 'in-flight', info: doc.info, update: false, stored: doc.original !== undefined } };
        return claimed(claim(doc, { original: doc.original }), 'undispatched');
      default: {
        if (doc.recipe === facts.recipe && !doc.update)
          return { result: { kind: 'ready', manifest: doc.manifest as Manifest } };
        const update = claimUpdate(facts.recipe, facts.plannedVariants)(doc, now);
        if (update.result.kind === 'claimed' && update.next) return claimed(update.next, undefined);
        return { result: { kind: 'in-flight', info: doc.info, update: true, stored: true } };
      }
    }
  };
}

/** What claiming an update decided. */
export type UpdateDecision =
  | {
      readonly kind: 'claimed';
      readonly dispatch: number;
      readonly original?: OriginalRef | undefined;
      readonly replaces: string;
    }
  | { readonly kind: 'in-flight' | 'current' | 'not-ready' | 'no-original' };

/**
 * A ready image made with another recipe than `recipe` gets an update dispatch (its manifest
 * stays served until the update's fan-in replaces it), unless one for `recipe` is in flight.
 */
export function claimUpdate(
  recipe: string,
  plannedVariants: number,
  options: { readonly requireOriginal?: boolean } = {},
): Transition<UpdateDecision> {
  return (doc, now) => {
    if (doc?.status !== 'ready') return { result: { kind: 'not-ready' } };
    if (doc.recipe === recipe && !doc.update) return { result: { kind: 'current' } };
    // Without its original (retention) only a re-upload of the bytes can update an image.
    if (options.requireOriginal && !doc.original) return { result: { kind: 'no-original' } };
    if (doc.update?.recipe === recipe && doc.staleAt && doc.staleAt.getTime() > now.getTime())
      return { result: { kind: 'in-flight' } };
    const replaces = doc.update?.replaces ?? doc.recipe;
    const next = clean({
      ...doc,
      dispatch: doc.dispatch + 1,
      jobCount: 0,
      jobsDone: [],
      dispatchedAt: undefined,
      staleAt: at(now, UNDISPATCHED_GRACE_MS),
      update: { replaces, recipe },
      plannedVariants,
      // The original must stay while the update reads it; retention resumes when it is done.
      retainUntil: undefined,
    });
    return { next, result: { kind: 'claimed', dispatch: next.dispatch, original: doc.original, replaces } };
  };
}

/** Records the stored original of a claimed dispatch; `fenced` when the image moved on meanwhile. */
export function recordOriginal(dispatch: number, original: OriginalRef): Transition<'recorded' | 'fenced'> {
  return (doc) =>
    isCurrentDispatch(doc, dispatch) ? { next: { ...doc, original }, result: 'recorded' } : { result: 'fenced' };
}

/** After the jobs were published: in flight until `staleAt` unless a job reports progress. */
export function markDispatched(
  dispatch: number,
  jobCount: number,
  plannedVariants: number,
  settings: Pick<StateSettings, 'redispatchAfterMs'>,
): Transition<'marked' | 'fenced'> {
  return (doc, now) =>
    isCurrentDispatch(doc, dispatch)
      ? {
          next: { ...doc, dispatchedAt: now, jobCount, plannedVariants, staleAt: at(now, settings.redispatchAfterMs) },
          result: 'marked',
        }
      : { result: 'fenced' };
}

/** A claim whose publish failed: due at once, for the next identical upload or cleanup. */
export function releaseClaim(dispatch: number): Transition<'released' | 'fenced'> {
  return (doc, now) =>
    isCurrentDispatch(doc, dispatch) && !doc.dispatchedAt
      ? { next: { ...doc, staleAt: now }, result: 'released' }
      : { result: 'fenced' };
}

/**
 * The document as a transition wrote it, when the transition also gave its holder the outbox
 * (outbox.ts `drainOutbox` starts from it); undefined when another holder keeps the lease.
 */
export type LeasedOutbox = ImageDoc | undefined;

/** How a job's fan-in went. */
export type JobFinish =
  /** `outbox`: when this fan-in queued `image.preview` and got the lease. */
  | { readonly kind: 'partial'; readonly outbox?: LeasedOutbox }
  | { readonly kind: 'ready' | 'updated'; readonly outbox: LeasedOutbox; readonly manifest: Manifest }
  /** Not the current dispatch (a newer one, a delete, an outcome): the job changes nothing. */
  | { readonly kind: 'stale'; readonly status: ImageDoc['status'] | 'unknown' };

/**
 * The fan-in: records what a job made; when every job of the dispatch has, the image is ready
 * (or its update done) with the manifest `build` makes from the recorded variants, and the
 * event goes into the outbox.
 */
export function finishJob(
  job: { readonly dispatch: number; readonly index: number; readonly count: number },
  facts: readonly VariantFacts[],
  build: (doc: ImageDoc, variants: readonly VariantFacts[], now: Date) => Manifest,
  holder: string,
  settings: StateSettings,
): Transition<JobFinish> {
  return (doc, now) => {
    const status = doc?.status ?? 'unknown';
    if (!isCurrentDispatch(doc, job.dispatch)) return { result: { kind: 'stale', status } };
    const variants = mergeVariants(doc.variants, facts);
    const jobsDone = [...new Set([...doc.jobsDone, job.index])].sort((a, b) => a - b);
    // The first servable variant may be recorded here (no early record): its event goes first.
    const queued = queuePreview(doc, facts, holder, settings, now);
    if (jobsDone.length < job.count) {
      const staleAt = at(now, settings.redispatchAfterMs);
      const next = { ...(queued?.doc ?? doc), variants, jobsDone, jobCount: job.count, staleAt };
      return { next, result: { kind: 'partial', ...(queued?.leased ? { outbox: next } : {}) } };
    }
    const manifest = build(doc, variants, now);
    // An update's drain removes the objects its manifest no longer lists (outbox.ts); their facts
    // go too, or a later update would find them recorded and not make them again.
    const kept = manifestObjectNames(manifest);
    const current = doc.update ? variants.filter((v) => kept.has(v.name)) : variants;
    const manifestRef = { bucket: settings.imagesBucket, name: manifestName(doc.id) };
    const count = variantCount(manifest);
    const event: EventMessage = doc.update
      ? {
          v: 1,
          type: 'image.updated',
          imageId: doc.id,
          manifest: manifestRef,
          variants: manifest.variants.length,
          recipe: doc.update.recipe,
          previousRecipe: doc.update.replaces,
          at: now.toISOString(),
        }
      : { v: 1, type: 'image.ready', imageId: doc.id, manifest: manifestRef, variants: count, at: now.toISOString() };
    const before = queued?.doc ?? doc;
    const outbox = withEvent(before, event, holder, now);
    const { leased, ...outboxFields } = outbox;
    const next = clean({
      ...before,
      ...outboxFields,
      status: 'ready',
      variants: current,
      jobsDone,
      jobCount: job.count,
      manifest,
      recipe: doc.update?.recipe ?? doc.recipe,
      update: undefined,
      staleAt: undefined,
      failure: undefined,
      retainUntil: retentionOf(doc, settings),
    });
    return { next, result: { kind: doc.update ? 'updated' : 'ready', outbox: leased ? next : undefined, manifest } };
  };
}

function retentionOf(doc: ImageDoc, settings: Pick<StateSettings, 'retentionDays'>): Date | undefined {
  return settings.retentionDays > 0 && doc.original ? at(doc.acceptedAt, settings.retentionDays * DAY) : undefined;
}

/** How recording a failure went. */
export type FailOutcome =
  | { readonly kind: 'failed'; readonly outbox: LeasedOutbox }
  /** An update failed: the ready manifest stays, the update is dropped. */
  | { readonly kind: 'update-dropped' }
  | { readonly kind: 'stale'; readonly status: ImageDoc['status'] | 'unknown' };

/**
 * Records a failure of dispatch `dispatch` (or of whatever dispatch is current, for cleanup's
 * give-up), unless the image moved on: its outcome is then `failed` and `image.failed` goes into
 * the outbox.
 */
export function failImage(
  dispatch: number | 'current',
  failure: Omit<FailureRecord, 'v' | 'id' | 'failedAt' | 'dispatch'>,
  holder: string,
  settings: Pick<StateSettings, 'retentionDays'>,
): Transition<FailOutcome> {
  return (doc, now) => {
    const current = dispatch === 'current' ? (doc?.dispatch ?? -1) : dispatch;
    const status = doc?.status ?? 'unknown';
    if (!isCurrentDispatch(doc, current)) return { result: { kind: 'stale', status } };
    if (doc.status === 'ready')
      return {
        next: clean({ ...doc, update: undefined, staleAt: undefined, retainUntil: retentionOf(doc, settings) }),
        result: { kind: 'update-dropped' },
      };
    const record: FailureRecord = { v: 1, id: doc.id, ...failure, failedAt: now.toISOString(), dispatch: current };
    const event: EventMessage = {
      v: 1,
      type: 'image.failed',
      imageId: doc.id,
      code: record.code,
      message: record.message,
      ...(record.retryable !== undefined ? { retryable: record.retryable } : {}),
      at: now.toISOString(),
    };
    const { leased, ...outbox } = withEvent(doc, event, holder, now);
    const next = clean({
      ...doc,
      ...outbox,
      status: 'failed',
      failure: record,
      staleAt: undefined,
      retainUntil: retentionOf(doc, settings),
    });
    return { next, result: { kind: 'failed', outbox: leased ? next : undefined } };
  };
}

/** How a delete went. */
export type DeleteOutcome =
  | { readonly kind: 'deleted'; readonly outbox: LeasedOutbox; readonly original?: OriginalRef | undefined }
  | { readonly kind: 'already-deleted'; readonly original?: OriginalRef | undefined }
  | { readonly kind: 'not-found' };

/**
 * Deletes an image whatever it is doing: jobs of its dispatch are stale from here on, and
 * `image.deleted` follows in the outbox any event still waiting there.
 */
export function deleteImageDoc(holder: string): Transition<DeleteOutcome> {
  return (doc, now) => {
    if (!doc) return { result: { kind: 'not-found' } };
    if (doc.status === 'deleted') return { result: { kind: 'already-deleted', original: doc.deletedOriginal } };
    const event: EventMessage = { v: 1, type: 'image.deleted', imageId: doc.id, at: now.toISOString() };
    const { leased, ...outbox } = withEvent(doc, event, holder, now);
    const original = doc.original ?? doc.deletedOriginal;
    const next = clean({
      ...doc,
      ...outbox,
      status: 'deleted',
      deletedAt: now,
      deletedOriginal: original,
      original: undefined,
      manifest: undefined,
      failure: undefined,
      update: undefined,
      staleAt: undefined,
      retainUntil: undefined,
      variants: [],
      jobsDone: [],
      purgeAt: at(now, PURGE_AFTER_MS),
      purgingUntil: at(now, PURGE_LEASE_MS),
    });
    return { next, result: { kind: 'deleted', outbox: leased ? next : undefined, original } };
  };
}
