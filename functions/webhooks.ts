/**
 * `webhooks` (CloudEvent `google.cloud.pubsub.topic.v1.messagePublished`, delivered by the
 * events topic's webhooks push subscription): POSTs the event, signed, to every receiver in
 * WEBHOOK_URLS that still needs it (shared/pipeline/webhooks.ts). Returning acknowledges the
 * message; throwing makes Pub/Sub redeliver it with backoff.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import type { PipelineDeps } from '../shared/cloud/deps.js';
import { EventMessageV1 } from '../shared/core/schemas.js';
import { webhookIdOf } from '../shared/core/webhook.js';
import { deliverWebhook } from '../shared/pipeline/webhooks.js';
import { newTrace, parseTraceparent, runWithTrace, TRACE_ATTRIBUTE } from '../shared/cloud/trace.js';

/** The Pub/Sub part of a messagePublished CloudEvent. */
interface MessagePublishedData {
  message?: { data?: string; messageId?: string; publishTime?: string; attributes?: Record<string, string> };
  subscription?: string;
}

/** Creates the `webhooks` CloudEvent handler. */
export function createWebhooksHandler(
  getDeps: () => PipelineDeps,
): (event: CloudEvent<MessagePublishedData>) => Promise<void> {
  // The event carries the trace of the work that published it (the upload's, for image.ready).
  const traced = (cloudEvent: CloudEvent<MessagePublishedData>) =>
    runWithTrace(
      getDeps().config.GOOGLE_CLOUD_PROJECT,
      parseTraceparent(cloudEvent.data?.message?.attributes?.[TRACE_ATTRIBUTE]) ??
        parseTraceparent((cloudEvent as { traceparent?: unknown }).traceparent) ??
        newTrace(),
      () => handler(cloudEvent),
    );
  const handler = async (cloudEvent: CloudEvent<MessagePublishedData>): Promise<void> => {
    const deps = getDeps();
    const message = cloudEvent.data?.message;
    const body = Buffer.from(message?.data ?? '', 'base64').toString('utf8');
    const id = webhookIdOf(body);
    const log = deps.log.child({ messageId: message?.messageId ?? cloudEvent.id, webhookId: id });
    let parsed: ReturnType<typeof EventMessageV1.safeParse>;
    try {
      parsed = EventMessageV1.safeParse(JSON.parse(body));
    } catch {
      parsed = EventMessageV1.safeParse(undefined);
    }
    if (!parsed.success) {
      // A message that is not an event never will be: acknowledge it so it does not loop.
      log.error('malformed event acknowledged and dropped', { event: 'webhook.invalid' });
      return;
    }
    const published = new Date(message?.publishTime ?? cloudEvent.time ?? deps.now().toISOString());
    const publishedAt = Number.isNaN(published.getTime()) ? deps.now() : published;
    try {
      const report = await deliverWebhook(deps, { id, body, event: parsed.data, publishedAt });
      log.info('webhook settled', {
        event: 'webhook.settled',
        type: parsed.data.type,
        imageId: parsed.data.imageId,
        sent: report.attempts.length,
        skipped: report.skipped,
        deadLettered: report.deadLettered.length,
      });
    } catch (error) {
      log.warn('webhook not settled; Pub/Sub will redeliver', { event: 'webhook.retry', error });
      throw error;
    }
  };
  return traced;
}
