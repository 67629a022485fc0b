/**
 * Faults: `resize` runs as a separate functions-framework process behind a real Pub/Sub push
 * subscription (emulator), is SIGKILLed between its first and last variant, and restarted; the
 * audit finds both images complete exactly once.
 */
import type { Subscription } from '@google-cloud/pubsub';
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { waitForPort } from '../../local/pubsub-emulator.js';
import {
  audit,
  expectAllComplete,
  IMAGES,
  pushSubscription,
  startHarness,
  upload,
  type Harness,
} from '../fixtures/faults.js';
import { makePhoto } from '../fixtures/images.js';
import { TEST_PROJECT } from '../fixtures/pipeline.js';
import { freePort, waitFor } from '../helpers.js';

const FUNCTIONS_FRAMEWORK = fileURLToPath(
  new URL('../../../node_modules/@google-cloud/functions-framework/build/src/main.js', import.meta.url),
);
const FUNCTIONS_SOURCE = fileURLToPath(new URL('../../functions/index.js', import.meta.url));

describe('faults: resize killed (SIGKILL) mid-job and restarted', function () {
  // Generous: the emulator's push and backoff slow down a lot on a loaded 2-core machine.
  this.timeout(600_000);

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
      // The fixture's own database: without it the child reads the default one, finds no image and writes nothing.
      FIRESTORE_DATABASE: config.FIRESTORE_DATABASE,
      METADATA_SERVER_DETECTION: 'none',
      WIDTHS: config.WIDTHS.join(','),
      FORMATS: config.FORMATS.join(','),
      AVIF_EFFORT: String(config.AVIF_EFFORT),
      SHARP_CONCURRENCY: '1',
    };
    const proc = spawn(
      process.execPath,
      [
        FUNCTIONS_FRAMEWORK,
        '--target=resize',
        '--signature-type=cloudevent',
        `--source=${FUNCTIONS_SOURCE}`,
        `--port=${port}`,
      ],
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
    const firstVariant = await waitFor(
      'the first variant object',
      async () => {
        for (const id of ids) {
          const [files] = await images.getFiles({ prefix: `${id}/` });
          if (files.some((f) => /\/\d+w\./.test(f.name))) return files.map((f) => f.name);
        }
        return undefined;
      },
      60_000,
      50,
    );
    const first = child;
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    expect(first.signalCode).to.equal('SIGKILL');
    const before = await Promise.all(ids.map(async (id) => (await images.getFiles({ prefix: `${id}/` }))[0].length));
    expect(
      before.reduce((a, b) => a + b, 0),
      'killed with variants still missing',
    ).to.be.lessThan(ids.reduce((sum, id) => sum + h.planned.get(id)!.length, 0));
    storage.clearFaults();

    child = await startResize(port);
    const result = await audit(h, ids);
    if (result.problems.length > 0)
      console.log(
        childLogs
          .filter((l) => String(l.event).startsWith('job') || l.severity !== 'INFO')
          .map((l) => JSON.stringify(l))
          .join('\n'),
      );
    expectAllComplete(result, 2);
    const announced = childLogs.filter((l) => l.message === 'image.ready published');
    expect(announced, 'one announcement per image across both processes').to.have.length(2);
    console.log(
      `      (killed after ${firstVariant.length} object(s) of ${ids.length} images existed; the restart finished the rest)`,
    );
  });
});
