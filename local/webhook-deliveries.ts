/**
 * The page's view of webhooks (`GET /local/webhooks.json`): the configured receivers and the
 * most recent deliveries from the `webhookDeliveries` records the webhooks function keeps (status,
 * attempts, the start of the answer's body, and the event sent), so that a user sees what their
 * receiver gets. Development only.
 */
import type { Firestore } from '@google-cloud/firestore';
import type { Config } from '../shared/core/config.js';
import { topology } from '../shared/core/topology.js';

/** One (event, receiver) as the page shows it. */
export interface DeliveryView {
  readonly webhookId: string;
  readonly url: string;
  readonly type: string;
  readonly imageId: string;
  /** accepted, failed, gone or dead-lettered. */
  readonly state: string;
  readonly attempts: number;
  readonly lastStatus: number | null;
  readonly lastBody: string;
  readonly updatedAt: string;
}

/** How many deliveries the page lists. */
const SHOWN = 20;

/** The receivers and the newest deliveries; none before the stack has started. */
export async function recentWebhookDeliveries(
  firestore: Firestore | undefined,
  config: Config | undefined,
): Promise<{ urls: readonly string[]; deliveries: DeliveryView[] }> {
  if (!firestore || !config || config.WEBHOOK_URLS.length === 0)
    return { urls: config?.WEBHOOK_URLS ?? [], deliveries: [] };
  const snapshot = await firestore
    .collection(topology.firestore.collections.webhookDeliveries)
    .orderBy('updatedAt', 'desc')
    .limit(SHOWN)
    .get();
  const deliveries = snapshot.docs.map((doc): DeliveryView => {
    const d = doc.data();
    return {
      webhookId: String(d.webhookId),
      url: String(d.url),
      type: String(d.type),
      imageId: String(d.imageId),
      state: String(d.state),
      attempts: Number(d.attempts ?? 0),
      lastStatus: typeof d.lastStatus === 'number' ? d.lastStatus : null,
      lastBody: String(d.lastBody ?? ''),
      updatedAt: d.updatedAt?.toDate?.().toISOString() ?? '',
    };
  });
  return { urls: config.WEBHOOK_URLS, deliveries };
}
