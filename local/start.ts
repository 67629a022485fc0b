/**
 * `npm start`: the whole pipeline on this machine, with the try-it page. Exit code 0 after
 * Ctrl-C / SIGTERM, 1 when the stack cannot start (the message says why). Ports and settings:
 * docs/local-stack.md.
 */
import { ConfigError } from '../shared/core/config.js';
import { stackBanner } from './banner.js';
import { formatLogLine, type LogFormat } from './log-format.js';
import { PortConfigError, portsFromEnv, PortInUseError, type PortName } from './ports.js';
import { EmulatorUnavailableError } from './pubsub-emulator.js';
import { startLocalStack, type LocalStack } from './stack.js';
import { localDataDir, removeStackState, writeStackState } from './stack-state.js';

function fail(message: string): never {
  process.stderr.write(`\nnpm start: ${message}\n\n`);
  process.exit(1);
}

function interval(env: NodeJS.ProcessEnv): number {
  const raw = env.CLEANUP_INTERVAL_SECONDS?.trim();
  if (!raw) return 60;
  const seconds = Number(raw);
  if (!Number.isFinite(seconds) || seconds < 0)
    fail(`CLEANUP_INTERVAL_SECONDS must be a number of seconds (0 = no schedule), got ${JSON.stringify(raw)}.`);
  return seconds;
}

async function main(): Promise<void> {
  const env = process.env;
  const format: LogFormat = env.LOG_FORMAT === 'json' ? 'json' : 'pretty';
  const color = format === 'pretty' && Boolean(process.stdout.isTTY) && !env.NO_COLOR;
  let ports: Record<PortName, number>;
  try {
    ports = portsFromEnv(env);
  } catch (error) {
    fail((error as Error).message);
  }
  const dataDir = localDataDir(env);

  let stack: LocalStack | undefined;
  let starting: Promise<LocalStack> | undefined;
  let stopping = false;
  const abort = new AbortController();
  const stop = async (signal: string) => {
    if (stopping) {
      process.stderr.write(
        `\nnpm start: ${signal} again; exiting without waiting (the emulators may be left running, and Firestore's data not exported).\n`,
      );
      process.exit(1);
    }
    stopping = true;
    process.stdout.write(`\nnpm start: ${signal} received; stopping the local stack...\n`);
    try {
      // During start-up: abort it; it stops what it has started before it rejects.
      abort.abort();
      removeStackState(dataDir);
      await (stack ?? (await starting?.catch(() => undefined)))?.stop();
    } finally {
      process.stdout.write('npm start: stopped.\n');
      process.exit(0);
    }
  };
  // Installed before the start so that Ctrl-C during start-up also stops what has started.
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  const verbose = /^(1|true|yes)$/i.test(env.LOG_VERBOSE ?? '');
  process.stdout.write(`npm start: starting the local stack (data in ${dataDir})...\n`);
  try {
    starting = startLocalStack({
      signal: abort.signal,
      ports,
      ...(env.PUBSUB_EMULATOR_HOST?.trim() ? { pubsubEmulatorHost: env.PUBSUB_EMULATOR_HOST.trim() } : {}),
      ...(env.FIRESTORE_EMULATOR_HOST?.trim() ? { firestoreEmulatorHost: env.FIRESTORE_EMULATOR_HOST.trim() } : {}),
      dataDir,
      cleanupIntervalSeconds: interval(env),
      env,
      verbose,
      log: (line, source) => {
        // DEBUG lines (e.g. ingest ignoring the originals/ it writes itself) only with LOG_VERBOSE.
        if (!verbose && line.includes('"severity":"DEBUG"')) return;
        process.stdout.write(`${formatLogLine(line, source, { format, color })}\n`);
      },
    });
    stack = await starting;
  } catch (error) {
    if (stopping) return;
    if (
      error instanceof PortInUseError ||
      error instanceof PortConfigError ||
      error instanceof EmulatorUnavailableError ||
      error instanceof ConfigError
    ) {
      fail(error.message);
    }
    fail(`the local stack did not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  }
  if (stopping) return;
  // For the operator commands (npm run reprocess, npm run smoke) run with no settings.
  writeStackState(dataDir, stack, env);
  // The stack's own issuer signs alice in for the banner's curl lines.
  const alice = await stack.auth.idToken?.('alice');
  process.stdout.write(`${stackBanner(stack, alice)}\n`);
}

void main();
