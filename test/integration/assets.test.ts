/**
 * Assets and ownership through the upload API (functions-framework test server, local storage,
 * Firestore and Pub/Sub emulators, jobs run in-process by runJob): two owners of the same bytes
 * share one image and one encode but see only their own upload; deleting keeps the image while
 * another asset refers to it; quotas are charged in the asset's transaction; GET /uploads lists
 * the caller's uploads page by page. Two owners without JWTs: UPLOAD_AUTH=none and X-Upload-Owner.
 */
import { FieldValue } from '@google-cloud/firestore';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import type { PipelineDeps } from '../../shared/cloud/deps.js';
import { assetIdOf, imageIdOf, originalName } from '../../shared/core/naming.js';
import type { EventMessage, JobMessage, Manifest } from '../../shared/core/schemas.js';
import { runJob } from '../../shared/pipeline/run-job.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { readAsset } from '../../shared/state/assets.js';
import { readImage } from '../../shared/state/image-doc.js';
import { ownerDocFrom, ownerRef } from '../../shared/state/owners.js';
import { makePhoto } from '../fixtures/images.js';
import { pullEvents, pullJobs, startTestPipeline, type TestPipeline } from '../fixtures/pipeline.js';

const QUOTA = 3;

describe('assets: owners, shared images, quotas, the list (local storage, Firestore and Pub/Sub emulators)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let seed = 300;
  const server = () => request(getTestServer('upload'));
  const photo = (width = 160, height = 120) => makePhoto({ width, height, seed: seed++ });

  before(async () => {
    pipeline = await startTestPipeline({ QUOTA_UPLOADS_PER_DAY: String(QUOTA) });
    useDeps(pipeline.deps);
  });
  after(async () => pipeline.stop());
  afterEach(() => useDeps(pipeline.deps));

  const as = (owner: string) => ({
    upload: (bytes: Buffer, filename?: string) =>
      server()
        .post(`/uploads${filename ? `?filename=${encodeURIComponent(filename)}` : ''}`)
        .set('X-Upload-Owner', owner)
        .set('Content-Type', 'image/jpeg')
        .send(bytes),
    get: (id: string) => server().get(`/uploads/${id}`).set('X-Upload-Owner', owner),
    delete: (id: string) => server().delete(`/uploads/${id}`).set('X-Upload-Owner', owner),
    list: (query = '') => server().get(`/uploads${query}`).set('X-Upload-Owner', owner),
  });

  async function names(prefix: string, bucket = 'test-images'): Promise<string[]> {
    const [files] = await pipeline.deps.storage.bucket(bucket).getFiles({ prefix });
    return files.map((f) => f.name).sort();
  }
  async function jobsOf(imageId: string): Promise<JobMessage[]> {
    return (await pullJobs(pipeline.jobs)).map(({ job }) => job).filter((job) => job.imageId === imageId);
  }
  const ofImage = (events: EventMessage[], id: string) => events.filter((e) => e.imageId === id).map((e) => e.type);
  const withClock = (now: () => Date): PipelineDeps => ({ ...pipeline.deps, now });

  it('two owners, the same bytes: two assets, one image, one encode; each sees only its own; the image goes with its last asset', async () => {
    const bytes = await photo(320, 240);
    const imageId = imageIdOf(bytes);
    await pullEvents(pipeline.events);

    const a = await as('alice').upload(bytes, 'alice.jpg');
    expect(a.status, JSON.stringify(a.body)).to.equal(202);
    const b = await as('bob').upload(bytes, 'bob.jpg');
    expect(b.status, JSON.stringify(b.body)).to.equal(202);
    const aliceAsset = assetIdOf('user:alice', imageId);
    const bobAsset = assetIdOf('user:bob', imageId);
    expect(a.body).to.include({ id: aliceAsset, imageId, status: 'processing' });
    expect(b.body).to.include({ id: bobAsset, imageId, status: 'processing' });
    expect(aliceAsset).to.not.equal(bobAsset);
    expect(b.body.variants, 'the same content-addressed variant names').to.deep.equal(a.body.variants);

    // One dispatch: every job but job 0 published once, all of dispatch 0 (job 0, the preview alone,
    // ran in alice's upload: PREVIEW=inline); bob's upload published and ran nothing.
    expect(a.body.preview, "the preview in alice's 202").to.be.an('object');
    expect(b.body, "bob's upload ran no job 0").to.not.have.property('preview');
    const jobs = await jobsOf(imageId);
    expect(jobs.length).to.be.greaterThan(0);
    expect(jobs.map((j) => j.dispatch)).to.deep.equal(jobs.map(() => 0));
    expect(jobs.map((j) => j.job.index).sort()).to.deep.equal([...Array(jobs[0]!.job.count).keys()].slice(1));
    for (const job of jobs) await runJob(pipeline.deps, job);
    expect(await jobsOf(imageId), 'no second dispatch').to.deep.equal([]);
    const doc = await readImage(pipeline.deps, imageId);
    expect(doc).to.deep.include({ status: 'ready', dispatch: 0, assets: 2 });
    const cpuMs = doc!.variants.reduce((sum, v) => sum + v.cpuMs, 0);
    // The figures of the closing note: who, which image, how many jobs and how much CPU made it.
    console.log(
      `      figures: alice ${aliceAsset}, bob ${bobAsset}, image ${imageId}, ${jobs.length + 1} job(s), ${doc!.variants.length} variants, ${cpuMs} CPU ms`,
    );

    // Each sees its own upload, with its own file name; the manifest names no file and no owner.
    const aliceView = await as('alice').get(aliceAsset);
    const bobView = await as('bob').get(bobAsset);
    expect(aliceView.status).to.equal(200);
    expect(aliceView.body).to.include({ id: aliceAsset, imageId, status: 'ready', filename: 'alice.jpg' });
    expect(bobView.body).to.include({ id: bobAsset, imageId, status: 'ready', filename: 'bob.jpg' });
    expect(aliceView.body.createdAt).to.be.a('string');
    const manifest = aliceView.body.manifest as Manifest;
    expect(bobView.body.manifest).to.deep.equal(manifest);
    expect(manifest.original).to.not.have.property('filename');
    expect(JSON.stringify(manifest)).to.not.include('alice').and.not.include('bob');
    const [original] = await pipeline.deps.storage.bucket('test-uploads').file(originalName(imageId)).getMetadata();
    expect(original.metadata).to.not.have.property('filename');

    // Nobody sees (or deletes) another's: 404, as for an unknown id.
    expect((await as('alice').get(bobAsset)).status).to.equal(404);
    expect((await as('bob').get(aliceAsset)).status).to.equal(404);
    expect((await as('alice').delete(bobAsset)).status).to.equal(404);
    expect((await as('alice').list()).body.items.map((i: { id: string }) => i.id)).to.deep.equal([aliceAsset]);
    expect((await as('bob').list()).body.items.map((i: { id: string }) => i.id)).to.deep.equal([bobAsset]);
    expect(await readAsset(pipeline.deps, bobAsset), "bob's asset still there").to.not.equal(undefined);

    // Alice deletes hers: bob's variants still load, nothing is announced.
    await pullEvents(pipeline.events);
    expect((await as('alice').delete(aliceAsset)).status).to.equal(204);
    expect((await as('alice').get(aliceAsset)).status, 'gone').to.equal(404);
    expect((await as('alice').delete(aliceAsset)).status, 'a second delete: unknown').to.equal(404);
    expect((await readImage(pipeline.deps, imageId))?.assets).to.equal(1);
    for (const variant of manifest.variants)
      expect((await request(variant.url).get('')).status, variant.url).to.equal(200);
    expect((await as('bob').get(bobAsset)).status).to.equal(200);

    // Bob deletes his: everything goes, image.deleted once.
    expect((await as('bob').delete(bobAsset)).status).to.equal(204);
    expect(await names(`${imageId}/`)).to.deep.equal([]);
    expect(await names(originalName(imageId), 'test-uploads')).to.deep.equal([]);
    for (const variant of manifest.variants)
      expect((await request(variant.url).get('')).status, variant.url).to.equal(404);
    expect((await readImage(pipeline.deps, imageId))?.status).to.equal('deleted');
    expect(ofImage(await pullEvents(pipeline.events), imageId)).to.deep.equal(['image.deleted']);

    // The same bytes again are processed afresh.
    const again = await as('bob').upload(bytes, 'again.jpg');
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect(again.body).to.include({ id: bobAsset, imageId });
    const anew = await jobsOf(imageId);
    expect(anew.length).to.be.greaterThan(0);
    expect(anew[0]!.dispatch).to.be.greaterThan(0);
    expect((await as('bob').get(bobAsset)).body.filename).to.equal('again.jpg');
  });

  it('the same owner uploading the same bytes again finds its asset: the same id, charged once', async () => {
    const bytes = await photo();
    const answers = [];
    for (let i = 0; i < QUOTA + 1; i++) answers.push(await as('erin').upload(bytes, `copy-${i}.jpg`));
    expect(answers.map((r) => r.status)).to.deep.equal(answers.map(() => 202));
    expect(new Set(answers.map((r) => r.body.id)).size).to.equal(1);
    const owner = ownerDocFrom(await ownerRef(pipeline.deps.firestore, 'user:erin').get());
    expect(owner).to.deep.include({ uploads: 1, bytes: bytes.length });
    expect((await as('erin').get(answers[0]!.body.id)).body.filename, 'the first name stays').to.equal('copy-0.jpg');
    expect((await readImage(pipeline.deps, imageIdOf(bytes)))?.assets).to.equal(1);
  });

  it(`the upload past QUOTA_UPLOADS_PER_DAY=${QUOTA} is 429 quota_exceeded with Retry-After to the next UTC midnight`, async () => {
    // 23:00 UTC tomorrow, so that the next midnight is an hour away.
    const day = 86_400_000;
    const midnight = Math.floor(Date.now() / day) * day + 2 * day;
    const now = new Date(midnight - 3_600_000);
    useDeps(withClock(() => now));
    for (let i = 0; i < QUOTA; i++) expect((await as('dave').upload(await photo())).status).to.equal(202);
    const refused = await as('dave').upload(await photo());
    expect(refused.status, JSON.stringify(refused.body)).to.equal(429);
    expect(refused.headers['retry-after']).to.equal('3600');
    expect(refused.body.error.code).to.equal('quota_exceeded');
    expect(refused.body.error.details).to.deep.include({
      quota: 'uploads_per_day',
      limit: QUOTA,
      used: QUOTA,
      resetsAt: new Date(midnight).toISOString(),
      retryAfterSeconds: 3600,
    });
    expect((await as('dave').list()).body.items, 'no asset for the refused upload').to.have.length(QUOTA);
    // Another owner is not affected; the next day counts from zero.
    expect((await as('not-dave').upload(await photo())).status).to.equal(202);
    useDeps(withClock(() => new Date(midnight + 1000)));
    expect((await as('dave').upload(await photo())).status).to.equal(202);
  });

  it(`${QUOTA + 3} concurrent uploads of different images at the limit: exactly ${QUOTA} accepted`, async () => {
    const images = await Promise.all(Array.from({ length: QUOTA + 3 }, () => photo()));
    const answers = await Promise.all(images.map((bytes) => as('carol').upload(bytes)));
    const statuses = answers.map((r) => r.status).sort();
    expect(statuses, JSON.stringify(answers.map((r) => r.body))).to.deep.equal([
      ...Array(QUOTA).fill(202),
      ...Array(3).fill(429),
    ]);
    const owner = ownerDocFrom(await ownerRef(pipeline.deps.firestore, 'user:carol').get());
    expect(owner?.uploads).to.equal(QUOTA);
    expect((await as('carol').list()).body.items).to.have.length(QUOTA);
  });

  it('GET /uploads lists the caller’s uploads newest first, page by page; bad limits and cursors are 400', async () => {
    // The clock starts now: job 0 runs in the upload (PREVIEW=inline) and its time budget counts from it.
    const start = Math.floor(Date.now() / 1000) * 1000;
    let clock = start;
    useDeps(withClock(() => new Date(clock)));
    const uploaded: string[] = [];
    for (const name of ['one.jpg', 'two.jpg', 'three.jpg']) {
      clock += 1000;
      const answer = await as('frank').upload(await photo(), name);
      expect(answer.status).to.equal(202);
      uploaded.push(answer.body.id);
    }
    clock += 1000;
    expect((await as('grace').upload(await photo())).status).to.equal(202);
    const first = await as('frank').list('?limit=2');
    expect(first.status).to.equal(200);
    expect(first.body.items.map((i: { id: string }) => i.id)).to.deep.equal([uploaded[2], uploaded[1]]);
    expect(first.body.items[0]).to.include({ status: 'processing', filename: 'three.jpg' });
    expect(first.body.items[0].createdAt).to.equal(new Date(start + 3000).toISOString());
    expect(first.body.nextCursor).to.be.a('string');
    const second = await as('frank').list(`?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.body.items.map((i: { id: string }) => i.id)).to.deep.equal([uploaded[0]]);
    expect(second.body).to.not.have.property('nextCursor');
    const all = await as('frank').list();
    expect(all.body.items.map((i: { id: string }) => i.id)).to.deep.equal([...uploaded].reverse());
    for (const query of ['?limit=0', '?limit=101', '?limit=abc', '?limit=1.5', '?cursor=nope', '?limit=1&limit=2']) {
      const bad = await as('frank').list(query);
      expect(bad.status, query).to.equal(400);
      expect(bad.body.error.code, query).to.equal('bad_request');
    }
    expect((await server().patch('/uploads')).headers.allow).to.equal('GET, POST, OPTIONS');
  });

  it('cleanup leaves an image that still has an asset alone: its variants load after every step, a day on', async () => {
    const bytes = await photo();
    const imageId = imageIdOf(bytes);
    const first = await as('ivan').upload(bytes);
    expect((await as('judy').upload(bytes)).status).to.equal(202);
    for (const job of await jobsOf(imageId)) await runJob(pipeline.deps, job);
    expect((await as('ivan').delete(first.body.id)).status).to.equal(204);
    const dayLater = withClock(() => new Date(Date.now() + 24 * 3600_000));
    await runCleanup(dayLater);
    expect(await readImage(pipeline.deps, imageId)).to.deep.include({ status: 'ready', assets: 1 });
    const manifest = (await as('judy').get(assetIdOf('user:judy', imageId))).body.manifest as Manifest;
    for (const variant of manifest.variants)
      expect((await request(variant.url).get('')).status, variant.url).to.equal(200);
  });

  it('a ready image lists its manifest URL', async () => {
    const bytes = await photo();
    const answer = await as('heidi').upload(bytes, 'ready.jpg');
    for (const job of await jobsOf(answer.body.imageId)) await runJob(pipeline.deps, job);
    const [item] = (await as('heidi').list()).body.items;
    expect(item).to.include({
      id: answer.body.id,
      imageId: answer.body.imageId,
      status: 'ready',
      filename: 'ready.jpg',
    });
    expect((await request(item.manifestUrl).get('')).status).to.equal(200);
  });

  it('an image made before assets (no count, no asset document) stays the service’s: named by its image id, kept when another owner uploads and deletes it', async () => {
    const bytes = await photo();
    const imageId = imageIdOf(bytes);
    const service = {
      get: (id: string) => server().get(`/uploads/${id}`),
      delete: (id: string) => server().delete(`/uploads/${id}`),
    };
    expect((await service.get(imageId)).status, 'no such image yet').to.equal(404);
    const uploaded = await server().post('/uploads').set('Content-Type', 'image/jpeg').send(bytes);
    for (const job of await jobsOf(imageId)) await runJob(pipeline.deps, job);
    // As a deployment from before assets left it: the image document without a count, no asset.
    await pipeline.deps.firestore.collection('assets').doc(uploaded.body.id).delete();
    await pipeline.deps.firestore.collection('images').doc(imageId).update({ assets: FieldValue.delete() });

    const legacy = await service.get(imageId);
    expect(legacy.status).to.equal(200);
    expect(legacy.body).to.include({ id: imageId, imageId, status: 'ready' });
    expect((await as('mallory').get(imageId)).status, 'nobody else names it so').to.equal(404);

    const bob = await as('bob').upload(bytes);
    expect(bob.status).to.equal(200);
    expect(await readImage(pipeline.deps, imageId)).to.deep.include({ assets: 2 });
    expect(await readAsset(pipeline.deps, assetIdOf('service', imageId))).to.deep.include({
      owner: 'service',
      imageId,
    });
    expect((await as('bob').delete(bob.body.id)).status).to.equal(204);
    expect(await readImage(pipeline.deps, imageId), "the service's claim keeps it").to.deep.include({
      status: 'ready',
      assets: 1,
    });
    expect((await service.delete(assetIdOf('service', imageId))).status).to.equal(204);
    expect(await readImage(pipeline.deps, imageId)).to.deep.include({ status: 'deleted', assets: 0 });
    expect(await names(`${imageId}/`)).to.deep.equal([]);
  });

  it('the service deletes an image made before assets by its image id: the image and its objects go', async () => {
    const bytes = await photo();
    const imageId = imageIdOf(bytes);
    const uploaded = await server().post('/uploads').set('Content-Type', 'image/jpeg').send(bytes);
    for (const job of await jobsOf(imageId)) await runJob(pipeline.deps, job);
    await pipeline.deps.firestore.collection('assets').doc(uploaded.body.id).delete();
    await pipeline.deps.firestore.collection('images').doc(imageId).update({ assets: FieldValue.delete() });
    expect((await as('mallory').delete(imageId)).status).to.equal(404);
    expect((await server().delete(`/uploads/${imageId}`)).status).to.equal(204);
    expect(await readImage(pipeline.deps, imageId)).to.deep.include({ status: 'deleted' });
    expect(await names(`${imageId}/`)).to.deep.equal([]);
    expect((await server().delete(`/uploads/${imageId}`)).status, 'gone now').to.equal(404);
  });
});
