/**
 * The reprocess backfill over many images (bench/reprocess-scale.ts, smaller): the dry run prices
 * the backlog and writes nothing; passes respect the per-pass cap and the daily CPU budget, resume
 * from their cursor, and dispatch every outdated image exactly once. Image documents in the
 * Firestore emulator, metadata-only originals on the local storage server and the real Pub/Sub
 * emulator (the jobs are published, not run).
 */
import { expect } from 'chai';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { createDeps } from '../../shared/cloud/deps.js';
import { runReprocess } from '../../shared/pipeline/reprocess.js';
import { IMAGES_COLLECTION, imageDocFrom } from '../../shared/state/image-doc.js';
import { topology } from '../../shared/core/topology.js';
import { runBackfill, seedOutdated } from '../../bench/reprocess-scale.js';
import { startTestPipeline, type TestPipeline } from '../fixtures/pipeline.js';

describe('reprocess backfill at scale (Firestore and Pub/Sub emulators, local storage)', function () {
  this.timeout(180_000);
  let pipeline: TestPipeline;

  before(async () => {
    // The deployed recipe: the defaults (2048 added to the seeded manifests' widths).
    pipeline = await startTestPipeline({ WIDTHS: '', AVIF_EFFORT: '' });
    await seedOutdated(pipeline.deps, pipeline.storageServer.url, 150);
  });
  after(async () => pipeline.stop());

  it('the dry run counts and prices the backlog and writes nothing', async () => {
    const dry = await runReprocess(pipeline.deps, { dryRun: true });
    expect(dry).to.include({ reviewed: 150, ready: 150, outdated: 150, noOriginal: 0, dispatched: 0 });
    expect(dry.estimatedCpuSeconds).to.be.greaterThan(0);
    expect(dry.estimatedCostUsd).to.be.greaterThan(0);
    const cursors = await pipeline.deps.firestore.collection(topology.firestore.collections.cleanup).get();
    expect(cursors.size).to.equal(0);
  });

  it('passes stay within the cap and the daily budget, resume from the cursor and dispatch each image once', async () => {
    // A daily budget of 40 % of the backlog's estimate (which follows plan.ts's cost factors): three days.
    const { estimatedCpuSeconds } = await runReprocess(pipeline.deps, { dryRun: true });
    const cpuSecondsPerDay = Math.ceil(0.4 * estimatedCpuSeconds);
    const report = await runBackfill(pipeline.deps, { images: 150, maxPerPass: 30, cpuSecondsPerDay }, 400);
    for (const pass of report.passes) {
      expect(pass.dispatched).to.be.at.most(30);
      expect(pass.budget.spentAfter).to.be.at.most(cpuSecondsPerDay);
    }
    expect(
      report.passes.some((p) => p.stoppedBy === 'budget'),
      'the budget stopped some pass',
    ).to.equal(true);
    expect(new Set(report.passes.map((p) => p.at.slice(0, 10))).size, 'it took more than one day').to.be.greaterThan(1);
    expect(report.dispatchedImages).to.equal(150);
    expect(report.dispatchedTwice).to.equal(0);
  });

  it('cleanup runs a reprocess pass when REPROCESS=on, and not otherwise', async () => {
    const off = await runCleanup(pipeline.deps);
    expect(off.reprocess).to.equal(undefined);
    const deps = createDeps(
      { ...pipeline.config, REPROCESS: 'on', CLEANUP_MAX_SECONDS: 30 },
      { log: pipeline.deps.log, firestore: pipeline.deps.firestore },
    );
    const on = await runCleanup(deps);
    await deps.pubsub.close();
    // Every image was dispatched by the backfill above: the pass finds them in flight or updated.
    expect(on.reprocess?.ready).to.be.greaterThan(0);
    const snapshot = await pipeline.deps.firestore.collection(IMAGES_COLLECTION).limit(1).get();
    expect(imageDocFrom(snapshot.docs[0]!)?.update?.recipe).to.be.a('string');
  });
});
