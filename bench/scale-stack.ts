/**
 * The small stack the scale benches run cleanup against: the Pub/Sub emulator (or the one
 * PUBSUB_EMULATOR_HOST names), a local storage server with two buckets, a quiet pipeline and its
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
  const { freePort } = await import('../test/helpers.js');
  const { loadConfig } = await import('../shared/core/config.js');
  const { createLogger } = await import('../shared/cloud/log.js');
  const emulator = process.env.PUBSUB_EMULATOR_HOST ? undefined : await startPubsubEmulator({ port: await freePort() });
  if (emulator) process.env.PUBSUB_EMULATOR_HOST = emulator.host;
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
      await deps.pubsub.close();
    }
  } finally {
    await storage.stop();
    await emulator?.stop();
  }
}
