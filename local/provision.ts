/**
 * Creates the local stack's topics and subscriptions in the Pub/Sub emulator from
 * shared/core/topology.json, which Terraform reads too, so names and settings cannot drift. Safe to
 * rerun: what matches is kept, a moved push endpoint is re-pointed without losing its backlog, a
 * subscription whose settings differ is recreated.
 */
import type { PubSub, protos } from '@google-cloud/pubsub';

type SubscriptionMetadata = protos.google.pubsub.v1.ISubscription;
import type { Logger } from '../shared/cloud/log.js';
import {
  pushPath,
  topology,
  type FunctionKey,
  type SubscriptionKey,
  type SubscriptionSpec,
  type TopicKey,
} from '../shared/core/topology.js';

/** gRPC status codes the emulator answers with. */
const ALREADY_EXISTS = 6;
const NOT_FOUND = 5;

/** A subscription as the local stack wants it. */
export interface DesiredSubscription {
  /** Topology key, or `trigger:{function}` for the local stand-ins of Eventarc triggers. */
  readonly key: SubscriptionKey | `trigger:${FunctionKey}`;
  readonly name: string;
  readonly topic: TopicKey;
  /** Full push endpoint URL; absent for pull subscriptions. */
  readonly pushEndpoint?: string;
  readonly ackDeadlineSeconds: number;
  readonly messageRetentionSeconds: number;
  readonly retryPolicy?: { readonly minimumBackoffSeconds: number; readonly maximumBackoffSeconds: number };
  readonly deadLetterPolicy?: { readonly topic: TopicKey; readonly maxDeliveryAttempts: number };
}

/**
 * Settings of the push subscriptions that stand in for the Eventarc Pub/Sub triggers of
 * functions whose trigger is `pubsub` (cleanup). Eventarc creates these in production with its
 * own defaults: a 10-minute ack deadline and exponential backoff between 10 s and 600 s.
 */
const TRIGGER_SUBSCRIPTION = {
  ackDeadlineSeconds: 600,
  messageRetentionSeconds: 86_400,
  minimumBackoffSeconds: 10,
  maximumBackoffSeconds: 600,
};

/** Name of the local stand-in for a function's Eventarc Pub/Sub trigger subscription. */
export function triggerSubscriptionName(fn: FunctionKey): string {
  return `local-trigger-${topology.functions[fn].entryPoint}`;
}

/**
 * Every subscription of the local stack, derived from the topology. `endpoints` gives the base
 * URL (no path) of each function that receives pushes.
 */
export function desiredSubscriptions(
  project: string,
  endpoints: Partial<Record<FunctionKey, string>>,
): DesiredSubscription[] {
  const endpointOf = (fn: FunctionKey, topic: TopicKey): string => {
    const base = endpoints[fn];
    if (!base) throw new Error(`No endpoint given for the ${fn} function`);
    return `${base.replace(/\/+$/, '')}${pushPath(project, topic)}`;
  };
  const fromTopology = (Object.entries(topology.subscriptions) as Array<[SubscriptionKey, SubscriptionSpec]>).map(
    ([key, spec]): DesiredSubscription => ({
      key,
      name: spec.name,
      topic: spec.topic,
      ...(spec.push ? { pushEndpoint: endpointOf(spec.push, spec.topic) } : {}),
      ackDeadlineSeconds: spec.ackDeadlineSeconds,
      messageRetentionSeconds: spec.messageRetentionSeconds,
      ...(spec.minimumBackoffSeconds !== undefined && spec.maximumBackoffSeconds !== undefined
        ? {
            retryPolicy: {
              minimumBackoffSeconds: spec.minimumBackoffSeconds,
              maximumBackoffSeconds: spec.maximumBackoffSeconds,
            },
          }
        : {}),
      ...(spec.deadLetterTopic !== undefined && spec.maxDeliveryAttempts !== undefined
        ? { deadLetterPolicy: { topic: spec.deadLetterTopic, maxDeliveryAttempts: spec.maxDeliveryAttempts } }
        : {}),
    }),
  );
  const triggers = (
    Object.entries(topology.functions) as Array<[FunctionKey, (typeof topology.functions)[FunctionKey]]>
  )
    .flatMap(([fn, spec]) => (spec.trigger === 'pubsub' && spec.topic !== undefined ? [{ fn, topic: spec.topic }] : []))
    .map(
      ({ fn, topic }): DesiredSubscription => ({
        key: `trigger:${fn}`,
        name: triggerSubscriptionName(fn),
        topic,
        pushEndpoint: endpointOf(fn, topic),
        ackDeadlineSeconds: TRIGGER_SUBSCRIPTION.ackDeadlineSeconds,
        messageRetentionSeconds: TRIGGER_SUBSCRIPTION.messageRetentionSeconds,
        retryPolicy: {
          minimumBackoffSeconds: TRIGGER_SUBSCRIPTION.minimumBackoffSeconds,
          maximumBackoffSeconds: TRIGGER_SUBSCRIPTION.maximumBackoffSeconds,
        },
      }),
    );
  return [...fromTopology, ...triggers];
}

/** What provisioning did with one resource, for the log. */
export type ProvisionAction = 'created' | 'kept' | 'repointed' | 'recreated';

/** The result: every topic's and subscription's full name, and what happened to it. */
export interface ProvisionResult {
  readonly topics: Record<TopicKey, string>;
  readonly subscriptions: ReadonlyArray<
    DesiredSubscription & { readonly fullName: string; readonly action: ProvisionAction }
  >;
}

function codeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function seconds(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  const s = (value as { seconds?: unknown }).seconds;
  return s === undefined || s === null ? 0 : Number(s);
}

/** The differences between what exists and what is wanted, as readable strings. */
function differences(
  actual: SubscriptionMetadata,
  want: DesiredSubscription,
  topicName: (key: TopicKey) => string,
): { endpointOnly: boolean; problems: string[] } {
  const problems: string[] = [];
  if (actual.topic !== topicName(want.topic)) problems.push(`topic ${actual.topic} ≠ ${topicName(want.topic)}`);
  if (Number(actual.ackDeadlineSeconds) !== want.ackDeadlineSeconds)
    problems.push(`ackDeadlineSeconds ${actual.ackDeadlineSeconds}`);
  const dlp = actual.deadLetterPolicy;
  const wantDlp = want.deadLetterPolicy;
  if (
    (dlp?.deadLetterTopic || undefined) !== (wantDlp ? topicName(wantDlp.topic) : undefined) ||
    (wantDlp && Number(dlp?.maxDeliveryAttempts) !== wantDlp.maxDeliveryAttempts)
  ) {
    problems.push('deadLetterPolicy');
  }
  const rp = actual.retryPolicy;
  const wantRp = want.retryPolicy;
  if (
    wantRp
      ? seconds(rp?.minimumBackoff) !== wantRp.minimumBackoffSeconds ||
        seconds(rp?.maximumBackoff) !== wantRp.maximumBackoffSeconds
      : rp?.minimumBackoff || rp?.maximumBackoff
  ) {
    problems.push('retryPolicy');
  }
  const endpointDiffers = (actual.pushConfig?.pushEndpoint || undefined) !== want.pushEndpoint;
  return {
    endpointOnly: problems.length === 0 && endpointDiffers,
    problems: endpointDiffers ? [...problems, 'pushEndpoint'] : problems,
  };
}

function createOptions(want: DesiredSubscription, topicName: (key: TopicKey) => string) {
  return {
    ackDeadlineSeconds: want.ackDeadlineSeconds,
    messageRetentionDuration: { seconds: want.messageRetentionSeconds },
    ...(want.pushEndpoint ? { pushConfig: { pushEndpoint: want.pushEndpoint } } : {}),
    ...(want.retryPolicy
      ? {
          retryPolicy: {
            minimumBackoff: { seconds: want.retryPolicy.minimumBackoffSeconds },
            maximumBackoff: { seconds: want.retryPolicy.maximumBackoffSeconds },
          },
        }
      : {}),
    ...(want.deadLetterPolicy
      ? {
          deadLetterPolicy: {
            deadLetterTopic: topicName(want.deadLetterPolicy.topic),
            maxDeliveryAttempts: want.deadLetterPolicy.maxDeliveryAttempts,
          },
        }
      : {}),
  };
}

/**
 * Creates (or reconciles) every topic and subscription of the topology in `pubsub`'s project.
 */
export async function provisionPubsub(
  pubsub: PubSub,
  options: { project: string; endpoints: Partial<Record<FunctionKey, string>>; log?: Logger },
): Promise<ProvisionResult> {
  const log = options.log;
  const topicName = (key: TopicKey) => `projects/${options.project}/topics/${topology.topics[key].name}`;

  const topics = {} as Record<TopicKey, string>;
  for (const key of Object.keys(topology.topics) as TopicKey[]) {
    try {
      await pubsub.createTopic(topology.topics[key].name);
    } catch (error) {
      if (codeOf(error) !== ALREADY_EXISTS) throw error;
    }
    topics[key] = topicName(key);
  }

  const subscriptions: Array<DesiredSubscription & { fullName: string; action: ProvisionAction }> = [];
  for (const want of desiredSubscriptions(options.project, options.endpoints)) {
    const subscription = pubsub.subscription(want.name);
    const fullName = `projects/${options.project}/subscriptions/${want.name}`;
    let action: ProvisionAction = 'created';
    let existing: SubscriptionMetadata | undefined;
    try {
      [existing] = await subscription.getMetadata();
    } catch (error) {
      if (codeOf(error) !== NOT_FOUND) throw error;
    }
    if (existing) {
      const diff = differences(existing, want, topicName);
      if (diff.problems.length === 0) {
        action = 'kept';
      } else if (diff.endpointOnly) {
        // An empty push config turns a push subscription into a pull one.
        await subscription.modifyPushConfig(want.pushEndpoint ? { pushEndpoint: want.pushEndpoint } : {});
        action = 'repointed';
      } else {
        log?.info('subscription settings changed; recreating it', {
          event: 'local.provision',
          subscription: want.name,
          differences: diff.problems,
        });
        await subscription.delete();
        existing = undefined;
        action = 'recreated';
      }
    }
    if (!existing) {
      await pubsub
        .topic(topology.topics[want.topic].name)
        .createSubscription(want.name, createOptions(want, topicName));
    }
    subscriptions.push({ ...want, fullName, action });
  }
  log?.debug('pub/sub provisioned', {
    event: 'local.provision',
    subscriptions: Object.fromEntries(subscriptions.map((s) => [s.name, s.action])),
  });
  return { topics, subscriptions };
}

/**
 * Turns the push subscriptions into pull subscriptions (an empty push config), so that an
 * emulator that outlives the stack keeps their messages instead of pushing them to ports nobody
 * listens on; the next {@link provisionPubsub} points them back.
 */
export async function pausePushSubscriptions(pubsub: PubSub, names: readonly string[]): Promise<void> {
  await Promise.all(
    names.map(async (name) => {
      try {
        await pubsub.subscription(name).modifyPushConfig({});
      } catch (error) {
        if (codeOf(error) !== NOT_FOUND) throw error;
      }
    }),
  );
}
