/**
 * The rules every transition shares: how long a claim, an outbox lease and a deleted image's
 * leftovers are given, the settings from the configuration, the dispatch fence, and how an event
 * joins the outbox. docs/state.md explains each number.
 */
import { type Config, publicBaseUrl } from '../core/config.js';
import type { EventMessage } from '../core/schemas.js';
import type { ImageDoc, OutboxLease } from './image-doc.js';

const MINUTE = 60_000;
/** A day in milliseconds. */
export const DAY = 24 * 60 * MINUTE;

/**
 * A claimed image not dispatched within this long is dispatched by cleanup (or claimed again by
 * the next identical upload): long enough for the accepting request to store and publish.
 */
export const UNDISPATCHED_GRACE_MS = 2 * MINUTE;
/**
 * How long the outbox holder may take to publish (outbox.ts): it starts publishing only within
 * its first 30 s, a publish ends within 30 s (publish.ts PUBLISH_WORST_MS), the marking within
 * 30 s, plus 30 s of clock skew between instances.
 */
export const OUTBOX_LEASE_MS = 2 * MINUTE;
/** A deleted image's objects are looked for again this long after the delete: after any late writer. */
export const PURGE_AFTER_MS = 15 * MINUTE;
/**
 * How long a purge may take to remove a deleted image's objects: the same bytes uploaded again are
 * not claimed meanwhile, so a purge never removes what a new dispatch found and recorded.
 */
export const PURGE_LEASE_MS = 2 * MINUTE;
/** Published events kept in the document, newest last, for the record. */
const PUBLISHED_KEPT = 3;

/** Settings the transitions decide by (from Config). */
export interface StateSettings {
  readonly redispatchAfterMs: number;
  readonly maxRedispatches: number;
  readonly retentionDays: number;
  /** The images bucket, for the events' manifest reference. */
  readonly imagesBucket: string;
  /** With PREVIEW_EVENT on: the base of variant URLs, for `image.preview`; unset, no such event. */
  readonly previewBaseUrl?: string | undefined;
}

/** The settings of a validated configuration. */
export function stateSettingsOf(
  config: Pick<Config, 'REDISPATCH_AFTER_MINUTES' | 'MAX_REDISPATCHES' | 'ORIGINAL_RETENTION_DAYS' | 'IMAGES_BUCKET'> &
    Partial<Pick<Config, 'PREVIEW_EVENT' | 'PUBLIC_BASE_URL'>>,
): StateSettings {
  return {
    redispatchAfterMs: config.REDISPATCH_AFTER_MINUTES * MINUTE,
    maxRedispatches: config.MAX_REDISPATCHES,
    retentionDays: config.ORIGINAL_RETENTION_DAYS,
    imagesBucket: config.IMAGES_BUCKET,
    ...(config.PREVIEW_EVENT ? { previewBaseUrl: publicBaseUrl(config) } : {}),
  };
}

/** `now` plus `ms`. */
export const at = (now: Date, ms: number) => new Date(now.getTime() + ms);

/** True when `dispatch` is the image's current dispatch and it is still working on it. */
export function isCurrentDispatch(doc: ImageDoc | undefined, dispatch: number): doc is ImageDoc {
  if (!doc || doc.dispatch !== dispatch) return false;
  return doc.status === 'processing' || (doc.status === 'ready' && doc.update !== undefined);
}

/**
 * Appends an event to the outbox and, when nobody else holds it, gives the outbox to `holder`.
 * Published entries beyond the last few are dropped.
 */
export function withEvent(
  doc: ImageDoc,
  event: EventMessage,
  holder: string,
  now: Date,
): Pick<ImageDoc, 'events' | 'nextSeq' | 'outboxLease' | 'outboxDueAt'> & { leased: boolean } {
  const published = doc.events.filter((e) => e.published).slice(-PUBLISHED_KEPT);
  const pending = doc.events.filter((e) => !e.published);
  const events = [...published, ...pending, { seq: doc.nextSeq, event, published: false }];
  const lease = doc.outboxLease;
  const free = !lease || lease.until.getTime() <= now.getTime() || lease.holder === holder;
  const outboxLease: OutboxLease | undefined = free ? { holder, until: at(now, OUTBOX_LEASE_MS) } : lease;
  return {
    events,
    nextSeq: doc.nextSeq + 1,
    ...(outboxLease ? { outboxLease, outboxDueAt: outboxLease.until } : { outboxDueAt: now }),
    leased: free,
  };
}

/** Removes the keys whose value is undefined (the document drops those fields). */
export function clean(doc: ImageDoc): ImageDoc {
  return Object.fromEntries(Object.entries(doc).filter(([, v]) => v !== undefined)) as unknown as ImageDoc;
}
