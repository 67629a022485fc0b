/**
 * `cleanup`'s pass against the local storage server, the Pub/Sub emulator and the Firestore
 * emulator, with a fake clock that jumps ahead instead of waiting days. Each test has a fixture
 * of its own (buckets, topics, Firestore database), so one test's images never become due in
 * another's pass.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { createDeps, type PipelineDeps } from '../../shared/cloud/deps.js';
import { errorRecordName, manifestName, originalName } from '../../shared/core/naming.js';
import type { Config } from '../../shared/core/config.js';
import { encodeMessage, type OriginalInfo, type OriginalRef } from '../../shared/core/schemas.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { readCursor } from '../../shared/state/cursors.js';
import { IMAGES_COLLECTION, type ImageDoc, readImage, transactImage } from '../../shared/state/image-doc.js';
import { claimForAccept, claimUpdate, recordOriginal } from '../../shared/state/transitions.js';
import { PURGE_AFTER_MS } from '../../shared/state/policy.js';
import { makePhoto } from '../fixtures/images.js';
import { deliverJobs, pullEvents, pullJobs, startTestPipeline, type TestPipeline } from '../fixtures/pipeline.js';
import { serviceAsset } from '../helpers.js';

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

describe('cleanup pass (fake clock, local storage, Pub/Sub and Firestore emulators)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let seed = 60;
  /** Deps sharing the fixture's clients, with the clock fixed at now + `offsetMs`. */
  const at = (offsetMs: number, env: Partial<Config> = {}): PipelineDeps => {
    const now = new Date(Date.now() + offsetMs);
    return createDeps(
      { ...pipeline.config, ...env },
      {
        storage: pipeline.deps.storage,
        pubsub: pipeline.deps.pubsub,
        firestore: pipeline.deps.firestore,
        log: pipeline.deps.log,
        now: () => now,
      },
    );
  };
  const uploads = () => pipeline.deps.storage.bucket(pipeline.config.UPLOADS_BUCKET);
  const images = () => pipeline.deps.storage.bucket(pipeline.config.IMAGES_BUCKET);
  const exists = async (bucket: 'uploads' | 'images', name: string) =>
    (await (bucket === 'uploads' ? uploads() : images()).file(name).exists())[0];
  const eventsOf = async (id: string) =>
    (await pullEvents(pipeline.events)).filter((e) => e.imageId === id).map((e) => e.type);
  const doc = async (id: string) => {
    const found = await readImage(pipeline.deps, id);
    if (!found) expect.fail(`images/${id} is missing`);
    return found;
  };

  async function upload(): Promise<{ id: string; jobs: Awaited<ReturnType<typeof pullJobs>> }> {
    const image = await makePhoto({ width: 200, height: 160, seed: ++seed });
    const response = await request(getTestServer('upload'))
      .post('/uploads')
      .set('Content-Type', 'image/jpeg')
      .send(image);
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    return { id: response.body.imageId as string, jobs: await pullJobs(pipeline.jobs) };
  }
  const finish = (jobs: Awaited<ReturnType<typeof pullJobs>>) => deliverJobs(pipeline.config, jobs);
  async function ready(): Promise<string> {
    const { id, jobs } = await upload();
    expect(await finish(jobs)).to.deep.equal(jobs.map(() => 204));
    expect(await eventsOf(id)).to.deep.equal(['image.ready']);
    return id;
  }
  const info: OriginalInfo = { format: 'jpeg', width: 200, height: 160, bytes: 1000, contentType: 'image/jpeg' };
  /** Stores an original for `id` as accept would. */
  async function storeOriginal(id: string): Promise<OriginalRef> {
    await uploads()
      .file(originalName(id))
      .save(await makePhoto({ width: 200, height: 160, seed: ++seed }), { resumable: false });
    const [metadata] = await uploads().file(originalName(id)).getMetadata();
    return { bucket: pipeline.config.UPLOADS_BUCKET, name: originalName(id), generation: String(metadata.generation) };
  }
  /** A stored original and a processing document for it, dispatched 40 minutes ago and stale since 10. */
  async function stuckDoc(id: string, overrides: Partial<ImageDoc>): Promise<void> {
    const original = await storeOriginal(id);
    const now = new Date();
    const next: ImageDoc = {
      v: 1,
      id,
      status: 'processing',
      dispatch: 0,
      jobCount: 1,
      jobsDone: [],
      redispatches: 0,
      dispatchedAt: new Date(now.getTime() - 40 * MIN),
      staleAt: new Date(now.getTime() - 10 * MIN),
      recipe: 'r',
      original,
      info,
      source: 'upload',
      acceptedAt: new Date(now.getTime() - 40 * MIN),
      plannedVariants: 6,
      variants: [],
      events: [],
      nextSeq: 1,
      createdAt: now,
      updatedAt: now,
      ...overrides,
    };
    await transactImage(pipeline.deps, id, () => ({ next, result: undefined }));
  }

  beforeEach(async () => {
    pipeline = await startTestPipeline({
      ORIGINAL_RETENTION_DAYS: '30',
      MAX_REDISPATCHES: '1',
      REDISPATCH_AFTER_MINUTES: '30',
    });
    useDeps(pipeline.deps);
    const [deadLetterTopic] = await pipeline.pubsub.createTopic(`dead-letter-${pipeline.config.JOBS_TOPIC}`);
    await deadLetterTopic.createSubscription(pipeline.config.JOBS_DEAD_LETTER_SUBSCRIPTION);
  });
  afterEach(async () => {
    await pipeline.stop();
  });

  it('re-dispatches an image whose jobs were lost, then gives up after MAX_REDISPATCHES (retryable, one image.failed)', async () => {
    const { id } = await upload(); // its jobs are pulled and dropped: they are "lost"
    expect((await runCleanup(at(10 * MIN))).redispatched).to.equal(0, 'still within REDISPATCH_AFTER_MINUTES');
    const first = await runCleanup(at(31 * MIN));
    expect(first.redispatched).to.equal(1);
    const again = await pullJobs(pipeline.jobs);
    expect(again.length).to.be.greaterThan(0);
    expect(again.map(({ job }) => `${job.imageId}:${job.dispatch}`)).to.deep.equal(again.map(() => `${id}:1`));
    expect(await doc(id)).to.deep.include({
      status: 'processing',
      dispatch: 1,
      redispatches: 1,
      jobCount: again.length,
    });

    const giveUp = await runCleanup(at(62 * MIN));
    expect(giveUp.gaveUp).to.equal(1);
    expect((await doc(id)).failure).to.deep.include({ code: 'processing_gave_up', retryable: true, dispatch: 1 });
    const [record] = await images().file(errorRecordName(id)).download();
    expect(JSON.parse(record.toString())).to.include({ id, code: 'processing_gave_up', retryable: true });
    expect(await eventsOf(id)).to.deep.equal(['image.failed']);
    const later = await runCleanup(at(120 * MIN));
    expect(later.gaveUp + later.redispatched).to.equal(0, 'a failed image is not touched again');
    expect(await pullJobs(pipeline.jobs)).to.have.length(0);
  });

  it('dispatches a claim whose publish failed, and one whose accepting request died, after the grace', async () => {
    // The jobs topic is missing for the accepting request: the claim is given back, due at once.
    useDeps(at(0, { JOBS_TOPIC: `missing-${pipeline.config.JOBS_TOPIC}` }));
    const image = await makePhoto({ width: 200, height: 160, seed: ++seed });
    const refused = await request(getTestServer('upload'))
      .post('/uploads')
      .set('Content-Type', 'image/jpeg')
      .send(image);
    useDeps(pipeline.deps);
    expect(refused.status, JSON.stringify(refused.body)).to.equal(503);
    const released = (await pipeline.deps.firestore.collection(IMAGES_COLLECTION).get()).docs.map((d) => d.id);
    expect(released).to.have.length(1);
    const publishFailed = released[0] as string;
    expect(await doc(publishFailed)).to.not.have.property('dispatchedAt');

    // Claimed and stored, then the request died before publishing: due after UNDISPATCHED_GRACE_MS.
    const died = 'd'.repeat(32);
    const ref = await storeOriginal(died);
    const facts = { id: died, info, source: 'upload', acceptedAt: new Date(), recipe: 'r', plannedVariants: 6 };
    expect((await transactImage(pipeline.deps, died, claimForAccept(facts))).kind).to.equal('claimed');
    expect(await transactImage(pipeline.deps, died, recordOriginal(0, ref))).to.equal('recorded');

    const early = await runCleanup(at(1 * MIN));
    expect(early.redispatched).to.equal(1, 'only the released claim is due');
    const late = await runCleanup(at(3 * MIN));
    expect(late.redispatched).to.equal(1, "the dead request's claim, after the grace");
    const jobs = await pullJobs(pipeline.jobs);
    const dispatched = [...new Set(jobs.map(({ job }) => `${job.imageId}:${job.dispatch}`))].sort();
    expect(dispatched).to.deep.equal([`${died}:1`, `${publishFailed}:1`].sort());
    for (const id of [publishFailed, died])
      expect(await doc(id), id).to.deep.include({ dispatch: 1, redispatches: 0, status: 'processing' });
  });

  it('publishes, once, an outbox its writer left unpublished (the events topic was missing for the writer)', async () => {
    const { id, jobs } = await upload();
    useDeps(at(0, { EVENTS_TOPIC: `missing-${pipeline.config.EVENTS_TOPIC}` }));
    const statuses = await finish(jobs);
    useDeps(pipeline.deps);
    expect(statuses.at(-1), 'the last job could not publish image.ready').to.not.equal(204);
    const left = await doc(id);
    expect(left.status).to.equal('ready');
    expect(left.events.map((e) => `${e.event.type}:${e.published}`)).to.deep.equal(['image.ready:false']);
    expect(left.outboxDueAt, 'due for cleanup').to.be.instanceOf(Date);
    expect(await eventsOf(id)).to.deep.equal([]);

    const summary = await runCleanup(at(MIN));
    expect(summary.announcementsSettled).to.equal(1);
    expect(await eventsOf(id)).to.deep.equal(['image.ready']);
    expect((await doc(id)).events.map((e) => `${e.event.type}:${e.published}`)).to.deep.equal(['image.ready:true']);
    expect((await runCleanup(at(10 * MIN))).announcementsSettled).to.equal(0);
    expect(await eventsOf(id), 'published once').to.deep.equal([]);
  });

  it('deletes the original of a ready image past ORIGINAL_RETENTION_DAYS, never one with an update in flight', async () => {
    const kept = await ready();
    const updating = await ready();
    const update = await transactImage(pipeline.deps, updating, claimUpdate('r-next', 6));
    expect(update.kind).to.equal('claimed');
    expect((await runCleanup(at(29 * DAY))).originalsDeleted).to.equal(0);
    expect(await exists('uploads', originalName(kept))).to.equal(true);
    const summary = await runCleanup(at(31 * DAY));
    expect(summary.originalsDeleted).to.equal(1);
    expect(await exists('uploads', originalName(kept)), 'past retention').to.equal(false);
    expect(await exists('images', manifestName(kept)), 'the variants stay').to.equal(true);
    expect(await doc(kept)).to.not.have.property('original');
    expect(await exists('uploads', originalName(updating)), 'the update reads it').to.equal(true);
    expect((await doc(updating)).original?.name).to.equal(originalName(updating));
    expect((await runCleanup(at(400 * DAY))).orphansDeleted).to.equal(0, 'what a ready image has is no orphan');
    await pullJobs(pipeline.jobs);
  });

  it("removes a deleted image's leftovers (written after the delete) once PURGE_AFTER_MS has passed", async () => {
    const id = await ready();
    const deleted = await request(getTestServer('upload')).delete(`/uploads/${serviceAsset(id)}`);
    expect(deleted.status).to.equal(204);
    expect(await eventsOf(id)).to.deep.equal(['image.deleted']);
    const late = images().file(`${id}/96w.jpg`);
    await late.save('a late writer', { resumable: false });
    expect((await runCleanup(at(PURGE_AFTER_MS - MIN))).purged).to.equal(0);
    expect((await late.exists())[0], 'before purgeAt').to.equal(true);
    const summary = await runCleanup(at(PURGE_AFTER_MS + MIN));
    expect(summary.purged).to.equal(1);
    expect((await late.exists())[0], 'purged').to.equal(false);
    expect(await doc(id)).to.deep.include({ status: 'deleted' });
    expect(await doc(id)).to.not.have.property('purgeAt');
  });

  it('sweeps objects no document accounts for after the grace, keeps a live image, and resumes from its cursor', async () => {
    const live = await ready();
    const orphans = ['0'.repeat(32), '5'.repeat(32), 'f'.repeat(32)];
    for (const id of orphans) await images().file(`${id}/96w.jpg`).save('partial', { resumable: false });
    const orphanOriginal = 'e'.repeat(32);
    await uploads().file(originalName(orphanOriginal)).save('bytes', { resumable: false });
    const early = await runCleanup(at(6 * DAY));
    expect(early.orphansDeleted).to.equal(0, 'within ORPHAN_GRACE_DAYS');
    expect(early.steps.orphans.outcome).to.equal('complete');
    expect(await readCursor(pipeline.deps, 'orphans'), 'a complete sweep starts again').to.equal(undefined);

    const keys = [
      ...[live, ...orphans].sort().map((id) => `images:${id}/`),
      ...[live, orphanOriginal].sort().map((id) => `originals:${originalName(id)}`),
    ];
    const objectOf = (key: string) =>
      key.startsWith('images:')
        ? { bucket: 'images' as const, name: `${key.slice(7)}96w.jpg` }
        : { bucket: 'uploads' as const, name: key.slice(10) };
    const isLive = (key: string) => key.includes(live);
    for (let pass = 1; pass <= 3; pass++) {
      const summary = await runCleanup(at(8 * DAY, { CLEANUP_MAX_OBJECTS: 2 }));
      expect(summary.steps.orphans, `pass ${pass}`).to.deep.equal({ outcome: 'partial', reviewed: 2 });
      expect(await readCursor(pipeline.deps, 'orphans'), `cursor after pass ${pass}`).to.equal(keys[2 * pass - 1]);
      for (const [index, key] of keys.entries()) {
        if (isLive(key)) continue;
        const { bucket, name } = objectOf(key);
        expect(await exists(bucket, name), `pass ${pass}: ${name}`).to.equal(index >= 2 * pass);
      }
    }
    const last = await runCleanup(at(8 * DAY, { CLEANUP_MAX_OBJECTS: 2 }));
    expect(last.steps.orphans.outcome).to.equal('complete');
    expect(await readCursor(pipeline.deps, 'orphans')).to.equal(undefined);
    expect(await exists('images', manifestName(live)), 'the live image stays').to.equal(true);
    expect(await exists('uploads', originalName(live)), 'its original stays').to.equal(true);
  });

  it('removes stale incoming/ objects', async () => {
    await uploads().file('incoming/forgotten.jpg').save('x', { resumable: false });
    expect((await runCleanup(at(2 * HOUR))).incomingDeleted).to.equal(0);
    expect(await exists('uploads', 'incoming/forgotten.jpg')).to.equal(true);
    expect((await runCleanup(at(25 * HOUR))).incomingDeleted).to.equal(1);
    expect(await exists('uploads', 'incoming/forgotten.jpg')).to.equal(false);
  });

  it('changes nothing with DRY_RUN but reports what it would do', async () => {
    await uploads().file('incoming/dry.jpg').save('x', { resumable: false });
    const orphan = 'c'.repeat(32);
    await images().file(`${orphan}/96w.jpg`).save('partial', { resumable: false });
    const { id } = await upload();
    const before = await doc(id);
    const summary = await runCleanup(at(40 * DAY, { DRY_RUN: true }));
    expect(summary).to.deep.include({ dryRun: true, incomingDeleted: 1, redispatched: 1, orphansDeleted: 1 });
    expect(summary.steps.deadLetters.outcome).to.equal('not-run');
    expect(await exists('uploads', 'incoming/dry.jpg')).to.equal(true);
    expect(await exists('images', `${orphan}/96w.jpg`)).to.equal(true);
    expect(await exists('uploads', originalName(id))).to.equal(true);
    const after = await doc(id);
    expect(after.updatedAt, 'the document was not written').to.deep.equal(before.updatedAt);
    expect(after.dispatch).to.equal(0);
    expect(await readCursor(pipeline.deps, 'orphans'), 'the cursor did not move').to.equal(undefined);
    expect(await pullJobs(pipeline.jobs)).to.have.length(0);
  });

  it('re-dispatches at most REDISPATCH_MAX_PER_PASS images a pass and defers the rest to the next', async () => {
    const ids = Array.from({ length: 5 }, (_, i) => `${'0'.repeat(31)}${i}`);
    for (const id of ids) await stuckDoc(id, {});
    const redispatched = async () =>
      (await Promise.all(ids.map(async (id) => (await doc(id)).redispatches))).filter((n) => n === 1).length;
    const counts: number[] = [];
    const deferred: number[] = [];
    for (let pass = 0; pass < 3; pass++) {
      const summary = await runCleanup(at(0, { REDISPATCH_MAX_PER_PASS: 2 }));
      counts.push(await redispatched());
      deferred.push(summary.redispatchDeferred);
    }
    expect(counts).to.deep.equal([2, 4, 5], 'two per pass');
    expect(deferred).to.deep.equal([3, 1, 0]);
    const jobs = await pullJobs(pipeline.jobs);
    expect([...new Set(jobs.map(({ job }) => job.imageId))].sort()).to.deep.equal(ids);
  });

  it('marks an image whose jobs were dead-lettered as failed, once', async () => {
    const { id, jobs } = await upload();
    const topic = pipeline.pubsub.topic(`dead-letter-${pipeline.config.JOBS_TOPIC}`);
    for (const { job } of jobs) await topic.publishMessage({ data: encodeMessage(job) });
    await topic.publishMessage({ data: Buffer.from('not a job') });
    const summary = await runCleanup(at(0));
    expect(summary.deadLettered).to.equal(1);
    expect((await doc(id)).failure).to.deep.include({ code: 'dead_lettered', retryable: true });
    const [record] = await images().file(errorRecordName(id)).download();
    expect(JSON.parse(record.toString()).message).to.match(/dead-lettered/);
    expect(await eventsOf(id)).to.deep.equal(['image.failed']);
    expect((await runCleanup(at(0))).deadLettered).to.equal(0, 'dead letters were acknowledged');
  });

  it('two overlapping passes: one holds the orphan cursor, the other skips the step', async () => {
    for (const id of ['1'.repeat(32), '2'.repeat(32), '3'.repeat(32)])
      await images().file(`${id}/96w.jpg`).save('partial', { resumable: false });
    // Pass A is held inside its orphan sweep (the storage server holds its folder listing) until
    // B, which must see A's claim, has run to its end.
    const held = pipeline.storageServer.holdRequests({ method: 'GET', path: /\/b\/test-images\/o\?.*delimiter=/ });
    const passA = runCleanup(at(0, { CLEANUP_MAX_OBJECTS: 2 }));
    let b: Awaited<ReturnType<typeof runCleanup>>;
    try {
      await held.arrived;
      b = await runCleanup(at(0, { CLEANUP_MAX_OBJECTS: 2 }));
    } finally {
      held.release();
    }
    const a = await passA;
    expect(b.steps.orphans).to.deep.equal({ outcome: 'skipped', reviewed: 0 });
    expect(a.steps.orphans).to.deep.equal({ outcome: 'partial', reviewed: 2 });
    expect(await readCursor(pipeline.deps, 'orphans'), 'moved once, by two folders').to.equal(
      `images:${'2'.repeat(32)}/`,
    );
    const next = await runCleanup(at(0, { CLEANUP_MAX_OBJECTS: 2 }));
    expect(next.steps.orphans.outcome, 'the claim was released').to.not.equal('skipped');
  });
});
