/**
 * Interleavings of the Firestore state design (shared/state/*): each test orders one race by a
 * held storage request (storageServer.holdRequests) or a held event publish, never by a sleep,
 * and ends with an audit of the image: exactly one event per outcome, in order; no object that
 * its document does not account for; the status answer consistent with the objects. Real local
 * storage server, Pub/Sub emulator and Firestore emulator; jobs run in-process by runJob.
 * Replaces faults-records.test.ts (the outcome-marker protocol it tested is gone).
 */
import { SERVICE_OWNER } from '../../shared/auth/principal.js';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { Topic } from '@google-cloud/pubsub';
import { expect } from 'chai';
import request from 'supertest';
import { createDeps, type PipelineDeps } from '../../shared/cloud/deps.js';
import { imageIdOf, manifestName, originalName, STATE_SEQ_METADATA } from '../../shared/core/naming.js';
import type { JobMessage, Manifest } from '../../shared/core/schemas.js';
import { acceptImage } from '../../shared/pipeline/accept.js';
import { ingestObject } from '../../shared/pipeline/ingest-object.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { runJob } from '../../shared/pipeline/run-job.js';
import { useDeps } from '../../functions/runtime.js';
import { type ImageDoc, readImage, transactImage } from '../../shared/state/image-doc.js';
import { drainOutbox } from '../../shared/state/outbox.js';
import { type Harness, IMAGES, startHarness, UPLOADS } from '../fixtures/faults.js';
import { makePhoto } from '../fixtures/images.js';
import { pullJobs } from '../fixtures/pipeline.js';
import { serviceAsset, waitFor } from '../helpers.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('interleavings of the image document, ordered by held requests (storage server, Pub/Sub and Firestore emulators)', function () {
  this.timeout(240_000);
  let h: Harness;
  const extra: PipelineDeps[] = [];
  let seed = 900;

  async function begin(env: Record<string, string> = {}): Promise<Harness> {
    h = await startHarness(env);
    return h;
  }
  afterEach(async () => {
    h?.pipeline.storageServer.clearFaults();
    await Promise.allSettled(extra.splice(0).map((d) => d.pubsub.close()));
    await h?.stop();
  });

  /** The fixture's collaborators with another clock (or config), sharing its clients. */
  function depsWith(options: { offsetMs?: number; config?: Partial<PipelineDeps['config']> } = {}): PipelineDeps {
    const base = h.pipeline.deps;
    const config = { ...base.config, ...options.config };
    const ownPubsub = options.config?.EVENTS_TOPIC !== undefined;
    const deps = createDeps(config, {
      log: base.log,
      storage: base.storage,
      firestore: base.firestore,
      ...(ownPubsub ? {} : { pubsub: base.pubsub }),
      now: () => new Date(Date.now() + (options.offsetMs ?? 0)),
    });
    if (ownPubsub) extra.push(deps);
    return deps;
  }

  const server = () => request(getTestServer('upload'));
  const photo = () => makePhoto({ width: 200, height: 150, seed: seed++ });

  async function upload(bytes: Buffer, expected = 202) {
    const response = await server().post('/uploads').set('Content-Type', 'application/octet-stream').send(bytes);
    expect(response.status, `POST /uploads: ${JSON.stringify(response.body)}`).to.equal(expected);
    return response;
  }

  async function jobsOf(id: string, dispatch?: number): Promise<JobMessage[]> {
    const pulled = await pullJobs(h.pipeline.jobs);
    return pulled
      .map(({ job }) => job)
      .filter((job) => job.imageId === id && (dispatch === undefined || job.dispatch === dispatch));
  }

  async function runAll(jobs: readonly JobMessage[], deps: PipelineDeps = h.pipeline.deps) {
    for (const job of jobs) await runJob(deps, job);
  }

  async function readyImage(): Promise<{ id: string; bytes: Buffer; jobs: JobMessage[] }> {
    const bytes = await photo();
    const id = imageIdOf(bytes);
    await upload(bytes);
    const jobs = await jobsOf(id);
    await runAll(jobs);
    await untilEvents(id, 1);
    return { id, bytes, jobs };
  }

  const eventsOf = (id: string) => h.events.filter((e) => e.imageId === id).map((e) => e.type);

  /** Waits for `count` events of the image (then the audit's quiet period shows there are no more). */
  const untilEvents = (id: string, count: number) =>
    waitFor(
      `${count} events of ${id} (have ${eventsOf(id).join(', ')})`,
      () => (eventsOf(id).length >= count ? true : undefined),
      60_000,
    );

  const originalUrl = (id: string) => new RegExp(`/b/${UPLOADS}/o\\?.*name=originals%2F${id}`);
  const originalDownload = (id: string) => new RegExp(`/b/${UPLOADS}/o/originals%2F${id}\\?.*alt=media`);

  async function objectsOf(
    id: string,
  ): Promise<{ images: string[]; originals: Array<{ name: string; generation: string }> }> {
    const [images] = await h.pipeline.deps.storage.bucket(IMAGES).getFiles({ prefix: `${id}/` });
    const [originals] = await h.pipeline.deps.storage.bucket(UPLOADS).getFiles({ prefix: originalName(id) });
    return {
      images: images.map((f) => f.name).sort(),
      originals: originals.map((f) => ({ name: f.name, generation: String(f.metadata.generation) })),
    };
  }

  const variantNames = (manifest: Manifest) =>
    [
      ...manifest.variants.map((v) => v.name),
      ...Object.values(manifest.aspects ?? {}).flatMap((a) => a.variants.map((v) => v.name)),
    ].sort();

  /**
   * The audit: the image's events are exactly `events`, in order (after a quiet period for late
   * duplicates); its objects are what its document accounts for; GET /uploads/{id} agrees.
   */
  async function audit(id: string, events: string[], end: 'ready' | 'gone'): Promise<void> {
    await untilEvents(id, events.length);
    await sleep(1500); // not an ordering: a late duplicate, if any, arrives within this
    expect(eventsOf(id), `events of ${id}, in order`).to.deep.equal(events);
    const doc = (await readImage(h.pipeline.deps, id)) as ImageDoc;
    expect(doc, `images/${id}`).to.not.equal(undefined);
    expect(
      doc.events.filter((e) => !e.published).map((e) => e.event.type),
      `events of ${id} still waiting in its outbox`,
    ).to.deep.equal([]);
    const objects = await objectsOf(id);
    const status = await server().get(`/uploads/${serviceAsset(id)}`);
    if (end === 'gone') {
      expect(doc.status, `status of images/${id}`).to.equal('deleted');
      expect(objects.images, `objects under ${id}/ of a deleted image`).to.deep.equal([]);
      expect(objects.originals, `original of a deleted image ${id}`).to.deep.equal([]);
      expect(status.status, `GET /uploads/${id} of a deleted image`).to.equal(404);
      return;
    }
    expect(doc.status, `status of images/${id}`).to.equal('ready');
    const manifest = doc.manifest as Manifest;
    const listed = variantNames(manifest);
    for (const name of listed) expect(objects.images, `variant ${name} the manifest lists`).to.include(name);
    expect(
      objects.images,
      `objects under ${id}/: the manifest's variants and manifest.json, nothing else`,
    ).to.deep.equal([...listed, manifestName(id)].sort());
    const [stored] = await h.pipeline.deps.storage.bucket(IMAGES).file(manifestName(id)).download();
    expect(
      variantNames(JSON.parse(stored.toString()) as Manifest),
      `${id}/manifest.json vs the document`,
    ).to.deep.equal(listed);
    expect(
      objects.originals.map((o) => o.generation),
      `originals/${id}: the generation the document records (${doc.original?.generation ?? 'none'})`,
    ).to.deep.equal(doc.original ? [doc.original.generation] : []);
    expect(status.status, `GET /uploads/${id}`).to.equal(200);
    expect(variantNames(status.body.manifest as Manifest), `GET /uploads/${id} manifest`).to.deep.equal(listed);
  }

  it('1. DELETE racing a re-upload of the same bytes held at its original write: DELETE 204; released, the upload claims again and the image ends ready (image.deleted, then one image.ready), no stray original', async () => {
    await begin();
    const { id, bytes } = await readyImage();
    expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status, 'first DELETE').to.equal(204);
    await untilEvents(id, 2);
    const held = h.pipeline.storageServer.holdRequests({ method: 'POST', path: originalUrl(id) });
    const reupload = upload(bytes);
    await held.arrived;
    expect(
      (await server().delete(`/uploads/${serviceAsset(id)}`)).status,
      'DELETE while the re-upload is held',
    ).to.equal(204);
    await untilEvents(id, 3);
    held.release();
    await reupload;
    const jobs = await jobsOf(id);
    expect(new Set(jobs.map((j) => j.dispatch)).size, `dispatches of ${id} queued`).to.equal(1);
    await runAll(jobs);
    await audit(id, ['image.ready', 'image.deleted', 'image.deleted', 'image.ready'], 'ready');
  });

  it('1b. DELETE whose purge listing is held while the same bytes are uploaded again: the upload is refused (503, retry) until the purge is done, then processed; it ends ready', async () => {
    await begin();
    const { id, bytes } = await readyImage();
    // The DELETE's purge lists {id}/ under its purge lease; hold that listing.
    const held = h.pipeline.storageServer.holdRequests({
      method: 'GET',
      path: new RegExp(`/b/${IMAGES}/o\\?.*prefix=${id}%2F`),
    });
    // then(): a supertest request is sent only once something awaits it.
    const deleting = server()
      .delete(`/uploads/${serviceAsset(id)}`)
      .then((response) => response);
    await held.arrived;
    const refused = await upload(bytes, 503);
    expect(refused.body.error, 'while the purge works').to.include({ code: 'unavailable', retryable: true });
    held.release();
    expect((await deleting).status, 'DELETE').to.equal(204);
    await upload(bytes);
    await runAll(await jobsOf(id));
    await audit(id, ['image.ready', 'image.deleted', 'image.ready'], 'ready');
  });

  it('2. cleanup finds due work by query, not by cursor: with CLEANUP_MAX_OBJECTS=5 and 60 ready images, the one stuck image is re-dispatched by the first pass', async () => {
    await begin({ CLEANUP_MAX_OBJECTS: '5' });
    const now = new Date();
    await Promise.all(
      Array.from({ length: 60 }, (_, i) => {
        const readyId = i.toString(16).padStart(32, '0');
        const doc: ImageDoc = {
          v: 1,
          id: readyId,
          status: 'ready',
          dispatch: 0,
          jobCount: 1,
          jobsDone: [0],
          redispatches: 0,
          recipe: 'seeded',
          info: { format: 'jpeg', width: 10, height: 10, bytes: 10, contentType: 'image/jpeg' },
          source: 'upload',
          acceptedAt: now,
          plannedVariants: 0,
          variants: [],
          events: [],
          nextSeq: 1,
          createdAt: now,
          updatedAt: now,
        };
        return transactImage(h.pipeline.deps, readyId, () => ({ next: doc, result: undefined }));
      }),
    );
    const bytes = await photo();
    const id = imageIdOf(bytes);
    await upload(bytes);
    const lost = await jobsOf(id, 0); // pulled and acked: the jobs are lost
    expect(lost.length, 'jobs of dispatch 0').to.be.greaterThan(0);
    const summary = await runCleanup(depsWith({ offsetMs: DAY }));
    expect(summary.redispatched, `re-dispatches of the first pass (${JSON.stringify(summary.steps)})`).to.equal(1);
    const jobs = await jobsOf(id);
    expect([...new Set(jobs.map((j) => j.dispatch))], 'dispatch of the re-dispatched jobs').to.deep.equal([1]);
    await runAll(jobs);
    await audit(id, ['image.ready'], 'ready');
  });

  it('3. a redelivered job whose image.ready is still in the outbox after a failed publish (events topic missing for the first delivery) publishes it before it acks: one image.ready', async () => {
    await begin();
    const bytes = await photo();
    const id = imageIdOf(bytes);
    await upload(bytes);
    const jobs = await jobsOf(id);
    const broken = depsWith({ config: { EVENTS_TOPIC: `missing-${h.pipeline.config.EVENTS_TOPIC}` } });
    const failed: JobMessage[] = [];
    for (const job of jobs) await runJob(broken, job).catch(() => failed.push(job));
    expect(failed.length, 'deliveries that failed (the one whose publish failed)').to.equal(1);
    expect(eventsOf(id), 'events before the redelivery').to.deep.equal([]);
    await runJob(h.pipeline.deps, failed[0] as JobMessage);
    const doc = (await readImage(h.pipeline.deps, id)) as ImageDoc;
    expect(
      doc.events.filter((e) => !e.published).map((e) => e.event.type),
      'events waiting when the redelivery returns (it acks then)',
    ).to.deep.equal([]);
    await audit(id, ['image.ready'], 'ready');
  });

  it('4. the orphan sweep racing a re-upload that completes (retention on): its delete of a dead writer’s leftover held while the re-upload completes removes nothing the live manifest lists', async () => {
    await begin({ ORIGINAL_RETENTION_DAYS: '1' });
    const { id, bytes } = await readyImage();
    const manifest = (await readImage(h.pipeline.deps, id))?.manifest as Manifest;
    const leftoverName = variantNames(manifest)[0] as string;
    const leftover = h.pipeline.deps.storage.bucket(IMAGES).file(leftoverName);
    const [leftoverBytes] = await leftover.download();
    const [leftoverMetadata] = await leftover.getMetadata();
    expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status, 'DELETE').to.equal(204);
    await untilEvents(id, 2);
    const later = depsWith({ offsetMs: 16 * MINUTE });
    await runCleanup(later); // the purge after PURGE_AFTER_MS: done
    expect((await readImage(h.pipeline.deps, id))?.purgeAt, 'purge done').to.equal(undefined);
    // A writer of the deleted dispatch that died after its write left this object behind.
    await leftover.save(leftoverBytes, {
      resumable: false,
      metadata: { contentType: leftoverMetadata.contentType, metadata: leftoverMetadata.metadata },
    });
    const held = h.pipeline.storageServer.holdRequests({
      method: 'DELETE',
      path: `/b/${IMAGES}/o/${encodeURIComponent(leftoverName)}`,
    });
    const pass = runCleanup(later);
    await held.arrived; // the sweep listed the leftover, read the document (deleted, purged) and deletes
    await upload(bytes);
    await runAll(await jobsOf(id));
    await untilEvents(id, 3);
    held.release();
    const summary = await pass;
    expect(summary.orphansDeleted, 'orphan entries the sweep acted on').to.equal(1);
    await audit(id, ['image.ready', 'image.deleted', 'image.ready'], 'ready');
  });

  it('5. DELETE while the ready writer is inside its publish (a gate wraps the real Pub/Sub client’s Topic#publishMessage): image.ready then image.deleted, each once; no manifest left', async () => {
    await begin();
    const bytes = await photo();
    const id = imageIdOf(bytes);
    await upload(bytes);
    const jobs = await jobsOf(id);
    const eventsTopic = `/topics/${h.pipeline.config.EVENTS_TOPIC}`;
    const publish = Topic.prototype.publishMessage;
    let reached!: () => void;
    const atGate = new Promise<void>((resolve) => (reached = resolve));
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let gated = false;
    const wrapped = function (this: Topic, ...args: unknown[]) {
      const call = () => (publish as (...a: unknown[]) => unknown).apply(this, args);
      if (gated || !this.name.endsWith(eventsTopic)) return call();
      gated = true;
      reached();
      return gate.then(call);
    };
    Topic.prototype.publishMessage = wrapped as typeof publish;
    try {
      const running = runAll(jobs);
      await atGate;
      expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status, 'DELETE during the publish').to.equal(204);
      open();
      await running;
    } finally {
      Topic.prototype.publishMessage = publish;
      open();
    }
    await audit(id, ['image.ready', 'image.deleted'], 'gone');
  });

  for (const first of ['earlier', 'later'] as const) {
    it(`6. two stalled re-uploads of a deleted image, both held at their original write, the ${first} claim released first: one dispatch wins, one image.ready`, async () => {
      await begin();
      const { id, bytes } = await readyImage();
      expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status, 'DELETE').to.equal(204);
      await untilEvents(id, 2);
      const heldA = h.pipeline.storageServer.holdRequests({ method: 'POST', path: originalUrl(id) });
      const a = acceptImage(h.pipeline.deps, { bytes, source: 'upload', owner: SERVICE_OWNER, chargeQuota: false });
      await heldA.arrived;
      // The second upload comes after the first claim's grace (UNDISPATCHED_GRACE_MS) and takes it over.
      const heldB = h.pipeline.storageServer.holdRequests({ method: 'POST', path: originalUrl(id) });
      const b = acceptImage(depsWith({ offsetMs: 3 * MINUTE }), {
        bytes,
        source: 'upload',
        owner: SERVICE_OWNER,
        chargeQuota: false,
      });
      await heldB.arrived;
      const [one, two] = first === 'earlier' ? [heldA, heldB] : [heldB, heldA];
      const [oneDone, twoDone] = first === 'earlier' ? [a, b] : [b, a];
      one.release();
      await oneDone;
      two.release();
      await twoDone;
      const jobs = await jobsOf(id);
      expect([...new Set(jobs.map((j) => j.dispatch))], 'dispatches queued').to.have.length(1);
      await runAll(jobs);
      await audit(id, ['image.ready', 'image.deleted', 'image.ready'], 'ready');
    });
  }

  /** A dead-letter subscription under the name cleanup drains, and a way to dead-letter a job. */
  async function deadLetters(): Promise<(job: JobMessage) => Promise<void>> {
    const [topic] = await h.pipeline.pubsub.createTopic(`dl-${h.pipeline.config.JOBS_TOPIC}`);
    await topic.createSubscription(h.pipeline.config.JOBS_DEAD_LETTER_SUBSCRIPTION, { ackDeadlineSeconds: 60 });
    return async (job) => void (await topic.publishMessage({ data: Buffer.from(JSON.stringify(job)) }));
  }

  it('7. retention vs the retry of a retryable failure: a cleanup pass past retention runs while the retry’s job is held at its original read: the original stays, the image ends ready', async () => {
    await begin({ ORIGINAL_RETENTION_DAYS: '1', REDISPATCH_AFTER_MINUTES: '10080' });
    const deadLetter = await deadLetters();
    const bytes = await photo();
    const id = imageIdOf(bytes);
    await upload(bytes);
    const [first] = await jobsOf(id, 0);
    await deadLetter(first as JobMessage);
    await runCleanup(h.pipeline.deps);
    expect((await readImage(h.pipeline.deps, id))?.failure?.code, 'dispatch 0 failed').to.equal('dead_lettered');
    await upload(bytes); // the retry claims dispatch 1 with the recorded original
    const jobs = await jobsOf(id, 1);
    const held = h.pipeline.storageServer.holdRequests({ method: 'GET', path: originalDownload(id) });
    const running = runAll(jobs);
    await held.arrived;
    const summary = await runCleanup(depsWith({ offsetMs: 2 * DAY }));
    expect(summary.originalsDeleted, 'originals deleted by the pass past retention').to.equal(0);
    held.release();
    await running;
    await audit(id, ['image.failed', 'image.ready'], 'ready');
    expect((await readImage(h.pipeline.deps, id))?.original, 'original recorded').to.not.equal(undefined);
  });

  it('8. a dead letter of dispatch 0 drained after the retry (dispatch 1) was dispatched never fails the retry: it ends ready', async () => {
    await begin();
    const deadLetter = await deadLetters();
    const bytes = await photo();
    const id = imageIdOf(bytes);
    await upload(bytes);
    const [first] = await jobsOf(id, 0);
    await deadLetter(first as JobMessage);
    await runCleanup(h.pipeline.deps);
    expect((await readImage(h.pipeline.deps, id))?.status, 'after the first dead letter').to.equal('failed');
    await upload(bytes);
    const jobs = await jobsOf(id, 1);
    expect(jobs.length, 'jobs of dispatch 1').to.be.greaterThan(0);
    await deadLetter(first as JobMessage); // late: Pub/Sub dead-letters dispatch 0 once more
    const summary = await runCleanup(h.pipeline.deps);
    expect(summary.deadLettered, 'images failed by the late dead letter').to.equal(0);
    expect((await readImage(h.pipeline.deps, id))?.status, 'after the late dead letter').to.equal('processing');
    await runAll(jobs);
    await audit(id, ['image.failed', 'image.ready'], 'ready');
  });

  it('9a. a deleter’s original removal held until a re-upload stored a new generation: released, it matches the old generation and removes nothing of the new one', async () => {
    await begin();
    const { id, bytes } = await readyImage();
    const old = (await readImage(h.pipeline.deps, id))?.original?.generation;
    const held = h.pipeline.storageServer.holdRequests({
      method: 'DELETE',
      path: `/b/${UPLOADS}/o/originals%2F${id}`,
    });
    // then(): a supertest request is sent only once something awaits it.
    const deleting = server()
      .delete(`/uploads/${serviceAsset(id)}`)
      .then((response) => response);
    await held.arrived;
    // The deleter stalled past its purge lease: the same bytes, 3 minutes later, are claimed again.
    useDeps(depsWith({ offsetMs: 3 * 60_000 }));
    try {
      await upload(bytes);
    } finally {
      useDeps(h.pipeline.deps);
    }
    const now = (await readImage(h.pipeline.deps, id))?.original?.generation;
    expect(now, 'the re-upload’s original generation').to.not.equal(undefined);
    expect(now, 'a new generation').to.not.equal(old);
    held.release();
    expect((await deleting).status, 'DELETE').to.equal(204);
    await runAll(await jobsOf(id));
    await audit(id, ['image.ready', 'image.deleted', 'image.ready'], 'ready');
  });

  it('9b. a late manifest.json write (lower stateSeq) held until a newer state’s drain wrote its own never replaces it', async () => {
    await begin();
    const bytes = await photo();
    const id = imageIdOf(bytes);
    await upload(bytes);
    const jobs = await jobsOf(id);
    // The ready writer's drain is late: its manifest write is held, and its publish then fails
    // (the events topic is missing for it), as a writer past its lease would not publish.
    const late = depsWith({ config: { EVENTS_TOPIC: `missing-${h.pipeline.config.EVENTS_TOPIC}` } });
    const held = h.pipeline.storageServer.holdRequests({
      method: 'POST',
      path: new RegExp(`/b/${IMAGES}/o\\?.*name=${id}%2Fmanifest\\.json`),
    });
    const lateRun = (async () => {
      for (const job of jobs) await runJob(late, job);
    })().catch((error: unknown) => error);
    await held.arrived;
    const readySeq = ((await readImage(h.pipeline.deps, id)) as ImageDoc).nextSeq - 1;
    // The newer state: an update under another recipe, drained by cleanup once the lease ran out.
    const updater = depsWith({ config: { WIDTHS: [96, 200] } });
    const accepted = await acceptImage(updater, { bytes, source: 'upload', owner: SERVICE_OWNER, chargeQuota: false });
    expect(accepted.state, 'the update is accepted').to.equal('processing');
    await runAll(await jobsOf(id, 1), updater);
    const updatedSeq = ((await readImage(h.pipeline.deps, id)) as ImageDoc).nextSeq - 1;
    expect(updatedSeq, 'the update’s stateSeq').to.be.greaterThan(readySeq);
    expect(await drainOutbox(depsWith({ offsetMs: 3 * MINUTE }), id, 'cleanup'), 'cleanup’s drain').to.equal('drained');
    held.release();
    expect(await lateRun, 'the late writer’s publish fails').to.be.instanceOf(Error);
    const [metadata] = await h.pipeline.deps.storage.bucket(IMAGES).file(manifestName(id)).getMetadata();
    expect(metadata.metadata?.[STATE_SEQ_METADATA], 'manifest.json stateSeq').to.equal(String(updatedSeq));
    await untilEvents(id, 2);
    await sleep(1500);
    expect(eventsOf(id), 'events').to.deep.equal(['image.ready', 'image.updated']);
    const doc = (await readImage(h.pipeline.deps, id)) as ImageDoc;
    const [stored] = await h.pipeline.deps.storage.bucket(IMAGES).file(manifestName(id)).download();
    expect(JSON.parse(stored.toString()).recipe?.hash, 'manifest.json recipe').to.equal(doc.manifest?.recipe?.hash);
  });

  it('10. two deliveries of one incoming/ object, the first held at its copy to originals/: the second answers "in flight" and keeps the object; released, the first copies it, dispatches once and removes it; the image ends ready', async () => {
    await begin();
    const bytes = await photo();
    const id = imageIdOf(bytes);
    const name = 'incoming/twice.jpg';
    const uploads = h.pipeline.deps.storage.bucket(UPLOADS);
    await uploads.file(name).save(bytes, { resumable: false, contentType: 'image/jpeg' });
    const [object] = await uploads.file(name).getMetadata();
    const event = {
      bucket: UPLOADS,
      name,
      generation: String(object.generation),
      size: String(object.size),
      contentType: 'image/jpeg',
    };
    const held = h.pipeline.storageServer.holdRequests(
      { method: 'POST', path: new RegExp(`/b/${UPLOADS}/o/incoming%2Ftwice\\.jpg/rewriteTo/`) },
      1,
    );
    const first = ingestObject(h.pipeline.deps, event);
    await held.arrived;
    const second = await ingestObject(h.pipeline.deps, event);
    expect(second, 'the second delivery, while the first copies').to.deep.include({
      outcome: 'accepted',
      state: 'processing',
    });
    const [kept] = await uploads.file(name).exists();
    expect(kept, 'the incoming object is kept for the delivery that claimed it').to.equal(true);
    held.release();
    expect(await first, 'the first delivery').to.deep.include({ outcome: 'accepted', state: 'processing' });
    const [left] = await uploads.file(name).exists();
    expect(left, 'the incoming object once the original is stored').to.equal(false);
    const jobs = await jobsOf(id);
    expect(new Set(jobs.map((j) => j.dispatch)).size, `dispatches of ${id} queued`).to.equal(1);
    await runAll(jobs);
    await audit(id, ['image.ready'], 'ready');
  });
});
