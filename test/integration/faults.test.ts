/**
 * Faults: at-least-once delivery, storage outages, a killed `resize`, a failed publish, a job
 * that never succeeds, and a duplicate that fails after its twin finished. Jobs reach `resize`
 * through real Pub/Sub push subscriptions on the emulator (with retry and dead-letter policies),
 * or through HTTP pushes shaped exactly like them; storage is the local storage server with its
 * fault injection. `resize` runs in this process, or, for the kill test, as a separate
 * functions-framework process that is SIGKILLed mid-job and restarted.
 *
 * Every test ends with the same audit over every image it touched: each one is either complete
 * (exactly the planned variant objects, one manifest, exactly one `image.ready`, no failure
 * record) or recorded as failed (`error.json`, exactly one `image.failed`, no manifest):
 * zero lost, zero doubled.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Message, Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { waitForPort } from '../../local/pubsub-emulator.js';
import { runCleanup } from '../../shared/cleanup.js';
import type { Config } from '../../shared/config.js';
import { createDeps, type PipelineDeps } from '../../shared/deps.js';
import { permanent } from '../../shared/errors.js';
import { ingestObject } from '../../shared/ingest-object.js';
import { FailureRecordV1, type EventMessage, type JobMessage, type Manifest } from '../../shared/schemas.js';
import { recordFailure, writeManifest } from '../../shared/records.js';
import { errorRecordName, imageIdOf, manifestName, originalName } from '../../shared/naming.js';
import { runJob } from '../../shared/run-job.js';
import { makePhoto } from '../fixtures/images.js';
import { freePort } from '../fixtures/pubsub.js';
import { pullJobs, pushBody, startTestPipeline, TEST_PROJECT, type TestPipeline } from '../fixtures/pipeline.js';

const UPLOADS = 'test-uploads';
const IMAGES = 'test-images';
const FUNCTIONS_FRAMEWORK = fileURLToPath(new URL('../../../node_modules/@google-cloud/functions-framework/build/src/main.js', import.meta.url));
const FUNCTIONS_SOURCE = fileURLToPath(new URL('../../functions/index.js', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** A deterministic shuffle (the order is the point of the test, so it must not change between runs). */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** One suite's pipeline plus what the audit needs: every event, and each image's planned variants. */
interface Harness {
  pipeline: TestPipeline;
  events: EventMessage[];
  planned: Map<string, string[]>;
  stop(): Promise<void>;
}

async function startHarness(env: Record<string, string> = {}): Promise<Harness> {
  const pipeline = await startTestPipeline(env);
  useDeps(pipeline.deps);
  const events: EventMessage[] = [];
  pipeline.events.on('message', (message: Message) => {
    events.push(JSON.parse(message.data.toString()) as EventMessage);
    message.ack();
  });
  return { pipeline, events, planned: new Map(), stop: () => pipeline.stop() };
}

/** Uploads through the API like a client that retries 503s; records the plan. */
async function upload(h: Harness, image: Buffer, options: { retries?: number } = {}): Promise<{ id: string; status: number; attempts: number }> {
  let attempts = 0;
  for (;;) {
    attempts++;
    const response = await request(getTestServer('upload')).post('/uploads').set('Content-Type', 'application/octet-stream').send(image);
    if (response.status === 202) {
      h.planned.set(response.body.id, (response.body.variants as Array<{ name: string }>).map((v) => v.name).sort());
      return { id: response.body.id, status: 202, attempts };
    }
    if (response.status === 200) {
      // An earlier attempt stored and queued it but its answer was lost to a 503 (e.g. the
      // dispatchedAt stamp failed after the publish); the image finished meanwhile.
      h.planned.set(response.body.id, (response.body.manifest.variants as Array<{ name: string }>).map((v) => v.name).sort());
      return { id: response.body.id, status: 200, attempts };
    }
    if (response.status !== 503 || attempts > (options.retries ?? 0)) return { id: imageIdOf(image), status: response.status, attempts };
    await sleep(200);
  }
}

/**
 * A push subscription on the jobs topic pointed at `port`, like terraform/pubsub.tf's but without
 * a retry policy: with a 1–2 s backoff the emulator (0.8.20) redelivers a nacked push message
 * three or four times and then never again (none in five minutes), while without a policy it
 * redelivers about every second, as these tests need. With the topology's own 10–600 s backoff
 * (the local stack's subscription) it does back off and dead-letter: deliveries at 1, 2, 16, 33
 * and 55 s, dead letter at 82 s, too slow for a test.
 */
async function pushSubscription(
  h: Harness,
  name: string,
  port: number,
  options: { deadLetterTopic?: string; maxDeliveryAttempts?: number } = {},
): Promise<Subscription> {
  const [subscription] = await h.pipeline.pubsub.topic(h.pipeline.config.JOBS_TOPIC).createSubscription(name, {
    pushConfig: { pushEndpoint: `http://127.0.0.1:${port}/projects/${TEST_PROJECT}/topics/${h.pipeline.config.JOBS_TOPIC}` },
    ackDeadlineSeconds: 60,
    ...(options.deadLetterTopic
      ? { deadLetterPolicy: { deadLetterTopic: `projects/${TEST_PROJECT}/topics/${options.deadLetterTopic}`, maxDeliveryAttempts: options.maxDeliveryAttempts ?? 5 } }
      : {}),
  });
  return subscription;
}

/** Notes every push a server receives (time, job, message id, answer), for failure reports. */
function recordPushes(server: Server): () => string {
  const lines: string[] = [];
  server.prependListener('request', (req, res) => {
    const started = new Date();
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    res.on('finish', () => {
      let what = '?';
      try {
        const message = JSON.parse(Buffer.concat(chunks).toString()).message as { data: string; messageId: string };
        const job = JSON.parse(Buffer.from(message.data, 'base64').toString()) as JobMessage;
        what = `${job.imageId} job ${job.job.index + 1}/${job.job.count} message ${message.messageId}`;
      } catch {
        /* not a job */
      }
      lines.push(`${started.toISOString()} ${what} → ${res.statusCode} in ${Date.now() - started.getTime()} ms`);
    });
  });
  return () => lines.join('\n');
}

function listen(server: Server, port: number): Promise<Server> {
  // Longer than the emulator's gaps between pushes, so that it never reuses a connection that
  // Node is closing (Cloud Run's front end holds connections the same way).
  server.keepAliveTimeout = 120_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** The outcome of one image, as the audit sees it. */
type Verdict = 'complete' | 'failed' | 'lost' | 'doubled';

interface AuditResult {
  verdicts: Map<string, Verdict>;
  counts: Record<Verdict, number>;
  problems: string[];
}

/**
 * Waits until every image has a terminal record and its event, then a quiet period for late
 * duplicates, and judges each image.
 */
async function audit(h: Harness, ids: readonly string[], options: { timeoutMs?: number } = {}): Promise<AuditResult> {
  const images = h.pipeline.deps.storage.bucket(IMAGES);
  const terminal = async (id: string) => {
    const [[manifest], [failure]] = await Promise.all([images.file(manifestName(id)).exists(), images.file(errorRecordName(id)).exists()]);
    return (manifest || failure) && h.events.some((e) => e.imageId === id);
  };
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  while (Date.now() < deadline) {
    const done = await Promise.all(ids.map(terminal));
    if (done.every(Boolean)) break;
    await sleep(250);
  }
  await sleep(2000); // late duplicates, if any, arrive now
  const verdicts = new Map<string, Verdict>();
  const problems: string[] = [];
  for (const id of ids) {
    const [files] = await images.getFiles({ prefix: `${id}/` });
    const names = files.map((f) => f.name).sort();
    const hasManifest = names.includes(manifestName(id));
    const hasFailure = names.includes(errorRecordName(id));
    const ready = h.events.filter((e) => e.imageId === id && e.type === 'image.ready').length;
    const failed = h.events.filter((e) => e.imageId === id && e.type === 'image.failed').length;
    const planned = h.planned.get(id) ?? [];
    const variants = names.filter((n) => n !== manifestName(id) && n !== errorRecordName(id));
    let verdict: Verdict;
    if (ready > 1 || failed > 1 || (ready > 0 && failed > 0) || (hasManifest && hasFailure) || variants.some((v) => !planned.includes(v))) verdict = 'doubled';
    else if (hasManifest && ready === 1 && JSON.stringify(variants) === JSON.stringify(planned)) verdict = 'complete';
    else if (hasFailure && failed === 1) verdict = 'failed';
    else verdict = 'lost';
    if (verdict === 'doubled' || verdict === 'lost') problems.push(`${id}: ${verdict} (manifest ${hasManifest}, error ${hasFailure}, ready ${ready}, failed ${failed}, objects ${names.join(' ')})`);
    verdicts.set(id, verdict);
  }
  const counts = { complete: 0, failed: 0, lost: 0, doubled: 0 };
  for (const verdict of verdicts.values()) counts[verdict]++;
  return { verdicts, counts, problems };
}

/** On a failed audit, what the pipeline logged about the images in trouble. */
function explain(h: Harness, result: AuditResult): string {
  const trouble = [...result.verdicts].filter(([, v]) => v === 'lost' || v === 'doubled').map(([id]) => id);
  const lines = h.pipeline.logs
    .filter((l) => trouble.includes(String(l.imageId)) || trouble.some((id) => JSON.stringify(l).includes(id)))
    .map((l) => `${l.time} ${l.severity} ${l.event ?? ''} ${l.message} ${l.job ?? ''} ${JSON.stringify(l.error ?? l.code ?? '')}`);
  return [...result.problems, ...lines.slice(-60)].join('\n');
}

function expectAllComplete(result: AuditResult, count: number, h?: Harness): void {
  expect(result.problems, h ? explain(h, result) : result.problems.join('\n')).to.deep.equal([]);
  expect(result.counts).to.deep.equal({ complete: count, failed: 0, lost: 0, doubled: 0 });
}

describe('faults: every accepted image ends complete or recorded as failed, exactly once', function () {
  // Generous: the emulator's push and backoff slow down a lot on a loaded 2-core machine.
  this.timeout(600_000);

  describe('at-least-once delivery', () => {
    let h: Harness;
    before(async () => (h = await startHarness()));
    after(async () => h.stop());

    it('every job of 6 images delivered 3× in shuffled order, 6 at a time: 6 complete, 0 lost, 0 doubled', async () => {
      const ids: string[] = [];
      for (let i = 0; i < 6; i++) ids.push((await upload(h, await makePhoto({ width: 260 + 20 * i, height: 200, seed: 3000 + i }))).id);
      const jobs = await pullJobs(h.pipeline.jobs);
      expect(new Set(jobs.map(({ job }) => job.imageId))).to.have.property('size', 6);
      const deliveries = shuffled([...jobs, ...jobs, ...jobs], 7);
      const path = `/projects/${TEST_PROJECT}/topics/${h.pipeline.config.JOBS_TOPIC}`;
      const deliver = async (batch: typeof deliveries) => {
        const retry: typeof deliveries = [];
        let next = 0;
        await Promise.all(
          Array.from({ length: 6 }, async () => {
            while (next < batch.length) {
              const item = batch[next++]!;
              const status = (await request(getTestServer('resize')).post(path).send(pushBody(item.message))).status;
              if (status !== 204) retry.push(item); // Pub/Sub redelivers what was not acknowledged
            }
          }),
        );
        return retry;
      };
      let pending = await deliver(deliveries);
      const redelivered = pending.length;
      for (let round = 0; pending.length > 0 && round < 10; round++) {
        await sleep(500);
        pending = await deliver(pending);
      }
      expect(pending, 'every delivery acknowledged in the end').to.have.length(0);
      const result = await audit(h, ids);
      expectAllComplete(result, 6);
      const announced = h.pipeline.logs.filter((l) => l.message === 'image.ready published');
      expect(announced, 'one announcement per image').to.have.length(6);
      console.log(`      (${deliveries.length} deliveries of ${jobs.length} jobs; ${redelivered} asked for redelivery)`);
    });

    it('every finalize event of 3 incoming/ objects delivered 3× at once, then every job 2×: 3 complete, 0 lost, 0 doubled', async () => {
      const uploads = h.pipeline.deps.storage.bucket(UPLOADS);
      const ids: string[] = [];
      const deliveries: Array<Promise<number>> = [];
      for (let i = 0; i < 3; i++) {
        const image = await makePhoto({ width: 280, height: 210, seed: 3100 + i });
        const name = `incoming/dup-${i}.jpg`;
        await uploads.file(name).save(image, { resumable: false, contentType: 'image/jpeg' });
        const [metadata] = await uploads.file(name).getMetadata();
        ids.push(imageIdOf(image));
        h.planned.set(imageIdOf(image), ['96w.avif', '96w.webp', '96w.jpg', '160w.avif', '160w.webp', '160w.jpg'].map((n) => `${imageIdOf(image)}/${n}`).sort());
        for (let copy = 0; copy < 3; copy++) {
          // Eventarc's binary-mode CloudEvent, the same event id each time, as a redelivery carries.
          deliveries.push(
            request(getTestServer('ingest'))
              .post('/')
              .set({
                'ce-specversion': '1.0',
                'ce-type': 'google.cloud.storage.object.v1.finalized',
                'ce-source': `//storage.googleapis.com/projects/_/buckets/${UPLOADS}`,
                'ce-subject': `objects/${name}`,
                'ce-id': `finalize-${i}`,
                'Content-Type': 'application/json',
              })
              .send(metadata)
              .then((r) => r.status),
          );
        }
      }
      expect(await Promise.all(deliveries)).to.satisfy((statuses: number[]) => statuses.every((s) => s === 204));
      const [left] = await uploads.getFiles({ prefix: 'incoming/dup-' });
      expect(left, 'every incoming/ object removed').to.have.length(0);
      const jobs = await pullJobs(h.pipeline.jobs);
      const path = `/projects/${TEST_PROJECT}/topics/${h.pipeline.config.JOBS_TOPIC}`;
      let pending = shuffled([...jobs, ...jobs], 11);
      for (let round = 0; pending.length > 0 && round < 10; round++) {
        const statuses = await Promise.all(pending.map((item) => request(getTestServer('resize')).post(path).send(pushBody(item.message)).then((r) => r.status)));
        pending = pending.filter((_, i) => statuses[i] !== 204);
        if (pending.length > 0) await sleep(500);
      }
      expectAllComplete(await audit(h, ids), 3, h);
      console.log(`      (9 finalize deliveries dispatched ${jobs.length} jobs for 3 images; each delivered twice)`);
    });
  });

  describe('storage 503s on reads and writes while jobs flow through a real push subscription', () => {
    let h: Harness;
    let server: Server;
    let subscription: Subscription;
    let pushes: () => string;
    before(async () => {
      h = await startHarness();
      const port = await freePort();
      server = await listen(getTestServer('resize'), port);
      pushes = recordPushes(server);
      subscription = await pushSubscription(h, `push-503-${port}`, port);
    });
    after(async () => {
      h.pipeline.storageServer.clearFaults();
      await subscription.delete().catch(() => undefined);
      await new Promise((r) => server.close(r));
      await h.stop();
    });

    it('6 images (4 uploaded, 2 dropped in incoming/) under repeated 503 bursts: 6 complete, 0 lost, 0 doubled', async () => {
      const port = await freePort();
      const ingest = await listen(getTestServer('ingest'), port);
      h.pipeline.storageServer.addNotification(UPLOADS, `http://127.0.0.1:${port}/`);
      const storage = h.pipeline.storageServer;
      // Bursts of 503s on every kind of request the pipeline makes: stat, list, download, upload, copy, delete
      // (metadata writes go to originals/ and, since issue 10, to the outcome markers in outcomes/).
      let injecting = true;
      let bursts = 0;
      const injector = (async () => {
        const targets: Array<{ method: string; path: RegExp }> = [
          { method: 'GET', path: /\/storage\/v1\/b\/test-images\/o/ },
          { method: 'GET', path: /alt=media/ },
          { method: 'POST', path: /\/upload\/storage\/v1\/b\/test-images\/o/ },
          { method: 'POST', path: /\/upload\/storage\/v1\/b\/test-uploads\/o\?.*(originals|outcomes)/ },
          { method: 'POST', path: /rewriteTo|copyTo/ },
          { method: 'DELETE', path: /incoming/ },
          { method: 'PATCH', path: /originals|outcomes/ },
        ];
        while (injecting) {
          // One burst at a time (unconsumed ones are dropped): intermittent trouble, not an outage.
          // Two 503s are usually absorbed by the client library's own retries; five are not.
          const target = targets[bursts % targets.length]!;
          storage.clearFaults();
          storage.injectFault({ ...target, status: 503, times: bursts % 2 === 0 ? 2 : 6 });
          bursts++;
          await sleep(250);
        }
      })();
      try {
        const ids: string[] = [];
        for (let i = 0; i < 4; i++) {
          const result = await upload(h, await makePhoto({ width: 300, height: 220 + 10 * i, seed: 4000 + i }), { retries: 20 });
          expect(result.status, `upload ${i}`).to.be.oneOf([202, 200]);
          ids.push(result.id);
        }
        for (let i = 0; i < 2; i++) {
          const image = await makePhoto({ width: 280, height: 210, seed: 4100 + i });
          const file = h.pipeline.deps.storage.bucket(UPLOADS).file(`incoming/storm-${i}.jpg`);
          await waitFor('an incoming save between bursts', () => file.save(image, { resumable: false }).then(() => true, () => undefined), 30_000, 50);
          ids.push(imageIdOf(image));
        }
        await sleep(6000); // keep the storm going while jobs run
        injecting = false;
        await injector;
        storage.clearFaults();
        // Ingested images have no upload response: their plan (280 px wide, WIDTHS 96,160, three formats).
        for (const id of ids.slice(4)) h.planned.set(id, ['96w.avif', '96w.webp', '96w.jpg', '160w.avif', '160w.webp', '160w.jpg'].map((n) => `${id}/${n}`).sort());
        const result = await audit(h, ids);
        if (result.problems.length > 0) console.log(`      pushes received:\n${pushes()}`);
        expectAllComplete(result, 6, h);
        const retried = h.pipeline.logs.filter((l) => l.event === 'job.error' || l.event === 'ingest.retry').length;
        const refused = h.pipeline.logs.filter((l) => l.event === 'http.error' && l.status === 503).length;
        expect(retried + refused, 'the faults got past the client library retries').to.be.greaterThan(0);
        console.log(`      (${bursts} bursts of 503s; ${retried} deliveries failed transiently and were redelivered; ${refused} uploads answered 503 and were sent again)`);
      } finally {
        injecting = false;
        await injector;
        storage.clearFaults();
        storage.removeNotifications(UPLOADS);
        await new Promise((r) => ingest.close(r));
      }
    });
  });

  describe('resize killed (SIGKILL) mid-job and restarted', () => {
    let h: Harness;
    let child: ChildProcess | undefined;
    let subscription: Subscription | undefined;
    const childLogs: Array<Record<string, unknown>> = [];

    async function startResize(port: number): Promise<ChildProcess> {
      const config = h.pipeline.config;
      const env: Record<string, string> = {
        ...(process.env as Record<string, string>),
        UPLOADS_BUCKET: config.UPLOADS_BUCKET,
        IMAGES_BUCKET: config.IMAGES_BUCKET,
        JOBS_TOPIC: config.JOBS_TOPIC,
        EVENTS_TOPIC: config.EVENTS_TOPIC,
        JOBS_DEAD_LETTER_SUBSCRIPTION: config.JOBS_DEAD_LETTER_SUBSCRIPTION,
        GOOGLE_CLOUD_PROJECT: TEST_PROJECT,
        STORAGE_API_ENDPOINT: config.STORAGE_API_ENDPOINT!,
        PUBLIC_BASE_URL: config.PUBLIC_BASE_URL!,
        PUBSUB_EMULATOR_HOST: process.env.PUBSUB_EMULATOR_HOST!,
        METADATA_SERVER_DETECTION: 'none',
        WIDTHS: config.WIDTHS.join(','),
        FORMATS: config.FORMATS.join(','),
        AVIF_EFFORT: String(config.AVIF_EFFORT),
        SHARP_CONCURRENCY: '1',
      };
      const proc = spawn(
        process.execPath,
        [FUNCTIONS_FRAMEWORK, '--target=resize', '--signature-type=cloudevent', `--source=${FUNCTIONS_SOURCE}`, `--port=${port}`],
        { env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let buffered = '';
      proc.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) if (line.startsWith('{')) childLogs.push(JSON.parse(line) as Record<string, unknown>);
      });
      proc.stderr!.resume();
      await waitForPort(port, '127.0.0.1', 30_000);
      return proc;
    }

    before(async () => (h = await startHarness()));
    after(async () => {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      h.pipeline.storageServer.clearFaults();
      await subscription?.delete().catch(() => undefined);
      await h.stop();
    });

    it('the first process dies after writing its first variant; the restarted one finishes: complete, 0 lost, 0 doubled', async () => {
      const port = await freePort();
      child = await startResize(port);
      subscription = await pushSubscription(h, `push-kill-${port}`, port);
      const storage = h.pipeline.storageServer;
      // Slow variant writes, so that the job is caught between its first and last variant.
      storage.injectFault({ method: 'POST', path: '/upload/storage/v1/b/test-images/o', latencyMs: 1200, times: 1000 });
      const ids = [
        (await upload(h, await makePhoto({ width: 420, height: 300, seed: 5001 }))).id,
        (await upload(h, await makePhoto({ width: 380, height: 300, seed: 5002 }))).id,
      ];
      const images = h.pipeline.deps.storage.bucket(IMAGES);
      const firstVariant = await waitFor('the first variant object', async () => {
        for (const id of ids) {
          const [files] = await images.getFiles({ prefix: `${id}/` });
          if (files.some((f) => /\/\d+w\./.test(f.name))) return files.map((f) => f.name);
        }
        return undefined;
      }, 60_000, 50);
      const first = child;
      first.kill('SIGKILL');
      await new Promise((r) => first.once('exit', r));
      expect(first.signalCode).to.equal('SIGKILL');
      const before = await Promise.all(ids.map(async (id) => (await images.getFiles({ prefix: `${id}/` }))[0].length));
      expect(before.reduce((a, b) => a + b, 0), 'killed with variants still missing').to.be.lessThan(ids.reduce((sum, id) => sum + h.planned.get(id)!.length, 0));
      storage.clearFaults();

      child = await startResize(port);
      const result = await audit(h, ids);
      if (result.problems.length > 0) console.log(childLogs.filter((l) => String(l.event).startsWith('job') || l.severity !== 'INFO').map((l) => JSON.stringify(l)).join('\n'));
      expectAllComplete(result, 2);
      const announced = childLogs.filter((l) => l.message === 'image.ready published');
      expect(announced, 'one announcement per image across both processes').to.have.length(2);
      console.log(`      (killed after ${firstVariant.length} object(s) of ${ids.length} images existed; the restart finished the rest)`);
    });
  });

  describe('publishing fails after the original is stored', () => {
    let h: Harness;
    let server: Server;
    let subscription: Subscription;
    let broken: PipelineDeps;
    const later: PipelineDeps[] = [];
    const at = (offsetMs: number) => {
      const deps = createDeps(h.pipeline.config, { log: h.pipeline.deps.log, now: () => new Date(Date.now() + offsetMs) });
      later.push(deps);
      return deps;
    };
    before(async () => {
      h = await startHarness();
      const port = await freePort();
      server = await listen(getTestServer('resize'), port);
      subscription = await pushSubscription(h, `push-publish-${port}`, port);
      broken = createDeps({ ...h.pipeline.config, JOBS_TOPIC: 'no-such-topic' } as Config, { log: h.pipeline.deps.log, storage: h.pipeline.deps.storage });
    });
    after(async () => {
      useDeps(h.pipeline.deps);
      await subscription.delete().catch(() => undefined);
      await new Promise((r) => server.close(r));
      await Promise.all([broken.pubsub.close(), ...later.map((d) => d.pubsub.close())]);
      await h.stop();
    });

    async function failedUpload(image: Buffer): Promise<string> {
      useDeps(broken);
      try {
        const response = await request(getTestServer('upload')).post('/uploads').set('Content-Type', 'image/jpeg').send(image);
        expect(response.status).to.equal(503);
        expect(response.body.error).to.include({ code: 'publish_failed', retryable: true });
        expect(response.headers['retry-after']).to.equal('10');
      } finally {
        useDeps(h.pipeline.deps);
      }
      const id = imageIdOf(image);
      const [metadata] = await h.pipeline.deps.storage.bucket(UPLOADS).file(originalName(id)).getMetadata();
      expect(metadata.metadata?.dispatchedAt, 'stored but not dispatched').to.equal(undefined);
      return id;
    }

    it('503 to the client, which gives up; the next cleanup pass dispatches it: complete, 0 lost, 0 doubled', async () => {
      const image = await makePhoto({ width: 300, height: 240, seed: 6001 });
      const id = await failedUpload(image);
      expect((await runCleanup(at(60_000))).redispatched, 'not before the grace period').to.equal(0);
      expect((await runCleanup(at(5 * 60_000))).redispatched).to.equal(1);
      h.planned.set(id, ['96w', '160w'].flatMap((w) => ['avif', 'webp', 'jpg'].map((e) => `${id}/${w}.${e}`)).sort());
      expectAllComplete(await audit(h, [id]), 1);
    });

    it('503 to the client, which retries; cleanup finds it dispatched and leaves it: complete, 0 lost, 0 doubled', async () => {
      const image = await makePhoto({ width: 300, height: 240, seed: 6002 });
      const id = await failedUpload(image);
      expect((await upload(h, image)).status).to.equal(202);
      expect((await runCleanup(at(5 * 60_000))).redispatched).to.equal(0);
      expectAllComplete(await audit(h, [id]), 1);
    });

    it('503, then the client retry and the cleanup pass dispatch at the same moment: complete, 0 lost, 0 doubled', async () => {
      const image = await makePhoto({ width: 300, height: 240, seed: 6003 });
      const id = await failedUpload(image);
      const [retry] = await Promise.all([upload(h, image), runCleanup(at(5 * 60_000))]);
      expect(retry.status).to.equal(202);
      expectAllComplete(await audit(h, [id]), 1);
    });
  });

  describe('a job that always fails transiently (the emulator honours deadLetterPolicy)', () => {
    let h: Harness;
    let server: Server;
    let subscription: Subscription;
    let inspect: Subscription;
    const deadLetters: Message[] = [];
    before(async () => {
      h = await startHarness();
      // Without the client library's own retries each attempt fails in milliseconds instead of
      // ~6 s, so the five attempts take seconds; what is tested is Pub/Sub's side.
      const storage = new Storage({ apiEndpoint: h.pipeline.config.STORAGE_API_ENDPOINT!, projectId: TEST_PROJECT, useAuthWithCustomEndpoint: false, retryOptions: { autoRetry: false } });
      useDeps(createDeps(h.pipeline.config, { storage, pubsub: h.pipeline.deps.pubsub, log: h.pipeline.deps.log }));
      const deadLetterTopic = `dead-letter-${h.pipeline.config.JOBS_TOPIC}`;
      const [topic] = await h.pipeline.pubsub.createTopic(deadLetterTopic);
      await topic.createSubscription(h.pipeline.config.JOBS_DEAD_LETTER_SUBSCRIPTION, { ackDeadlineSeconds: 60 });
      [inspect] = await topic.createSubscription(`${deadLetterTopic}-inspect`, { ackDeadlineSeconds: 60 });
      inspect.on('message', (message: Message) => {
        deadLetters.push(message);
        message.ack();
      });
      const port = await freePort();
      server = await listen(getTestServer('resize'), port);
      subscription = await pushSubscription(h, `push-dlq-${port}`, port, { deadLetterTopic, maxDeliveryAttempts: 5 });
    });
    after(async () => {
      h.pipeline.storageServer.clearFaults();
      await inspect.close();
      await subscription.delete().catch(() => undefined);
      await new Promise((r) => server.close(r));
      await h.stop();
    });

    it('is dead-lettered after 5 attempts, and cleanup records the image as failed with one image.failed', async () => {
      const image = await makePhoto({ width: 320, height: 200, seed: 7001 });
      const { id } = await upload(h, image);
      const jobCount = await waitFor('the job count', () => {
        const dispatched = h.pipeline.logs.find((l) => l.event === 'dispatch' && l.imageId === id);
        return dispatched ? Number(dispatched.jobs) : undefined;
      });
      // Every storage request about this image fails: the job can only ever fail transiently.
      h.pipeline.storageServer.injectFault({ path: new RegExp(id), status: 503, times: 1_000_000 });
      const letters = await waitFor('the dead letters', () => (deadLetters.filter((m) => m.attributes.imageId === id).length >= jobCount ? deadLetters : undefined), 480_000, 250);
      h.pipeline.storageServer.clearFaults();
      for (const letter of letters) {
        expect(letter.attributes.CloudPubSubDeadLetterSourceDeliveryCount).to.equal('5');
        expect(letter.attributes.CloudPubSubDeadLetterSourceSubscription).to.equal(subscription.name.split('/').pop());
      }
      const attempts = h.pipeline.logs.filter((l) => l.event === 'job.error' && l.imageId === id).length;
      expect(attempts, 'resize saw every delivery attempt and failed each transiently').to.equal(5 * jobCount);
      expect((await h.pipeline.deps.storage.bucket(IMAGES).file(errorRecordName(id)).exists())[0], 'nothing recorded before cleanup').to.equal(false);

      const summary = await runCleanup(h.pipeline.deps);
      expect(summary.deadLettered).to.equal(1);
      const [record] = await h.pipeline.deps.storage.bucket(IMAGES).file(errorRecordName(id)).download();
      // Adapted (issue 10): the cause has its own code now, and it is retryable.
      expect(FailureRecordV1.parse(JSON.parse(record.toString()))).to.include({ id, code: 'dead_lettered', retryable: true });
      const status = await request(getTestServer('upload')).get(`/uploads/${id}`);
      expect(status.status).to.equal(422);
      expect(status.body.error, 'the status API says a re-upload can help').to.deep.include({ code: 'image_failed', retryable: true });
      const result = await audit(h, [id]);
      expect(result.counts).to.deep.equal({ complete: 0, failed: 1, lost: 0, doubled: 0 });
      expect((await runCleanup(h.pipeline.deps)).deadLettered, 'the dead letters were acknowledged').to.equal(0);
      console.log(`      (${jobCount} job(s) × 5 delivery attempts, then dead-lettered; cleanup marked the image failed)`);

      // Storage is back: the same bytes again are accepted, dispatched with a new dispatch
      // number, and end ready (before issue 10: the same 422, forever).
      h.pipeline.clearLogs();
      const again = await request(getTestServer('upload')).post('/uploads').set('Content-Type', 'application/octet-stream').send(image);
      expect(again.status, JSON.stringify(again.body)).to.equal(202);
      const dispatched = h.pipeline.logs.find((l) => l.event === 'dispatch' && l.imageId === id);
      expect(dispatched?.dispatch, 'a new dispatch number').to.equal(1);
      h.events.splice(0, h.events.length, ...h.events.filter((e) => e.imageId !== id));
      const retried = await audit(h, [id]);
      expect(retried.problems, explain(h, retried)).to.deep.equal([]);
      expect(retried.counts).to.deep.equal({ complete: 1, failed: 0, lost: 0, doubled: 0 });
    });
  });

  describe('duplicate deliveries of one job that end differently (one fails for good, one succeeds)', () => {
    let h: Harness;
    before(async () => (h = await startHarness({ FANOUT_STRATEGY: 'per-image' })));
    after(async () => h.stop());

    it('a duplicate that fails after its twin finished the image: it stays ready, no error.json, no image.failed', async () => {
      const image = await makePhoto({ width: 300, height: 200, seed: 8001 });
      const { id } = await upload(h, image);
      const { job } = (await pullJobs(h.pipeline.jobs, 1))[0] ?? expect.fail('no job pulled');
      const storage = h.pipeline.storageServer;
      // Delivery A reads the original slowly and its clock says its budget is already spent (as a
      // job on an overloaded instance would find); delivery B, a duplicate, runs normally meanwhile.
      const late = createDeps(h.pipeline.config, { log: h.pipeline.deps.log, storage: h.pipeline.deps.storage, pubsub: h.pipeline.deps.pubsub, now: () => new Date(Date.now() - 3_600_000) });
      storage.injectFault({ method: 'GET', path: new RegExp(`originals%2F${id}.*alt=media|alt=media.*originals%2F${id}`), latencyMs: 2500, times: 1 });
      const a = runJob(late, job as JobMessage);
      await sleep(500); // A is past its "already finished?" check, waiting for the original
      const b = await runJob(h.pipeline.deps, job as JobMessage);
      expect(b.outcome).to.equal('completed');
      const outcomeA = await a;
      const result = await audit(h, [id]);
      expect(result.problems, `delivery A ended ${outcomeA.outcome}; ${result.problems.join('\n')}`).to.deep.equal([]);
      expect(result.counts).to.deep.equal({ complete: 1, failed: 0, lost: 0, doubled: 0 });
    });

    it('and the other way round: a duplicate that finishes after its twin failed for good leaves the image failed, no manifest, no image.ready', async () => {
      const image = await makePhoto({ width: 300, height: 200, seed: 8002 });
      const { id } = await upload(h, image);
      const { job } = (await pullJobs(h.pipeline.jobs, 1))[0] ?? expect.fail('no job pulled');
      const late = createDeps(h.pipeline.config, { log: h.pipeline.deps.log, storage: h.pipeline.deps.storage, pubsub: h.pipeline.deps.pubsub, now: () => new Date(Date.now() - 3_600_000) });
      // Delivery A (healthy) reads the original slowly; delivery B fails for good meanwhile.
      h.pipeline.storageServer.injectFault({ method: 'GET', path: new RegExp(`originals%2F${id}.*alt=media|alt=media.*originals%2F${id}`), latencyMs: 2500, times: 1 });
      const a = runJob(h.pipeline.deps, job as JobMessage);
      await sleep(500);
      expect((await runJob(late, job as JobMessage)).outcome).to.equal('failed');
      const outcomeA = await a;
      const result = await audit(h, [id]);
      expect(result.problems, `delivery A ended ${outcomeA.outcome}; ${result.problems.join('\n')}`).to.deep.equal([]);
      expect(result.counts).to.deep.equal({ complete: 0, failed: 1, lost: 0, doubled: 0 });
      const [record] = await h.pipeline.deps.storage.bucket(IMAGES).file(errorRecordName(id)).download();
      expect(JSON.parse(record.toString())).to.include({ code: 'time_budget_exceeded' });
    });
  });

  describe('record protocol: one outcome per image, announced once (issue 10, break 7)', () => {
    let h: Harness;
    before(async () => (h = await startHarness()));
    after(async () => {
      h.pipeline.storageServer.clearFaults();
      await h.stop();
    });

    function manifestFor(id: string): Manifest {
      return {
        v: 1,
        id,
        original: { format: 'jpeg', width: 100, height: 80, bytes: 1000, contentType: 'image/jpeg', name: originalName(id), generation: '1' },
        formats: ['jpeg'],
        variants: [{ width: 96, height: 77, format: 'jpeg', contentType: 'image/jpeg', bytes: 900, name: `${id}/96w.jpg`, url: `x/${id}/96w.jpg` }],
        createdAt: new Date().toISOString(),
      };
    }
    const eventsOf = (id: string) => h.events.filter((e) => e.imageId === id).map((e) => e.type);

    it('a give-up racing a finishing job: image.ready and image.failed are never both announced, and one record stands', async () => {
      const id = imageIdOf(Buffer.from('race: ready vs failed'));
      // Both writers look for the other's record first; the creates are held back so that both
      // looks happen before either create, the window the old check-then-create left open.
      h.pipeline.storageServer.injectFault({ method: 'POST', path: '/upload/storage/v1/b/test-images/o', latencyMs: 400, times: 2 });
      const failure = permanent('image_failed', 'Processing did not finish; giving up.');
      const [ready, failed] = await Promise.all([
        writeManifest(h.pipeline.deps, manifestFor(id), `job:${id}:0:0`),
        recordFailure(h.pipeline.deps, id, failure, 'cleanup'),
      ]);
      h.pipeline.storageServer.clearFaults();
      expect([ready, failed].sort(), 'exactly one writer wins').to.deep.equal(['created', 'exists']);
      await waitFor('the announcement', () => (eventsOf(id).length > 0 ? true : undefined));
      await sleep(1500); // a second announcement, if any, arrives now
      expect(eventsOf(id), 'one event').to.have.length(1);
      const [[manifest], [error]] = await Promise.all([h.pipeline.deps.storage.bucket(IMAGES).file(manifestName(id)).exists(), h.pipeline.deps.storage.bucket(IMAGES).file(errorRecordName(id)).exists()]);
      expect([manifest, error].filter(Boolean), 'one record').to.have.length(1);
    });

    it('a creator slower than a minute to mark its announcement published is not taken over: one image.ready', async () => {
      const id = imageIdOf(Buffer.from('slow creator'));
      await h.pipeline.deps.storage
        .bucket(UPLOADS)
        .file(originalName(id))
        .save(Buffer.from('x'), { resumable: false, metadata: { metadata: { imageId: id, format: 'jpeg', width: '100', height: '80', dispatchedAt: new Date().toISOString() } } });
      // The creator's "published" metadata write is slow (storage retrying inside the client).
      h.pipeline.storageServer.injectFault({ method: 'PATCH', path: new RegExp(id), latencyMs: 4000, times: 1 });
      const creator = writeManifest(h.pipeline.deps, manifestFor(id), `job:${id}:0:0`);
      await waitFor('image.ready from the creator', () => (eventsOf(id).length > 0 ? true : undefined));
      // Cleanup runs while the creator is still marking, 61 s after the announcement started by
      // its clock: later than the old 60 s threshold, earlier than the creator's worst case.
      const later = createDeps(h.pipeline.config, { log: h.pipeline.deps.log, now: () => new Date(Date.now() + 61_000) });
      await runCleanup(later);
      expect(await creator).to.equal('created');
      await later.pubsub.close();
      await sleep(1500); // a second announcement, if any, arrives now
      expect(eventsOf(id)).to.deep.equal(['image.ready']);
    });

    it('ingest: a failure whose publish failed is announced by the retry that gets 412 on its own record', async () => {
      const name = 'incoming/not-an-image-publish-fails.jpg';
      const body = Buffer.from('this is text, not a JPEG, publish fails once');
      const id = imageIdOf(body);
      const [object] = await h.pipeline.deps.storage.bucket(UPLOADS).file(name).save(body, { resumable: false }).then(() => h.pipeline.deps.storage.bucket(UPLOADS).file(name).getMetadata());
      const data = { bucket: UPLOADS, name, generation: String(object.generation), size: String(object.size) };
      // First delivery: the events topic cannot be published to (real emulator error: NOT_FOUND).
      const noTopic = createDeps({ ...h.pipeline.config, EVENTS_TOPIC: `missing-${h.pipeline.config.EVENTS_TOPIC}` }, { log: h.pipeline.deps.log, storage: h.pipeline.deps.storage });
      let firstFailed = false;
      try {
        await ingestObject(noTopic, data);
      } catch {
        firstFailed = true;
      }
      await noTopic.pubsub.close();
      expect(firstFailed, 'the first delivery fails, so Eventarc redelivers').to.equal(true);
      // Eventarc's redelivery: same writer, its create gets 412; it must announce, not drop it.
      const outcome = await ingestObject(h.pipeline.deps, data);
      expect(outcome).to.deep.include({ outcome: 'rejected', id, code: 'not_an_image' });
      await waitFor('image.failed', () => (eventsOf(id).length > 0 ? true : undefined), 10_000);
      expect(eventsOf(id)).to.deep.equal(['image.failed']);
      expect((await h.pipeline.deps.storage.bucket(UPLOADS).file(name).exists())[0], 'removed only once announced').to.equal(false);
    });
  });
});
