/**
 * Helpers of the end-to-end tests: a local stack on free ports with a temporary data directory
 * and captured logs, polling, event collection, process/port checks, and a Chromium page.
 */
import { withoutSignIn } from '../../local/stack-auth.js';
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { isPortInUse } from '../../local/pubsub-emulator.js';
import { startLocalStack, type LocalStack, type LocalStackOptions, type LogSource } from '../../local/stack.js';
import type { ErrorBody } from '../../shared/core/errors.js';
import type { EventMessage, Manifest } from '../../shared/core/schemas.js';
import { useFirestoreEmulator } from '../fixtures/firestore.js';
import { usePubsubEmulator } from '../fixtures/pubsub.js';
import { eventually, serviceAsset } from '../helpers.js';

/** Debian's Chromium, which playwright-core drives (it downloads no browser). */
export const CHROMIUM = '/usr/bin/chromium';

/** The URLs of a `srcset` attribute value. */
export function urlsOf(srcset: string): string[] {
  return srcset.split(', ').map((candidate) => candidate.split(' ')[0] as string);
}

/** Skips the suite, saying why, when there is no Chromium to drive. */
export function skipWithoutChromium(suite: Mocha.Context): void {
  if (existsSync(CHROMIUM)) return;
  console.log(`      (skipped: ${CHROMIUM} is missing; apt-get install chromium, as .ci/run does)`);
  suite.skip();
}

/**
 * Chromium showing `url`, once the page's module script has set `body[data-loaded]` (so its
 * imports loaded); the page's uncaught errors are collected in `pageErrors`.
 */
export async function openModulePage(url: string): Promise<{ browser: Browser; page: Page; pageErrors: string[] }> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
  const page = await browser.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (error) => pageErrors.push(error.message));
  await page.goto(url);
  await page.waitForSelector('body[data-loaded="yes"]', { state: 'attached' });
  return { browser, page, pageErrors };
}

/** A captured log line. */
export interface CapturedLine {
  readonly line: string;
  readonly source: LogSource;
  /** The parsed JSON, for structured lines. */
  readonly entry: Record<string, unknown> | undefined;
}

/** A stack started for a test, with its logs. */
export interface TestStack {
  readonly stack: LocalStack;
  readonly logs: CapturedLine[];
  readonly dataDir: string | undefined;
  /** Waits for a log line that matches. */
  waitForLog(match: (line: CapturedLine) => boolean, timeoutMs?: number): Promise<CapturedLine>;
  /** The last lines, for failure messages. */
  tail(count?: number): string;
  stop(): Promise<void>;
}

let counter = 0;

/** Makes a temporary directory that {@link removeDir} deletes. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `${prefix}-`));
}

export function removeDir(dir: string | undefined): void {
  if (dir) rmSync(dir, { recursive: true, force: true });
}

/**
 * Starts a stack on free ports, using the test run's shared emulators (unless `ownEmulator`) with
 * a project id of its own, so that stacks never see each other's topics or documents. Without
 * UPLOAD_AUTH or UPLOAD_TOKEN in `env` the API runs open (UPLOAD_AUTH=none): the suites about the
 * pipeline do not sign in; those about authentication (`npm start`'s default, jwt) ask for it.
 */
export async function startTestStack(
  options: Partial<LocalStackOptions> & { ownEmulator?: boolean; persist?: boolean | string } = {},
): Promise<TestStack> {
  const { ownEmulator, persist, ...rest } = options;
  const logs: CapturedLine[] = [];
  const waiters = new Set<{ match: (line: CapturedLine) => boolean; resolve: (line: CapturedLine) => void }>();
  const dataDir = typeof persist === 'string' ? persist : persist ? tempDir('stack-data') : undefined;
  const stack = await startLocalStack({
    ports: { web: 0, storage: 0, pubsub: 0, firestore: 0, ingest: 0, resize: 0, cleanup: 0, webhooks: 0 },
    ...(ownEmulator
      ? {}
      : { pubsubEmulatorHost: await usePubsubEmulator(), firestoreEmulatorHost: await useFirestoreEmulator() }),
    projectId: `e2e-${process.pid}-${++counter}`,
    cleanupIntervalSeconds: 0,
    ...(dataDir ? { dataDir } : {}),
    log: (line, source) => {
      let entry: Record<string, unknown> | undefined;
      try {
        entry = line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : undefined;
      } catch {
        entry = undefined;
      }
      const captured = { line, source, entry };
      logs.push(captured);
      for (const waiter of waiters) {
        if (waiter.match(captured)) {
          waiters.delete(waiter);
          waiter.resolve(captured);
        }
      }
    },
    ...rest,
    env: withoutSignIn(rest.env),
  });
  return {
    stack,
    logs,
    dataDir,
    waitForLog: (match, timeoutMs = 30_000) => {
      const found = logs.find(match);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve: (line: CapturedLine) => {
            clearTimeout(timer);
            resolve(line);
          },
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`No matching log line after ${timeoutMs} ms. Last lines:\n${tailOf(logs)}`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    tail: (count) => tailOf(logs, count),
    stop: () => stack.stop(),
  };
}

function tailOf(logs: readonly CapturedLine[], count = 30): string {
  return logs
    .slice(-count)
    .map((l) => `  [${l.source}] ${l.line.slice(0, 400)}`)
    .join('\n');
}

/** The JSON of `GET /uploads/{id}` as the tests read it: a manifest when ready, an error when failed. */
export interface ImageAnswerBody {
  readonly status?: string;
  readonly manifest?: Manifest;
  readonly error?: ErrorBody['error'];
}

/**
 * `GET /uploads/{assetId}` of the service's upload of image `id` (the e2e tests upload without
 * naming an owner) until 200 (ready) or 422 (failed); returns the final answer.
 */
export async function waitForImage(
  stack: LocalStack,
  id: string,
  timeoutMs = 60_000,
): Promise<{ status: number; body: ImageAnswerBody }> {
  return eventually(
    async () => {
      const response = await fetch(`${stack.urls.api}/${serviceAsset(id)}`);
      const body = (await response.json()) as ImageAnswerBody;
      return response.status === 200 || response.status === 422 ? { status: response.status, body } : undefined;
    },
    timeoutMs,
    `image ${id}`,
  );
}

/** Waits until the image is ready and returns its manifest. */
export async function waitForManifest(stack: LocalStack, id: string, timeoutMs = 60_000): Promise<Manifest> {
  const answer = await waitForImage(stack, id, timeoutMs);
  if (answer.status !== 200) throw new Error(`image ${id} failed: ${JSON.stringify(answer.body)}`);
  return answer.body.manifest as Manifest;
}

/** Collects every message of a subscription of the stack's project (acknowledging them). */
export interface EventCollector {
  readonly events: EventMessage[];
  close(): Promise<void>;
}

export function collectEvents(stack: LocalStack, subscriptionName: string): EventCollector {
  const pubsub = new PubSub({
    projectId: stack.projectId,
    apiEndpoint: stack.urls.pubsub,
    emulatorMode: true,
    clientOptions: { universeDomain: 'googleapis.com' },
  });
  const subscription: Subscription = pubsub.subscription(subscriptionName);
  const events: EventMessage[] = [];
  subscription.on('message', (message: Message) => {
    events.push(JSON.parse(message.data.toString()) as EventMessage);
    message.ack();
  });
  subscription.on('error', () => undefined);
  return {
    events,
    close: async () => {
      await subscription.close();
      await pubsub.close();
    },
  };
}

/** Ports of the stack that still accept connections. */
export async function listeningPorts(ports: Iterable<number>): Promise<number[]> {
  const open: number[] = [];
  for (const port of ports) if (await isPortInUse(port)) open.push(port);
  return open;
}

/** Pids of running processes whose command line contains every one of `parts` (zombies excluded). */
export function processesMatching(...parts: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (!parts.every((part) => cmdline.includes(part))) continue;
      const state = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ').pop()?.[0];
      if (state !== 'Z') pids.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return pids;
}

/** The Pub/Sub emulator processes (wrapper script and JVM) serving a port. */
export function emulatorProcesses(port: number): number[] {
  return processesMatching('pubsub-emulator', `--port=${port}`);
}

/** The Firestore emulator processes (wrapper script and JVM) serving a port. */
export function firestoreEmulatorProcesses(port: number): number[] {
  return processesMatching('cloud-firestore-emulator', `--port=${port}`);
}

/** True when the gcloud CLI is installed. */
export function gcloudPath(): string | undefined {
  for (const candidate of ['/usr/bin/gcloud', '/usr/local/bin/gcloud']) if (existsSync(candidate)) return candidate;
  return undefined;
}
