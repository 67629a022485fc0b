/**
 * Faults: two deliveries of one job that end differently (one fails for good, one succeeds).
 * The first delivery is held by the storage server at its download of the original (after its
 * "already finished?" check) while the second runs to its end, then released: whichever ends
 * second must leave the first one's outcome standing.
 */
import { expect } from 'chai';
import { createDeps } from '../../shared/cloud/deps.js';
import type { Config } from '../../shared/core/config.js';
import type { JobMessage } from '../../shared/core/schemas.js';
import { errorRecordName } from '../../shared/core/naming.js';
import { type JobResult, runJob } from '../../shared/pipeline/run-job.js';
import { audit, IMAGES, startHarness, upload, type Harness } from '../fixtures/faults.js';
import { makePhoto } from '../fixtures/images.js';
import { pullJobs } from '../fixtures/pipeline.js';

describe('faults: duplicate deliveries of one job that end differently (one fails for good, one succeeds)', function () {
  // Generous: the emulator's push and backoff slow down a lot on a loaded 2-core machine.
  this.timeout(600_000);

  let h: Harness;
  /** The download of the image's original (the object name is percent-encoded in the target). */
  const originalDownload = (id: string) => new RegExp(`originals%2F${id}.*alt=media|alt=media.*originals%2F${id}`);
  beforeEach(async () => (h = await startHarness({ FANOUT_STRATEGY: 'per-image' })));
  /**
   * The harness' collaborators with a time budget of zero, which configuration refuses (its
   * least is 1 s): its first check, before the decode, finds the budget spent.
   */
  const spentBudgetDeps = () =>
    createDeps({ ...h.pipeline.config, JOB_TIME_BUDGET_SECONDS: 0 } as Config, {
      log: h.pipeline.deps.log,
      storage: h.pipeline.deps.storage,
      pubsub: h.pipeline.deps.pubsub,
    });
  afterEach(async () => h.stop());

  it('a duplicate that fails after its twin finished the image: it stays ready, no error.json, no image.failed', async () => {
    const image = await makePhoto({ width: 300, height: 200, seed: 8001 });
    const { id } = await upload(h, image);
    const job = (await pullJobs(h.pipeline.jobs, 1))[0]?.job ?? expect.fail('no job pulled');
    const storage = h.pipeline.storageServer;
    // Delivery A reads the original slowly and finds its budget already spent (as a job on an
    // overloaded instance would); delivery B, a duplicate, runs normally meanwhile.
    const late = spentBudgetDeps();
    const held = storage.holdRequests({ method: 'GET', path: originalDownload(id) });
    const a = runJob(late, job as JobMessage);
    await held.arrived; // A is past its "already finished?" check, waiting for the original
    let b: JobResult;
    try {
      b = await runJob(h.pipeline.deps, job as JobMessage);
    } finally {
      held.release();
    }
    expect(b.outcome).to.equal('completed');
    const outcomeA = await a;
    const result = await audit(h, [id]);
    expect(result.problems, `delivery A ended ${outcomeA.outcome}; ${result.problems.join('\n')}`).to.deep.equal([]);
    expect(result.counts).to.deep.equal({ complete: 1, failed: 0, lost: 0, doubled: 0 });
  });

  it('and the other way round: a duplicate that finishes after its twin failed for good leaves the image failed, no manifest, no image.ready', async () => {
    const image = await makePhoto({ width: 300, height: 200, seed: 8002 });
    const { id } = await upload(h, image);
    const job = (await pullJobs(h.pipeline.jobs, 1))[0]?.job ?? expect.fail('no job pulled');
    const late = spentBudgetDeps();
    // Delivery A (healthy) reads the original slowly; delivery B fails for good meanwhile.
    const held = h.pipeline.storageServer.holdRequests({ method: 'GET', path: originalDownload(id) });
    const a = runJob(h.pipeline.deps, job as JobMessage);
    await held.arrived; // A is past its "already finished?" check, waiting for the original
    let outcomeB: JobResult['outcome'];
    try {
      outcomeB = (await runJob(late, job as JobMessage)).outcome;
    } finally {
      held.release();
    }
    expect(outcomeB).to.equal('failed');
    const outcomeA = await a;
    const result = await audit(h, [id]);
    expect(result.problems, `delivery A ended ${outcomeA.outcome}; ${result.problems.join('\n')}`).to.deep.equal([]);
    expect(result.counts).to.deep.equal({ complete: 0, failed: 1, lost: 0, doubled: 0 });
    const [record] = await h.pipeline.deps.storage.bucket(IMAGES).file(errorRecordName(id)).download();
    expect(JSON.parse(record.toString())).to.include({ code: 'time_budget_exceeded' });
  });
});
