/**
 * Faults: a job whose storage always answers 503 is redelivered by a real push subscription
 * (emulator) until its deadLetterPolicy dead-letters it; cleanup records the image as failed
 * (retryable), and the same bytes uploaded again end ready.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Message, Subscription } from '@google-cloud/pubsub';
import { Storage } from '@google-cloud/storage';
import { expect } from 'chai';
import type { Server } from 'node:http';
import request from 'supertest';
import { useDeps } from '../../functions/runtime.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { createDeps } from '../../shared/cloud/deps.js';
import { FailureRecordV1 } from '../../shared/core/schemas.js';
import { errorRecordName } from '../../shared/core/naming.js';
import {
  audit,
  explain,
  IMAGES,
  listen,
  pushSubscription,
  startHarness,
  upload,
  type Harness,
} from '../fixtures/faults.js';
import { makePhoto } from '../fixtures/images.js';
import { TEST_PROJECT } from '../fixtures/pipeline.js';
import { close, freePort, serviceAsset, waitFor } from '../helpers.js';

describe('faults: a job that always fails transiently (the emulator honours deadLetterPolicy)', function () {
  // Generous: the emulator's push and backoff slow down a lot on a loaded 2-core machine.
  this.timeout(600_000);

  let h: Harness;
  let server: Server;
  let subscription: Subscription;
  let inspect: Subscription;
  const deadLetters: Message[] = [];
  before(async () => {
    h = await startHarness();
    // Without the client library's own retries each attempt fails in milliseconds instead of
    // ~6 s, so the five attempts take seconds; what is tested is Pub/Sub's side.
    const storage = new Storage({
      apiEndpoint: h.pipeline.config.STORAGE_API_ENDPOINT!,
      projectId: TEST_PROJECT,
      useAuthWithCustomEndpoint: false,
      retryOptions: { autoRetry: false },
    });
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
    await close(server);
    await h.stop();
  });

  it('is dead-lettered after 5 attempts, and cleanup records the image as failed with one image.failed', async () => {
    const image = await makePhoto({ width: 320, height: 200, seed: 7001 });
    const { id } = await upload(h, image);
    const jobCount = await waitFor(
      'the job count',
      () => {
        const dispatched = h.pipeline.logs.find((l) => l.event === 'dispatch' && l.imageId === id);
        // Job 0 may have run in the upload itself (PREVIEW=inline): only what was published can die.
        return dispatched ? Number(dispatched.published) : undefined;
      },
      60_000,
    );
    // Every storage request about this image fails: the job can only ever fail transiently.
    h.pipeline.storageServer.injectFault({ path: new RegExp(id), status: 503, times: 1_000_000 });
    const letters = await waitFor(
      'the dead letters',
      () => (deadLetters.filter((m) => m.attributes.imageId === id).length >= jobCount ? deadLetters : undefined),
      480_000,
      250,
    );
    h.pipeline.storageServer.clearFaults();
    for (const letter of letters) {
      expect(letter.attributes.CloudPubSubDeadLetterSourceDeliveryCount).to.equal('5');
      expect(letter.attributes.CloudPubSubDeadLetterSourceSubscription).to.equal(subscription.name.split('/').pop());
    }
    const attempts = h.pipeline.logs.filter((l) => l.event === 'job.error' && l.imageId === id).length;
    expect(attempts, 'resize saw every delivery attempt and failed each transiently').to.equal(5 * jobCount);
    expect(
      (await h.pipeline.deps.storage.bucket(IMAGES).file(errorRecordName(id)).exists())[0],
      'nothing recorded before cleanup',
    ).to.equal(false);

    const summary = await runCleanup(h.pipeline.deps);
    expect(summary.deadLettered).to.equal(1);
    const [record] = await h.pipeline.deps.storage.bucket(IMAGES).file(errorRecordName(id)).download();
    // Adapted (issue 10): the cause has its own code now, and it is retryable.
    expect(FailureRecordV1.parse(JSON.parse(record.toString()))).to.include({
      id,
      code: 'dead_lettered',
      retryable: true,
    });
    const status = await request(getTestServer('upload')).get(`/uploads/${serviceAsset(id)}`);
    expect(status.status).to.equal(422);
    expect(status.body.error, 'the status API says a re-upload can help').to.deep.include({
      code: 'image_failed',
      retryable: true,
    });
    const result = await audit(h, [id]);
    expect(result.counts).to.deep.equal({ complete: 0, failed: 1, lost: 0, doubled: 0 });
    expect((await runCleanup(h.pipeline.deps)).deadLettered, 'the dead letters were acknowledged').to.equal(0);
    console.log(
      `      (${jobCount} job(s) × 5 delivery attempts, then dead-lettered; cleanup marked the image failed)`,
    );

    // Storage is back: the same bytes again are accepted, dispatched with a new dispatch
    // number, and end ready (before issue 10: the same 422, forever).
    h.pipeline.clearLogs();
    const again = await request(getTestServer('upload'))
      .post('/uploads')
      .set('Content-Type', 'application/octet-stream')
      .send(image);
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    const dispatched = h.pipeline.logs.find((l) => l.event === 'dispatch' && l.imageId === id);
    expect(dispatched?.dispatch, 'a new dispatch number').to.equal(1);
    h.events.splice(0, h.events.length, ...h.events.filter((e) => e.imageId !== id));
    const retried = await audit(h, [id]);
    expect(retried.problems, explain(h, retried)).to.deep.equal([]);
    expect(retried.counts).to.deep.equal({ complete: 1, failed: 0, lost: 0, doubled: 0 });
  });
});
