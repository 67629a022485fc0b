/**
 * The collaborators every function needs, built once per instance from validated config.
 * Tests and the local stack build them with real clients pointed at the local storage server
 * and the Pub/Sub emulator; production builds them with no endpoint overrides.
 */
import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import type { Config } from '../core/config.js';
import { createLogger, type Logger } from './log.js';

/** What the pipeline's plain functions take instead of reaching for globals. */
export interface PipelineDeps {
  readonly config: Config;
  readonly storage: Storage;
  readonly pubsub: PubSub;
  /** The per-image state (shared/state/); FIRESTORE_EMULATOR_HOST, when set, is honoured by the client. */
  readonly firestore: Firestore;
  readonly log: Logger;
  /** The clock; tests pass a fake one. */
  readonly now: () => Date;
}

/**
 * A throwaway key that signs URLs for the local storage server (local/signing-key.ts); production
 * has none and signs through IAM signBlob as the function's service account.
 */
export interface LocalSigningKey {
  readonly clientEmail: string;
  /** PKCS#8 PEM. */
  readonly privateKey: string;
}

/**
 * A Storage client for the config. With STORAGE_API_ENDPOINT the client gets an explicit
 * `apiEndpoint` (the STORAGE_EMULATOR_HOST variable alone is honoured inconsistently by
 * @google-cloud/storage 7) and no credentials, as the local server needs none.
 */
export function createStorageClient(
  config: Pick<Config, 'STORAGE_API_ENDPOINT' | 'GOOGLE_CLOUD_PROJECT'>,
  signing?: LocalSigningKey,
): Storage {
  const projectId = config.GOOGLE_CLOUD_PROJECT;
  if (config.STORAGE_API_ENDPOINT) {
    return new Storage({
      apiEndpoint: config.STORAGE_API_ENDPOINT.replace(/\/+$/, ''),
      projectId: projectId ?? 'local-project',
      useAuthWithCustomEndpoint: false,
      // Only signed URLs use the key; requests to the local server stay unauthenticated.
      ...(signing ? { credentials: { client_email: signing.clientEmail, private_key: signing.privateKey } } : {}),
      retryOptions: { autoRetry: true, maxRetries: 3, retryDelayMultiplier: 2, totalTimeout: 60, maxRetryDelay: 2 },
    });
  }
  return new Storage(projectId ? { projectId } : {});
}

/** A Pub/Sub client; PUBSUB_EMULATOR_HOST, when set, is honoured by the client itself. */
export function createPubSubClient(config: Pick<Config, 'GOOGLE_CLOUD_PROJECT'>): PubSub {
  // With the emulator there is no metadata server; without this, google-gax probes for one on
  // every new stub and logs a MetadataLookupWarning.
  if (process.env.PUBSUB_EMULATOR_HOST) process.env.METADATA_SERVER_DETECTION ??= 'none';
  const projectId = config.GOOGLE_CLOUD_PROJECT ?? (process.env.PUBSUB_EMULATOR_HOST ? 'local-project' : undefined);
  return new PubSub(projectId ? { projectId } : {});
}

/** A Firestore client for the config's database; FIRESTORE_EMULATOR_HOST, when set, is honoured by the client. */
export function createFirestoreClient(config: Pick<Config, 'GOOGLE_CLOUD_PROJECT' | 'FIRESTORE_DATABASE'>): Firestore {
  const emulated = process.env.FIRESTORE_EMULATOR_HOST !== undefined;
  if (emulated) process.env.METADATA_SERVER_DETECTION ??= 'none';
  const projectId = config.GOOGLE_CLOUD_PROJECT ?? (emulated ? 'local-project' : undefined);
  return new Firestore({
    ...(projectId ? { projectId } : {}),
    databaseId: config.FIRESTORE_DATABASE,
    // Documents carry optional fields; leaving them out is simpler than writing nulls everywhere.
    ignoreUndefinedProperties: true,
  });
}

/** Builds the collaborators for a validated config. */
export function createDeps(config: Config, overrides: Partial<Omit<PipelineDeps, 'config'>> = {}): PipelineDeps {
  return {
    config,
    storage: overrides.storage ?? createStorageClient(config),
    pubsub: overrides.pubsub ?? createPubSubClient(config),
    firestore: overrides.firestore ?? createFirestoreClient(config),
    log: overrides.log ?? createLogger(),
    now: overrides.now ?? (() => new Date()),
  };
}
