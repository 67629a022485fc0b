/**
 * `npm run load -- [options]`: many uploads at once through the whole pipeline, then an audit
 * that every accepted image ended exactly once.
 *
 * Unless `--url` is given it starts the local stack itself (local/stack.ts: local storage
 * server, Pub/Sub and Firestore emulators, topology, functions on free ports, data in a temporary directory)
 * and, by default, serves `resize` from a separate functions-framework process that the stack's
 * jobs push subscription is pointed at, so that the peak RSS reported (the kernel's VmHWM) is
 * that of the process doing the image work alone.
 *
 * It generates N distinct photo-like JPEGs, uploads them with the given concurrency (retrying
 * 503s as a client should), follows each image by its `image.ready` / `image.failed` event and
 * by polling `GET /uploads/{id}` until it is ready or failed, then checks:
 *
 * - lost: accepted uploads (202/200) that never reached ready or failed: the run waits as long as
 *   images keep finishing, and gives up once none has finished for `--timeout` seconds (or after
 *   `--max-wait` in all), so a slow machine makes a run long, not lossy;
 * - doubled: images with more than one terminal event (or both), both a manifest and a failure
 *   record, or objects under `{id}/` that are not exactly the manifest's variants plus itself.
 *
 * It prints a Markdown table (throughput, upload→ready latency p50/p95/p99, errors by code,
 * lost, doubled, peak RSS) and exits 1 when anything was lost or doubled.
 *
 * Options: {@link USAGE} (`npm run load -- --help`).
 */
import { PubSub, type Message, type Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { ENV_VARS, type Config } from '../shared/core/config.js';
import { errorRecordName, manifestName } from '../shared/core/naming.js';
import { admissionLimit, pushPath } from '../shared/core/topology.js';
import { admitAtMost, REFUSAL_HOLD_MS, type AdmissionStats } from '../local/admission.js';
import { freePort } from '../local/ports.js';
import { waitForPort } from '../local/pubsub-emulator.js';
import { startLocalStack, type LocalStack } from '../local/stack.js';
import { withoutSignIn } from '../local/stack-auth.js';
import { photoPixels } from '../test/fixtures/images.js';
import { markdownTable } from './stats.js';
import { OUTPUT_FORMATS, type OutputFormat } from '../shared/core/domain.js';

/** What to run. */
export interface LoadOptions {
  uploads: number;
  concurrency: number;
  width: number;
  height: number;
  widths: number[];
  formats: OutputFormat[];
  resize: 'process' | 'inline';
  /** Resize requests admitted at once (429 beyond); default the topology's. */
  admit?: number;
  /** Outage drill: seconds during which every write to the images bucket answers 503. */
  outageSeconds?: number;
  /** Firestore outage drill: seconds during which the Firestore emulator is stopped. */
  firestoreOutageSeconds?: number;
  /** Run a cleanup pass this often (seconds), as Cloud Scheduler does; 0 or unset: none. */
  cleanupEverySeconds?: number;
  /** Give up once no image has finished for this long. */
  timeoutSeconds: number;
  /** Give up after this long in all (default 3600). */
  maxWaitSeconds?: number;
  keepData?: boolean;
  /** Use a running emulator (tests pass theirs) instead of starting one. */
  pubsubEmulatorHost?: string;
  /** The same for Firestore (no --firestore-outage then: the stack does not own it). */
  firestoreEmulatorHost?: string;
  /** Extra pipeline settings for the stack (e.g. AVIF_EFFORT). */
  env?: Record<string, string>;
  /** Progress lines (stderr by default). */
  progress?: (line: string) => void;
  /** Against a running stack instead of starting one. */
  external?: {
    url: string;
    token?: string;
    storage?: string;
    imagesBucket?: string;
    pubsub?: string;
    project?: string;
    eventsSubscription?: string;
    resizePid?: number;
  };
}

/** Percentiles in seconds. */
export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** What a run measured. */
export interface LoadReport {
  options: Omit<LoadOptions, 'progress'>;
  target: string;
  machine: string;
  uploads: {
    attempted: number;
    accepted: number;
    refused: number;
    requests: number;
    seconds: number;
    perSecond: number;
    latency: Percentiles;
  };
  processing: {
    ready: number;
    failed: number;
    seconds: number;
    imagesPerSecond: number;
    latency: Percentiles | undefined;
    /** Upload → the first servable variant, from `image.preview` (the local stack turns it on). */
    firstVariant: Percentiles | undefined;
  };
  /** Error answers by code, including ones a retry then fixed; `network` for transport errors. */
  errors: Record<string, number>;
  variantsPerImage: number;
  lost: number;
  doubled: number;
  /** Ids and reasons, for the lost and doubled. */
  problems: string[];
  deadLetters: number | undefined;
  /** Resize's admission gate (local stack only): pushes admitted and refused with 429. */
  admission: AdmissionStats | undefined;
  /** The outage drill, if any: when it ended, seconds after the first upload. */
  outage: { seconds: number; endedAfterSeconds: number } | undefined;
  /** The Firestore outage drill, if any: when Firestore came back, seconds after the first upload. */
  firestoreOutage: { seconds: number; endedAfterSeconds: number } | undefined;
  checks: { events: boolean; objects: boolean };
  peakRssBytes: number | undefined;
  rssOf: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function percentiles(values: number[]): Percentiles {
  if (values.length === 0) return { p50: NaN, p95: NaN, p99: NaN, max: NaN };
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (p: number) =>
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
  return { p50: rank(50), p95: rank(95), p99: rank(99), max: sorted[sorted.length - 1]! };
}

/** The kernel's peak resident set size of a process (VmHWM), in bytes. */
export function peakRss(pid: number | 'self'): number | undefined {
  try {
    const match = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A validated config as the environment variables that would produce it. */
function configToEnv(config: Config): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of ENV_VARS) {
    const value = (config as Record<string, unknown>)[name];
    if (value === undefined) continue;
    env[name] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return env;
}

/**
 * N distinct photo-like JPEGs: one generated picture, each copy with its own seeded block of
 * noise (so every upload is a different image id), encoded at quality 85.
 */
async function distinctPhotos(count: number, width: number, height: number): Promise<Buffer[]> {
  const base = photoPixels(width, height, { seed: 4711 });
  const block = Math.max(8, Math.floor(Math.min(width, height) / 20));
  const photos: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const pixels = Buffer.from(base);
    let state = (i + 1) * 2654435761;
    const next = () => {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      return state / 2 ** 32;
    };
    const x0 = Math.floor(next() * (width - block));
    const y0 = Math.floor(next() * (height - block));
    for (let y = y0; y < y0 + block; y++)
      for (let x = x0; x < x0 + block; x++)
        for (let c = 0; c < 3; c++) pixels[(y * width + x) * 3 + c] = Math.floor(next() * 256);
    photos.push(
      await sharp(pixels, { raw: { width, height, channels: 3 } })
        .jpeg({ quality: 85 })
        .toBuffer(),
    );
  }
  return photos;
}

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        await work(items[index]!, index);
      }
    }),
  );
}

interface Tracked {
  id: string;
  startedAt: number;
  acceptedAt: number;
  readyAt?: number;
  /** When `image.preview` (the first servable variant) was published. */
  firstAt?: number;
  state?: 'ready' | 'failed';
  variants?: string[];
  /** What the status API said, and when it first said it. */
  polled?: { state: 'ready' | 'failed'; at: number };
  lastPolledAt?: number;
}

interface TerminalEvent {
  type: string;
  imageId: string;
  at: number;
}

const FUNCTIONS_FRAMEWORK = fileURLToPath(
  new URL('../../node_modules/@google-cloud/functions-framework/build/src/main.js', import.meta.url),
);
const FUNCTIONS_SOURCE = fileURLToPath(new URL('../functions/index.js', import.meta.url));

/** Serves `resize` from its own functions-framework process, like one Cloud Run instance. */
async function startResizeProcess(stack: LocalStack, log: WriteStream): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      FUNCTIONS_FRAMEWORK,
      '--target=resize',
      '--signature-type=cloudevent',
      `--source=${FUNCTIONS_SOURCE}`,
      `--port=${port}`,
    ],
    {
      env: {
        ...process.env,
        ...configToEnv(stack.config),
        PUBSUB_EMULATOR_HOST: stack.urls.pubsub,
        FIRESTORE_EMULATOR_HOST: stack.urls.firestore,
        METADATA_SERVER_DETECTION: 'none',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.pipe(log, { end: false });
  child.stderr!.pipe(log, { end: false });
  const exited = new Promise<never>((_, reject) =>
    child.once('exit', (code) => reject(new Error(`the resize process exited with ${code} while starting`))),
  );
  exited.catch(() => undefined);
  await Promise.race([waitForPort(port, '127.0.0.1', 30_000), exited]);
  return { child, url: `http://127.0.0.1:${port}` };
}

/**
 * Cloud Run's front end for the resize process: admits `limit` pushes at once, answers 429
 * beyond, and passes the rest through.
 */
async function startAdmissionProxy(
  target: string,
  limit: number,
): Promise<{ server: Server; url: string; admission: AdmissionStats }> {
  const upstream = new URL(target);
  const gated = admitAtMost(
    (req, res) => {
      const forward = httpRequest(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      forward.on('error', () => {
        if (!res.headersSent) res.writeHead(502, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'bad_gateway', message: 'The resize process did not answer.' } }));
      });
      req.pipe(forward);
    },
    limit,
    undefined,
    REFUSAL_HOLD_MS,
  );
  const server = createServer(gated);
  server.requestTimeout = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, admission: gated.admission };
}

/** Adds or clears a fault on the local storage server through its admin endpoint. */
async function storageFault(storageUrl: string, fault: Record<string, unknown> | 'clear'): Promise<void> {
  const response = await fetch(
    `${storageUrl}/_admin/faults`,
    fault === 'clear'
      ? { method: 'DELETE' }
      : { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(fault) },
  );
  if (!response.ok)
    throw new Error(
      `storage server fault ${fault === 'clear' ? 'clear' : 'add'}: HTTP ${response.status} ${await response.text()}`,
    );
}

function describeBytes(bytes: number | undefined): string {
  return bytes === undefined ? 'n/a' : `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

/** Runs the load and the audit. Starts (and stops) a local stack unless `options.external`. */
export async function runLoad(options: LoadOptions): Promise<LoadReport> {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const external = options.external;
  let stack: LocalStack | undefined;
  let dataDir: string | undefined;
  let logFile: WriteStream | undefined;
  let resize: { child: ChildProcess; url: string } | undefined;
  let proxy: Server | undefined;
  let admission: AdmissionStats | undefined;
  let outageTimer: NodeJS.Timeout | undefined;
  let firestoreOutageTimer: NodeJS.Timeout | undefined;
  let firestoreBack: Promise<void> | undefined;
  let pubsub: PubSub | undefined;
  const subscriptions: Subscription[] = [];

  try {
    // ---- where to send the load
    let api: string;
    let storage: Storage | undefined;
    let imagesBucket: string | undefined;
    let eventsSubscription: Subscription | undefined;
    let deadLetterSubscription: Subscription | undefined;
    let rssPid: number | 'self' | undefined;
    let rssOf: string;
    if (!external) {
      // No metadata server next to the emulator: keep google-auth from probing for one.
      process.env.METADATA_SERVER_DETECTION ??= 'none';
      dataDir = await mkdtemp(join(tmpdir(), 'pipeline-load-'));
      logFile = createWriteStream(join(dataDir, 'stack.log'));
      progress(`starting the local stack (data and logs in ${dataDir})`);
      stack = await startLocalStack({
        ports: { web: 0, storage: 0, pubsub: 0, firestore: 0, ingest: 0, resize: 0, cleanup: 0, webhooks: 0 },
        dataDir,
        // A fresh project per run: an emulator shared with earlier runs keeps no messages for this one.
        projectId: `load-${process.pid}-${Date.now().toString(36)}`,
        cleanupIntervalSeconds: options.cleanupEverySeconds ?? 0,
        admission: { resize: options.resize === 'inline' ? (options.admit ?? admissionLimit('resize')) : 0 },
        ...(options.pubsubEmulatorHost ? { pubsubEmulatorHost: options.pubsubEmulatorHost } : {}),
        ...(options.firestoreEmulatorHost ? { firestoreEmulatorHost: options.firestoreEmulatorHost } : {}),
        // The load measures the pipeline, not sign-in: open unless options.env sets authentication.
        // image.preview on, so that the first servable variant is timed too.
        env: {
          PREVIEW_EVENT: 'true',
          ...withoutSignIn(options.env),
          WIDTHS: options.widths.join(','),
          FORMATS: options.formats.join(','),
        },
        log: (line) => logFile!.write(`${line}\n`),
      });
      api = stack.urls.api;
      pubsub = new PubSub({ projectId: stack.projectId, apiEndpoint: stack.urls.pubsub, emulatorMode: true });
      storage = new Storage({
        apiEndpoint: stack.urls.storage,
        projectId: stack.projectId,
        useAuthWithCustomEndpoint: false,
      });
      imagesBucket = stack.buckets.images;
      eventsSubscription = pubsub.subscription(stack.subscriptions.eventsPull, { flowControl: { maxMessages: 1000 } });
      deadLetterSubscription = pubsub.subscription(stack.subscriptions.jobsDeadLetterPull, {
        flowControl: { maxMessages: 1000 },
      });
      if (options.resize === 'process') {
        resize = await startResizeProcess(stack, logFile);
        // The stack's own gate is bypassed here: put one in front of the process.
        const gate = await startAdmissionProxy(resize.url, options.admit ?? admissionLimit('resize'));
        proxy = gate.server;
        admission = gate.admission;
        await pubsub
          .subscription(stack.subscriptions.jobsPush)
          .modifyPushConfig({ pushEndpoint: `${gate.url}${pushPath(stack.projectId, 'jobs')}` });
        rssPid = resize.child.pid!;
        rssOf = `the resize process (functions-framework, pid ${resize.child.pid}), VmHWM`;
      } else {
        admission = stack.admission.resize;
        rssPid = 'self';
        rssOf = 'this process (whole stack: upload, resize, storage server, load client), VmHWM';
      }
    } else {
      process.env.METADATA_SERVER_DETECTION ??= 'none';
      api = external.url.replace(/\/+$/, '');
      if (external.storage && external.imagesBucket) {
        storage = new Storage({
          apiEndpoint: external.storage,
          projectId: external.project ?? 'local-project',
          useAuthWithCustomEndpoint: false,
        });
        imagesBucket = external.imagesBucket;
      }
      if (external.pubsub && external.eventsSubscription) {
        pubsub = new PubSub({
          projectId: external.project ?? 'local-project',
          apiEndpoint: external.pubsub,
          emulatorMode: true,
        });
        eventsSubscription = pubsub.subscription(external.eventsSubscription, { flowControl: { maxMessages: 1000 } });
      }
      rssPid = external.resizePid;
      rssOf = external.resizePid ? `pid ${external.resizePid}, VmHWM` : 'n/a (give --resize-pid)';
    }

    // ---- follow terminal events
    const events: TerminalEvent[] = [];
    let deadLetters = 0;
    if (eventsSubscription) {
      subscriptions.push(eventsSubscription);
      eventsSubscription.on('message', (message: Message) => {
        try {
          const event = JSON.parse(message.data.toString()) as { type: string; imageId: string };
          events.push({ type: event.type, imageId: event.imageId, at: message.publishTime.getTime() });
        } catch {
          /* not an event of ours */
        }
        message.ack();
      });
      eventsSubscription.on('error', (error) => progress(`events subscription: ${error.message}`));
    }
    if (deadLetterSubscription) {
      subscriptions.push(deadLetterSubscription);
      deadLetterSubscription.on('message', (message: Message) => {
        deadLetters++;
        message.ack();
      });
      deadLetterSubscription.on('error', (error) => progress(`dead-letter subscription: ${error.message}`));
    }

    // ---- the images
    progress(`generating ${options.uploads} distinct ${options.width}×${options.height} JPEGs`);
    const photos = await distinctPhotos(options.uploads, options.width, options.height);

    // ---- upload
    const headers: Record<string, string> = {
      'Content-Type': 'image/jpeg',
      ...(external?.token ? { Authorization: `Bearer ${external.token}` } : {}),
    };
    const errors: Record<string, number> = {};
    const tracked = new Map<string, Tracked>();
    const requestSeconds: number[] = [];
    let requests = 0;
    let refused = 0;
    progress(`uploading with concurrency ${options.concurrency} to ${api}`);
    const uploadStart = Date.now();
    let lastAccepted = uploadStart;
    let outageEndsAt = 0;
    let outage: LoadReport['outage'];
    if (options.outageSeconds) {
      if (!stack) throw new Error('--outage needs the local stack (not --url)');
      const storageUrl = stack.urls.storage;
      // Every write of an object to the images bucket: variants, manifests, records.
      await storageFault(storageUrl, {
        method: 'POST',
        pathPattern: `/b/${stack.buckets.images}/o`,
        status: 503,
        times: 1_000_000_000,
      });
      outageEndsAt = uploadStart + options.outageSeconds * 1000;
      progress(`outage: every write to ${stack.buckets.images} answers 503 for ${options.outageSeconds} s`);
      outage = { seconds: options.outageSeconds, endedAfterSeconds: NaN };
      const ended = outage;
      outageTimer = setTimeout(() => {
        storageFault(storageUrl, 'clear')
          .then(() => {
            ended.endedAfterSeconds = (Date.now() - uploadStart) / 1000;
            progress(`outage over after ${ended.endedAfterSeconds.toFixed(0)} s`);
          })
          .catch((error: unknown) => progress(`could not end the outage: ${String(error)}`));
      }, options.outageSeconds * 1000);
    }
    let firestoreOutage: LoadReport['firestoreOutage'];
    if (options.firestoreOutageSeconds) {
      if (!stack) throw new Error('--firestore-outage needs the local stack (not --url)');
      if (stack.firestoreEmulator !== 'started')
        throw new Error(
          '--firestore-outage needs the stack to run its own Firestore emulator (unset FIRESTORE_EMULATOR_HOST)',
        );
      const drilled = stack;
      await drilled.pauseFirestore();
      const seconds = options.firestoreOutageSeconds;
      outageEndsAt = Math.max(outageEndsAt, uploadStart + seconds * 1000);
      progress(`Firestore outage: the Firestore emulator is stopped for ${seconds} s`);
      firestoreOutage = { seconds, endedAfterSeconds: NaN };
      const ended = firestoreOutage;
      firestoreBack = new Promise<void>((resolve) => {
        firestoreOutageTimer = setTimeout(() => {
          drilled
            .resumeFirestore()
            .then(() => {
              ended.endedAfterSeconds = (Date.now() - uploadStart) / 1000;
              progress(`Firestore outage over after ${ended.endedAfterSeconds.toFixed(0)} s`);
            })
            .catch((error: unknown) => progress(`could not end the Firestore outage: ${String(error)}`))
            .finally(resolve);
        }, seconds * 1000);
      });
    }
    await mapLimit(photos, options.concurrency, async (photo) => {
      const startedAt = Date.now();
      for (let attempt = 1; ; attempt++) {
        requests++;
        const sent = Date.now();
        let status = 0;
        let body: { imageId?: string; error?: { code?: string }; manifest?: { variants: Array<{ name: string }> } } =
          {};
        try {
          const response = await fetch(api, { method: 'POST', headers, body: photo as unknown as BodyInit });
          status = response.status;
          body = (await response.json().catch(() => ({}))) as typeof body;
        } catch {
          errors.network = (errors.network ?? 0) + 1;
        }
        requestSeconds.push((Date.now() - sent) / 1000);
        if ((status === 202 || status === 200) && body.imageId) {
          lastAccepted = Date.now();
          const entry: Tracked = { id: body.imageId, startedAt, acceptedAt: lastAccepted };
          if (status === 200)
            Object.assign(entry, {
              state: 'ready',
              readyAt: lastAccepted,
              variants: body.manifest?.variants.map((v) => v.name),
            });
          tracked.set(body.imageId, entry);
          return;
        }
        if (status !== 0)
          errors[body.error?.code ?? `http_${status}`] = (errors[body.error?.code ?? `http_${status}`] ?? 0) + 1;
        const retryable = status === 0 || status === 503 || status === 429;
        if (!retryable || attempt >= 6) {
          refused++;
          return;
        }
        await sleep(250 * 2 ** (attempt - 1));
      }
    });
    const uploadSeconds = (lastAccepted - uploadStart) / 1000;
    progress(`${tracked.size} accepted in ${uploadSeconds.toFixed(1)} s; waiting for them to finish`);

    // ---- wait: events first, status polls for what has no event yet
    // The image's own outcome: its uploads' upload.* events and image.preview say nothing of it.
    const terminalOf = (id: string) =>
      events.find((e) => e.imageId === id && (e.type === 'image.ready' || e.type === 'image.failed'));
    const hardDeadline = Date.now() + (options.maxWaitSeconds ?? 3600) * 1000;
    let lastProgress = Date.now();
    let finishedBefore = -1;
    let lastReport = Date.now();
    for (;;) {
      const pending = [...tracked.values()].filter((t) => !t.state);
      for (const t of pending) {
        const event = terminalOf(t.id);
        if (event) Object.assign(t, { state: event.type === 'image.ready' ? 'ready' : 'failed', readyAt: event.at });
      }
      const still = [...tracked.values()].filter((t) => !t.state);
      if (tracked.size - still.length !== finishedBefore) {
        finishedBefore = tracked.size - still.length;
        lastProgress = Date.now();
      }
      // During an outage nothing finishes: the patience counts from its end.
      const idleSince = Math.max(lastProgress, outageEndsAt);
      if (still.length === 0 || Date.now() - idleSince > options.timeoutSeconds * 1000 || Date.now() > hardDeadline)
        break;
      // Poll the status API too (it is the client's view), sparingly: each poll costs the stack
      // four storage requests, and with events at hand it is only the fallback.
      const pollEveryMs = eventsSubscription ? 5000 : 1000;
      const due = still.filter((t) => Date.now() - (t.lastPolledAt ?? t.acceptedAt) >= pollEveryMs).slice(0, 20);
      await mapLimit(due, 4, async (t) => {
        t.lastPolledAt = Date.now();
        try {
          const response = await fetch(`${api}/${t.id}`, {
            headers: external?.token ? { Authorization: `Bearer ${external.token}` } : {},
          });
          if (response.status === 200 || response.status === 422) {
            const body = (await response.json()) as { manifest?: { variants: Array<{ name: string }> } };
            const state = response.status === 200 ? 'ready' : 'failed';
            t.polled ??= { state, at: Date.now() };
            // With events available their publish time is the better clock; polling is the fallback.
            if (!eventsSubscription)
              Object.assign(t, { state, readyAt: t.polled.at, variants: body.manifest?.variants.map((v) => v.name) });
          } else {
            await response.arrayBuffer();
          }
        } catch {
          /* the next round polls again */
        }
      });
      // A terminal status without its event for 30 s is judged on the status alone (and the audit
      // below counts the missing event).
      for (const t of still)
        if (t.polled && !t.state && Date.now() - t.polled.at > 30_000)
          Object.assign(t, { state: t.polled.state, readyAt: t.polled.at });
      if (Date.now() - lastReport > 5000) {
        progress(`  ${tracked.size - still.length}/${tracked.size} finished`);
        lastReport = Date.now();
      }
      await sleep(500);
    }
    await sleep(3000); // late duplicates, if any, arrive now

    // The drill includes Firestore's return: the audit runs with it back, whenever images finished.
    if (firestoreBack) {
      progress('waiting for the end of the Firestore outage');
      await firestoreBack;
    }

    // ---- audit
    const problems: string[] = [];
    let lost = 0;
    let doubled = 0;
    let ready = 0;
    let failed = 0;
    let variantsPerImage = 0;
    const images = storage && imagesBucket ? storage.bucket(imagesBucket) : undefined;
    await mapLimit([...tracked.values()], 8, async (t) => {
      const readyEvents = events.filter((e) => e.imageId === t.id && e.type === 'image.ready').length;
      const failedEvents = events.filter((e) => e.imageId === t.id && e.type === 'image.failed').length;
      // Each image here has one upload, which hears the image's outcome once.
      const uploadOutcomes = events.filter(
        (e) => e.imageId === t.id && (e.type === 'upload.ready' || e.type === 'upload.failed'),
      ).length;
      const reasons: string[] = [];
      let hasManifest: boolean | undefined;
      let hasFailure: boolean | undefined;
      if (images) {
        const [files] = await images.getFiles({ prefix: `${t.id}/` });
        const names = files.map((f) => f.name);
        hasManifest = names.includes(manifestName(t.id));
        hasFailure = names.includes(errorRecordName(t.id));
        if (hasManifest && hasFailure) reasons.push('manifest and failure record');
        if (hasManifest) {
          const [bytes] = await images.file(manifestName(t.id)).download();
          const manifest = JSON.parse(bytes.toString()) as { variants: Array<{ name: string }> };
          const expected = [...manifest.variants.map((v) => v.name), manifestName(t.id)].sort();
          const actual = names.filter((n) => n !== errorRecordName(t.id)).sort();
          if (new Set(manifest.variants.map((v) => v.name)).size !== manifest.variants.length)
            reasons.push('a variant listed twice in the manifest');
          if (JSON.stringify(expected) !== JSON.stringify(actual))
            reasons.push(`objects ${actual.length} ≠ manifest ${expected.length}`);
          variantsPerImage = Math.max(variantsPerImage, manifest.variants.length);
        }
      }
      if (eventsSubscription) {
        if (readyEvents > 1) reasons.push(`${readyEvents}× image.ready`);
        if (failedEvents > 1) reasons.push(`${failedEvents}× image.failed`);
        if (readyEvents > 0 && failedEvents > 0) reasons.push('both image.ready and image.failed');
        if (uploadOutcomes > 1) reasons.push(`${uploadOutcomes} upload.ready/failed for its one upload`);
      }
      const terminal = t.state !== undefined || hasManifest === true || hasFailure === true;
      if (!terminal) {
        lost++;
        problems.push(
          `${t.id}: lost (no manifest, no failure record; no image finished in the last ${options.timeoutSeconds} s)`,
        );
        return;
      }
      if (eventsSubscription && (readyEvents + failedEvents === 0 || uploadOutcomes === 0)) {
        // Finished but never announced: lost to whoever waits for the event.
        lost++;
        problems.push(`${t.id}: finished but no ${readyEvents + failedEvents === 0 ? 'terminal' : 'upload.*'} event`);
        return;
      }
      if (reasons.length > 0) {
        doubled++;
        problems.push(`${t.id}: doubled (${reasons.join('; ')})`);
      }
      if (hasFailure || t.state === 'failed') failed++;
      else ready++;
    });

    const readyTimes = [...tracked.values()].filter((t) => t.readyAt !== undefined).map((t) => t.readyAt!);
    const lastReady = readyTimes.length > 0 ? Math.max(...readyTimes) : Date.now();
    const processingSeconds = (lastReady - uploadStart) / 1000;
    const latencies = [...tracked.values()]
      .filter((t) => t.readyAt !== undefined)
      .map((t) => (t.readyAt! - t.startedAt) / 1000);
    for (const t of tracked.values())
      t.firstAt ??= events.find((e) => e.imageId === t.id && e.type === 'image.preview')?.at;
    const firstVariants = [...tracked.values()]
      .filter((t) => t.firstAt !== undefined)
      .map((t) => (t.firstAt! - t.startedAt) / 1000);
    const { progress: _omit, ...reportedOptions } = options;
    void _omit;
    const report: LoadReport = {
      options: reportedOptions,
      target: external
        ? api
        : `local stack (${options.resize === 'process' ? 'resize in its own process' : 'all functions in one process'})`,
      machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}`,
      uploads: {
        attempted: options.uploads,
        accepted: tracked.size,
        refused,
        requests,
        seconds: uploadSeconds,
        perSecond: uploadSeconds > 0 ? tracked.size / uploadSeconds : NaN,
        latency: percentiles(requestSeconds),
      },
      processing: {
        ready,
        failed,
        seconds: processingSeconds,
        imagesPerSecond: processingSeconds > 0 ? (ready + failed) / processingSeconds : NaN,
        latency: latencies.length > 0 ? percentiles(latencies) : undefined,
        firstVariant: firstVariants.length > 0 ? percentiles(firstVariants) : undefined,
      },
      errors,
      variantsPerImage,
      lost,
      doubled,
      problems,
      deadLetters: deadLetterSubscription ? deadLetters : undefined,
      admission: admission ? { ...admission } : undefined,
      outage,
      firestoreOutage,
      checks: { events: eventsSubscription !== undefined, objects: images !== undefined },
      peakRssBytes: rssPid === undefined ? undefined : peakRss(rssPid),
      rssOf,
    };
    return report;
  } finally {
    if (outageTimer) clearTimeout(outageTimer);
    // A run that ends during the Firestore outage does not resume it; stop() waits for a resume under way.
    if (firestoreOutageTimer) clearTimeout(firestoreOutageTimer);
    await Promise.allSettled(subscriptions.map((s) => s.close()));
    if (proxy) {
      proxy.closeAllConnections();
      await new Promise((r) => proxy!.close(r));
    }
    if (resize && resize.child.exitCode === null && resize.child.signalCode === null) {
      const exited = new Promise((r) => resize!.child.once('exit', r));
      resize.child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (resize.child.exitCode === null && resize.child.signalCode === null) resize.child.kill('SIGKILL');
    }
    await pubsub?.close().catch(() => undefined);
    await stack?.stop();
    if (logFile) await new Promise((r) => logFile!.end(r));
    if (dataDir && !options.keepData) await rm(dataDir, { recursive: true, force: true });
    else if (dataDir) progress(`data kept in ${dataDir}`);
  }
}

const seconds = (value: number) => (Number.isFinite(value) ? `${value.toFixed(value < 10 ? 2 : 1)} s` : 'n/a');

/** The report as Markdown. */
export function formatReport(report: LoadReport): string {
  const o = report.options;
  const p = report.processing.latency;
  const f = report.processing.firstVariant;
  const u = report.uploads;
  const errors = Object.entries(report.errors)
    .sort(([, a], [, b]) => b - a)
    .map(([code, count]) => `${code} ×${count}`)
    .join(', ');
  const rows: Array<[string, string]> = [
    ['target', report.target],
    ['machine', report.machine],
    [
      'images',
      `${o.uploads} distinct ${o.width}×${o.height} JPEGs; ${o.external ? 'WIDTHS and FORMATS as configured there' : `WIDTHS ${o.widths.join(',')}, FORMATS ${o.formats.join(',')}`} (${report.variantsPerImage || '?'} variants each)`,
    ],
    ['uploads accepted', `${u.accepted} / ${u.attempted} (${u.requests} requests, ${u.refused} refused after retries)`],
    ['upload throughput', `${u.perSecond.toFixed(1)} uploads/s (${seconds(u.seconds)} for all uploads)`],
    [
      'upload request p50 / p95 / p99',
      `${seconds(u.latency.p50)} / ${seconds(u.latency.p95)} / ${seconds(u.latency.p99)}`,
    ],
    [
      'processing throughput',
      `${report.processing.imagesPerSecond.toFixed(2)} images/s (${seconds(report.processing.seconds)} from the first upload to the last image ready)`,
    ],
    [
      'upload → ready p50 / p95 / p99 (max)',
      p ? `${seconds(p.p50)} / ${seconds(p.p95)} / ${seconds(p.p99)} (${seconds(p.max)})` : 'n/a',
    ],
    [
      'upload → first variant p50 / p95 / p99 (max)',
      f ? `${seconds(f.p50)} / ${seconds(f.p95)} / ${seconds(f.p99)} (${seconds(f.max)})` : 'n/a (no image.preview)',
    ],
    ['ready / failed', `${report.processing.ready} / ${report.processing.failed}`],
    ['errors by code', errors || 'none'],
    [
      'resize admission',
      report.admission
        ? `${report.admission.limit || 'unlimited'} at once: ${report.admission.admitted} pushes admitted, ${report.admission.refused} refused with 429 (peak ${report.admission.peak})`
        : 'n/a',
    ],
    ...(report.outage
      ? ([
          [
            'outage drill',
            `images bucket writes answered 503 for ${report.outage.seconds} s (ended ${seconds(report.outage.endedAfterSeconds)} after the first upload)`,
          ],
        ] as Array<[string, string]>)
      : []),
    ...(report.firestoreOutage
      ? ([
          [
            'Firestore outage drill',
            `Firestore emulator stopped for ${report.firestoreOutage.seconds} s (back ${seconds(report.firestoreOutage.endedAfterSeconds)} after the first upload)`,
          ],
        ] as Array<[string, string]>)
      : []),
    ['dead letters', report.deadLetters === undefined ? 'n/a' : String(report.deadLetters)],
    ['**lost**', `**${report.lost}**`],
    [
      '**doubled**',
      `**${report.doubled}**${report.checks.events && report.checks.objects ? '' : ` (checked: ${[report.checks.events ? 'events' : '', report.checks.objects ? 'objects' : '', 'status'].filter(Boolean).join(', ')})`}`,
    ],
    ['peak RSS of resize', `${describeBytes(report.peakRssBytes)} (${report.rssOf})`],
  ];
  if (o.env && Object.keys(o.env).length > 0)
    rows.splice(3, 0, [
      'settings',
      Object.entries(o.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(', '),
    ]);
  const lines = [`## Load: ${o.uploads} uploads, concurrency ${o.concurrency}`, '', markdownTable(['', ''], rows)];
  if (!o.external) {
    lines.push(
      '',
      'The Pub/Sub emulator pushes at most 2 requests at a time to a push endpoint, and one process serves resize, so',
      'images/s and upload → ready measure this machine and the emulator, not Cloud Run (where push deliveries scale',
      'out over instances). Lost and doubled are what this run is for.',
    );
  }
  if (report.problems.length > 0)
    lines.push('', '### Lost or doubled', '', ...report.problems.slice(0, 50).map((p) => `- ${p}`));
  return lines.join('\n');
}

function parseList<T>(value: string, parse: (item: string) => T): T[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(parse);
}

/** Parses the command line (see the module comment). */
export function parseLoadArgs(argv: readonly string[]): LoadOptions & { json?: string } {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      uploads: { type: 'string', default: '200' },
      concurrency: { type: 'string', default: '20' },
      size: { type: 'string', default: '800x600' },
      widths: { type: 'string', default: '320,640' },
      formats: { type: 'string', default: 'webp,jpeg' },
      resize: { type: 'string', default: 'process' },
      admit: { type: 'string' },
      outage: { type: 'string' },
      'firestore-outage': { type: 'string' },
      'cleanup-every': { type: 'string' },
      timeout: { type: 'string', default: '120' },
      'max-wait': { type: 'string', default: '3600' },
      json: { type: 'string' },
      'keep-data': { type: 'boolean', default: false },
      url: { type: 'string' },
      token: { type: 'string' },
      storage: { type: 'string' },
      'images-bucket': { type: 'string' },
      pubsub: { type: 'string' },
      project: { type: 'string' },
      'events-subscription': { type: 'string' },
      'resize-pid': { type: 'string' },
      set: { type: 'string', multiple: true },
    },
    strict: true,
  });
  const positive = (name: string, raw: string) => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1)
      throw new Error(`--${name} must be a positive whole number, got ${JSON.stringify(raw)}`);
    return n;
  };
  const size = /^(\d+)x(\d+)$/.exec(values.size!);
  if (!size) throw new Error(`--size must look like 800x600, got ${JSON.stringify(values.size)}`);
  const formats = parseList(values.formats!, (f) => {
    if (!(OUTPUT_FORMATS as readonly string[]).includes(f))
      throw new Error(`--formats: ${f} is not one of ${OUTPUT_FORMATS.join(', ')}`);
    return f as OutputFormat;
  });
  if (values.resize !== 'process' && values.resize !== 'inline') throw new Error('--resize must be process or inline');
  const env: Record<string, string> = {};
  for (const pair of values.set ?? []) {
    const at = pair.indexOf('=');
    if (at < 1) throw new Error(`--set takes KEY=VALUE, got ${JSON.stringify(pair)}`);
    env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return {
    uploads: positive('uploads', values.uploads!),
    concurrency: positive('concurrency', values.concurrency!),
    width: Number(size[1]),
    height: Number(size[2]),
    widths: parseList(values.widths!, (w) => positive('widths', w)),
    formats,
    resize: values.resize,
    ...(values.admit !== undefined
      ? {
          admit:
            Number.isInteger(Number(values.admit)) && Number(values.admit) >= 0
              ? Number(values.admit)
              : positive('admit', values.admit),
        }
      : {}),
    ...(values.outage !== undefined ? { outageSeconds: positive('outage', values.outage) } : {}),
    ...(values['firestore-outage'] !== undefined
      ? { firestoreOutageSeconds: positive('firestore-outage', values['firestore-outage']) }
      : {}),
    ...(values['cleanup-every'] !== undefined
      ? { cleanupEverySeconds: positive('cleanup-every', values['cleanup-every']) }
      : {}),
    timeoutSeconds: positive('timeout', values.timeout!),
    maxWaitSeconds: positive('max-wait', values['max-wait']!),
    keepData: values['keep-data']!,
    ...(Object.keys(env).length > 0 ? { env } : {}),
    ...(process.env.PUBSUB_EMULATOR_HOST ? { pubsubEmulatorHost: process.env.PUBSUB_EMULATOR_HOST } : {}),
    ...(process.env.FIRESTORE_EMULATOR_HOST ? { firestoreEmulatorHost: process.env.FIRESTORE_EMULATOR_HOST } : {}),
    ...(values.json ? { json: values.json } : {}),
    ...(values.url
      ? {
          external: {
            url: values.url,
            ...(values.token ? { token: values.token } : {}),
            ...(values.storage ? { storage: values.storage } : {}),
            ...(values['images-bucket'] ? { imagesBucket: values['images-bucket'] } : {}),
            ...(values.pubsub ? { pubsub: values.pubsub } : {}),
            ...(values.project ? { project: values.project } : {}),
            ...(values['events-subscription'] ? { eventsSubscription: values['events-subscription'] } : {}),
            ...(values['resize-pid'] ? { resizePid: positive('resize-pid', values['resize-pid']) } : {}),
          },
        }
      : {}),
  };
}

/** What `--help` prints. */
const USAGE = `usage: npm run load -- [options]

Many uploads at once through the whole pipeline (the local stack, started here unless --url
names a running one), then an audit that every accepted image ended exactly once. Options
(defaults in brackets):

  --uploads N          uploads [200]
  --concurrency N      uploads in flight at once [20]
  --size WxH           size of the generated JPEGs [800x600]
  --widths LIST        WIDTHS for the run [320,640]: fewer, smaller variants than the
                       production default (320…2048) keep a local run to a minute or two
  --formats LIST       FORMATS for the run [webp,jpeg]: AVIF costs 6–13× WebP per pixel;
                       pass avif,webp,jpeg to load the production mix
  --resize MODE        process (separate functions-framework process) | inline (in this
                       process, as npm start does) [process]
  --admit N            resize requests admitted at once, 429 beyond, as Cloud Run does with
                       every instance busy [the topology's maxInstances × concurrency]
  --outage S           outage drill: the storage server answers 503 to every write to the
                       images bucket (the resize path's) for S seconds from the first upload;
                       the wait for images counts from the end of the outage
  --firestore-outage S Firestore outage drill: the stack's Firestore emulator is stopped (its
                       data kept in an export) for S seconds from the first upload, then
                       started again on the same port with that data (LocalStack.pauseFirestore
                       / resumeFirestore); can be combined with --outage. The wait for images
                       counts from the end of the later outage, and the audit runs once
                       Firestore is back. Needs the local stack with its
                       own Firestore emulator (not --url, not FIRESTORE_EMULATOR_HOST)
  --cleanup-every S    run a cleanup pass every S seconds, as Cloud Scheduler does [none]; with
                       --set REDISPATCH_AFTER_MINUTES=N it re-dispatches work that made no
                       progress (the outage drill's recovery when the emulator stops pushing)
  --set KEY=VALUE      any other pipeline setting for the stack, repeatable (e.g.
                       --set FANOUT_STRATEGY=per-image --set AVIF_EFFORT=2)
  --timeout S          give up waiting once no image has finished for S seconds [120]
  --max-wait S         give up waiting after S seconds in all [3600]
  --json FILE          also write the report as JSON
  --keep-data          keep the stack's temporary data directory
  --url URL            load an already running stack's upload API instead (e.g.
                       http://127.0.0.1:8080/uploads); lost/doubled then come from the status
                       API, plus events and objects when these are given:
  --token TOKEN        bearer token for --url
  --storage URL        its storage endpoint and --images-bucket NAME (object audit)
  --pubsub HOST:PORT   its Pub/Sub emulator, with --project ID and --events-subscription NAME
  --resize-pid PID     pid of the process serving resize there (peak RSS)
  -h, --help           print this and exit
`;

async function main(): Promise<void> {
  let options: ReturnType<typeof parseLoadArgs>;
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  try {
    options = parseLoadArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  const report = await runLoad(options);
  process.stdout.write(`${formatReport(report)}\n`);
  if (options.json) await writeFile(options.json, `${JSON.stringify(report, null, 2)}\n`);
  process.exit(report.lost > 0 || report.doubled > 0 ? 1 : 0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `load run failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
