/**
 * The pipeline's fixed shape: bucket roles, object prefixes, topic and subscription names and
 * settings, function entry points and the cleanup schedule. The facts live in `topology.json`
 * so that Terraform (`terraform/locals.tf`) reads the very same file; this module gives them types.
 */
import { readFileSync } from 'node:fs';

/** A bucket role; real bucket names are `{prefix}-{suffix}` and reach the code via `env`. */
export interface BucketSpec {
  /** Suffix appended to the deployment's name prefix (GCS bucket names are global). */
  readonly suffix: string;
  /** Environment variable through which the functions receive the bucket's name. */
  readonly env: string;
}

/** A Pub/Sub topic: its fixed name and the environment variable that carries it. */
export interface TopicSpec {
  readonly name: string;
  readonly env: string;
}

/** Settings of a subscription, shared by Terraform and the local stack. */
export interface SubscriptionSpec {
  readonly name: string;
  /** Key into {@link Topology.topics}. */
  readonly topic: TopicKey;
  /** Function the subscription pushes to; absent for pull subscriptions. */
  readonly push?: FunctionKey;
  /** Function that pulls from it (e.g. cleanup marks dead-lettered images failed). */
  readonly pull?: FunctionKey;
  readonly ackDeadlineSeconds: number;
  readonly messageRetentionSeconds: number;
  readonly minimumBackoffSeconds?: number;
  readonly maximumBackoffSeconds?: number;
  readonly maxDeliveryAttempts?: number;
  /** Key into {@link Topology.topics}. */
  readonly deadLetterTopic?: TopicKey;
}

/** How a function is triggered. */
export interface FunctionSpec {
  readonly entryPoint: string;
  readonly trigger: 'http' | 'storage-finalize' | 'pubsub-push' | 'pubsub';
  readonly bucket?: BucketKey;
  readonly topic?: TopicKey;
  readonly subscription?: SubscriptionKey;
  /**
   * Default scaling, Cloud Run's `max_instance_count` and `max_instance_request_concurrency`:
   * at most `maxInstances × concurrency` requests run at once, and Cloud Run answers 429 beyond
   * (the local stack does the same, see local/admission.ts).
   */
  readonly maxInstances: number;
  readonly concurrency: number;
}

/** Bucket roles. */
export type BucketKey = 'uploads' | 'images';
/** Topic roles. */
export type TopicKey = 'jobs' | 'jobsDeadLetter' | 'events' | 'cleanup' | 'webhooksDeadLetter';
/** Subscription roles. */
export type SubscriptionKey =
  | 'jobsPush'
  | 'jobsDeadLetterPull'
  | 'jobsDeadLetterCleanup'
  | 'eventsPull'
  | 'webhooksPush'
  | 'webhooksDeadLetterPull';
/** The five functions. */
export type FunctionKey = 'upload' | 'ingest' | 'resize' | 'cleanup' | 'webhooks';

/** A composite index one of the state layer's queries needs (Terraform creates each). */
export interface FirestoreIndexSpec {
  /** Key into {@link FirestoreSpec.collections}. */
  readonly collection: keyof FirestoreSpec['collections'];
  /** `[field, 'ASCENDING' | 'DESCENDING']`, in index order. */
  readonly fields: ReadonlyArray<readonly [string, 'ASCENDING' | 'DESCENDING']>;
  /** Which query uses it. */
  readonly query: string;
}

/** The Firestore (Native mode) database that holds the per-image state. */
export interface FirestoreSpec {
  readonly database: { readonly name: string; readonly env: string };
  /** Collection ids: `images/{id}` (one document per image), `cleanup/{step}` (cursors), `assets/{id}` (an owner's upload of an image), `owners/{key}` (quota counters), `tickets/{ticket}` (signed URLs). */
  readonly collections: {
    readonly images: string;
    readonly cleanup: string;
    readonly assets: string;
    readonly owners: string;
    readonly tickets: string;
    /** `webhookDeliveries/{key}`: one event at one receiver; `webhookReceivers/{key}`: a receiver that answered 410. */
    readonly webhookDeliveries: string;
    readonly webhookReceivers: string;
  };
  readonly indexes: readonly FirestoreIndexSpec[];
  /**
   * TTL policies (terraform/firestore.tf): documents of `collection` are deleted by Firestore once
   * the timestamp in `field` has passed (typically within 24 hours: expired documents still read
   * until then, so code checks the time itself). One field per collection; the field has no
   * single-field index (it would hotspot), so no query may filter or order on it without a
   * composite index of `indexes`.
   */
  readonly ttl: ReadonlyArray<{
    readonly collection: keyof FirestoreSpec['collections'];
    readonly field: string;
    readonly why: string;
  }>;
}

/** The whole topology as read from `topology.json`. */
export interface Topology {
  readonly buckets: Readonly<Record<BucketKey, BucketSpec>>;
  readonly firestore: FirestoreSpec;
  readonly prefixes: {
    readonly originals: string;
    readonly incoming: string;
  };
  readonly topics: Readonly<Record<TopicKey, TopicSpec>>;
  readonly subscriptions: Readonly<Record<SubscriptionKey, SubscriptionSpec>>;
  readonly functions: Readonly<Record<FunctionKey, FunctionSpec>>;
  readonly schedule: { readonly cleanup: { readonly cron: string; readonly timeZone: string } };
}

/** Path of the JSON file, for tools (tests, Terraform checks) that need the raw text. */
export const TOPOLOGY_FILE = new URL('../../../shared/core/topology.json', import.meta.url);

/** The pipeline topology (loaded once; the file ships with the code). */
export const topology: Topology = JSON.parse(readFileSync(TOPOLOGY_FILE, 'utf8')) as Topology;

/** How many requests a function runs at once at most: `maxInstances × concurrency`. */
export function admissionLimit(fn: FunctionKey): number {
  const spec = topology.functions[fn];
  return spec.maxInstances * spec.concurrency;
}

/**
 * The wait Pub/Sub puts before each redelivery of a message whose every attempt fails at once
 * (e.g. 429 from a saturated service): exponential backoff, modelled as doubling from
 * `minimumBackoffSeconds` and capped at `maximumBackoffSeconds`, one wait between each two of the
 * `maxDeliveryAttempts` attempts. See docs/delivery.md.
 */
export function redeliveryWaitsSeconds(spec: SubscriptionSpec): number[] {
  const min = spec.minimumBackoffSeconds ?? 10;
  const max = spec.maximumBackoffSeconds ?? 600;
  const attempts = spec.maxDeliveryAttempts ?? 5;
  return Array.from({ length: attempts - 1 }, (_, k) => Math.min(max, min * 2 ** k));
}

/**
 * How long a refusal of every delivery (saturation, outage) may last before a message is
 * dead-lettered: the time from its first attempt to its last.
 */
export function saturationWindowSeconds(spec: SubscriptionSpec): number {
  return redeliveryWaitsSeconds(spec).reduce((sum, wait) => sum + wait, 0);
}

/** Name of a bucket for a deployment prefix, e.g. `bucketName('my-proj', 'uploads')`. */
export function bucketName(prefix: string, key: BucketKey): string {
  return `${prefix}-${topology.buckets[key].suffix}`;
}

/**
 * The push path that functions-framework turns into a Pub/Sub CloudEvent:
 * a push to `/projects/{project}/topics/{topic}` carries the topic in the event's source.
 */
export function pushPath(project: string, topic: TopicKey): string {
  return `/projects/${project}/topics/${topology.topics[topic].name}`;
}
