/**
 * Faults: bursts of storage 503s on every kind of request the pipeline makes, while uploads,
 * incoming/ objects and jobs flow through a real Pub/Sub push subscription (emulator) to a
 * local `resize`; the audit finds every image complete exactly once.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Subscription } from '@google-cloud/pubsub';
import { expect } from 'chai';
import type { Server } from 'node:http';
import { imageIdOf } from '../../shared/core/naming.js';
import {
  audit,
  expectAllComplete,
  listen,
  pushSubscription,
  recordPushes,
  startHarness,
  UPLOADS,
  upload,
  type Harness,
  type PushRecord,
} from '../fixtures/faults.js';
import { makePhoto } from '../fixtures/images.js';
import { close, freePort, waitFor } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('faults: storage 503s on reads and writes while jobs flow through a real push subscription', function () {
  // Generous: the emulator's push and backoff slow down a lot on a loaded 2-core machine.
  this.timeout(600_000);

  let h: Harness;
  let server: Server;
  let subscription: Subscription;
  let pushes: PushRecord;
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
    await close(server);
    await h.stop();
  });

  it('6 images (4 uploaded, 2 dropped in incoming/) under repeated 503 bursts: 6 complete, 0 lost, 0 doubled', async () => {
    const port = await freePort();
    const ingest = await listen(getTestServer('ingest'), port);
    h.pipeline.storageServer.addNotification(UPLOADS, `http://127.0.0.1:${port}/`);
    const storage = h.pipeline.storageServer;
    // Bursts of 503s on every kind of request the pipeline makes: stat, list, download, upload, copy, delete
    // (the per-image state is in Firestore now: no metadata writes or outcome markers are left to fail).
    // One burst is sure to get past the client library's retries: the first upload's original
    // write meets six 503s before the timed bursts start, so the function answers 503 and the
    // client sends the upload again. Which requests the timed bursts meet varies from run to run.
    storage.injectFault({
      method: 'POST',
      path: /\/upload\/storage\/v1\/b\/test-uploads\/o\?.*originals/,
      status: 503,
      times: 6,
    });
    const ids: string[] = [];
    const first = await upload(h, await makePhoto({ width: 300, height: 220, seed: 4000 }), { retries: 20 });
    expect(first.status, 'upload 0').to.be.oneOf([202, 200]);
    ids.push(first.id);
    let injecting = true;
    let bursts = 0;
    const injector = (async () => {
      const targets: Array<{ method: string; path: RegExp }> = [
        { method: 'GET', path: /\/storage\/v1\/b\/test-images\/o/ },
        { method: 'GET', path: /alt=media/ },
        { method: 'POST', path: /\/upload\/storage\/v1\/b\/test-images\/o/ },
        { method: 'POST', path: /\/upload\/storage\/v1\/b\/test-uploads\/o\?.*originals/ },
        { method: 'POST', path: /rewriteTo|copyTo/ },
        { method: 'DELETE', path: /incoming/ },
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
      for (let i = 1; i < 4; i++) {
        const result = await upload(h, await makePhoto({ width: 300, height: 220 + 10 * i, seed: 4000 + i }), {
          retries: 20,
        });
        expect(result.status, `upload ${i}`).to.be.oneOf([202, 200]);
        ids.push(result.id);
      }
      for (let i = 0; i < 2; i++) {
        const image = await makePhoto({ width: 280, height: 210, seed: 4100 + i });
        const file = h.pipeline.deps.storage.bucket(UPLOADS).file(`incoming/storm-${i}.jpg`);
        await waitFor(
          'an incoming save between bursts',
          () =>
            file.save(image, { resumable: false }).then(
              () => true,
              () => undefined,
            ),
          30_000,
          50,
        );
        ids.push(imageIdOf(image));
      }
      // Keep the storm going until a job of every image has been pushed to resize (and
      // answered) while it rages, so that jobs, not only uploads and ingest, meet the 503s.
      await waitFor(
        'a job of every image pushed during the storm',
        () => (ids.every((id) => pushes.images.has(id)) ? true : undefined),
        300_000,
        250,
      );
      injecting = false;
      await injector;
      storage.clearFaults();
      // Ingested images have no upload response: their plan (280 px wide, WIDTHS 96,160, three formats).
      for (const id of ids.slice(4))
        h.planned.set(
          id,
          ['96w.avif', '96w.webp', '96w.jpg', '160w.avif', '160w.webp', '160w.jpg'].map((n) => `${id}/${n}`).sort(),
        );
      const result = await audit(h, ids);
      if (result.problems.length > 0) console.log(`      pushes received:\n${pushes.report()}`);
      expectAllComplete(result, 6, h);
      const retried = h.pipeline.logs.filter((l) => l.event === 'job.error' || l.event === 'ingest.retry').length;
      const refused = h.pipeline.logs.filter((l) => l.event === 'http.error' && l.status === 503).length;
      expect(refused, 'the first upload met 503s past the client library retries and was sent again').to.be.greaterThan(
        0,
      );
      console.log(
        `      (${bursts} bursts of 503s; ${retried} deliveries failed transiently and were redelivered; ${refused} uploads answered 503 and were sent again)`,
      );
    } finally {
      injecting = false;
      await injector;
      storage.clearFaults();
      storage.removeNotifications(UPLOADS);
      await close(ingest);
    }
  });
});
