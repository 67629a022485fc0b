/**
 * Starts the real Pub/Sub emulator from the gcloud SDK (`platform/pubsub-emulator`), for tests
 * and the local stack. Production never uses this.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** A running emulator. */
export interface PubsubEmulator {
  /** `host:port`, the value for PUBSUB_EMULATOR_HOST. */
  readonly host: string;
  readonly port: number;
  /** Stops the emulator (and its JVM) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Raised when gcloud or its emulator component is missing, or the emulator exits while starting
 * (no Java); the message says how to fix it.
 */
export class EmulatorUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmulatorUnavailableError';
  }
}

/** Finds `cloud-pubsub-emulator` under the gcloud SDK root (from `gcloud info`). */
export async function findPubsubEmulator(): Promise<string> {
  let sdkRoot: string;
  try {
    const { stdout } = await execFileAsync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
      timeout: 30_000,
    });
    sdkRoot = stdout.trim();
  } catch {
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

/** Resolves when something accepts TCP connections on the port, rejects after `timeoutMs`. */
export async function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`Nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when something already listens on the port. */
export async function isPortInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    const pid = child.pid;
    // No pid: the process never started, so there is nothing to stop.
    if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return resolve();
    const timer = setTimeout(() => {
      // The emulator's shell wrapper starts a JVM in the same process group: kill the group.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    try {
      process.kill(-pid, 'SIGTERM');
    } catch {
      resolve();
    }
  });
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
  const child = spawn(bin, [`--host=${host}`, `--port=${options.port}`], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    output.push(text);
    if (output.length > 200) output.shift();
    options.log?.(text);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) =>
      reject(
        new EmulatorUnavailableError(
          `The Pub/Sub emulator exited with ${code} while starting:\n${output.join('').slice(-2000).trim()}\n\n` +
            'It needs Java 11 or later on PATH (for example apt-get install openjdk-17-jre-headless); ' +
            'or set PUBSUB_EMULATOR_HOST to an emulator that is already running.',
        ),
      ),
    ),
  );
  try {
    await Promise.race([waitForPort(options.port, host, 60_000), exited]);
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  exited.catch(() => undefined);
  return { host: `${host}:${options.port}`, port: options.port, stop: () => stopChild(child) };
}
