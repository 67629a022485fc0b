/**
 * Per-owner quotas (QUOTA_UPLOADS_PER_DAY, QUOTA_BYTES_PER_DAY, QUOTA_OPEN_TICKETS): one document
 * `owners/{key}` per owner holding the current UTC day's counts and the signed-URL tickets still
 * open. Charging is a pure decision on that document, made inside the same transaction as the
 * asset or ticket it pays for, so concurrent uploads at the limit never exceed it.
 */
import { createHash } from 'node:crypto';
import { type DocumentReference, type DocumentSnapshot, type Firestore, Timestamp } from '@google-cloud/firestore';
import { type OwnerKey, SERVICE_OWNER } from '../auth/principal.js';
import type { Quotas } from '../auth/settings.js';
import { permanent } from '../core/errors.js';
import { topology } from '../core/topology.js';

/** A signed-URL ticket counted as open until it is used or expires. */
export interface OpenTicket {
  readonly ticket: string;
  readonly expiresAt: Date;
}

/** `owners/{key}`. */
export interface OwnerDoc {
  readonly v: 1;
  readonly owner: OwnerKey;
  /** The UTC day (`YYYY-MM-DD`) the counts below are for. */
  readonly day: string;
  readonly uploads: number;
  readonly bytes: number;
  readonly openTickets: readonly OpenTicket[];
  readonly updatedAt: Date;
}

/** What one request costs its owner. */
export interface QuotaCharge {
  readonly uploads: number;
  readonly bytes: number;
  /** A signed URL being minted: open until used or expired. */
  readonly ticket?: OpenTicket;
}

/** Which quota a refusal names, as `details.quota`. */
export type QuotaName = 'uploads_per_day' | 'bytes_per_day' | 'open_tickets';

/** Document id of an owner: a hash, since a `sub` may hold characters a document id may not. */
export function ownerDocId(owner: OwnerKey): string {
  return createHash('sha256').update(`owner\n${owner}`, 'utf8').digest('hex').slice(0, 32);
}

/** `owners/{ownerDocId(owner)}`. */
export function ownerRef(firestore: Firestore, owner: OwnerKey): DocumentReference {
  return firestore.collection(topology.firestore.collections.owners).doc(ownerDocId(owner));
}

/** Firestore's Timestamps back to Dates. */
export function ownerDocFrom(snapshot: DocumentSnapshot): OwnerDoc | undefined {
  const data = snapshot.data();
  if (!data) return undefined;
  const date = (value: unknown) => (value instanceof Timestamp ? value.toDate() : (value as Date));
  return {
    ...(data as OwnerDoc),
    openTickets: ((data.openTickets ?? []) as Array<{ ticket: string; expiresAt: unknown }>).map((t) => ({
      ticket: t.ticket,
      expiresAt: date(t.expiresAt),
    })),
    updatedAt: date(data.updatedAt),
  };
}

/** The UTC day of an instant, `YYYY-MM-DD`. */
export function utcDay(now: Date): string {
  return now.toISOString().slice(0, 10);
}

/** The next UTC midnight after `now`: when the day's counts start again. */
export function nextUtcMidnight(now: Date): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
}

/** The owner's counts as of `now`: a new day starts at zero; used and expired tickets are not open. */
export function currentCounts(doc: OwnerDoc | undefined, owner: OwnerKey, now: Date): OwnerDoc {
  const day = utcDay(now);
  const sameDay = doc !== undefined && doc.day === day;
  return {
    v: 1,
    owner,
    day,
    uploads: sameDay ? doc.uploads : 0,
    bytes: sameDay ? doc.bytes : 0,
    openTickets: (doc?.openTickets ?? []).filter((t) => t.expiresAt.getTime() > now.getTime()),
    updatedAt: now,
  };
}

function refuse(quota: QuotaName, limit: number, used: number, resetsAt: Date, now: Date, what: string): never {
  const retryAfterSeconds = Math.max(1, Math.ceil((resetsAt.getTime() - now.getTime()) / 1000));
  throw permanent(
    'quota_exceeded',
    `${what} (limit ${limit}, used ${used}); try again after ${resetsAt.toISOString()}.`,
    {
      quota,
      limit,
      used,
      resetsAt: resetsAt.toISOString(),
      retryAfterSeconds,
    },
  );
}

/**
 * Charges `charge` to the owner, or throws `quota_exceeded` (429) naming the first quota it would
 * exceed. A limit of 0 is no limit; the service owner (the deployment's own backends) has none.
 * Returns the document to write, or undefined when nothing is counted.
 */
export function chargeQuota(
  doc: OwnerDoc | undefined,
  owner: OwnerKey,
  charge: QuotaCharge,
  quotas: Quotas,
  now: Date,
): OwnerDoc | undefined {
  const limited = quotas.uploadsPerDay > 0 || quotas.bytesPerDay > 0 || quotas.openTickets > 0;
  if (owner === SERVICE_OWNER || !limited) return undefined;
  const counts = currentCounts(doc, owner, now);
  const midnight = nextUtcMidnight(now);
  if (quotas.uploadsPerDay > 0 && counts.uploads + charge.uploads > quotas.uploadsPerDay)
    refuse('uploads_per_day', quotas.uploadsPerDay, counts.uploads, midnight, now, 'Daily upload quota used up');
  if (quotas.bytesPerDay > 0 && counts.bytes + charge.bytes > quotas.bytesPerDay)
    refuse('bytes_per_day', quotas.bytesPerDay, counts.bytes, midnight, now, 'Daily upload bytes quota used up');
  if (charge.ticket && quotas.openTickets > 0 && counts.openTickets.length + 1 > quotas.openTickets) {
    const firstExpiry = new Date(Math.min(...counts.openTickets.map((t) => t.expiresAt.getTime())));
    refuse(
      'open_tickets',
      quotas.openTickets,
      counts.openTickets.length,
      firstExpiry,
      now,
      'Too many unused signed URLs',
    );
  }
  return {
    ...counts,
    uploads: counts.uploads + charge.uploads,
    bytes: counts.bytes + charge.bytes,
    openTickets: charge.ticket ? [...counts.openTickets, charge.ticket] : counts.openTickets,
  };
}

/** The ticket is used (or withdrawn): no longer open. Undefined when nothing changes. */
export function closeTicket(doc: OwnerDoc | undefined, ticket: string, now: Date): OwnerDoc | undefined {
  if (!doc?.openTickets.some((t) => t.ticket === ticket)) return undefined;
  return { ...doc, openTickets: doc.openTickets.filter((t) => t.ticket !== ticket), updatedAt: now };
}
