/**
 * The Firestore emulator for the scale benches when FIRESTORE_EMULATOR_HOST names none:
 * `gcloud emulators firestore start` on a free port, stopped with its process group. A stopgap
 * until local/ has its own helper; production never uses this.
 */
import { spawn } from 'node:child_process';
import { waitForPort } from '../local/pubsub-emulator.js';

/** A running emulator: `host` is the value for FIRESTORE_EMULATOR_HOST. */
export interface FirestoreEmulator {
  readonly host: string;
  stop(): Promise<void>;
}

/** Starts the emulator on `port` and waits until it accepts connections. */
export async function startFirestoreEmulator(port: number, host = '127.0.0.1'): Promise<FirestoreEmulator> {
  const child = spawn('gcloud', ['emulators', 'firestore', 'start', `--host-port=${host}:${port}`, '--quiet'], {
    detached: true,
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const failed = new Promise<never>((_, reject) =>
    child.once('error', (error) => reject(new Error(`gcloud emulators firestore start: ${error.message}`))),
  );
  await Promise.race([waitForPort(port, host, 60_000), failed]);
  return {
    host: `${host}:${port}`,
    async stop() {
      if (child.pid === undefined || child.exitCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        return;
      }
      const timer = setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
