/**
 * drainOutbox (shared/state/outbox.ts) on the real Firestore emulator, Pub/Sub emulator and local
 * storage server, with a fake clock: the document is written as a writer's transaction would
 * have left it, and the drain must publish, mark, materialise and respect the lease.
 */
import { expect } from 'chai';
import { createDeps, type PipelineDeps } from '../../shared/cloud/deps.js';
import { manifestName, STATE_SEQ_METADATA } from '../../shared/core/naming.js';
import type { EventMessage, Manifest } from '../../shared/core/schemas.js';
import { type ImageDoc, readImage, transactImage } from '../../shared/state/image-doc.js';
import { drainOutbox } from '../../shared/state/outbox.js';
import { claimForAccept } from '../../shared/state/transitions.js';
import { OUTBOX_LEASE_MS } from '../../shared/state/policy.js';
import { rejection } from '../helpers.js';
import { pullEvents, startTestPipeline, type TestPipeline } from '../fixtures/pipeline.js';

const T0 = new Date('2026-06-01T12:00:00Z');
const plus = (ms: number) => new Date(T0.getTime() + ms);

describe('outbox: drainOutbox (Firestore + Pub/Sub emulators, local storage, fake clock)', function () {
  this.timeout(60_000);
  let pipeline: TestPipeline;
  let counter = 0;
  const newId = () => `0b0${(++counter).toString(16).padStart(29, '0')}`;
  /** Deps sharing the fixture's clients, at `now`, optionally with other settings. */
  const at = (now: Date, config: Partial<PipelineDeps['config']> = {}): PipelineDeps =>
    createDeps(
      { ...pipeline.config, ...config },
      {
        storage: pipeline.deps.storage,
        pubsub: pipeline.deps.pubsub,
        firestore: pipeline.deps.firestore,
        log: pipeline.deps.log,
        now: () => now,
      },
    );
  const images = () => pipeline.deps.storage.bucket(pipeline.config.IMAGES_BUCKET);
  const manifestOf = (id: string) =>
    ({
      v: 1,
      id,
      original: {
        format: 'jpeg',
        width: 200,
        height: 160,
        bytes: 1000,
        contentType: 'image/jpeg',
        name: `originals/${id}`,
        generation: '1',
      },
      formats: ['jpeg'],
      variants: [],
      createdAt: T0.toISOString(),
    }) as unknown as Manifest;
  const failed = (id: string, code: string): EventMessage => ({
    v: 1,
    type: 'image.failed',
    imageId: id,
    code,
    message: code,
    at: T0.toISOString(),
  });
  const readyEvent = (id: string): EventMessage => ({
    v: 1,
    type: 'image.ready',
    imageId: id,
    manifest: { bucket: pipeline.config.IMAGES_BUCKET, name: manifestName(id) },
    variants: 1,
    at: T0.toISOString(),
  });
  /** A ready image whose writer committed its transaction (events pending) and then died. */
  async function seed(id: string, overrides: Partial<ImageDoc> = {}): Promise<void> {
    const doc: ImageDoc = {
      v: 1,
      id,
      status: 'ready',
      dispatch: 0,
      jobCount: 1,
      jobsDone: [0],
      redispatches: 0,
      recipe: 'r1',
      info: { format: 'jpeg', width: 200, height: 160, bytes: 1000, contentType: 'image/jpeg' },
      source: 'upload',
      acceptedAt: T0,
      plannedVariants: 1,
      variants: [],
      manifest: manifestOf(id),
      events: [
        { seq: 1, published: false, event: failed(id, 'first') },
        { seq: 2, published: false, event: readyEvent(id) },
      ],
      nextSeq: 3,
      outboxDueAt: plus(OUTBOX_LEASE_MS),
      outboxLease: { holder: 'job:died', until: plus(OUTBOX_LEASE_MS) },
      createdAt: T0,
      updatedAt: T0,
      ...overrides,
    };
    await transactImage(at(T0), id, () => ({ next: doc, result: undefined }));
  }
  const eventsFor = async (id: string) =>
    (await pullEvents(pipeline.events, { quietMs: 1000 })).filter((e) => e.imageId === id).map((e) => e.type);

  before(async () => {
    pipeline = await startTestPipeline();
  });
  after(async () => {
    await pipeline.stop();
  });

  it('publishes the pending events in seq order, marks them, frees the lease and writes manifest.json with its stateSeq', async () => {
    const id = newId();
    await seed(id, { outboxLease: undefined, outboxDueAt: T0 });
    expect(await drainOutbox(at(T0), id, 'cleanup')).to.equal('drained');
    expect(await eventsFor(id)).to.deep.equal(['image.failed', 'image.ready']);
    const doc = await readImage(pipeline.deps, id);
    expect(doc?.events.map((e) => `${e.seq}:${e.published}`)).to.deep.equal(['1:true', '2:true']);
    expect(doc, 'the lease is given back').to.not.have.property('outboxLease');
    expect(doc, 'nothing is due').to.not.have.property('outboxDueAt');
    const [metadata] = await images().file(manifestName(id)).getMetadata();
    expect(metadata.metadata?.[STATE_SEQ_METADATA]).to.equal('2');
    const [body] = await images().file(manifestName(id)).download();
    expect(JSON.parse(body.toString())).to.deep.equal(manifestOf(id));
    expect(await drainOutbox(at(T0), id, 'cleanup'), 'a second drain finds nothing').to.equal('empty');
    expect(await eventsFor(id)).to.deep.equal([]);
  });

  it("respects another holder's live lease ('busy') until it expires", async () => {
    const id = newId();
    await seed(id);
    expect(await drainOutbox(at(plus(OUTBOX_LEASE_MS - 1)), id, 'cleanup')).to.equal('busy');
    expect(await eventsFor(id), 'nothing published while the lease holds').to.deep.equal([]);
    expect((await images().file(manifestName(id)).exists())[0], 'nothing materialised').to.equal(false);
    expect(await drainOutbox(at(plus(OUTBOX_LEASE_MS)), id, 'cleanup')).to.equal('drained');
    expect(await eventsFor(id)).to.deep.equal(['image.failed', 'image.ready']);
  });

  it('a failed publish (no such events topic) leaves the entries pending, due now; a later drain publishes each once', async () => {
    const id = newId();
    await seed(id, { outboxLease: undefined, outboxDueAt: T0 });
    const broken = at(plus(1000), { EVENTS_TOPIC: `missing-${id}` });
    const error = await rejection(drainOutbox(broken, id, 'job:a'));
    expect(error.code).to.equal('publish_failed');
    const doc = await readImage(pipeline.deps, id);
    expect(doc?.events.map((e) => `${e.seq}:${e.published}`)).to.deep.equal(['1:false', '2:false']);
    expect(doc?.outboxDueAt, 'due at once').to.deep.equal(plus(1000));
    expect(doc, 'the failed holder gave the lease back').to.not.have.property('outboxLease');
    expect(await drainOutbox(at(plus(2000)), id, 'cleanup')).to.equal('drained');
    expect(await drainOutbox(at(plus(3000)), id, 'cleanup')).to.equal('empty');
    expect(await eventsFor(id), 'each exactly once').to.deep.equal(['image.failed', 'image.ready']);
  });

  it('never replaces a manifest.json derived from a later state (higher stateSeq)', async () => {
    const id = newId();
    const file = images().file(manifestName(id));
    await file.save('{"newer":true}', {
      resumable: false,
      contentType: 'application/json',
      metadata: { metadata: { [STATE_SEQ_METADATA]: '10' } },
    });
    const [before] = await file.getMetadata();
    await seed(id, { outboxLease: undefined, outboxDueAt: T0 }); // nextSeq 3: state 2
    expect(await drainOutbox(at(T0), id, 'cleanup')).to.equal('drained');
    const [afterwards] = await file.getMetadata();
    expect(afterwards.generation, 'the object was not rewritten').to.equal(before.generation);
    expect(afterwards.metadata?.[STATE_SEQ_METADATA]).to.equal('10');
    expect((await file.download())[0].toString()).to.equal('{"newer":true}');
    expect(await eventsFor(id), 'the events still go out').to.deep.equal(['image.failed', 'image.ready']);
  });

  it("a deleted image's purge holds off a new claim of the same bytes until it is done, and spares what the new dispatch writes after (held listing)", async () => {
    const id = newId();
    const old = images().file(`${id}/96w.jpg`);
    await old.save('from before the delete', { resumable: false });
    await seed(id, {
      status: 'deleted',
      manifest: undefined,
      deletedAt: T0,
      purgeAt: plus(15 * 60_000),
      events: [{ seq: 1, published: false, event: { v: 1, type: 'image.deleted', imageId: id, at: T0.toISOString() } }],
      nextSeq: 2,
      outboxLease: undefined,
      outboxDueAt: T0,
    });
    // The drain took the purge lease and is about to list the image's folder: held there.
    const held = pipeline.storageServer.holdRequests({
      method: 'GET',
      path: new RegExp(`/b/test-images/o\\?.*prefix=${id}`),
    });
    const drain = drainOutbox(at(T0), id, 'cleanup');
    const info = { format: 'jpeg', width: 200, height: 160, bytes: 1000, contentType: 'image/jpeg' };
    const claim = () =>
      transactImage(
        at(T0),
        id,
        claimForAccept({ id, info, source: 'upload', acceptedAt: T0, recipe: 'r1', plannedVariants: 1 }),
      );
    try {
      await held.arrived;
      // Meanwhile the same bytes are uploaded again: not claimed while the purge works.
      expect((await claim()).kind).to.equal('deleting');
    } finally {
      held.release();
    }
    expect(await drain).to.equal('drained');
    expect((await old.exists())[0], 'the old variant').to.equal(false);
    // Once the purge is done the bytes are claimed again, and what the new dispatch writes stays.
    expect((await claim()).kind).to.equal('claimed');
    await images().file(`${id}/160w.jpg`).save('the new dispatch', { resumable: false });
    expect(await drainOutbox(at(T0), id, 'cleanup')).to.equal('empty');
    expect((await images().file(`${id}/160w.jpg`).exists())[0], "the new dispatch's variant").to.equal(true);
    expect(await eventsFor(id)).to.deep.equal(['image.deleted']);
  });
});
