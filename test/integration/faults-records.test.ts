/**
 * Faults: the record protocol. One outcome per image, announced once: a give-up racing a
 * finishing job, a creator slow to mark its announcement published while cleanup runs, and an
 * ingest failure whose publish failed, announced by the redelivery. Each test has its own pipeline.
 */
import { expect } from 'chai';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { createDeps } from '../../shared/cloud/deps.js';
import { permanent } from '../../shared/core/errors.js';
import { ingestObject } from '../../shared/pipeline/ingest-object.js';
import type { Manifest } from '../../shared/core/schemas.js';
import { errorRecordName, imageIdOf, manifestName, originalName } from '../../shared/core/naming.js';
import { recordFailure, writeManifest } from '../../shared/state/records.js';
import { IMAGES, startHarness, UPLOADS, type Harness } from '../fixtures/faults.js';
import { waitFor } from '../helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('faults: record protocol: one outcome per image, announced once (issue 10, break 7)', function () {
  // Generous: the emulator's push and backoff slow down a lot on a loaded 2-core machine.
  this.timeout(600_000);

  let h: Harness;
  beforeEach(async () => (h = await startHarness()));
  afterEach(async () => {
    h.pipeline.storageServer.clearFaults();
    await h.stop();
  });

  function manifestFor(id: string): Manifest {
    return {
      v: 1,
      id,
      original: {
        format: 'jpeg',
        width: 100,
        height: 80,
        bytes: 1000,
        contentType: 'image/jpeg',
        name: originalName(id),
        generation: '1',
      },
      formats: ['jpeg'],
      variants: [
        {
          width: 96,
          height: 77,
          format: 'jpeg',
          contentType: 'image/jpeg',
          bytes: 900,
          name: `${id}/96w.jpg`,
          url: `x/${id}/96w.jpg`,
        },
      ],
      createdAt: new Date().toISOString(),
    };
  }
  const eventsOf = (id: string) => h.events.filter((e) => e.imageId === id).map((e) => e.type);

  it('a give-up racing a finishing job: image.ready and image.failed are never both announced, and one record stands', async () => {
    const id = imageIdOf(Buffer.from('race: ready vs failed'));
    // Both writers look for the other's record first; the creates are held back so that both
    // looks happen before either create, the window the old check-then-create left open.
    h.pipeline.storageServer.injectFault({
      method: 'POST',
      path: '/upload/storage/v1/b/test-images/o',
      latencyMs: 400,
      times: 2,
    });
    const failure = permanent('image_failed', 'Processing did not finish; giving up.');
    const [ready, failed] = await Promise.all([
      writeManifest(h.pipeline.deps, manifestFor(id), `job:${id}:0:0`),
      recordFailure(h.pipeline.deps, id, failure, 'cleanup'),
    ]);
    h.pipeline.storageServer.clearFaults();
    expect([ready, failed].sort(), 'exactly one writer wins').to.deep.equal(['created', 'exists']);
    await waitFor('the announcement', () => (eventsOf(id).length > 0 ? true : undefined), 60_000);
    await sleep(1500); // a second announcement, if any, arrives now
    expect(eventsOf(id), 'one event').to.have.length(1);
    const [[manifest], [error]] = await Promise.all([
      h.pipeline.deps.storage.bucket(IMAGES).file(manifestName(id)).exists(),
      h.pipeline.deps.storage.bucket(IMAGES).file(errorRecordName(id)).exists(),
    ]);
    expect([manifest, error].filter(Boolean), 'one record').to.have.length(1);
  });

  it('a creator slower than a minute to mark its announcement published is not taken over: one image.ready', async () => {
    const id = imageIdOf(Buffer.from('slow creator'));
    await h.pipeline.deps.storage
      .bucket(UPLOADS)
      .file(originalName(id))
      .save(Buffer.from('x'), {
        resumable: false,
        metadata: {
          metadata: { imageId: id, format: 'jpeg', width: '100', height: '80', dispatchedAt: new Date().toISOString() },
        },
      });
    // The creator's "published" metadata write is slow (storage retrying inside the client).
    h.pipeline.storageServer.injectFault({ method: 'PATCH', path: new RegExp(id), latencyMs: 4000, times: 1 });
    const creator = writeManifest(h.pipeline.deps, manifestFor(id), `job:${id}:0:0`);
    await waitFor('image.ready from the creator', () => (eventsOf(id).length > 0 ? true : undefined), 60_000);
    // Cleanup runs while the creator is still marking, 61 s after the announcement started by
    // its clock: later than the old 60 s threshold, earlier than the creator's worst case.
    const later = createDeps(h.pipeline.config, { log: h.pipeline.deps.log, now: () => new Date(Date.now() + 61_000) });
    await runCleanup(later);
    expect(await creator).to.equal('created');
    await later.pubsub.close();
    await sleep(1500); // a second announcement, if any, arrives now
    expect(eventsOf(id)).to.deep.equal(['image.ready']);
  });

  it('ingest: a failure whose publish failed is announced by the retry that gets 412 on its own record', async () => {
    const name = 'incoming/not-an-image-publish-fails.jpg';
    const body = Buffer.from('this is text, not a JPEG, publish fails once');
    const id = imageIdOf(body);
    const [object] = await h.pipeline.deps.storage
      .bucket(UPLOADS)
      .file(name)
      .save(body, { resumable: false })
      .then(() => h.pipeline.deps.storage.bucket(UPLOADS).file(name).getMetadata());
    const data = { bucket: UPLOADS, name, generation: String(object.generation), size: String(object.size) };
    // First delivery: the events topic cannot be published to (real emulator error: NOT_FOUND).
    const noTopic = createDeps(
      { ...h.pipeline.config, EVENTS_TOPIC: `missing-${h.pipeline.config.EVENTS_TOPIC}` },
      { log: h.pipeline.deps.log, storage: h.pipeline.deps.storage },
    );
    let firstFailed = false;
    try {
      await ingestObject(noTopic, data);
    } catch {
      firstFailed = true;
    }
    await noTopic.pubsub.close();
    expect(firstFailed, 'the first delivery fails, so Eventarc redelivers').to.equal(true);
    // Eventarc's redelivery: same writer, its create gets 412; it must announce, not drop it.
    const outcome = await ingestObject(h.pipeline.deps, data);
    expect(outcome).to.deep.include({ outcome: 'rejected', id, code: 'not_an_image' });
    await waitFor('image.failed', () => (eventsOf(id).length > 0 ? true : undefined), 10_000);
    expect(eventsOf(id)).to.deep.equal(['image.failed']);
    expect(
      (await h.pipeline.deps.storage.bucket(UPLOADS).file(name).exists())[0],
      'removed only once announced',
    ).to.equal(false);
  });
});
