/**
 * One cleanup pass over image documents (the smallest `npm run cleanup-scale`): documents in the
 * Firestore emulator, metadata-only originals on the local storage server, the real Pub/Sub
 * emulator. Every stuck image is re-dispatched in the one pass, and the pass's operations are
 * counted (the figures at 10,000 and 100,000 images are in docs/performance.md).
 */
import { expect } from 'chai';
import type { Firestore } from '@google-cloud/firestore';
import { runScale, type ScaleOptions } from '../../bench/cleanup-scale.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { createDeps } from '../../shared/cloud/deps.js';
import { buildJobs } from '../../shared/pipeline/dispatch.js';
import { encodeMessage } from '../../shared/core/schemas.js';
import { startTestPipeline, type TestPipeline } from '../fixtures/pipeline.js';

describe('cleanup at scale (200 image documents, 5 stuck; Firestore and Pub/Sub emulators, local storage)', function () {
  this.timeout(240_000);
  let pipeline: TestPipeline;
  before(async () => {
    pipeline = await startTestPipeline();
    const [deadLetterTopic] = await pipeline.pubsub.createTopic(`dead-letter-${pipeline.config.JOBS_TOPIC}`);
    await deadLetterTopic.createSubscription(pipeline.config.JOBS_DEAD_LETTER_SUBSCRIPTION);
  });
  after(async () => {
    pipeline.storageServer.clearFaults();
    await pipeline.stop();
  });

  it('re-dispatches every stuck image in one pass, and counts the pass’s storage, Firestore and Pub/Sub operations', async () => {
    const options: ScaleOptions = { images: 200, stuck: 5, budget: 5000, maxSeconds: 240 };
    const report = await runScale(
      {
        deps: pipeline.deps,
        config: pipeline.config,
        storage: pipeline.storageServer,
        jobs: pipeline.jobs,
        events: pipeline.events,
      },
      options,
    );
    expect(report.summary.redispatched).to.equal(5);
    expect(report.redispatchedImages, 'each stuck image has a job of its new dispatch').to.equal(5);
    expect(report.jobsPublished).to.equal(report.seeded.stuckJobs);
    expect(report.eventsPublished).to.equal(0);
    expect(report.summary.errors).to.equal(0);
    expect(report.summary.steps.stuck).to.deep.equal({ outcome: 'complete', reviewed: 5 });
    expect(report.summary.steps.orphans, 'the sweep walked every original').to.deep.equal({
      outcome: 'complete',
      reviewed: 200,
    });
    // The sweep reads each original's document; each re-dispatch is two transactions (claim, mark dispatched).
    expect(report.operations.firestoreReads).to.be.at.least(200 + 2 * 5);
    expect(report.operations.firestoreWrites).to.be.at.least(2 * 5);
    expect(report.operations.lists, 'the sweep and incoming/ list').to.be.greaterThan(0);
    expect(report.operations.deletes).to.equal(0);
  });

  it("the storage server's bulk endpoint creates metadata-only objects, and answers 400 to a bad body", async () => {
    const post = (body: unknown) =>
      fetch(`${pipeline.storageServer.url}/_admin/bulk`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const created = await post({
      bucket: 'test-images',
      objects: [{ name: 'bulk/a', metadata: { k: 'v' }, timeCreated: '2020-01-01T00:00:00Z' }],
    });
    expect(created.status).to.equal(201);
    const [metadata] = await pipeline.deps.storage.bucket('test-images').file('bulk/a').getMetadata();
    expect(metadata).to.include({ size: '0', timeCreated: '2020-01-01T00:00:00.000Z' });
    expect(metadata.metadata).to.deep.equal({ k: 'v' });
    expect((await post({ bucket: 'test-images', objects: [{ metadata: {} }] })).status).to.equal(400);
    expect((await post({ bucket: 'no-such-bucket', objects: [] })).status).to.equal(404);
  });

  it('stops draining dead letters at its deadline instead of waiting for a review that hangs', async () => {
    const id = 'c'.repeat(32);
    const [job] = buildJobs(
      pipeline.config,
      id,
      { bucket: 'test-uploads', name: `originals/${id}`, generation: '1' },
      { format: 'jpeg', width: 200, height: 160, bytes: 1, contentType: 'image/jpeg' },
      0,
      new Date(),
    );
    await pipeline.pubsub
      .topic(`dead-letter-${pipeline.config.JOBS_TOPIC}`)
      .publishMessage({ data: encodeMessage(job!) });
    // The review's transaction (the pass's first) answers after 15 s; the pass has 8 s in all.
    const firestore = pipeline.deps.firestore;
    let hung = false;
    const slow = new Proxy(firestore, {
      get(target, key) {
        if (key === 'runTransaction' && !hung) {
          hung = true;
          return () => new Promise((resolve) => setTimeout(resolve, 15_000));
        }
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as Firestore;
    pipeline.clearLogs();
    const deps = createDeps(
      { ...pipeline.config, CLEANUP_MAX_SECONDS: 8 },
      { log: pipeline.deps.log, firestore: slow },
    );
    const summary = await runCleanup(deps);
    await deps.pubsub.close();
    expect(
      pipeline.logs.some((l) => l.message === 'dead-letter drain stopped at its deadline'),
      'the message was received and its review left running',
    ).to.equal(true);
    expect(summary.steps.deadLetters.outcome).to.equal('partial');
    expect(summary.seconds).to.be.at.most(9);
  });
});
