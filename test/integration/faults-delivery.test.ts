/**
 * Faults: at-least-once delivery. Every job (and every finalize event) is delivered several
 * times, in shuffled order, as HTTP pushes shaped exactly like Pub/Sub's and Eventarc's; the
 * audit finds each image complete exactly once. Each test has its own pipeline.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import { imageIdOf } from '../../shared/core/naming.js';
import { audit, expectAllComplete, shuffled, startHarness, UPLOADS, upload, type Harness } from '../fixtures/faults.js';
import { makePhoto } from '../fixtures/images.js';
import { pullAllJobsOf, pullJobs, pushBody, TEST_PROJECT } from '../fixtures/pipeline.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('faults: at-least-once delivery', function () {
  // Generous: the emulator's push and backoff slow down a lot on a loaded 2-core machine.
  this.timeout(600_000);

  let h: Harness;
  beforeEach(async () => (h = await startHarness()));
  afterEach(async () => h.stop());

  it('every job of 6 images delivered 3× in shuffled order, 6 at a time: 6 complete, 0 lost, 0 doubled', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++)
      ids.push((await upload(h, await makePhoto({ width: 260 + 20 * i, height: 200, seed: 3000 + i }))).id);
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
      h.planned.set(
        imageIdOf(image),
        ['96w.avif', '96w.webp', '96w.jpg', '160w.avif', '160w.webp', '160w.jpg']
          .map((n) => `${imageIdOf(image)}/${n}`)
          .sort(),
      );
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
    const statuses = await Promise.all(deliveries);
    expect(statuses, 'every delivery acknowledged').to.deep.equal(statuses.map(() => 204));
    const [left] = await uploads.getFiles({ prefix: 'incoming/dup-' });
    expect(left, 'every incoming/ object removed').to.have.length(0);
    const jobs = await pullAllJobsOf(h.pipeline.jobs, ids);
    const path = `/projects/${TEST_PROJECT}/topics/${h.pipeline.config.JOBS_TOPIC}`;
    let pending = shuffled([...jobs, ...jobs], 11);
    for (let round = 0; pending.length > 0 && round < 10; round++) {
      const statuses = await Promise.all(
        pending.map((item) =>
          request(getTestServer('resize'))
            .post(path)
            .send(pushBody(item.message))
            .then((r) => r.status),
        ),
      );
      pending = pending.filter((_, i) => statuses[i] !== 204);
      if (pending.length > 0) await sleep(500);
    }
    expectAllComplete(await audit(h, ids), 3, h);
    console.log(`      (9 finalize deliveries dispatched ${jobs.length} jobs for 3 images; each delivered twice)`);
  });
});
