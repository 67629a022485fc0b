/**
 * Signed-URL tickets in Firestore, `tickets/{ticket}` (docs/signed-urls.md): who a signed upload
 * URL was minted for, until when, and which object used it. Minting writes the ticket in one
 * transaction with the owner's quota charge (owners.ts); ingest claims the ticket for the first
 * object generation that arrives and refuses any other, so a URL makes at most one image.
 * The decisions are pure ({@link useTicket}, {@link recordTicketUse}); the transactions around
 * them read, decide and write.
 */
import type { UploadMetadata } from '../core/metadata.js';
import { type DocumentReference, type DocumentSnapshot, type Firestore, Timestamp } from '@google-cloud/firestore';
import type { PipelineDeps } from '../cloud/deps.js';
import type { OwnerKey } from '../auth/principal.js';
import { quotas } from '../auth/settings.js';
import { topology } from '../core/topology.js';
import { countFirestore, guardFirestore } from './image-doc.js';
import { chargeQuota, closeTicket, ownerDocFrom, ownerRef } from './owners.js';

/**
 * How long after its URL expired an unused ticket still answers `waiting` instead of 404: Cloud
 * Storage checks the expiry when a PUT starts, so a large upload begun in time may finish, and be
 * ingested, well after it.
 */
export const TICKET_GRACE_MS = 60 * 60 * 1000;

/** How long a ticket document is kept after its grace period, for its status route and audits. */
export const TICKET_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

/** What ingest recorded of the object that used a ticket. */
export interface TicketUse {
  /** The object generation that used the ticket: the only one ingest takes. */
  readonly generation: string;
  /** Set once ingest accepted it: the asset (assets branch) the status route answers for. */
  readonly assetId?: string;
  /** The image it became (accepted) or failed as (rejected). */
  readonly imageId?: string;
  /** Set when the bytes were refused (not an image, too large…): the status route answers 422. */
  readonly failure?: { readonly code: string; readonly message: string; readonly retryable: boolean };
}

/** `tickets/{ticket}`. */
export interface TicketDoc {
  readonly v: 1;
  readonly ticket: string;
  readonly owner: OwnerKey;
  /** `incoming/{ticket}/{filename}`: the one object the URL may create. */
  readonly objectName: string;
  /** When the signed URL expires. */
  readonly expiresAt: Date;
  /** Firestore TTL field: the document may be deleted from then on (expiry + grace + retention). */
  readonly expireAt: Date;
  readonly createdAt: Date;
  /** The size the client declared: the URL's upper bound, charged to the owner's daily bytes. */
  readonly size: number;
  readonly contentType: string;
  readonly metadata?: UploadMetadata;
  readonly state: 'open' | 'used';
  readonly used?: TicketUse;
  readonly updatedAt: Date;
}

/** What minting knows of a ticket. */
export interface TicketFacts {
  readonly ticket: string;
  readonly owner: OwnerKey;
  readonly objectName: string;
  readonly expiresAt: Date;
  readonly size: number;
  readonly contentType: string;
  /** The app's metadata for the upload (core/metadata.ts): its asset gets it at ingest. */
  readonly metadata?: UploadMetadata;
}

/** A new, open ticket. */
export function newTicketDoc(facts: TicketFacts, now: Date): TicketDoc {
  return {
    v: 1,
    ...facts,
    expireAt: new Date(facts.expiresAt.getTime() + TICKET_GRACE_MS + TICKET_RETENTION_MS),
    createdAt: now,
    state: 'open',
    updatedAt: now,
  };
}

/** Why ingest refuses an object under `incoming/{ticket}/`. */
export type TicketRefusal = 'unknown_ticket' | 'wrong_object' | 'reused';

/** Ingest's decision on an object claiming a ticket. */
export type TicketClaim =
  | { readonly kind: 'refused'; readonly reason: TicketRefusal; readonly usedBy?: string }
  | { readonly kind: 'claimed'; readonly ticket: TicketDoc; readonly redelivery: boolean };

/**
 * Claims a ticket for one object generation: an open ticket becomes used by it; a ticket it
 * already used is claimed again (a redelivered event); anything else is refused.
 */
export function useTicket(
  doc: TicketDoc | undefined,
  objectName: string,
  generation: string,
  now: Date,
): { readonly next?: TicketDoc; readonly result: TicketClaim } {
  if (!doc) return { result: { kind: 'refused', reason: 'unknown_ticket' } };
  if (doc.objectName !== objectName) return { result: { kind: 'refused', reason: 'wrong_object' } };
  if (doc.state === 'used' && doc.used) {
    if (doc.used.generation === generation) return { result: { kind: 'claimed', ticket: doc, redelivery: true } };
    return { result: { kind: 'refused', reason: 'reused', usedBy: doc.used.generation } };
  }
  const next: TicketDoc = { ...doc, state: 'used', used: { generation }, updatedAt: now };
  return { next, result: { kind: 'claimed', ticket: next, redelivery: false } };
}

/**
 * Records what the generation that used the ticket became. Undefined (no write) when another
 * generation used it, or the same outcome is already recorded.
 */
export function recordTicketUse(
  doc: TicketDoc | undefined,
  generation: string,
  use: Omit<TicketUse, 'generation'>,
  now: Date,
): TicketDoc | undefined {
  if (!doc?.used || doc.used.generation !== generation) return undefined;
  const used: TicketUse = { ...doc.used, ...use };
  if (JSON.stringify(used) === JSON.stringify(doc.used)) return undefined;
  return { ...doc, used, updatedAt: now };
}

/** `tickets/{ticket}`. */
export function ticketRef(firestore: Firestore, ticket: string): DocumentReference {
  return firestore.collection(topology.firestore.collections.tickets).doc(ticket);
}

/** Firestore's Timestamps back to Dates. */
export function ticketDocFrom(snapshot: DocumentSnapshot): TicketDoc | undefined {
  const data = snapshot.data();
  if (!data) return undefined;
  const date = (value: unknown) => (value instanceof Timestamp ? value.toDate() : (value as Date));
  return {
    ...(data as TicketDoc),
    expiresAt: date(data.expiresAt),
    expireAt: date(data.expireAt),
    createdAt: date(data.createdAt),
    updatedAt: date(data.updatedAt),
  };
}

/** Reads a ticket (outside a transaction: for answers, not decisions). */
export async function readTicket(
  deps: Pick<PipelineDeps, 'firestore'>,
  ticket: string,
): Promise<TicketDoc | undefined> {
  return guardFirestore(`read tickets/${ticket}`, async () => {
    const snapshot = await ticketRef(deps.firestore, ticket).get();
    countFirestore(1);
    return ticketDocFrom(snapshot);
  });
}

/**
 * Creates the ticket and charges its owner one upload of `size` bytes and one open ticket, in
 * one transaction: throws `quota_exceeded` (429) and writes nothing when a quota would be exceeded.
 */
export async function mintTicket(
  deps: Pick<PipelineDeps, 'firestore' | 'now' | 'config'>,
  facts: TicketFacts,
): Promise<TicketDoc> {
  const limits = quotas(deps.config);
  const ref = ticketRef(deps.firestore, facts.ticket);
  const owners = ownerRef(deps.firestore, facts.owner);
  return guardFirestore(`mint tickets/${facts.ticket}`, () =>
    deps.firestore.runTransaction(async (tx) => {
      const owner = ownerDocFrom(await tx.get(owners));
      countFirestore(1);
      const now = deps.now();
      const charged = chargeQuota(
        owner,
        facts.owner,
        { uploads: 1, bytes: facts.size, ticket: { ticket: facts.ticket, expiresAt: facts.expiresAt } },
        limits,
        now,
      );
      const doc = newTicketDoc(facts, now);
      tx.create(ref, doc);
      if (charged) tx.set(owners, charged);
      countFirestore(0, charged ? 2 : 1);
      return doc;
    }),
  );
}

/**
 * Claims `tickets/{ticket}` for an incoming object's generation ({@link useTicket}) and, when it
 * is first used, closes it among its owner's open tickets, in one transaction. Firestore trouble
 * is a transient error, so the event is redelivered rather than the object dropped.
 */
export async function claimTicket(
  deps: Pick<PipelineDeps, 'firestore' | 'now'>,
  ticket: string,
  objectName: string,
  generation: string,
): Promise<TicketClaim> {
  const ref = ticketRef(deps.firestore, ticket);
  return guardFirestore(`claim tickets/${ticket}`, () =>
    deps.firestore.runTransaction(async (tx) => {
      const doc = ticketDocFrom(await tx.get(ref));
      // Every read before any write: the owner's document is read whenever the ticket is open.
      const owners = doc?.state === 'open' ? ownerRef(deps.firestore, doc.owner) : undefined;
      const owner = owners ? ownerDocFrom(await tx.get(owners)) : undefined;
      countFirestore(owners ? 2 : 1);
      const now = deps.now();
      const { next, result } = useTicket(doc, objectName, generation, now);
      if (next) {
        tx.set(ref, next);
        const closed = owners ? closeTicket(owner, ticket, now) : undefined;
        if (owners && closed) tx.set(owners, closed);
        countFirestore(0, closed ? 2 : 1);
      }
      return result;
    }),
  );
}

/** Records on the ticket what its object became ({@link recordTicketUse}). */
export async function recordTicketOutcome(
  deps: Pick<PipelineDeps, 'firestore' | 'now'>,
  ticket: string,
  generation: string,
  use: Omit<TicketUse, 'generation'>,
): Promise<void> {
  const ref = ticketRef(deps.firestore, ticket);
  await guardFirestore(`record tickets/${ticket}`, () =>
    deps.firestore.runTransaction(async (tx) => {
      const next = recordTicketUse(ticketDocFrom(await tx.get(ref)), generation, use, deps.now());
      countFirestore(1, next ? 1 : 0);
      if (next) tx.set(ref, next);
    }),
  );
}
