/**
 * `resize` (CloudEvent `google.cloud.pubsub.topic.v1.messagePublished`, delivered by the jobs
 * push subscription). Returning acknowledges the message; throwing makes Pub/Sub redeliver it
 * with backoff and, after the configured attempts, dead-letter it.
 */
import type { CloudEvent } from '@google-cloud/functions-framework';
import type { PipelineDeps } from '../shared/cloud/deps.js';
import { classifyError, PipelineError } from '../shared/core/errors.js';
import { type JobMessage, parseJob } from '../shared/core/schemas.js';
import { runJob } from '../shared/pipeline/run-job.js';
import { newTrace, parseTraceparent, runWithTrace, TRACE_ATTRIBUTE } from '../shared/cloud/trace.js';

/** The Pub/Sub part of a messagePublished CloudEvent. */
interface MessagePublishedData {
  message?: { data?: string; messageId?: string; attributes?: Record<string, string> };
  subscription?: string;
}

/** Creates the `resize` CloudEvent handler. */
export function createResizeHandler(
  getDeps: () => PipelineDeps,
): (event: CloudEvent<MessagePublishedData>) => Promise<void> {
  // The upload's trace travels in the job's attributes; else Eventarc's extension; else a new one.
  const traced = (event: CloudEvent<MessagePublishedData>) =>
    runWithTrace(
      getDeps().config.GOOGLE_CLOUD_PROJECT,
      parseTraceparent(event.data?.message?.attributes?.[TRACE_ATTRIBUTE]) ??
        parseTraceparent((event as { traceparent?: unknown }).traceparent) ??
        newTrace(),
      () => handler(event),
    );
  const handler = async (event: CloudEvent<MessagePublishedData>): Promise<void> => {
    const deps = getDeps();
    const messageId = event.data?.message?.messageId ?? event.id;
    const log = deps.log.child({ messageId });
    let job: JobMessage;
    try {
      job = parseJob(Buffer.from(event.data?.message?.data ?? '', 'base64'));
    } catch (error) {
      // A message that cannot be a job never will be: acknowledge it so it does not loop.
      log.error('malformed job acknowledged and dropped', { event: 'job.invalid', reason: (error as Error).message });
      return;
    }
    try {
      await runJob(deps, job);
    } catch (error) {
      const fields = { event: 'job.error', imageId: job.imageId, job: `${job.job.index + 1}/${job.job.count}`, error };
      if (classifyError(error) === 'permanent' && error instanceof PipelineError) {
        log.error('job failed permanently', fields);
        return;
      }
      log.warn('job failed transiently; Pub/Sub will redeliver', fields);
      throw error;
    }
  };
  return traced;
}
