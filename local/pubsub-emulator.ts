/**
 * Starts the real Pub/Sub emulator from the gcloud SDK (`platform/pubsub-emulator`), for tests
 * and the local stack. Production never uses this.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  EmulatorUnavailableError,
  gcloudSdkRoot,
  isPortInUse,
  spawnEmulator,
  waitForPort,
} from './emulator-process.js';

// Shared with the Firestore emulator (local/emulator-process.ts); exported here as before.
export { EmulatorUnavailableError, isPortInUse, waitForPort };

/** A running emulator. */
export interface PubsubEmulator {
  /** `host:port`, the value for PUBSUB_EMULATOR_HOST. */
  readonly host: string;
  readonly port: number;
  /** Stops the emulator (and its JVM) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Finds `cloud-pubsub-emulator` under the gcloud SDK root. */
export async function findPubsubEmulator(): Promise<string> {
  const sdkRoot = await gcloudSdkRoot();
  if (!sdkRoot) {
    throw new EmulatorUnavailableError(
      'The gcloud CLI was not found. Install the Google Cloud SDK (https://cloud.google.com/sdk/docs/install), ' +
        'then: gcloud components install pubsub-emulator (or apt-get install google-cloud-cli-pubsub-emulator). ' +
        'Alternatively set PUBSUB_EMULATOR_HOST to a running emulator.',
    );
  }
  const bin = join(sdkRoot, 'platform', 'pubsub-emulator', 'bin', 'cloud-pubsub-emulator');
  if (!existsSync(bin)) {
    throw new EmulatorUnavailableError(
      `The Pub/Sub emulator component is not installed under ${sdkRoot}. Install it with ` +
        '`gcloud components install pubsub-emulator` (or `apt-get install google-cloud-cli-pubsub-emulator`), ' +
        'and make sure Java 11+ is on PATH.',
    );
  }
  return bin;
}

/**
 * Starts the emulator on `port` (0 = a free port picked by the caller's OS is not supported by
 * the emulator, so callers pass one) and waits until it accepts connections.
 */
export async function startPubsubEmulator(options: {
  port: number;
  host?: string;
  log?: (line: string) => void;
}): Promise<PubsubEmulator> {
  const host = options.host ?? '127.0.0.1';
  if (await isPortInUse(options.port, host)) {
    throw new Error(
      `Port ${options.port} is already in use; set PUBSUB_PORT to another port or stop what listens there.`,
    );
  }
  const bin = await findPubsubEmulator();
  const emulator = await spawnEmulator({
    name: 'The Pub/Sub emulator',
    bin,
    args: [`--host=${host}`, `--port=${options.port}`],
    ready: (signal) => waitForPort(options.port, host, 60_000, signal),
    help:
      'It needs Java 11 or later on PATH (for example apt-get install openjdk-17-jre-headless); ' +
      'or set PUBSUB_EMULATOR_HOST to an emulator that is already running.',
    ...(options.log ? { log: options.log } : {}),
  });
  return { host: `${host}:${options.port}`, port: options.port, stop: () => emulator.stop() };
}
