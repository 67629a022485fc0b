/**
 * `cleanup` (CloudEvent from the cleanup topic, published by Cloud Scheduler). A failed pass is
 * logged and acknowledged rather than retried: the next scheduled tick is the retry, and
 * stacking retries of a bounded pass would only add load.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { runCleanup } from '../shared/pipeline/cleanup.js';
import type { PipelineDeps } from '../shared/cloud/deps.js';
import { newTrace, parseTraceparent, runWithTrace } from '../shared/cloud/trace.js';

/** Creates the `cleanup` CloudEvent handler. */
export function createCleanupHandler(getDeps: () => PipelineDeps): (event: CloudEvent<unknown>) => Promise<void> {
  // The pass has its own trace; each re-dispatch continues its upload's (shared/pipeline/cleanup.ts).
  const traced = (event: CloudEvent<unknown>) =>
    runWithTrace(
      getDeps().config.GOOGLE_CLOUD_PROJECT,
      parseTraceparent((event as { traceparent?: unknown }).traceparent) ?? newTrace(),
      () => handler(event),
    );
  const handler = async (event: CloudEvent<unknown>): Promise<void> => {
    const deps = getDeps();
    try {
      await runCleanup(deps);
    } catch (error) {
      deps.log.error('cleanup pass failed; the next tick retries', {
        event: 'cleanup.error',
        eventId: event.id,
        error,
      });
    }
  };
  return traced;
}
