/**
 * `ingest`: objects put under `incoming/` with the official client reach the function as the
 * local storage server's Eventarc-style finalize CloudEvents (binary mode, over real HTTP).
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { FailureRecordV1 } from '../../shared/core/schemas.js';
import { assetIdOf, errorRecordName, imageIdOf, originalName } from '../../shared/core/naming.js';
import { readImage } from '../../shared/state/image-doc.js';
import { readAsset } from '../../shared/state/assets.js';
import { SERVICE_OWNER } from '../../shared/auth/principal.js';
import { makePhoto, pngBomb, textPosingAsJpeg } from '../fixtures/images.js';
import { waitFor } from '../helpers.js';
import { connectIngest, pullEvents, pullJobs, startTestPipeline, type TestPipeline } from '../fixtures/pipeline.js';

describe('ingest: finalize events from incoming/ (local storage notifications, Pub/Sub emulator)', function () {
  this.timeout(60_000);
  let pipeline: TestPipeline;
  let ingest: { close(): Promise<void> };
  const uploads = () => pipeline.deps.storage.bucket('test-uploads');
  const exists = async (name: string) => (await uploads().file(name).exists())[0];

  before(async () => {
    // incoming/ is limited by MAX_INGEST_BYTES; MAX_UPLOAD_BYTES (request bodies) is smaller here.
    pipeline = await startTestPipeline({ MAX_UPLOAD_BYTES: String(64 * 1024), MAX_INGEST_BYTES: String(200 * 1024) });
    useDeps(pipeline.deps);
    ingest = await connectIngest(pipeline);
  });
  after(async () => {
    await ingest.close();
    await pipeline.stop();
  });

  it('copies a valid image to originals/{id}, dispatches it and removes the incoming object', async () => {
    const image = await makePhoto({ width: 360, height: 240, seed: 41 });
    const id = imageIdOf(image);
    await uploads()
      .file('incoming/holiday/beach photo.jpg')
      .save(image, { resumable: false, contentType: 'image/jpeg' });
    await waitFor('incoming object removed', async () =>
      (await exists('incoming/holiday/beach photo.jpg')) ? undefined : true,
    );
    const [metadata] = await uploads().file(originalName(id)).getMetadata();
    expect(metadata.contentType).to.equal('image/jpeg');
    expect(metadata.metadata).to.include({ source: 'incoming/holiday/beach photo.jpg' });
    expect(metadata.metadata, "no file name in the original's metadata").to.not.have.property('filename');
    const doc = await readImage(pipeline.deps, id);
    expect(doc?.source).to.equal('incoming/holiday/beach photo.jpg');
    expect(await readAsset(pipeline.deps, assetIdOf(SERVICE_OWNER, id)), "the service's asset").to.deep.include({
      owner: SERVICE_OWNER,
      imageId: id,
      filename: 'beach photo.jpg',
    });
    expect(doc?.assets, 'one asset refers to the image').to.equal(1);
    expect(doc?.original?.generation, 'the document pins the copy').to.equal(String(metadata.generation));
    expect(doc?.dispatchedAt, 'the document marked dispatched').to.be.an.instanceOf(Date);
    const jobs = await pullJobs(pipeline.jobs);
    expect(jobs.length).to.be.greaterThan(0);
    expect(jobs.map(({ job }) => `${job.imageId} ${job.original.name}`)).to.deep.equal(
      jobs.map(() => `${id} ${originalName(id)}`),
    );
  });

  const invalid: Array<[string, () => Promise<Buffer>, string]> = [
    ['text posing as a JPEG', async () => textPosingAsJpeg(), 'not_an_image'],
    ['a pixel bomb', async () => pngBomb(20000, 20000), 'too_many_pixels'],
    ['a file over the byte limit', async () => Buffer.alloc(300 * 1024, 7), 'payload_too_large'],
  ];
  for (const [what, make, code] of invalid) {
    it(`records ${what} as failed (${code}), publishes image.failed, removes it, and is not retried`, async () => {
      const body = await make();
      const name = `incoming/bad-${code}.jpg`;
      pipeline.clearLogs();
      await uploads().file(name).save(body, { resumable: false, contentType: 'image/jpeg' });
      await waitFor('incoming object removed', async () => ((await exists(name)) ? undefined : true));
      const events = await pullEvents(pipeline.events);
      const failed = events.filter((e) => e.type === 'image.failed');
      expect(failed).to.have.length(1);
      expect(failed[0]).to.include({ code });
      const [record] = await pipeline.deps.storage
        .bucket('test-images')
        .file(errorRecordName(failed[0]!.imageId))
        .download();
      expect(FailureRecordV1.parse(JSON.parse(record.toString()))).to.deep.include({
        code,
        source: { bucket: 'test-uploads', name },
      });
      if (code !== 'payload_too_large') expect(failed[0]!.imageId).to.equal(imageIdOf(body));
      const doc = await readImage(pipeline.deps, failed[0]!.imageId);
      expect(doc?.status, 'the document records the failure').to.equal('failed');
      expect(doc?.failure).to.deep.include({ code, retryable: false });
      expect(await exists(originalName(imageIdOf(body)))).to.equal(false);
      expect(pipeline.logs.filter((l) => l.event === 'ingest.retry')).to.have.length(0);
    });
  }

  it('ingests an object larger than MAX_UPLOAD_BYTES but within MAX_INGEST_BYTES', async () => {
    const image = await makePhoto({ width: 250, height: 200, format: 'png', seed: 45 });
    expect(image.length).to.be.within(64 * 1024 + 1, 200 * 1024);
    await uploads().file('incoming/big.png').save(image, { resumable: false, contentType: 'image/png' });
    await waitFor('incoming object removed', async () => ((await exists('incoming/big.png')) ? undefined : true));
    expect(await exists(originalName(imageIdOf(image)))).to.equal(true);
    const jobs = await pullJobs(pipeline.jobs);
    expect(jobs.length).to.be.greaterThan(0);
    expect(jobs.map(({ job }) => job.imageId)).to.deep.equal(jobs.map(() => imageIdOf(image)));
  });

  it('a copy that storage refuses (403, as after an IAM change) is recorded as a retryable failure with image.failed and kept; written again once fixed, it is processed', async () => {
    const image = await makePhoto({ width: 300, height: 200, seed: 45 });
    const id = imageIdOf(image);
    const name = 'incoming/refused/photo.jpg';
    const images = () => pipeline.deps.storage.bucket('test-images');
    pipeline.storageServer.injectFault({ method: 'POST', path: /rewriteTo/, status: 403, times: 1000 });
    await uploads().file(name).save(image, { resumable: false, contentType: 'image/jpeg' });
    const record = await waitFor('a failure record', async () => {
      const [present] = await images().file(errorRecordName(id)).exists();
      if (!present) return undefined;
      const [bytes] = await images().file(errorRecordName(id)).download();
      return JSON.parse(bytes.toString()) as Record<string, unknown>;
    });
    pipeline.storageServer.clearFaults();
    expect(record).to.include({ id, code: 'storage_refused', retryable: true });
    expect((await readImage(pipeline.deps, id))?.failure).to.deep.include({ code: 'storage_refused', retryable: true });
    const events = await pullEvents(pipeline.events);
    expect(events.filter((e) => e.imageId === id).map((e) => e.type)).to.deep.equal(['image.failed']);
    expect(await exists(name), 'the object is kept for a retry').to.equal(true);

    // Access fixed: writing the object again retries it with a new dispatch number.
    await uploads().file(name).save(image, { resumable: false, contentType: 'image/jpeg' });
    await waitFor('incoming object removed', async () => ((await exists(name)) ? undefined : true));
    const jobs = (await pullJobs(pipeline.jobs)).filter(({ job }) => job.imageId === id);
    expect(jobs.length).to.be.greaterThan(0);
    expect(jobs.map(({ job }) => job.dispatch)).to.deep.equal(jobs.map(() => 1));
    expect(await exists(originalName(id))).to.equal(true);
    const doc = await readImage(pipeline.deps, id);
    expect(doc).to.deep.include({ status: 'processing', dispatch: 1 });
    expect(doc?.failure, 'the failure cleared by the retry').to.equal(undefined);
  });

  it('ignores objects outside incoming/, so writes to originals/ never trigger work', async () => {
    const image = await makePhoto({ width: 200, height: 200, seed: 42 });
    pipeline.clearLogs();
    await uploads()
      .file(`originals/${imageIdOf(image)}`)
      .save(image, { resumable: false, contentType: 'image/jpeg' });
    await uploads().file('elsewhere/photo.jpg').save(image, { resumable: false, contentType: 'image/jpeg' });
    expect(await pullJobs(pipeline.jobs)).to.have.length(0);
    expect(await exists('elsewhere/photo.jpg')).to.equal(true);
  });

  it('acknowledges malformed events and asks for a retry on storage outages', async () => {
    const ingest = () => request(getTestServer('ingest'));
    const ceHeaders = {
      'ce-specversion': '1.0',
      'ce-type': 'google.cloud.storage.object.v1.finalized',
      'ce-source': '//storage.googleapis.com/projects/_/buckets/test-uploads',
      'ce-id': 'malformed-1',
      'ce-subject': 'objects/incoming/x.jpg',
      'Content-Type': 'application/json',
    };
    const malformed = await ingest().post('/').set(ceHeaders).send({ bucket: 'test-uploads' });
    expect(malformed.status).to.equal(204);

    const image = await makePhoto({ width: 220, height: 160, seed: 43 });
    const [file] = await uploads()
      .file('incoming/later.jpg')
      .save(image, { resumable: false })
      .then(() => [uploads().file('incoming/later.jpg')]);
    await waitFor('ingested', async () => ((await exists('incoming/later.jpg')) ? undefined : true));
    await pullJobs(pipeline.jobs);
    // Replay the same event while storage is down: the function must fail (500) so Eventarc retries.
    const replacement = await makePhoto({ width: 220, height: 160, seed: 44 });
    pipeline.storageServer.removeNotifications('test-uploads');
    await file!.save(replacement, { resumable: false });
    const [metadata] = await file!.getMetadata();
    pipeline.storageServer.injectFault({ path: /test-uploads|test-images/, status: 503, times: 1000 });
    const outage = await ingest()
      .post('/')
      .set({ ...ceHeaders, 'ce-id': 'outage-1' })
      .send(metadata);
    pipeline.storageServer.clearFaults();
    expect(outage.status).to.equal(500);
    const retry = await ingest()
      .post('/')
      .set({ ...ceHeaders, 'ce-id': 'outage-1' })
      .send(metadata);
    expect(retry.status).to.equal(204);
    expect(await exists('incoming/later.jpg')).to.equal(false);
    expect(await exists(originalName(imageIdOf(replacement)))).to.equal(true);
  });
});
