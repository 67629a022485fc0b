/**
 * `cleanup` (CloudEvent from the cleanup topic, published by Cloud Scheduler). A failed pass is
 * logged and acknowledged rather than retried: the next scheduled tick is the retry, and
 * stacking retries of a bounded pass would only add load.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import { runCleanup } from '../shared/cleanup.js';
import type { PipelineDeps } from '../shared/deps.js';

/** Creates the `cleanup` CloudEvent handler. */
export function createCleanupHandler(getDeps: () => PipelineDeps): (event: CloudEvent<unknown>) => Promise<void> {
  return async (event) => {
    const deps = getDeps();
    try {
      await runCleanup(deps);
    } catch (error) {
      deps.log.error('cleanup pass failed; the next tick retries', { event: 'cleanup.error', eventId: event.id, error });
    }
  };
}
