/**
 * Signed webhooks, the pure part (docs/webhooks.md): the settings (`WEBHOOK_*`, spread into
 * config.ts's schema), the `webhook-id` of an event, the Standard Webhooks headers, how a
 * receiver's answer is classified and what a (re)delivery of an event still has to do.
 */
import { createHash } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { isLoopbackHttpUrl } from './domain.js';
import { topology } from './topology.js';

/** Longest wait for a receiver's answer (the 10 s); an answer later counts as a failure. */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** How much of a receiver's answer is kept in the delivery record (and shown locally). */
export const WEBHOOK_BODY_KEPT = 512;
/** How long delivery records live (a Firestore TTL policy on `expireAt`): the subscription's 7-day retention, plus a day. */
export const WEBHOOK_RECORD_DAYS = 8;

const webhookUrl = z
  .url({ message: 'each must be a URL' })
  .refine((url) => url.startsWith('https://') || isLoopbackHttpUrl(url), {
    message: 'each must use https (plain http only on a loopback address)',
  });

/** The webhook settings, spread into config.ts's ENV_SCHEMA (docs/configuration.md lists them). */
export const WEBHOOK_ENV = {
  WEBHOOK_URLS: z
    .string()
    .transform((s) => [...new Set(s.split(/[\s,]+/).filter((u) => u.length > 0))])
    .pipe(z.array(webhookUrl).max(20, { message: 'must list at most 20 URLs' }))
    .default([])
    .describe(
      'Receivers of every event, comma-separated (https; plain http only on loopback); set by configuration only. Empty: no webhooks.',
    ),
  WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]{22,}={0,2}$/, { message: 'must be whsec_ and at least 16 bytes of base64' })
    .optional()
    .describe(
      'The Standard Webhooks signing secret, `whsec_` + base64 (from Secret Manager in Terraform); required with WEBHOOK_URLS.',
    ),
  WEBHOOK_DEAD_LETTER_TOPIC: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/, { message: 'must be a valid Pub/Sub topic id' })
    .default(topology.topics.webhooksDeadLetter.name)
    .describe('Where the webhooks function puts an event some receiver did not accept for WEBHOOK_RETRY_HOURS.'),
  WEBHOOK_RETRY_HOURS: z.coerce
    .number({ message: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(1, { message: 'must be at least 1' })
    .max(144, { message: 'must be at most 144 (the subscription keeps messages 7 days)' })
    .default(24)
    .describe('How long an event is retried for a receiver that fails or times out before it is dead-lettered.'),
};

/** Problems of a configuration's webhook settings that one variable alone cannot show. */
export function webhookConfigProblems(config: { WEBHOOK_URLS: readonly string[]; WEBHOOK_SECRET?: string }): string[] {
  return config.WEBHOOK_URLS.length > 0 && !config.WEBHOOK_SECRET
    ? ['WEBHOOK_SECRET is required when WEBHOOK_URLS lists a receiver (whsec_ + base64)']
    : [];
}

/**
 * The `webhook-id` of an event: the SHA-256 of its bytes. Every redelivery of a Pub/Sub message
 * carries the same bytes, and so does a second publish of the same outbox entry (the outbox
 * keeps the event's JSON and publishes exactly it), while two events differ at least in `at`.
 */
export function webhookIdOf(body: Buffer | string): string {
  return `msg_${createHash('sha256').update(body).digest('hex').slice(0, 32)}`;
}

/** The Standard Webhooks headers of one delivery attempt, signed with `secret` (`whsec_…`). */
export function signedHeaders(secret: string, id: string, at: Date, body: string): Record<string, string> {
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': new Webhook(secret).sign(id, at, body),
  };
}

/** What one attempt's answer means: accepted (2xx), gone (410: stop sending there), or failed (retry). */
export type AttemptOutcome = 'accepted' | 'gone' | 'failed';

/** Classifies an answer's status; `undefined`: no answer (timeout, refused connection). 3xx is not followed: a failure. */
export function outcomeOf(status: number | undefined): AttemptOutcome {
  if (status === undefined) return 'failed';
  if (status >= 200 && status < 300) return 'accepted';
  return status === 410 ? 'gone' : 'failed';
}

/** What is known of one receiver for one event (`webhookDeliveries`) and of the receiver itself. */
export interface ReceiverState {
  readonly url: string;
  /** A 410 was answered for some event: nothing more is sent there. */
  readonly gone: boolean;
  /** This event was accepted there, or dead-lettered for it. */
  readonly settled: boolean;
}

/** What a (re)delivery of one event does. */
export interface DeliveryPlan {
  /** Receivers to send to now. */
  readonly send: readonly string[];
  /** Receivers that still wanted it but ran out of time: dead-letter the event for them. */
  readonly deadLetter: readonly string[];
}

/**
 * Decides a delivery: receivers that accepted the event (or were dead-lettered for it) and gone
 * receivers get nothing; the rest are sent to, unless the message is older than `retryMs`, when
 * they are dead-lettered instead.
 */
export function planDelivery(receivers: readonly ReceiverState[], ageMs: number, retryMs: number): DeliveryPlan {
  const open = receivers.filter((r) => !r.gone && !r.settled).map((r) => r.url);
  return ageMs >= retryMs ? { send: [], deadLetter: open } : { send: open, deadLetter: [] };
}

/** A Firestore document id for a string key (URLs hold `/`, which ids may not). */
export function keyOf(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\n')).digest('hex').slice(0, 40);
}
