/**
 * PREVIEW=inline on the local storage server, the Pub/Sub and Firestore emulators: the upload
 * renders its image's preview as job 0 from the bytes it holds, before answering, so the 202
 * carries it; the rest of the jobs are published. A failure of that run publishes job 0 instead;
 * a run that never records (held here at its write, as a stalled or dead instance would leave it)
 * is dispatched by cleanup; the same bytes uploaded twice at once make it once; a
 * HEIC (past the own-job rule) keeps the preview first in the first job (preview.ts previewAlone).
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import sharp from 'sharp';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { createDeps } from '../../shared/cloud/deps.js';
import { imageIdOf } from '../../shared/core/naming.js';
import { publicBaseUrl } from '../../shared/core/config.js';
import type { JobMessage } from '../../shared/core/schemas.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { readImage } from '../../shared/state/image-doc.js';
import { heicFixture, makePhoto } from '../fixtures/images.js';
import {
  deliverJobs,
  type PulledMessage,
  pullEvents,
  pullJobs,
  startTestPipeline,
  type TestPipeline,
} from '../fixtures/pipeline.js';

const MIN = 60_000;

describe('preview inline: job 0 rendered by the upload itself (local storage, emulators)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let seed = 1700;
  const server = () => request(getTestServer('upload'));

  before(async () => {
    pipeline = await startTestPipeline({ PREVIEW: 'inline', FANOUT_STRATEGY: 'per-format', WIDTHS: '320,640' });
    useDeps(pipeline.deps);
  });
  after(async () => pipeline.stop());
  afterEach(() => pipeline.storageServer.clearFaults());

  const post = (bytes: Buffer, type = 'image/jpeg') => server().post('/uploads').set('Content-Type', type).send(bytes);
  const jobsOf = async (id: string) =>
    (await pullJobs(pipeline.jobs))
      .filter(({ job }) => job.imageId === id)
      .sort((a, b) => a.job.dispatch - b.job.dispatch || a.job.job.index - b.job.job.index);
  const deliver = (jobs: ReadonlyArray<{ message: PulledMessage }>) => deliverJobs(pipeline.config, jobs);
  /** The image's `image.*` events, once `image.ready` has come and a quiet pull found no more. */
  async function eventsOf(id: string): Promise<string[]> {
    const events: string[] = [];
    for (let i = 0; i < 20 && !events.includes('image.ready'); i++)
      events.push(...(await pullEvents(pipeline.events)).filter((e) => e.imageId === id).map((e) => e.type));
    events.push(
      ...(await pullEvents(pipeline.events, { quietMs: 1000 })).filter((e) => e.imageId === id).map((e) => e.type),
    );
    return events;
  }
  const fetchBytes = async (url: string) => {
    const response = await request(url)
      .get('')
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
    expect(response.status, url).to.equal(200);
    return response.body as Buffer;
  };
  const previewWrite = (id: string) => new RegExp(`/b/test-images/o\\?.*name=${id}%2F320w\\.jpg`);

  it('the 202 carries the preview, its object holds those bytes for good, and the rest finishes the image', async () => {
    const bytes = await makePhoto({ width: 800, height: 600, seed: seed++ });
    const id = imageIdOf(bytes);
    const response = await post(bytes);
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    const preview = response.body.preview as { url: string; width: number; height: number; format: string };
    expect(preview).to.include({ width: 320, height: 240, format: 'jpeg' });
    expect(preview.url.endsWith(`/${id}/320w.jpg`), preview.url).to.equal(true);
    const shown = await fetchBytes(preview.url);
    expect(await sharp(shown).metadata()).to.include({ format: 'jpeg', width: 320, height: 240 });
    const doc = await readImage(pipeline.deps, id);
    expect(doc?.variants.map((v) => v.name)).to.deep.equal([`${id}/320w.jpg`]);
    expect(doc?.jobsDone, 'job 0 recorded by its fan-in').to.deep.equal([0]);

    const jobs = await jobsOf(id);
    expect(
      jobs.map(({ job }) => job.job.index),
      'job 0 never published',
    ).to.deep.equal([1, 2, 3]);
    expect(jobs.flatMap(({ job }) => job.variants).some((v) => v.width === 320 && v.format === 'jpeg')).to.equal(false);
    expect(await deliver(jobs)).to.deep.equal([204, 204, 204]);
    expect(await eventsOf(id)).to.deep.equal(['image.ready']);
    const ready = await server().get(`/uploads/${response.body.id}`);
    expect(ready.status).to.equal(200);
    const inManifest = (ready.body.manifest.variants as Array<{ url: string }>).find((v) => v.url === preview.url);
    expect(inManifest, 'the manifest lists the preview at the same URL').to.not.equal(undefined);
    expect((await fetchBytes(preview.url)).equals(shown), 'the same bytes under the same URL').to.equal(true);
  });

  it('a transient failure of the inline run publishes job 0; the image still ends ready with one image.ready', async () => {
    const bytes = await makePhoto({ width: 800, height: 600, seed: seed++ });
    const id = imageIdOf(bytes);
    pipeline.storageServer.injectFault({ method: 'POST', path: previewWrite(id), status: 503, times: 50 });
    const response = await post(bytes);
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    expect(response.body.preview, 'nothing to show yet').to.equal(undefined);
    pipeline.storageServer.clearFaults();
    const jobs = await jobsOf(id);
    expect(jobs.map(({ job }) => job.job.index)).to.deep.equal([0, 1, 2, 3]);
    expect(jobs[0]?.job.variants).to.deep.equal([{ width: 320, format: 'jpeg' }]);
    expect(await deliver(jobs)).to.deep.equal([204, 204, 204, 204]);
    expect(await eventsOf(id)).to.deep.equal(['image.ready']);
    const doc = await readImage(pipeline.deps, id);
    expect(doc?.status).to.equal('ready');
    expect(doc?.variants.some((v) => v.name === `${id}/320w.jpg`)).to.equal(true);
  });

  it('the same bytes uploaded twice at once: the preview rendered and written once, every other job published once', async () => {
    const bytes = await makePhoto({ width: 800, height: 600, seed: seed++ });
    const id = imageIdOf(bytes);
    const writes = pipeline.storageServer.recordRequests({ method: 'POST', path: previewWrite(id) });
    const answers = await Promise.all([post(bytes), post(bytes)]);
    writes.stop();
    expect(answers.map((a) => a.status)).to.deep.equal([202, 202]);
    expect(
      answers.filter((a) => a.body.preview !== undefined),
      'the claimant answers with it',
    ).to.have.length(1);
    expect(writes.requests, 'one write of the preview').to.have.length(1);
    const jobs = await jobsOf(id);
    expect(jobs.map(({ job }) => job.job.index)).to.deep.equal([1, 2, 3]);
    expect(await deliver(jobs)).to.deep.equal([204, 204, 204]);
    expect(await eventsOf(id)).to.deep.equal(['image.ready']);
  });

  it("cleanup's re-dispatch completes an image whose inline job 0 never recorded, with the same preview bytes", async () => {
    const bytes = await makePhoto({ width: 800, height: 600, seed: seed++ });
    const id = imageIdOf(bytes);
    // The inline run stalls at its write, as an instance that died there would leave it.
    const hold = pipeline.storageServer.holdRequests({ method: 'POST', path: previewWrite(id) });
    const answer = post(bytes).then((r) => r);
    await hold.arrived;
    const stuck = await readImage(pipeline.deps, id);
    expect(stuck?.jobsDone, 'job 0 not recorded').to.deep.equal([]);
    expect(stuck?.dispatchedAt, 'nothing published: a claim cleanup dispatches after the grace').to.equal(undefined);
    const now = new Date(Date.now() + 31 * MIN);
    const { storage, pubsub, firestore, log } = pipeline.deps;
    const later = createDeps(pipeline.config, { storage, pubsub, firestore, log, now: () => now });
    expect((await runCleanup(later)).redispatched).to.equal(1);
    const jobs = await jobsOf(id);
    const redispatched = jobs.filter(({ job }) => job.dispatch === 1);
    expect(
      redispatched.map(({ job }) => job.job.index),
      're-dispatch publishes job 0 like any job',
    ).to.deep.equal([0, 1, 2, 3]);
    await deliver(jobs);
    expect(await eventsOf(id)).to.deep.equal(['image.ready']);
    expect((await readImage(pipeline.deps, id))?.status).to.equal('ready');
    const url = `${publicBaseUrl(pipeline.config)}/${id}/320w.jpg`;
    const recorded = await fetchBytes(url);
    hold.release();
    const late = await answer;
    expect(late.status, 'the stalled upload answers once released').to.equal(202);
    expect(late.body.preview, 'its fan-in was stale: nothing to offer').to.equal(undefined);
    expect((await fetchBytes(url)).equals(recorded), 'the late write replaced nothing').to.equal(true);
  });

  it('a HEIC (a dear decode) keeps the preview first in the first job, published', async () => {
    const bytes = heicFixture('8bit.heic');
    const id = imageIdOf(bytes);
    const response = await post(bytes, 'image/heic');
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    expect(response.body.preview).to.equal(undefined);
    const jobs: JobMessage[] = (await jobsOf(id)).map(({ job }) => job);
    expect(jobs[0]?.job.index).to.equal(0);
    expect(jobs[0]?.variants.length, 'the preview with others in job 0').to.be.greaterThan(1);
    expect(
      jobs.flatMap((job) => job.variants).filter((v) => v.format === 'jpeg' && v.width === jobs[0]?.variants[0]?.width),
    ).to.have.length(1);
  });

  it('a small PNG is cheap enough to run inline', async () => {
    const bytes = await makePhoto({ width: 800, height: 600, seed: seed++, format: 'png' });
    const response = await post(bytes, 'image/png');
    expect(response.status).to.equal(202);
    expect(response.body.preview).to.include({ width: 320, format: 'jpeg' });
  });
});
