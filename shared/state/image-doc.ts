/**
 * The image document, `images/{id}` in Firestore: one per image, holding its status, the
 * current dispatch, what its jobs made, its outcome and the outbox of its events. Every decision
 * about an image is a transaction on this document (transitions.ts); bytes stay in Cloud Storage.
 * docs/state.md describes the fields, the transitions and why each is fenced the way it is.
 */
import { type DocumentReference, type DocumentSnapshot, type Firestore, Timestamp } from '@google-cloud/firestore';
import type { PipelineDeps } from '../cloud/deps.js';
import { PipelineError, transient } from '../core/errors.js';
import type { EventMessage, FailureRecord, Manifest, OriginalInfo, OriginalRef } from '../core/schemas.js';
import { topology } from '../core/topology.js';

/** Where an image stands. */
export const IMAGE_STATUSES = ['processing', 'ready', 'failed', 'deleted'] as const;
/** One of {@link IMAGE_STATUSES}. */
export type ImageStatus = (typeof IMAGE_STATUSES)[number];

/** What a job recorded of one planned variant: written (its object's facts) or left out. */
export interface VariantFacts {
  /** The object name (naming.ts variantName), or the omission's name (omittedVariantName). */
  readonly name: string;
  readonly width: number;
  readonly height: number;
  /** The object's size; for an omitted variant, the size it would have had. */
  readonly bytes: number;
  /** The writing job's CPU for it. */
  readonly cpuMs: number;
  readonly quality?: number;
  readonly crop?: { left: number; top: number; width: number; height: number };
  readonly placeholder?: { color: string; thumbhash: string };
  /** Set when the variant was left out instead of written (e.g. `larger_than_original`). */
  readonly omitted?: string;
}

/** An event waiting in (or sent from) the outbox, in the order the image's outcomes happened. */
export interface OutboxEntry {
  readonly seq: number;
  readonly event: EventMessage;
  readonly published: boolean;
}

/** Who may publish the outbox now, and until when (outbox.ts). */
export interface OutboxLease {
  readonly holder: string;
  readonly until: Date;
}

/** An update in flight: a ready image brought to the deployed recipe (docs/state.md, "Updates"). */
export interface UpdateInFlight {
  /** Recipe hash of the ready manifest being replaced. */
  readonly replaces: string;
  /** Recipe hash the update makes. */
  readonly recipe: string;
}

/** `images/{id}`. Optional fields are absent (not null) when they do not apply. */
export interface ImageDoc {
  readonly v: 1;
  readonly id: string;
  readonly status: ImageStatus;
  /** The current dispatch: jobs carrying another number are stale and change nothing. */
  readonly dispatch: number;
  /** Jobs in the current dispatch (0 until it is published) and the indexes that finished. */
  readonly jobCount: number;
  readonly jobsDone: readonly number[];
  /** Re-dispatches by cleanup since the image was accepted; MAX_REDISPATCHES ends in a failure. */
  readonly redispatches: number;
  /** When the current dispatch's jobs were accepted by Pub/Sub; absent until then. */
  readonly dispatchedAt?: Date;
  /** While processing or updating: when cleanup re-dispatches if nothing happened by then. */
  readonly staleAt?: Date;
  /** Recipe hash of the manifest (ready) or of the dispatch in progress. */
  readonly recipe: string;
  readonly update?: UpdateInFlight;
  /** The stored original the jobs read, pinned to its generation; absent before it is stored and after retention. */
  readonly original?: OriginalRef;
  /** A deleted image's original, for the purge (generation-matched). */
  readonly deletedOriginal?: OriginalRef;
  readonly info: OriginalInfo;
  /** `upload`, `incoming/...`: who offered it last. */
  readonly source: string;
  readonly acceptedAt: Date;
  /** W3C traceparent of the accepting request, so re-dispatches continue its trace. */
  readonly traceparent?: string;
  readonly plannedVariants: number;
  /** What the jobs recorded (all dispatches of the same recipe: an object once written is final). */
  readonly variants: readonly VariantFacts[];
  readonly manifest?: Manifest;
  readonly failure?: FailureRecord;
  /** Finished images: when the original goes (ORIGINAL_RETENTION_DAYS); absent when kept forever. */
  readonly retainUntil?: Date;
  /** Deleted images: when cleanup checks again that every object is gone. */
  readonly purgeAt?: Date;
  /** Deleted images: a purge is removing objects until then; the same bytes are not claimed again meanwhile. */
  readonly purgingUntil?: Date;
  readonly deletedAt?: Date;
  readonly events: readonly OutboxEntry[];
  readonly nextSeq: number;
  /** When the outbox has unpublished events: when anyone (cleanup) may publish them. */
  readonly outboxDueAt?: Date;
  readonly outboxLease?: OutboxLease;
  /**
   * How many assets (`assets/{assetId}`, state/assets.ts) refer to the image; changed only in the
   * transaction that creates or deletes one. Absent on images from before assets: none.
   */
  readonly assets?: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** The collection of image documents. */
export const IMAGES_COLLECTION = topology.firestore.collections.images;

/** `images/{id}`. */
export function imageRef(firestore: Firestore, id: string): DocumentReference {
  return firestore.collection(IMAGES_COLLECTION).doc(id);
}

const DATE_FIELDS = [
  'dispatchedAt',
  'staleAt',
  'acceptedAt',
  'retainUntil',
  'purgeAt',
  'purgingUntil',
  'deletedAt',
  'outboxDueAt',
];

/** Firestore's Timestamps back to Dates, JSON-encoded fields back to objects. */
export function imageDocFrom(snapshot: DocumentSnapshot): ImageDoc | undefined {
  const data = snapshot.data();
  if (!data) return undefined;
  const out: Record<string, unknown> = { ...data };
  for (const key of [...DATE_FIELDS, 'createdAt', 'updatedAt'])
    if (data[key] instanceof Timestamp) out[key] = (data[key] as Timestamp).toDate();
  // Manifests and events are kept as JSON text: their many nested fields need no index, and
  // Firestore indexes every field of a map (40,000 entries a document at most).
  if (typeof data.manifest === 'string') out.manifest = JSON.parse(data.manifest);
  out.events = ((data.events ?? []) as Array<{ seq: number; event: string; published: boolean }>).map((e) => ({
    seq: e.seq,
    published: e.published,
    event: JSON.parse(e.event) as EventMessage,
  }));
  const lease = data.outboxLease as { holder: string; until: Timestamp } | undefined;
  if (lease) out.outboxLease = { holder: lease.holder, until: lease.until.toDate() };
  return out as unknown as ImageDoc;
}

/** What is written to Firestore for a document (Dates become Timestamps in the client). */
export function imageDocData(doc: ImageDoc): Record<string, unknown> {
  return {
    ...doc,
    manifest: doc.manifest ? JSON.stringify(doc.manifest) : undefined,
    events: doc.events.map((e) => ({ seq: e.seq, published: e.published, event: JSON.stringify(e.event) })),
  };
}

/**
 * Measurement only: documents read and written through the state layer's adapter (this module,
 * cursors.ts and the queries of cleanup and reprocess, which report the documents they return;
 * a query that returns none counts as one read, as Firestore bills it). The benches reset and read
 * it (bench/cleanup-scale.ts, bench/operations.ts); nothing in the pipeline decides on it. Reads of
 * a transaction attempt that the client retries are counted again, as they are billed again.
 */
export const firestoreOperations = { reads: 0, writes: 0 };

/** Adds to {@link firestoreOperations}. */
export function countFirestore(reads: number, writes = 0): void {
  firestoreOperations.reads += reads;
  firestoreOperations.writes += writes;
}

/** Sets {@link firestoreOperations} back to zero. */
export function resetFirestoreOperations(): void {
  firestoreOperations.reads = 0;
  firestoreOperations.writes = 0;
}

/**
 * Firestore calls with the pipeline's error classes: anything but a PipelineError is a transient
 * `state_unavailable` (an outage, contention the client gave up on), so triggers retry.
 */
export async function guardFirestore<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof PipelineError) throw error;
    throw transient('state_unavailable', `Firestore is unavailable (${what}); retry later.`, error);
  }
}

/** Reads an image's document (outside a transaction: for answers, not decisions). */
export async function readImage(deps: Pick<PipelineDeps, 'firestore'>, id: string): Promise<ImageDoc | undefined> {
  return guardFirestore(`read images/${id}`, async () => {
    const snapshot = await imageRef(deps.firestore, id).get();
    countFirestore(1);
    return imageDocFrom(snapshot);
  });
}

/** A transition: from the document as read (absent: no document) to the new one (absent: no write), and a result. */
export type Transition<R> = (doc: ImageDoc | undefined, now: Date) => { readonly next?: ImageDoc; readonly result: R };

/**
 * Runs a transition as a Firestore transaction on `images/{id}`: read, decide, write. The
 * client retries on contention, so `decide` may run more than once and must be pure.
 */
export async function transactImage<R>(
  deps: Pick<PipelineDeps, 'firestore' | 'now'>,
  id: string,
  decide: Transition<R>,
): Promise<R> {
  const ref = imageRef(deps.firestore, id);
  let wrote = 0;
  const result = await guardFirestore(`transaction on images/${id}`, () =>
    deps.firestore.runTransaction(async (tx) => {
      const doc = imageDocFrom(await tx.get(ref));
      countFirestore(1);
      const now = deps.now();
      const { next, result } = decide(doc, now);
      wrote = next ? 1 : 0;
      if (next) tx.set(ref, imageDocData({ ...next, updatedAt: now }));
      return result;
    }),
  );
  countFirestore(0, wrote);
  return result;
}
