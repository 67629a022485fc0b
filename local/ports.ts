import { readFileSync } from 'node:fs';
/**
 * The local stack's ports: their defaults, the environment variables that override them, and
 * the checks that turn "address already in use" into a message naming the variable to change.
 */
import { createServer, type Server } from 'node:net';
import { isPortInUse } from './emulator-process.js';

/** The stack's listeners. */
export type PortName = 'web' | 'storage' | 'pubsub' | 'firestore' | 'ingest' | 'resize' | 'cleanup' | 'webhooks';

/** Every listener, in start-up order of the banner. */
export const PORT_NAMES: readonly PortName[] = [
  'web',
  'storage',
  'pubsub',
  'firestore',
  'ingest',
  'resize',
  'cleanup',
  'webhooks',
];

/** Default ports of `npm start`: the page and upload API on 8080, the other functions after it. */
export const DEFAULT_PORTS: Readonly<Record<PortName, number>> = {
  web: 8080,
  storage: 4443,
  pubsub: 8085,
  firestore: 8086,
  ingest: 8081,
  resize: 8082,
  cleanup: 8083,
  webhooks: 8084,
};

/** The environment variable that overrides each port. */
export const PORT_VARIABLES: Readonly<Record<PortName, string>> = {
  web: 'PORT',
  storage: 'STORAGE_PORT',
  pubsub: 'PUBSUB_PORT',
  firestore: 'FIRESTORE_PORT',
  ingest: 'INGEST_PORT',
  resize: 'RESIZE_PORT',
  cleanup: 'CLEANUP_PORT',
  webhooks: 'WEBHOOKS_PORT',
};

/** What listens on each port, for messages. */
export const PORT_ROLES: Readonly<Record<PortName, string>> = {
  web: 'web page and upload API',
  storage: 'local storage server',
  pubsub: 'Pub/Sub emulator',
  firestore: 'Firestore emulator',
  ingest: 'ingest function',
  resize: 'resize function',
  cleanup: 'cleanup function',
  webhooks: 'webhooks function',
};

/** Raised when a port the stack needs is taken; the message names the variable to change. */
export class PortInUseError extends Error {
  constructor(readonly conflicts: ReadonlyArray<{ name: PortName; port: number }>) {
    super(
      conflicts
        .map(
          ({ name, port }) =>
            `Port ${port} (${PORT_ROLES[name]}) is already in use. Stop what listens there, or choose another port: ` +
            `${PORT_VARIABLES[name]}=${suggestion(port)} npm start`,
        )
        .join('\n'),
    );
    this.name = 'PortInUseError';
  }
}

function suggestion(port: number): number {
  return port >= 65535 - 1000 ? port - 1000 : port + 1000;
}

/** Raised for a port variable that is not a port number. */
export class PortConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortConfigError';
  }
}

/**
 * Reads the port variables from an environment. `0` means "any free port". Throws
 * {@link PortConfigError} naming the variable for anything else that is not 0–65535.
 */
export function portsFromEnv(env: Record<string, string | undefined>): Record<PortName, number> {
  const ports = { ...DEFAULT_PORTS };
  for (const name of PORT_NAMES) {
    const variable = PORT_VARIABLES[name];
    const raw = env[variable]?.trim();
    if (!raw) continue;
    const port = Number(raw);
    if (!/^\d+$/.test(raw) || port > 65535)
      throw new PortConfigError(`${variable} must be a port number (0-65535), got ${JSON.stringify(raw)}.`);
    ports[name] = port;
  }
  return ports;
}

/** Where the OS picks ports for `listen(0)` and outgoing connections (Linux's default otherwise). */
function ephemeralRange(): [number, number] {
  try {
    const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (low && high) return [low, high];
  } catch {
    // Not Linux: the IANA dynamic range.
  }
  return [49152, 65535];
}

/** Ports {@link freePort} hands out: handed out once per process, so two callers never share one. */
const handedOut = new Set<number>();

/**
 * A free TCP port on the host, below the OS's ephemeral range: a port the OS picked (listen(0))
 * can meanwhile become some outgoing connection's source port or another process's listen(0)
 * before the caller (an emulator's JVM, seconds later) binds it, and the bind then fails with
 * "Address already in use". Ports below the range are never picked by the OS.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [low] = ephemeralRange();
  const floor = 20_000;
  const top = Math.max(floor + 1000, low);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = floor + Math.floor(Math.random() * (top - floor));
    if (handedOut.has(port) || !(await canBind(port, host))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`No free port found between ${floor} and ${top} on ${host}.`);
}

/** True when nothing listens on the port and it can be bound. */
async function canBind(port: number, host: string): Promise<boolean> {
  const server: Server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/**
 * Checks every fixed (non-zero) port before anything starts, so that a conflict stops start-up
 * with one message listing every taken port and nothing left running. Duplicates count as
 * conflicts too.
 */
export async function assertPortsFree(ports: Partial<Record<PortName, number>>, host = '127.0.0.1'): Promise<void> {
  const conflicts: Array<{ name: PortName; port: number }> = [];
  const seen = new Map<number, PortName>();
  for (const name of PORT_NAMES) {
    const port = ports[name];
    if (port === undefined || port === 0) continue;
    const other = seen.get(port);
    if (other) {
      throw new PortConfigError(
        `${PORT_VARIABLES[name]} and ${PORT_VARIABLES[other]} are both ${port}; give each its own port.`,
      );
    }
    seen.set(port, name);
    if ((await isPortInUse(port, host)) || !(await canBind(port, host))) conflicts.push({ name, port });
  }
  if (conflicts.length > 0) throw new PortInUseError(conflicts);
}
