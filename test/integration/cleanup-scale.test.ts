/**
 * Cleanup over more originals than one pass may examine (the small version of
 * `npm run cleanup-scale`): metadata-only objects on the local storage server, the real Pub/Sub
 * emulator, a fake clock that moves one 15-minute tick per pass.
 */
import { expect } from 'chai';
import { runScalePasses, seedScale, type ScaleOptions } from '../../bench/cleanup-scale.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { createDeps } from '../../shared/cloud/deps.js';
import { buildJobs } from '../../shared/pipeline/dispatch.js';
import { encodeMessage } from '../../shared/core/schemas.js';
import { startTestPipeline, type TestPipeline } from '../fixtures/pipeline.js';

describe('cleanup at scale (2,000 metadata-only originals, budget 500; local storage, Pub/Sub emulator)', function () {
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

  it('reaches stuck images, pending announcements and orphans beyond the 1,500th within ⌈N ÷ budget⌉ + 1 passes; incoming/ and orphan sweeps run every pass', async () => {
    const options: ScaleOptions = {
      originals: 2000,
      budget: 500,
      stuck: 6,
      pending: 4,
      orphans: 4,
      incoming: 3,
      beyond: 1500,
      maxSeconds: 240,
    };
    const planted = await seedScale(
      pipeline.storageServer.url,
      { uploads: 'test-uploads', images: 'test-images' },
      options,
    );
    const report = await runScalePasses(pipeline.deps, planted, options, 6);
    expect(report.bound).to.equal(5);
    expect(
      report.reachedAt.stuck.every((p) => p !== undefined && p <= 5),
      `stuck reached at ${report.reachedAt.stuck}`,
    ).to.equal(true);
    expect(
      report.reachedAt.pending.every((p) => p !== undefined && p <= 5),
      `pending settled at ${report.reachedAt.pending}`,
    ).to.equal(true);
    expect(
      report.reachedAt.orphans.every((p) => p !== undefined && p <= 5),
      `orphans deleted at ${report.reachedAt.orphans}`,
    ).to.equal(true);
    const first = report.passes[0]!.summary;
    expect(first.steps.incoming.outcome, 'the incoming/ sweep ran to its end in pass 1').to.equal('complete');
    expect(first.incomingDeleted).to.equal(3);
    for (const { summary } of report.passes) {
      expect(summary.steps.originals.reviewed).to.equal(500);
      expect(summary.steps.orphans.reviewed, 'the orphan sweep runs every pass').to.be.greaterThan(0);
    }
    expect(report.passesNeeded).to.be.at.most(report.bound);
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
    // The review's first storage call answers after 15 s; the pass has 8 s in all.
    pipeline.storageServer.injectFault({ path: `${id}%2Fmanifest.json`, latencyMs: 15_000 });
    pipeline.clearLogs();
    const deps = createDeps({ ...pipeline.config, CLEANUP_MAX_SECONDS: 8 }, { log: pipeline.deps.log });
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
