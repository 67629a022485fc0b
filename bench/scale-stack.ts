/**
 * The small stack the scale benches run cleanup against: the Pub/Sub emulator (or the one
 * PUBSUB_EMULATOR_HOST names), the Firestore emulator (or the one FIRESTORE_EMULATOR_HOST names)
 * with a database of the run's own (`scale-<random>`), a local storage server with two buckets,
 * a quiet pipeline, its topics and a pull subscription on the jobs topic. Loaded lazily so that
 * importing a bench for its pure parts starts nothing.
 */
import { randomBytes } from 'node:crypto';
import type { Subscription } from '@google-cloud/pubsub';
import type { Config } from '../shared/core/config.js';
import { createDeps, type PipelineDeps } from '../shared/cloud/deps.js';
import type { StorageServer } from '../local/storage-server/index.js';

/** What a scale bench works with. */
export interface ScaleStack {
  readonly deps: PipelineDeps;
  readonly config: Config;
  readonly storage: StorageServer;
  /** Pull subscriptions on the jobs and events topics, created before anything is published. */
  readonly jobs: Subscription;
  readonly events: Subscription;
}

/** Runs `work` with a fresh scale stack and stops it afterwards, whatever happens. */
export async function withScaleStack<T>(work: (stack: ScaleStack) => Promise<T>): Promise<T> {
  const { startStorageServer } = await import('../local/storage-server/index.js');
  const { startPubsubEmulator } = await import('../local/pubsub-emulator.js');
  const { startFirestoreEmulator } = await import('../local/firestore-emulator.js');
  const { freePort } = await import('../test/helpers.js');
  const { loadConfig } = await import('../shared/core/config.js');
  const { createLogger } = await import('../shared/cloud/log.js');
  // Both JVMs start at once; if one fails, the other is stopped.
  const [pubsubStart, firestoreStart] = await Promise.allSettled([
    process.env.PUBSUB_EMULATOR_HOST ? undefined : freePort().then((port) => startPubsubEmulator({ port })),
    process.env.FIRESTORE_EMULATOR_HOST ? undefined : freePort().then((port) => startFirestoreEmulator({ port })),
  ]);
  const emulator = pubsubStart.status === 'fulfilled' ? pubsubStart.value : undefined;
  const firestoreEmulator = firestoreStart.status === 'fulfilled' ? firestoreStart.value : undefined;
  for (const start of [pubsubStart, firestoreStart]) {
    if (start.status === 'rejected') {
      await Promise.all([emulator?.stop(), firestoreEmulator?.stop()]);
      throw start.reason;
    }
  }
  if (emulator) process.env.PUBSUB_EMULATOR_HOST = emulator.host;
  if (firestoreEmulator) process.env.FIRESTORE_EMULATOR_HOST = firestoreEmulator.host;
  const storage = await startStorageServer({ buckets: ['scale-uploads', 'scale-images'] });
  const run = randomBytes(4).toString('hex');
  try {
    const config = loadConfig({
      UPLOADS_BUCKET: 'scale-uploads',
      IMAGES_BUCKET: 'scale-images',
      JOBS_TOPIC: `scale-jobs-${run}`,
      EVENTS_TOPIC: `scale-events-${run}`,
      JOBS_DEAD_LETTER_SUBSCRIPTION: 'scale-dead-letter-none',
      GOOGLE_CLOUD_PROJECT: 'scale-project',
      FIRESTORE_DATABASE: `scale-${run}`,
      STORAGE_API_ENDPOINT: storage.url,
    });
    const deps = createDeps(config, { log: createLogger({}, () => undefined) });
    const [jobsTopic] = await deps.pubsub.createTopic(config.JOBS_TOPIC);
    const [eventsTopic] = await deps.pubsub.createTopic(config.EVENTS_TOPIC);
    const [jobs] = await jobsTopic.createSubscription(`scale-jobs-pull-${run}`, { ackDeadlineSeconds: 600 });
    const [events] = await eventsTopic.createSubscription(`scale-events-pull-${run}`, { ackDeadlineSeconds: 600 });
    try {
      return await work({ deps, config, storage, jobs, events });
    } finally {
      await Promise.allSettled([jobs.close(), events.close()]);
      await deps.pubsub.close();
      await deps.firestore.terminate();
      // The emulator keeps every database in memory: drop this run's documents.
      await fetch(
        `http://${process.env.FIRESTORE_EMULATOR_HOST}/emulator/v1/projects/${config.GOOGLE_CLOUD_PROJECT}/databases/${config.FIRESTORE_DATABASE}/documents`,
        { method: 'DELETE' },
      ).catch(() => undefined);
    }
  } finally {
    await storage.stop();
    await Promise.all([emulator?.stop(), firestoreEmulator?.stop()]);
  }
}
