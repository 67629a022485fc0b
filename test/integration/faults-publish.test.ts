/**
 * Faults: publishing the jobs fails after the original is stored (503 publish_failed to the
 * client); the client's retry, the cleanup pass's re-dispatch, or both at once bring the image
 * to complete exactly once. Each test has its own pipeline and push subscription.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Subscription } from '@google-cloud/pubsub';
import { expect } from 'chai';
import type { Server } from 'node:http';
import request from 'supertest';
import { useDeps } from '../../functions/runtime.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import type { Config } from '../../shared/core/config.js';
import { createDeps, type PipelineDeps } from '../../shared/cloud/deps.js';
import { imageIdOf, originalName } from '../../shared/core/naming.js';
import {
  audit,
  expectAllComplete,
  listen,
  pushSubscription,
  startHarness,
  UPLOADS,
  upload,
  type Harness,
} from '../fixtures/faults.js';
import { readImage } from '../../shared/state/image-doc.js';
import { makePhoto } from '../fixtures/images.js';
import { close, freePort } from '../helpers.js';

describe('faults: publishing fails after the original is stored', function () {
  // Generous: the emulator's push and backoff slow down a lot on a loaded 2-core machine.
  this.timeout(600_000);

  let h: Harness;
  let server: Server;
  let subscription: Subscription;
  let broken: PipelineDeps;
  const later: PipelineDeps[] = [];
  const at = (offsetMs: number) => {
    const deps = createDeps(h.pipeline.config, {
      log: h.pipeline.deps.log,
      now: () => new Date(Date.now() + offsetMs),
    });
    later.push(deps);
    return deps;
  };
  beforeEach(async () => {
    h = await startHarness();
    const port = await freePort();
    server = await listen(getTestServer('resize'), port);
    subscription = await pushSubscription(h, `push-publish-${port}`, port);
    broken = createDeps({ ...h.pipeline.config, JOBS_TOPIC: 'no-such-topic' } as Config, {
      log: h.pipeline.deps.log,
      storage: h.pipeline.deps.storage,
    });
  });
  afterEach(async () => {
    useDeps(h.pipeline.deps);
    await subscription.delete().catch(() => undefined);
    await close(server);
    await Promise.all([broken.pubsub.close(), ...later.splice(0).map((d) => d.pubsub.close())]);
    await h.stop();
  });

  /**
   * Holds the image's jobs (up to `times` deliveries) at their read of the original. A cleanup
   * pass whose clock is 5 minutes ahead would rightly take over an announcement in flight as
   * stale (the protocol allows 30 s of skew), so the jobs wait until the pass is over.
   */
  function holdJobs(id: string, times = 1) {
    return h.pipeline.storageServer.holdRequests(
      { method: 'GET', path: new RegExp(`originals%2F${id}.*alt=media|alt=media.*originals%2F${id}`) },
      times,
    );
  }

  async function failedUpload(image: Buffer): Promise<string> {
    useDeps(broken);
    try {
      const response = await request(getTestServer('upload'))
        .post('/uploads')
        .set('Content-Type', 'image/jpeg')
        .send(image);
      expect(response.status).to.equal(503);
      expect(response.body.error).to.include({ code: 'publish_failed', retryable: true });
      expect(response.headers['retry-after']).to.equal('10');
    } finally {
      useDeps(h.pipeline.deps);
    }
    const id = imageIdOf(image);
    const [exists] = await h.pipeline.deps.storage.bucket(UPLOADS).file(originalName(id)).exists();
    expect(exists, 'the original stored').to.equal(true);
    const doc = await readImage(h.pipeline.deps, id);
    expect(doc?.original?.name, 'the document points at the original').to.equal(originalName(id));
    expect(doc?.dispatchedAt, 'stored but not dispatched').to.equal(undefined);
    return id;
  }

  it('503 to the client, which gives up; the next cleanup pass dispatches it: complete, 0 lost, 0 doubled', async () => {
    const image = await makePhoto({ width: 300, height: 240, seed: 6001 });
    const id = await failedUpload(image);
    // By design the failed publish gives its claim back (transitions.ts releaseClaim): due at once, no grace to wait.
    expect((await runCleanup(at(0))).redispatched, 'the released claim is re-dispatched').to.equal(1);
    expect((await runCleanup(at(60_000))).redispatched, 'once only').to.equal(0);
    h.planned.set(id, ['96w', '160w'].flatMap((w) => ['avif', 'webp', 'jpg'].map((e) => `${id}/${w}.${e}`)).sort());
    expectAllComplete(await audit(h, [id]), 1);
  });

  it('503 to the client, which retries; cleanup finds it dispatched and leaves it: complete, 0 lost, 0 doubled', async () => {
    const image = await makePhoto({ width: 300, height: 240, seed: 6002 });
    const id = await failedUpload(image);
    const held = holdJobs(id);
    try {
      expect((await upload(h, image)).status).to.equal(202);
      await held.arrived; // dispatched and in flight, nothing written yet
      expect((await runCleanup(at(5 * 60_000))).redispatched).to.equal(0);
    } finally {
      held.release();
    }
    expectAllComplete(await audit(h, [id]), 1);
  });

  it('503, then the client retry and the cleanup pass dispatch at the same moment: complete, 0 lost, 0 doubled', async () => {
    const image = await makePhoto({ width: 300, height: 240, seed: 6003 });
    const id = await failedUpload(image);
    const held = holdJobs(id, 2);
    let retry: Awaited<ReturnType<typeof upload>>;
    try {
      [retry] = await Promise.all([upload(h, image), runCleanup(at(5 * 60_000))]);
    } finally {
      held.release();
    }
    expect(retry.status).to.equal(202);
    expectAllComplete(await audit(h, [id]), 1);
  });
});
