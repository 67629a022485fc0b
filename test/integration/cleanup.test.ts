/**
 * `cleanup`'s pass against the local storage server and the Pub/Sub emulator, with a fake clock
 * that jumps ahead instead of waiting days.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { bulkCreate } from '../../bench/cleanup-scale.js';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { claimStep } from '../../shared/state/cleanup-state.js';
import { createDeps, type PipelineDeps } from '../../shared/cloud/deps.js';
import { encodeMessage, type JobMessage } from '../../shared/core/schemas.js';
import {
  cleanupStateName,
  CURSOR_METADATA,
  errorRecordName,
  manifestName,
  ORIGINAL_METADATA,
  originalName,
  OUTCOME_MARKER,
  outcomeMarkerName,
} from '../../shared/core/naming.js';
import { makePhoto } from '../fixtures/images.js';
import {
  pullEvents,
  pullJobs,
  pushBody,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
} from '../fixtures/pipeline.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

describe('cleanup pass (fake clock, local storage, Pub/Sub emulator)', function () {
  this.timeout(90_000);
  let pipeline: TestPipeline;
  const clocks: PipelineDeps[] = [];
  const at = (offsetMs: number, env: Record<string, unknown> = {}): PipelineDeps => {
    const deps = createDeps(
      { ...pipeline.config, ...env },
      { log: pipeline.deps.log, now: () => new Date(Date.now() + offsetMs) },
    );
    clocks.push(deps);
    return deps;
  };
  const uploads = () => pipeline.deps.storage.bucket('test-uploads');
  const images = () => pipeline.deps.storage.bucket('test-images');
  const exists = async (bucket: 'test-uploads' | 'test-images', name: string) =>
    (await pipeline.deps.storage.bucket(bucket).file(name).exists())[0];

  async function uploadImage(seed: number): Promise<{ id: string; jobs: Awaited<ReturnType<typeof pullJobs>> }> {
    const image = await makePhoto({ width: 200, height: 160, seed });
    const response = await request(getTestServer('upload'))
      .post('/uploads')
      .set('Content-Type', 'image/jpeg')
      .send(image);
    expect(response.status).to.equal(202);
    return { id: response.body.id, jobs: await pullJobs(pipeline.jobs) };
  }
  async function finish(jobs: Awaited<ReturnType<typeof pullJobs>>): Promise<void> {
    for (const { message } of jobs) {
      const status = (
        await request(getTestServer('resize'))
          .post(`/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`)
          .send(pushBody(message))
      ).status;
      expect(status).to.equal(204);
    }
  }

  before(async () => {
    pipeline = await startTestPipeline({
      ORIGINAL_RETENTION_DAYS: '30',
      MAX_REDISPATCHES: '1',
      REDISPATCH_AFTER_MINUTES: '30',
    });
    useDeps(pipeline.deps);
    const [deadLetterTopic] = await pipeline.pubsub.createTopic(`dead-letter-${pipeline.config.JOBS_TOPIC}`);
    await deadLetterTopic.createSubscription(pipeline.config.JOBS_DEAD_LETTER_SUBSCRIPTION);
  });
  after(async () => {
    await Promise.all(clocks.map((d) => d.pubsub.close()));
    await pipeline.stop();
  });

  it('deletes finished originals past retention and keeps their variants', async () => {
    const { id, jobs } = await uploadImage(51);
    await finish(jobs);
    await pullEvents(pipeline.events);
    expect((await runCleanup(at(29 * DAY))).originalsDeleted).to.equal(0);
    expect(await exists('test-uploads', originalName(id))).to.equal(true);
    const summary = await runCleanup(at(31 * DAY));
    expect(summary.originalsDeleted).to.be.at.least(1);
    expect(await exists('test-uploads', originalName(id))).to.equal(false);
    expect(await exists('test-images', manifestName(id))).to.equal(true);
    expect((await runCleanup(at(400 * DAY))).orphansDeleted).to.equal(0, 'finished outputs are what users keep');
  });

  it('re-dispatches stuck work, then gives up and records the failure', async () => {
    const { id } = await uploadImage(52); // its jobs are pulled and dropped: they are "lost"
    expect((await runCleanup(at(10 * MIN))).redispatched).to.equal(0, 'still within REDISPATCH_AFTER_MINUTES');
    const first = await runCleanup(at(31 * MIN));
    expect(first.redispatched).to.equal(1);
    const again = await pullJobs(pipeline.jobs);
    expect(again.length).to.be.greaterThan(0);
    expect(again.every(({ job }) => job.imageId === id && job.dispatch === 1)).to.equal(true);

    const [metadata] = await uploads().file(originalName(id)).getMetadata();
    expect(metadata.metadata?.redispatches).to.equal('1');
    const giveUp = await runCleanup(at(62 * MIN));
    expect(giveUp.gaveUp).to.equal(1);
    const [record] = await images().file(errorRecordName(id)).download();
    // Adapted (issue 10): giving up has its own code, retryable by uploading the same bytes.
    expect(JSON.parse(record.toString())).to.include({ id, code: 'processing_gave_up', retryable: true });
    const events = await pullEvents(pipeline.events);
    expect(events.filter((e) => e.imageId === id).map((e) => e.type)).to.deep.equal(['image.failed']);
    expect((await runCleanup(at(120 * MIN))).gaveUp).to.equal(0, 'a failed image is not touched again');
  });

  it('marks images whose jobs were dead-lettered as failed, once', async () => {
    const { id, jobs } = await uploadImage(53);
    const topic = pipeline.pubsub.topic(`dead-letter-${pipeline.config.JOBS_TOPIC}`);
    for (const { job } of jobs) await topic.publishMessage({ data: encodeMessage(job as JobMessage) });
    await topic.publishMessage({ data: Buffer.from('not a job') });
    const summary = await runCleanup(at(0));
    expect(summary.deadLettered).to.equal(1);
    const [record] = await images().file(errorRecordName(id)).download();
    expect(JSON.parse(record.toString()).message).to.match(/dead-lettered/);
    const events = await pullEvents(pipeline.events);
    expect(events.filter((e) => e.imageId === id).map((e) => e.type)).to.deep.equal(['image.failed']);
    expect((await runCleanup(at(0))).deadLettered).to.equal(0, 'dead letters were acknowledged');
  });

  it('removes stale incoming/ objects and orphaned partial outputs', async () => {
    await uploads().file('incoming/forgotten.jpg').save('x', { resumable: false });
    const orphanId = 'f'.repeat(32);
    await images()
      .file(`${orphanId}/96w.jpg`)
      .save('partial', { resumable: false, metadata: { metadata: { width: '96', height: '77' } } });
    const early = await runCleanup(at(2 * 60 * MIN));
    expect(early.incomingDeleted).to.equal(0);
    expect(early.orphansDeleted).to.equal(0);
    const late = await runCleanup(at(8 * DAY));
    expect(late.incomingDeleted).to.equal(1);
    expect(late.orphansDeleted).to.be.at.least(1);
    expect(await exists('test-uploads', 'incoming/forgotten.jpg')).to.equal(false);
    expect(await exists('test-images', `${orphanId}/96w.jpg`)).to.equal(false);
  });

  it('changes nothing with DRY_RUN but reports what it would do', async () => {
    await uploads().file('incoming/dry.jpg').save('x', { resumable: false });
    const { id } = await uploadImage(54);
    const summary = await runCleanup(at(40 * DAY, { DRY_RUN: true }));
    expect(summary.dryRun).to.equal(true);
    expect(summary.incomingDeleted).to.equal(1);
    expect(summary.gaveUp + summary.redispatched).to.be.at.least(1);
    expect(await exists('test-uploads', 'incoming/dry.jpg')).to.equal(true);
    expect(await exists('test-uploads', originalName(id))).to.equal(true);
    expect(await exists('test-images', errorRecordName(id))).to.equal(false);
    expect(await pullJobs(pipeline.jobs)).to.have.length(0);
  });

  it('finishes an announcement whose writer died after writing the manifest', async () => {
    const { id, jobs } = await uploadImage(55);
    await finish(jobs);
    await pullEvents(pipeline.events);
    // Simulate the crash window: outcome recorded, event never published (adapted, issue 10: the
    // announcement state lives on the outcome marker now).
    await uploads()
      .file(outcomeMarkerName(id))
      .setMetadata({
        metadata: { [OUTCOME_MARKER.keys.eventState]: 'pending', [OUTCOME_MARKER.keys.writer]: 'job:crashed' },
      });
    expect((await runCleanup(at(0))).announcementsSettled).to.equal(0, 'a fresh pending record is left to its writer');
    const summary = await runCleanup(at(5 * MIN));
    expect(summary.announcementsSettled).to.equal(1);
    const events = await pullEvents(pipeline.events);
    expect(events.filter((e) => e.imageId === id).map((e) => e.type)).to.deep.equal(['image.ready']);
    expect((await runCleanup(at(10 * MIN))).announcementsSettled).to.equal(0);
  });

  it('logs one NOTICE summary line per pass, and the cleanup function acknowledges its tick', async () => {
    pipeline.clearLogs();
    const tick = {
      message: { data: Buffer.from('{}').toString('base64'), messageId: 'tick-1', attributes: {} },
      subscription: 'projects/test-project/subscriptions/cleanup',
    };
    const response = await request(getTestServer('cleanup'))
      .post(`/projects/${TEST_PROJECT}/topics/image-cleanup`)
      .send(tick);
    expect(response.status).to.equal(204);
    const summaries = pipeline.logs.filter((l) => l.message === 'cleanup pass finished');
    expect(summaries).to.have.length(1);
    expect(summaries[0]!.severity).to.equal('NOTICE');
    expect(summaries[0]!.summary).to.include.keys([
      'examined',
      'originalsDeleted',
      'redispatched',
      'gaveUp',
      'deadLettered',
      'incomingDeleted',
      'orphansDeleted',
      'truncated',
    ]);
  });

  it('stops at CLEANUP_MAX_OBJECTS and says the pass was truncated', async () => {
    const summary = await runCleanup(at(0, { CLEANUP_MAX_OBJECTS: 1 }));
    expect(summary.truncated).to.equal(true);
  });
  it('leaves a queued-but-alive image alone: a variant written since its dispatch means neither re-dispatch nor give-up', async () => {
    const { id } = await uploadImage(56); // jobs dropped, but a variant "appears" 20 minutes after dispatch
    const original = uploads().file(originalName(id));
    await original.setMetadata({ metadata: { [ORIGINAL_METADATA.redispatches]: '1' } }); // at MAX_REDISPATCHES
    const [metadata] = await original.getMetadata();
    const dispatchedAt = new Date(String(metadata.metadata?.[ORIGINAL_METADATA.dispatchedAt])).getTime();
    await bulkCreate(pipeline.storageServer.url, 'test-images', [
      {
        name: `${id}/96w.jpg`,
        contentType: 'image/jpeg',
        timeCreated: new Date(dispatchedAt + 20 * MIN).toISOString(),
        metadata: { width: '96', height: '77' },
      },
    ]);
    pipeline.clearLogs();
    await runCleanup(at(dispatchedAt + 40 * MIN - Date.now()));
    const decisions = pipeline.logs.filter((l) => l.message === 'cleanup decision' && l.imageId === id);
    expect(decisions, 'no decision about a live image').to.deep.equal([]);
    expect(await exists('test-images', errorRecordName(id))).to.equal(false);
    const [after] = await original.getMetadata();
    expect(after.metadata?.[ORIGINAL_METADATA.dispatchedAt]).to.equal(
      metadata.metadata?.[ORIGINAL_METADATA.dispatchedAt],
    );
    // Quiet for the whole window after its newest variant: now it counts as lost, and is given up.
    await runCleanup(at(dispatchedAt + 51 * MIN - Date.now()));
    expect(await exists('test-images', errorRecordName(id))).to.equal(true);
    await pullEvents(pipeline.events);
  });

  it('re-dispatches at most REDISPATCH_MAX_PER_PASS images per pass and resumes at the first it left', async () => {
    const stamp = new Date(Date.now() - 40 * MIN).toISOString();
    const ids = Array.from({ length: 5 }, (_, i) => `${'0'.repeat(30)}a${i}`);
    await bulkCreate(
      pipeline.storageServer.url,
      'test-uploads',
      ids.map((id) => ({
        name: originalName(id),
        contentType: 'image/jpeg',
        timeCreated: stamp,
        metadata: {
          format: 'jpeg',
          width: '200',
          height: '160',
          [ORIGINAL_METADATA.dispatchedAt]: stamp,
          [ORIGINAL_METADATA.redispatches]: '0',
        },
      })),
    );
    const redispatchedOf = async () =>
      (
        await Promise.all(
          ids.map(
            async (id) =>
              (
                await uploads().file(originalName(id)).getMetadata()
              )[0].metadata?.[ORIGINAL_METADATA.redispatches],
          ),
        )
      ).filter((n) => n === '1').length;
    const counts: number[] = [];
    for (let pass = 0; pass < 5 && (await redispatchedOf()) < ids.length; pass++) {
      const summary = await runCleanup(at(0, { REDISPATCH_MAX_PER_PASS: 2 }));
      expect(summary.redispatched).to.be.at.most(2);
      counts.push(await redispatchedOf());
    }
    expect(counts.slice(0, 3)).to.deep.equal([2, 4, 5], 'two per pass, resuming where the cap stopped the step');
    await pullJobs(pipeline.jobs);
  });

  it('settles a pending outcome found by listing outcomes/ whose original was never stored (ingest died after creating it)', async () => {
    const id = 'e'.repeat(32);
    const failedAt = new Date(Date.now() - 10 * MIN).toISOString();
    const record = { v: 1, id, code: 'not_an_image', message: 'The file is not an image.', failedAt, retryable: false };
    await bulkCreate(pipeline.storageServer.url, 'test-uploads', [
      {
        name: outcomeMarkerName(id),
        contentType: 'application/json',
        timeCreated: failedAt,
        data: JSON.stringify({ v: 1, outcome: 'failed', record }),
        metadata: {
          [OUTCOME_MARKER.keys.outcome]: 'failed',
          [OUTCOME_MARKER.keys.eventState]: OUTCOME_MARKER.states.pending,
          [OUTCOME_MARKER.keys.writer]: 'ingest',
          [OUTCOME_MARKER.keys.retryable]: 'false',
        },
      },
    ]);
    expect(await exists('test-uploads', originalName(id))).to.equal(false);
    const summary = await runCleanup(at(0));
    expect(summary.announcementsSettled).to.equal(1);
    const events = await pullEvents(pipeline.events);
    expect(events.filter((e) => e.imageId === id).map((e) => e.type)).to.deep.equal(['image.failed']);
    const [metadata] = await uploads().file(outcomeMarkerName(id)).getMetadata();
    expect(metadata.metadata?.[OUTCOME_MARKER.keys.eventState]).to.equal(OUTCOME_MARKER.states.published);
  });

  it('of claimants racing for one step, exactly one wins; the others skip it', async () => {
    const until = new Date(Date.now() + MIN);
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) => claimStep(pipeline.deps, 'race-test', `pass-${i}`, until)),
    );
    expect(results.filter((r) => typeof r !== 'string')).to.have.length(1);
    expect(results.filter((r) => typeof r === 'string')).to.have.length(4);
  });

  it('two overlapping passes: the one holding a step advances its cursor, the other skips the step', async () => {
    // Pass A is held inside its originals step (the storage server holds its listing) until B,
    // which must see A's claim, has run to its end.
    const held = pipeline.storageServer.holdRequests({
      method: 'GET',
      path: /\/b\/test-uploads\/o\?.*prefix=originals/,
    });
    const state = uploads().file(cleanupStateName('originals'));
    const before = (await state.exists())[0] ? (await state.getMetadata())[0] : { generation: undefined, metadata: {} };
    const passA = runCleanup(at(0, { CLEANUP_MAX_OBJECTS: 2 }));
    let b: Awaited<ReturnType<typeof runCleanup>>;
    try {
      await held.arrived;
      // A claims the step before it lists: its claim is the state B must see.
      const [claimed] = await state.getMetadata();
      expect(claimed.generation, 'A wrote its claim').to.not.equal(before.generation);
      expect(claimed.metadata?.[CURSOR_METADATA.claimedBy], 'A holds the step').to.be.a('string').and.not.equal('');
      b = await runCleanup(at(0, { CLEANUP_MAX_OBJECTS: 2 }));
    } finally {
      held.release();
    }
    const a = await passA;
    expect(b.steps.originals.outcome).to.equal('skipped');
    expect(a.steps.originals).to.deep.equal({ outcome: 'partial', reviewed: 2 });
    const [files] = await uploads().getFiles({ prefix: 'originals/' });
    const names = files.map((f) => f.name);
    const from = Math.max(
      0,
      names.findIndex((n) => n > String(before.metadata?.[CURSOR_METADATA.after] ?? '')),
    );
    const expected = [...names.slice(from), ...names.slice(0, from)][1];
    const [after] = await state.getMetadata();
    expect(after.metadata?.[CURSOR_METADATA.after], 'moved once, by two originals').to.equal(expected);
    expect(after.metadata?.[CURSOR_METADATA.claimedBy] ?? '').to.equal('');
    await pullJobs(pipeline.jobs);
    await pullEvents(pipeline.events);
  });
});
