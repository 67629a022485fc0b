/**
 * What the gcloud emulators (Pub/Sub, Firestore) share: finding the SDK root, waiting for a port,
 * and running an emulator's JVM as a child that stop() really ends. Production never uses this.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import { request } from 'node:http';
import { createConnection } from 'node:net';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * Raised when gcloud or an emulator component is missing, or an emulator exits while starting
 * (no Java); the message says how to fix it.
 */
export class EmulatorUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmulatorUnavailableError';
  }
}

/** The gcloud SDK root per PATH, so that two emulators starting together ask once. */
const sdkRoots = new Map<string, Promise<string | undefined>>();

/**
 * The gcloud SDK root, or undefined when gcloud is not on PATH. Fast path: `gcloud` on PATH
 * resolved through its symlinks is `<root>/bin/gcloud`; otherwise `gcloud info` (about a second).
 */
export function gcloudSdkRoot(): Promise<string | undefined> {
  const path = process.env.PATH ?? '';
  let found = sdkRoots.get(path);
  if (!found) {
    found = locateSdkRoot(path);
    sdkRoots.set(path, found);
  }
  return found;
}

async function locateSdkRoot(path: string): Promise<string | undefined> {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'gcloud');
    if (!existsSync(candidate)) continue;
    try {
      const root = dirname(dirname(realpathSync(candidate)));
      if (existsSync(join(root, 'platform'))) return root;
    } catch {
      /* a dangling link: ask gcloud below */
    }
    break;
  }
  try {
    const { stdout } = await execFileAsync('gcloud', ['info', '--format=value(installation.sdk_root)'], {
      timeout: 30_000,
    });
    return stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Resolves when something accepts TCP connections on the port, rejects after `timeoutMs` or on `signal`. */
export async function waitForPort(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 30_000,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if (await isPortInUse(port, host)) return;
    if (Date.now() > deadline) throw new Error(`Nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when something already listens on the port. */
export async function isPortInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    socket.once('connect', () => {
      // A port in the ephemeral range can connect to itself (TCP simultaneous open) when the
      // kernel picks it as the source port: that is nobody listening.
      const self = socket.localPort === port;
      socket.destroy();
      resolve(!self);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Resolves with the status of `GET http://host:port{path}`, or undefined when nothing answers. */
export function httpStatus(host: string, port: number, path = '/'): Promise<number | undefined> {
  return new Promise((resolve) => {
    const req = request({ host, port, path, method: 'GET', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(undefined));
    req.end();
  });
}

/** Resolves when `GET /` answers 200, rejects after `timeoutMs` or on `signal`. */
export async function waitForHttp(
  port: number,
  host = '127.0.0.1',
  timeoutMs = 30_000,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    signal?.throwIfAborted();
    if ((await httpStatus(host, port)) === 200) return;
    if (Date.now() > deadline) throw new Error(`Nothing answers on http://${host}:${port}/ after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * True while a process of the group `pgid` is alive (zombies waiting to be reaped do not count:
 * in a container, PID 1 may never reap the JVM once its wrapper has exited).
 */
export function processGroupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (!existsSync('/proc/self/stat')) return true;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after the command: state, ppid, pgrp.
      const [state, , pgrp] = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ').pop()?.split(' ') ?? [];
      if (Number(pgrp) === pgid && state !== 'Z') return true;
    } catch {
      /* exited meanwhile */
    }
  }
  return false;
}

/**
 * Ends a child started with `detached: true` and the JVM its shell wrapper started in the same
 * process group: SIGTERM to the group, SIGKILL after 5 s. Resolves once the child has exited and
 * no process of the group is left: the wrapper exits on SIGTERM before its JVM has let go of
 * the port, so waiting for the wrapper alone is not enough for a restart on the same port.
 */
export async function stopProcessGroup(child: ChildProcess): Promise<void> {
  const pid = child.pid;
  // No pid: the process never started, so there is nothing to stop.
  if (pid === undefined) return;
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-pid, name);
    } catch {
      /* already gone */
    }
  };
  const exited =
    child.exitCode !== null || child.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => child.once('exit', () => resolve()));
  signal('SIGTERM');
  const killAt = Date.now() + 5_000;
  let killed = false;
  for (;;) {
    const childDone = child.exitCode !== null || child.signalCode !== null;
    if (childDone && !processGroupAlive(pid)) break;
    if (!killed && Date.now() > killAt) {
      signal('SIGKILL');
      killed = true;
    }
    if (killed && Date.now() > killAt + 5_000) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  await exited;
}

/** A JVM emulator started by {@link spawnEmulator}. */
export interface EmulatorProcess {
  readonly child: ChildProcess;
  /** Stops the wrapper and its JVM and waits for them to exit. */
  stop(): Promise<void>;
}

/**
 * Spawns an emulator's launcher in its own process group and waits until `ready` resolves. If
 * the process exits first (typically: no Java), rejects with an {@link EmulatorUnavailableError}
 * carrying its last output and `help`; if `ready` fails, the process is stopped.
 */
export async function spawnEmulator(options: {
  /** For messages: "the Firestore emulator". */
  name: string;
  bin: string;
  args: readonly string[];
  /** Resolves once the emulator answers; `signal` aborts when it has exited (stop polling then). */
  ready: (signal: AbortSignal) => Promise<void>;
  /** What to do when it exits while starting. */
  help: string;
  log?: (text: string) => void;
}): Promise<EmulatorProcess> {
  const child = spawn(options.bin, options.args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    output.push(text);
    if (output.length > 200) output.shift();
    options.log?.(text);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<never>((_, reject) => {
    child.once('error', (error) =>
      reject(new EmulatorUnavailableError(`${options.name} could not be run (${error.message}).\n\n${options.help}`)),
    );
    child.once('exit', (code) =>
      reject(
        new EmulatorUnavailableError(
          `${options.name} exited with ${code} while starting:\n${output.join('').slice(-2000).trim()}\n\n${options.help}`,
        ),
      ),
    );
  });
  const waiting = new AbortController();
  const ready = options.ready(waiting.signal);
  ready.catch(() => undefined);
  try {
    await Promise.race([ready, exited]);
  } catch (error) {
    waiting.abort();
    await stopProcessGroup(child);
    throw error;
  }
  exited.catch(() => undefined);
  return { child, stop: () => stopProcessGroup(child) };
}
