/**
 * Publishing jobs and events. Any publish failure is transient (`publish_failed`): the caller
 * has already stored what it needs, so a retry (or cleanup's re-dispatch) completes the work.
 */
import type { PubSub, Topic } from '@google-cloud/pubsub';
import { transient } from '../core/errors.js';
import { encodeMessage, type EventMessage, type JobMessage } from '../core/schemas.js';
import { traceAttributes } from './trace.js';

/**
 * Publishing gives up after this long so an HTTP caller gets a prompt 503 instead of waiting
 * out the client's 10-minute default; nothing is lost, because cleanup re-dispatches.
 */
const PUBLISH_TOTAL_TIMEOUT_MS = 20_000;
/** Longest single publish attempt (gax caps the last attempt at the time left, this is the margin). */
const PUBLISH_RPC_TIMEOUT_MS = 10_000;

/**
 * The longest a publish call can still put a message on the topic after it started: the retry
 * budget plus one attempt's timeout. The outbox's lease (shared/state/policy.ts) is built on it.
 */
export const PUBLISH_WORST_MS = PUBLISH_TOTAL_TIMEOUT_MS + PUBLISH_RPC_TIMEOUT_MS;

const topicCache = new WeakMap<PubSub, Map<string, Topic>>();

function topicFor(pubsub: PubSub, name: string): Topic {
  let topics = topicCache.get(pubsub);
  if (!topics) {
    topics = new Map();
    topicCache.set(pubsub, topics);
  }
  let topic = topics.get(name);
  if (!topic) {
    topic = pubsub.topic(name, {
      batching: { maxMessages: 100, maxMilliseconds: 5 },
      gaxOpts: {
        retry: {
          retryCodes: [4, 8, 10, 13, 14], // DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED, INTERNAL, UNAVAILABLE
          backoffSettings: {
            initialRetryDelayMillis: 100,
            retryDelayMultiplier: 2,
            maxRetryDelayMillis: 4_000,
            initialRpcTimeoutMillis: PUBLISH_RPC_TIMEOUT_MS,
            rpcTimeoutMultiplier: 1,
            maxRpcTimeoutMillis: PUBLISH_RPC_TIMEOUT_MS,
            totalTimeoutMillis: PUBLISH_TOTAL_TIMEOUT_MS,
          },
        },
      },
    });
    topics.set(name, topic);
  }
  return topic;
}

/** Publishes one message per job; resolves when all are accepted by Pub/Sub. */
export async function publishJobs(pubsub: PubSub, topicName: string, jobs: readonly JobMessage[]): Promise<string[]> {
  const topic = topicFor(pubsub, topicName);
  try {
    return await Promise.all(
      jobs.map((job) =>
        topic.publishMessage({
          data: encodeMessage(job),
          attributes: {
            imageId: job.imageId,
            job: `${job.job.index + 1}/${job.job.count}`,
            v: '1',
            ...traceAttributes(),
          },
        }),
      ),
    );
  } catch (error) {
    throw transient('publish_failed', 'Could not queue the image for processing; retry later.', error);
  }
}

/** Publishes one event on the events topic. */
export async function publishEvent(pubsub: PubSub, topicName: string, event: EventMessage): Promise<string> {
  try {
    return await topicFor(pubsub, topicName).publishMessage({
      data: encodeMessage(event),
      attributes: {
        type: event.type,
        imageId: event.imageId,
        ...('id' in event ? { uploadId: event.id } : {}),
        v: '1',
        ...traceAttributes(),
      },
    });
  } catch (error) {
    throw transient('publish_failed', `Could not publish ${event.type}; retry later.`, error);
  }
}
