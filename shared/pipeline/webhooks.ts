/**
 * Signed webhooks, the delivery (docs/webhooks.md): one event on the events topic goes to every
 * configured receiver that has not accepted it yet and has not answered 410, signed per Standard
 * Webhooks. Each (event, receiver) has a record in `webhookDeliveries` (attempts, last answer);
 * a receiver that answered 410 has one in `webhookReceivers`. An attempt that is not accepted
 * throws transiently, so that Pub/Sub redelivers the message with backoff; once the message is
 * older than WEBHOOK_RETRY_HOURS it goes to the webhook dead-letter topic for the receivers still
 * waiting, and is acknowledged.
 */
import { FieldValue, Timestamp } from '@google-cloud/firestore';
import type { PipelineDeps } from '../cloud/deps.js';
import { transient } from '../core/errors.js';
import type { EventMessage } from '../core/schemas.js';
import { topology } from '../core/topology.js';
import {
  type AttemptOutcome,
  keyOf,
  outcomeOf,
  planDelivery,
  type ReceiverState,
  signedHeaders,
  WEBHOOK_BODY_KEPT,
  WEBHOOK_RECORD_DAYS,
  WEBHOOK_TIMEOUT_MS,
} from '../core/webhook.js';

const DAY_MS = 86_400_000;

/** One event to deliver: its bytes as published, its id and when Pub/Sub first had it. */
export interface WebhookEvent {
  readonly id: string;
  readonly body: string;
  readonly event: EventMessage;
  readonly publishedAt: Date;
}

/** The answer to one attempt. */
export interface AttemptResult {
  readonly url: string;
  readonly outcome: AttemptOutcome;
  /** HTTP status; absent when there was no answer. */
  readonly status?: number;
  /** The start of the answer's body, or why there was none (`timeout after 10000 ms`). */
  readonly body: string;
  readonly ms: number;
}

/** What one (re)delivery did. */
export interface DeliveryReport {
  readonly attempts: readonly AttemptResult[];
  readonly deadLettered: readonly string[];
  /** Receivers skipped: accepted before (or dead-lettered), or gone. */
  readonly skipped: number;
}

/** Sends one signed POST; never follows a redirect, gives up after {@link WEBHOOK_TIMEOUT_MS}. */
export async function attempt(url: string, headers: Record<string, string>, body: string): Promise<AttemptResult> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  try {
    const response = await fetch(url, {
      method: 'POST',
      headers: { ...headers, 'user-agent': 'image-pipeline-webhooks/1' },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
    });
    const text = (await response.text()).slice(0, WEBHOOK_BODY_KEPT);
    return { url, outcome: outcomeOf(response.status), status: response.status, body: text, ms: ms() };
  } catch (error) {
    const name = (error as Error).name;
    const why =
      name === 'TimeoutError' || name === 'AbortError'
        ? `timeout after ${WEBHOOK_TIMEOUT_MS} ms`
        : `no answer: ${String((error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message)}`;
    return { url, outcome: 'failed', body: why, ms: ms() };
  }
}

/**
 * Delivers `event` to every receiver in WEBHOOK_URLS that still needs it (see the module's
 * description). Throws a transient `unavailable` error when some receiver did not accept it and
 * there is time left; resolves when every receiver accepted it, is gone, or was dead-lettered.
 */
export async function deliverWebhook(
  deps: PipelineDeps,
  event: WebhookEvent,
  send: typeof attempt = attempt,
): Promise<DeliveryReport> {
  const { config, firestore } = deps;
  const names = topology.firestore.collections;
  const urls = config.WEBHOOK_URLS;
  if (urls.length === 0 || !config.WEBHOOK_SECRET) return { attempts: [], deadLettered: [], skipped: 0 };
  const deliveryRef = (url: string) => firestore.collection(names.webhookDeliveries).doc(keyOf(event.id, url));
  const receiverRef = (url: string) => firestore.collection(names.webhookReceivers).doc(keyOf(url));
  const snapshots = await firestore.getAll(...urls.map(deliveryRef), ...urls.map(receiverRef));
  const receivers: ReceiverState[] = urls.map((url, i) => ({
    url,
    settled: ['accepted', 'dead-lettered'].includes(snapshots[i]?.get('state')),
    gone: snapshots[urls.length + i]?.get('gone') === true,
  }));
  const now = deps.now();
  const plan = planDelivery(
    receivers,
    now.getTime() - event.publishedAt.getTime(),
    config.WEBHOOK_RETRY_HOURS * 3_600_000,
  );
  const record = (url: string, fields: Record<string, unknown>) =>
    deliveryRef(url).set(
      {
        webhookId: event.id,
        url,
        type: event.event.type,
        imageId: event.event.imageId,
        updatedAt: Timestamp.fromDate(deps.now()),
        expireAt: Timestamp.fromMillis(event.publishedAt.getTime() + WEBHOOK_RECORD_DAYS * DAY_MS),
        ...fields,
      },
      { merge: true },
    );

  if (plan.deadLetter.length > 0) {
    await deps.pubsub.topic(config.WEBHOOK_DEAD_LETTER_TOPIC).publishMessage({
      data: Buffer.from(event.body),
      attributes: {
        'webhook-id': event.id,
        type: event.event.type,
        imageId: event.event.imageId,
        receivers: plan.deadLetter.join(' '),
        publishTime: event.publishedAt.toISOString(),
      },
    });
    await Promise.all(plan.deadLetter.map((url) => record(url, { state: 'dead-lettered' })));
  }

  // Each attempt is signed at its own time (receivers reject old timestamps); the id stays.
  const attempts = await Promise.all(
    plan.send.map((url) =>
      send(url, signedHeaders(config.WEBHOOK_SECRET as string, event.id, deps.now(), event.body), event.body),
    ),
  );
  for (const a of attempts)
    deps.log[a.outcome === 'failed' ? 'warn' : 'info'](`webhook ${a.outcome}`, {
      event: `webhook.${a.outcome}`,
      webhookId: event.id,
      type: event.event.type,
      imageId: event.event.imageId,
      url: a.url,
      status: a.status,
      ms: a.ms,
      body: a.body,
    });
  for (const url of plan.deadLetter)
    deps.log.error('webhook dead-lettered', { event: 'webhook.dead_lettered', webhookId: event.id, url });
  await Promise.all(
    attempts.map(async (a) => {
      if (a.outcome === 'gone')
        await receiverRef(a.url).set({
          url: a.url,
          gone: true,
          goneAt: Timestamp.fromDate(deps.now()),
          webhookId: event.id,
        });
      await record(a.url, {
        state: a.outcome,
        attempts: FieldValue.increment(1),
        lastStatus: a.status ?? null,
        lastBody: a.body,
        lastMs: a.ms,
      });
    }),
  );
  const report = {
    attempts,
    deadLettered: plan.deadLetter,
    skipped: urls.length - plan.send.length - plan.deadLetter.length,
  };
  const failed = attempts.filter((a) => a.outcome === 'failed');
  if (failed.length > 0)
    throw transient(
      'unavailable',
      `Webhook ${event.id} not accepted by ${failed.map((a) => `${a.url} (${a.status ?? a.body})`).join(', ')}; Pub/Sub will redeliver.`,
    );
  return report;
}
