/**
 * The small stack the scale benches run cleanup against: the Pub/Sub and Firestore emulators (or
 * the ones PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST name), a local storage server with two buckets, a quiet pipeline and its
 * topics. Loaded lazily so that importing a bench for its pure parts starts nothing.
 */
import type { Config } from '../shared/core/config.js';
import { createDeps, type PipelineDeps } from '../shared/cloud/deps.js';

/** Runs `work` with a fresh scale stack and stops it afterwards, whatever happens. */
export async function withScaleStack<T>(
  work: (deps: PipelineDeps, storageUrl: string, config: Config) => Promise<T>,
): Promise<T> {
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
  try {
    const config = loadConfig({
      UPLOADS_BUCKET: 'scale-uploads',
      IMAGES_BUCKET: 'scale-images',
      JOBS_TOPIC: 'scale-jobs',
      EVENTS_TOPIC: 'scale-events',
      JOBS_DEAD_LETTER_SUBSCRIPTION: 'scale-dead-letter-none',
      GOOGLE_CLOUD_PROJECT: 'scale-project',
      STORAGE_API_ENDPOINT: storage.url,
    });
    const deps = createDeps(config, { log: createLogger({}, () => undefined) });
    await deps.pubsub.createTopic(config.JOBS_TOPIC).catch(() => undefined);
    await deps.pubsub.createTopic(config.EVENTS_TOPIC).catch(() => undefined);
    try {
      return await work(deps, storage.url, config);
    } finally {
      await Promise.allSettled([deps.pubsub.close(), deps.firestore.terminate()]);
    }
  } finally {
    await storage.stop();
    await Promise.all([emulator?.stop(), firestoreEmulator?.stop()]);
  }
}
