/**
 * `ingest` (CloudEvent `google.cloud.storage.object.v1.finalized` on the uploads bucket).
 * Permanent problems are recorded and acknowledged; transient ones are thrown so Eventarc retries.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { z } from 'zod';
import type { PipelineDeps } from '../shared/cloud/deps.js';
import { classifyError } from '../shared/core/errors.js';
import { ingestObject } from '../shared/pipeline/ingest-object.js';
import { newTrace, parseTraceparent, runWithTrace } from '../shared/cloud/trace.js';

/** The part of the Cloud Storage object resource that ingest needs, validated on receipt. */
const FinalizedObject = z.object({
  bucket: z.string().min(1),
  name: z.string().min(1),
  generation: z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]),
  size: z.union([z.string().regex(/^\d+$/), z.number().int().nonnegative()]).optional(),
  contentType: z.string().optional(),
  timeCreated: z.iso.datetime({ offset: true }).optional(),
  // Custom metadata (`focus`); never a reason to drop the event.
  metadata: z.record(z.string(), z.unknown()).nullish().catch(undefined),
});

/** Creates the `ingest` CloudEvent handler. */
export function createIngestHandler(getDeps: () => PipelineDeps): (event: CloudEvent<unknown>) => Promise<void> {
  // Eventarc's `traceparent` extension when present; otherwise this upload's trace starts here.
  const traced = (event: CloudEvent<unknown>) =>
    runWithTrace(
      getDeps().config.GOOGLE_CLOUD_PROJECT,
      parseTraceparent((event as { traceparent?: unknown }).traceparent) ?? newTrace(),
      () => handler(event),
    );
  const handler = async (event: CloudEvent<unknown>): Promise<void> => {
    const deps = getDeps();
    const log = deps.log.child({ eventId: event.id, subject: event.subject });
    if (event.type !== 'google.cloud.storage.object.v1.finalized') {
      log.warn('unexpected event type ignored', { event: 'ingest.ignore', type: event.type });
      return;
    }
    const data = FinalizedObject.safeParse(event.data);
    if (!data.success) {
      log.error('malformed storage event dropped', { event: 'ingest.invalid', issue: data.error.issues[0]?.message });
      return;
    }
    try {
      const outcome = await ingestObject(deps, data.data);
      if (outcome.outcome === 'ignored')
        log.debug('object ignored', { event: 'ingest.ignore', reason: outcome.reason, object: data.data.name });
    } catch (error) {
      if (classifyError(error) === 'permanent') {
        log.error('ingest failed permanently', { event: 'ingest.error', object: data.data.name, error });
        return;
      }
      log.warn('ingest failed transiently; will be retried', { event: 'ingest.retry', object: data.data.name, error });
      throw error;
    }
  };
  return traced;
}
