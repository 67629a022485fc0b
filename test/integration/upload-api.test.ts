/**
 * The `upload` HTTP function through functions-framework's test server and supertest, against
 * the local storage server and the real Pub/Sub emulator.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { runCleanup } from '../../shared/pipeline/cleanup.js';
import { createDeps } from '../../shared/cloud/deps.js';
import { imageIdOf, originalName } from '../../shared/core/naming.js';
import { planVariants, splitIntoJobs } from '../../shared/image/plan.js';
import { readImage } from '../../shared/state/image-doc.js';
import { readAsset } from '../../shared/state/assets.js';
import { serviceAsset } from '../helpers.js';
import {
  htmlPosingAsImage,
  jpegHeaderClaiming,
  makePhoto,
  pngBomb,
  simpleSvg,
  textPosingAsJpeg,
  zeroBytes,
} from '../fixtures/images.js';
import { pullJobs, pushBody, startTestPipeline, TEST_PROJECT, type TestPipeline } from '../fixtures/pipeline.js';

describe('upload API (functions-framework test server, local storage, Pub/Sub emulator)', function () {
  this.timeout(60_000);
  let pipeline: TestPipeline;
  let photo: Buffer;
  const server = () => request(getTestServer('upload'));

  before(async () => {
    // Every job published, as these tests count them (PREVIEW=inline: preview-inline.test.ts).
    pipeline = await startTestPipeline({
      MAX_UPLOAD_BYTES: String(300 * 1024),
      CORS_ORIGINS: 'https://app.example',
      PREVIEW: 'first-in-job',
    });
    useDeps(pipeline.deps);
    photo = await makePhoto({ width: 400, height: 300, seed: 11 });
  });
  after(async () => pipeline.stop());

  it('accepts a multipart upload: 202, the original stored once with a sanitised name, one message per job', async () => {
    const response = await server()
      .post('/uploads')
      .attach('file', photo, { filename: '../../evil\r\nname.jpg', contentType: 'text/plain' });
    expect(response.status).to.equal(202);
    const id = imageIdOf(photo);
    expect(response.body).to.include({ id: serviceAsset(id), imageId: id, status: 'processing' });
    expect(response.body.statusUrl).to.match(new RegExp(`/uploads/${serviceAsset(id)}$`));
    expect(response.body.variants).to.have.length(6);
    expect(response.body.variants[0]).to.have.keys(['width', 'format', 'name']);

    const [metadata] = await pipeline.deps.storage.bucket('test-uploads').file(originalName(id)).getMetadata();
    expect(metadata.contentType).to.equal('image/jpeg'); // sniffed, not the declared text/plain
    expect(metadata.metadata, "no file name in the original's metadata").to.not.have.property('filename');
    const asset = await readAsset(pipeline.deps, response.body.id);
    expect(asset?.filename)
      .to.match(/^evil.*name\.jpg$/)
      .and.not.match(/[\r\n/\\]/);
    const doc = await readImage(pipeline.deps, id);
    expect(doc?.dispatchedAt, 'the document marked dispatched').to.be.an.instanceOf(Date);
    expect(doc?.original, 'the document pins the stored generation').to.deep.equal({
      bucket: 'test-uploads',
      name: originalName(id),
      generation: String(metadata.generation),
    });
    expect(doc?.info, "the image names no file: that is the asset's").to.not.have.property('filename');

    const jobs = await pullJobs(pipeline.jobs);
    // One message per job of the planner's split (a photo this small is one job at the defaults).
    const size = { width: 400, height: 300 };
    const split = splitIntoJobs(planVariants(size, pipeline.config), size, pipeline.config.FANOUT_STRATEGY);
    expect(jobs.length).to.equal(split.length);
    expect(jobs.map(({ job }) => job.job.count)).to.deep.equal(jobs.map(() => split.length));
    expect(jobs.map(({ job }) => `${job.imageId}#${job.original.generation}`)).to.deep.equal(
      jobs.map(() => `${id}#${metadata.generation}`),
    );
    const planned = jobs.flatMap(({ job }) => job.variants.map((v) => `${v.format}@${v.width}`)).sort();
    expect(planned).to.deep.equal(
      response.body.variants.map((v: { format: string; width: number }) => `${v.format}@${v.width}`).sort(),
    );
  });

  it('accepts a raw image body and does not dispatch the same image twice', async () => {
    const other = await makePhoto({ width: 300, height: 300, format: 'png', seed: 12 });
    const first = await server().post('/uploads?filename=square.png').set('Content-Type', 'image/png').send(other);
    expect(first.status).to.equal(202);
    const second = await server().post('/uploads').set('Content-Type', 'application/octet-stream').send(other);
    expect(second.status).to.equal(202);
    expect(second.body.id).to.equal(first.body.id);
    expect(second.body.imageId).to.equal(first.body.imageId);
    const jobs = await pullJobs(pipeline.jobs);
    expect(jobs.map(({ job }) => job.imageId)).to.deep.equal(
      jobs.map(() => first.body.imageId),
      'only this image dispatched',
    );
    expect(new Set(jobs.map(({ job }) => job.job.index)).size).to.equal(jobs.length, 'each job published once');
    expect(jobs.length).to.equal(jobs[0]!.job.job.count);
    expect((await readImage(pipeline.deps, first.body.imageId))?.dispatch, 'claimed once').to.equal(0);
  });

  it('reports progress while processing and 404 for unknown ids', async () => {
    const id = imageIdOf(photo);
    const status = await server().get(`/uploads/${serviceAsset(id)}`);
    expect(status.status).to.equal(202);
    expect(status.body).to.include({ id: serviceAsset(id), imageId: id, status: 'processing', done: 0, total: 6 });
    expect((await server().get(`/uploads/${id}`)).status, 'an image id is no asset id').to.equal(404);
    const unknown = await server().get(`/uploads/${'0'.repeat(32)}`);
    expect(unknown.status).to.equal(404);
    expect(unknown.body.error.code).to.equal('not_found');
    expect((await server().get('/uploads/not-an-id')).status).to.equal(404);
  });

  const rejected: Array<[string, () => Promise<Buffer>, string, number, string]> = [
    ['a body over MAX_UPLOAD_BYTES', async () => Buffer.alloc(400 * 1024, 1), 'image/jpeg', 413, 'payload_too_large'],
    ['zero bytes', async () => zeroBytes, 'image/jpeg', 415, 'not_an_image'],
    ['text posing as a JPEG', async () => textPosingAsJpeg(), 'image/jpeg', 415, 'not_an_image'],
    ['HTML posing as an image', async () => htmlPosingAsImage(), 'image/png', 415, 'not_an_image'],
    ['SVG while SVG is off', async () => simpleSvg(), 'image/svg+xml', 415, 'format_not_allowed'],
    ['a pixel bomb (20000×20000 PNG)', async () => pngBomb(20000, 20000), 'image/png', 422, 'too_many_pixels'],
    [
      'a JPEG header claiming 65000×65000',
      () => jpegHeaderClaiming(65000, 65000),
      'image/jpeg',
      422,
      'too_many_pixels',
    ],
  ];
  for (const [what, make, contentType, status, code] of rejected) {
    it(`rejects ${what}: ${status} ${code}, nothing stored`, async () => {
      const body = await make();
      const response = await server().post('/uploads').set('Content-Type', contentType).send(body);
      expect(response.status).to.equal(status);
      expect(response.type).to.equal('application/json');
      expect(response.body.error.code).to.equal(code);
      expect(response.body.error.message)
        .to.be.a('string')
        .and.not.match(/\/work|node_modules|at .*\.js/);
      if (body.length > 0) {
        const [exists] = await pipeline.deps.storage
          .bucket('test-uploads')
          .file(originalName(imageIdOf(body)))
          .exists();
        expect(exists).to.equal(false);
      }
    });
  }

  const protocol: Array<[string, () => request.Test, number, string | undefined]> = [
    ['GET /healthz', () => server().get('/healthz'), 200, undefined],
    ['PUT /uploads', () => server().put('/uploads').send('x'), 405, 'method_not_allowed'],
    // DELETE /uploads/{id} exists since issue 14 (test/integration/lifecycle.test.ts): another method keeps the 405 check.
    [
      'PATCH /uploads/{id}',
      () =>
        server()
          .patch(`/uploads/${'a'.repeat(32)}`)
          .send('x'),
      405,
      'method_not_allowed',
    ],
    ['GET /elsewhere', () => server().get('/elsewhere'), 404, 'not_found'],
    ['a multipart form without a file', () => server().post('/uploads').field('title', 'x'), 400, 'missing_file'],
    [
      'an unlisted browser origin',
      () => server().post('/uploads').set('Origin', 'https://evil.example').send(photo),
      403,
      'forbidden_origin',
    ],
  ];
  for (const [what, send, status, code] of protocol) {
    it(`answers ${what} with ${status}`, async () => {
      const response = await send();
      expect(response.status).to.equal(status);
      if (code) expect(response.body.error.code).to.equal(code);
      if (status === 405) expect(response.headers.allow).to.match(/OPTIONS/);
    });
  }

  it('answers CORS preflights for configured origins only', async () => {
    const ok = await server()
      .options('/uploads')
      .set('Origin', 'https://app.example')
      .set('Access-Control-Request-Method', 'POST');
    expect(ok.status).to.equal(204);
    expect(ok.headers['access-control-allow-origin']).to.equal('https://app.example');
    const refused = await server().options('/uploads').set('Origin', 'https://evil.example');
    expect(refused.status).to.equal(403);
    expect(refused.headers['access-control-allow-origin']).to.equal(undefined);
  });

  it('requires the bearer token when UPLOAD_AUTH=token, and never echoes it', async () => {
    const token = 'test-token-0123456789abcdef';
    useDeps(createDeps({ ...pipeline.config, UPLOAD_AUTH: 'token', UPLOAD_TOKEN: token }, { log: pipeline.deps.log }));
    try {
      const missing = await server().post('/uploads').set('Content-Type', 'image/jpeg').send(photo);
      expect(missing.status).to.equal(401);
      expect(missing.headers['www-authenticate']).to.equal('Bearer');
      const wrong = await server()
        .post('/uploads')
        .set('Authorization', 'Bearer nope')
        .set('Content-Type', 'image/jpeg')
        .send(photo);
      expect(wrong.status).to.equal(401);
      const right = await server()
        .post('/uploads')
        .set('Authorization', `Bearer ${token}`)
        .set('Content-Type', 'image/jpeg')
        .send(photo);
      expect(right.status).to.equal(202);
      expect(JSON.stringify(pipeline.logs)).not.to.contain(token);
      expect((await server().get('/healthz')).status).to.equal(200, 'health needs no token');
      expect((await server().get('/openapi.json')).status).to.equal(200, 'the contract needs no token');
    } finally {
      useDeps(pipeline.deps);
      await pullJobs(pipeline.jobs);
    }
  });

  it('refuses every request (503, nothing stored) when UPLOAD_AUTH=token has no token: misconfiguration never opens the API', async () => {
    const image = await makePhoto({ width: 200, height: 150, seed: 1017 });
    useDeps(
      createDeps({ ...pipeline.config, UPLOAD_AUTH: 'token', UPLOAD_TOKEN: undefined }, { log: pipeline.deps.log }),
    );
    try {
      const response = await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image);
      // The configuration error is not a PipelineError, so it maps to 503 unavailable (the
      // deployed function does not even start: see upload-guard.test.ts).
      expect(response.status).to.equal(503);
      expect(response.body.error.code).to.equal('unavailable');
      const [exists] = await pipeline.deps.storage
        .bucket('test-uploads')
        .file(originalName(imageIdOf(image)))
        .exists();
      expect(exists, 'nothing stored').to.equal(false);
    } finally {
      useDeps(pipeline.deps);
    }
  });

  it('survives storage 503s on the original write (the client retries)', async () => {
    const image = await makePhoto({ width: 200, height: 150, seed: 13 });
    pipeline.storageServer.injectFault({
      method: 'POST',
      path: /\/upload\/storage\/v1\/b\/test-uploads\/o/,
      status: 503,
      times: 2,
    });
    const response = await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image);
    pipeline.storageServer.clearFaults();
    expect(response.status).to.equal(202);
    await pullJobs(pipeline.jobs);
  });

  it('answers 503 storage_unavailable when storage stays down, storing nothing half-way', async () => {
    const image = await makePhoto({ width: 200, height: 150, seed: 14 });
    pipeline.storageServer.injectFault({ path: /test-uploads|test-images/, status: 503, times: 1000 });
    const response = await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image);
    pipeline.storageServer.clearFaults();
    expect(response.status).to.equal(503);
    expect(response.body.error).to.include({ code: 'storage_unavailable', retryable: true });
    expect(response.headers['retry-after']).to.equal('10');
    const [exists] = await pipeline.deps.storage
      .bucket('test-uploads')
      .file(originalName(imageIdOf(image)))
      .exists();
    expect(exists).to.equal(false);
    expect((await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image)).status).to.equal(
      202,
      'the next try works',
    );
    await pullJobs(pipeline.jobs);
  });

  it('answers 503 when publishing fails, keeps the original, and cleanup dispatches it later', async () => {
    const image = await makePhoto({ width: 240, height: 160, seed: 15 });
    const id = imageIdOf(image);
    const broken = createDeps({ ...pipeline.config, JOBS_TOPIC: 'no-such-topic' }, { log: pipeline.deps.log });
    useDeps(broken);
    try {
      const response = await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image);
      expect(response.status).to.equal(503);
      expect(response.body.error).to.include({ code: 'publish_failed', retryable: true });
    } finally {
      useDeps(pipeline.deps);
      await broken.pubsub.close();
    }
    const original = pipeline.deps.storage.bucket('test-uploads').file(originalName(id));
    expect((await original.exists())[0], 'the original kept').to.equal(true);
    const stored = await readImage(pipeline.deps, id);
    expect(stored?.original?.name, 'the document points at the original').to.equal(originalName(id));
    expect(stored?.dispatchedAt, 'not marked as dispatched').to.equal(undefined);

    const later = createDeps(pipeline.config, { log: pipeline.deps.log, now: () => new Date(Date.now() + 5 * 60_000) });
    const summary = await runCleanup(later);
    await later.pubsub.close();
    expect(summary.redispatched).to.be.at.least(1);
    const jobs = await pullJobs(pipeline.jobs);
    expect(
      jobs.map(({ job }) => job.imageId),
      'the images of the jobs cleanup published',
    ).to.include(id);
    const after = await readImage(pipeline.deps, id);
    expect(after?.dispatchedAt, 'marked dispatched by cleanup').to.be.an.instanceOf(Date);
    expect(after?.dispatch, 'a new dispatch').to.be.greaterThan(stored?.dispatch ?? Number.POSITIVE_INFINITY);
  });

  it('an image cleanup gave up on says retryable: true, and the same bytes again answer 202 and dispatch it anew (also after a retry whose publish failed)', async () => {
    const image = await makePhoto({ width: 260, height: 180, seed: 16 });
    const id = imageIdOf(image);
    expect((await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image)).status).to.equal(202);
    const lost = (await pullJobs(pipeline.jobs)).filter(({ job }) => job.imageId === id); // the jobs are lost: nobody runs them
    expect(lost.length, 'the first dispatch published').to.be.greaterThan(0);
    const firstDispatch = lost[0]!.job.dispatch;
    // 31 minutes later, with no re-dispatch left, cleanup gives up on the image.
    const later = createDeps(
      { ...pipeline.config, MAX_REDISPATCHES: 0 },
      { log: pipeline.deps.log, now: () => new Date(Date.now() + 31 * 60_000) },
    );
    const summary = await runCleanup(later);
    await later.pubsub.close();
    expect(summary.gaveUp).to.be.at.least(1);

    const status = await server().get(`/uploads/${serviceAsset(id)}`);
    expect(status.status).to.equal(422);
    expect(status.body.error).to.deep.include({ code: 'image_failed', retryable: true });
    // The first retry's publish fails: the record is cleared, and nothing may look in flight.
    const broken = createDeps({ ...pipeline.config, JOBS_TOPIC: 'no-such-topic' }, { log: pipeline.deps.log });
    useDeps(broken);
    try {
      expect((await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image)).status).to.equal(503);
    } finally {
      useDeps(pipeline.deps);
      await broken.pubsub.close();
    }
    const released = await readImage(pipeline.deps, id);
    expect(released?.dispatchedAt, 'the failed retry is not marked dispatched').to.equal(undefined);
    expect(released?.staleAt?.getTime(), 'the failed retry gives its claim back at once').to.be.at.most(Date.now());
    const again = await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image);
    expect(again.status, JSON.stringify(again.body)).to.equal(202);
    expect(again.body).to.include({ id: serviceAsset(id), imageId: id, status: 'processing' });
    const jobs = (await pullJobs(pipeline.jobs)).filter(({ job }) => job.imageId === id);
    expect(jobs.length).to.be.greaterThan(0);
    // Every claim takes a number (the failed retry took one too), so the new dispatch is the document's, past the first.
    const doc = await readImage(pipeline.deps, id);
    expect(doc?.dispatch, 'a new dispatch number').to.be.greaterThan(firstDispatch);
    expect(jobs.map(({ job }) => job.dispatch)).to.deep.equal(
      jobs.map(() => doc?.dispatch),
      'jobs of the new dispatch',
    );
    expect(doc?.dispatchedAt, 'marked dispatched').to.be.an.instanceOf(Date);
    expect((await server().get(`/uploads/${serviceAsset(id)}`)).status, 'processing again').to.equal(202);
  });

  it('an image whose original went missing (original_missing) is processed again when the same bytes are uploaded again, as its error says', async () => {
    const image = await makePhoto({ width: 250, height: 170, seed: 17 });
    const id = imageIdOf(image);
    const resize = async (jobs: Awaited<ReturnType<typeof pullJobs>>) => {
      for (const { job, message } of jobs) {
        const path = `/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`;
        const response = await request(getTestServer('resize')).post(path).send(pushBody(message));
        expect(response.status, `job ${job.job.index} of dispatch ${job.dispatch}`).to.equal(204);
      }
    };
    expect((await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image)).status).to.equal(202);
    const first = (await pullJobs(pipeline.jobs)).filter(({ job }) => job.imageId === id);
    expect(first.length, 'the first dispatch published').to.be.greaterThan(0);
    // The original is lost before the jobs run (deleted out of band): the jobs record original_missing.
    await pipeline.deps.storage.bucket('test-uploads').file(originalName(id)).delete();
    await resize(first);
    const failed = await server().get(`/uploads/${serviceAsset(id)}`);
    expect(failed.status).to.equal(422);
    expect(failed.body.error).to.deep.include({ code: 'image_failed', retryable: true });
    expect((await readImage(pipeline.deps, id))?.failure?.code).to.equal('original_missing');

    // "Upload the same file again to retry": the bytes are stored again and the jobs read them.
    expect((await server().post('/uploads').set('Content-Type', 'image/jpeg').send(image)).status).to.equal(202);
    const [stored] = await pipeline.deps.storage.bucket('test-uploads').file(originalName(id)).exists();
    expect(stored, 'the original stored again').to.equal(true);
    const again = (await pullJobs(pipeline.jobs)).filter(({ job }) => job.imageId === id);
    expect(again.length, 'dispatched again').to.be.greaterThan(0);
    await resize(again);
    const ready = await server().get(`/uploads/${serviceAsset(id)}`);
    expect(ready.status, JSON.stringify(ready.body)).to.equal(200);
    expect((await readImage(pipeline.deps, id))?.status).to.equal('ready');
  });
});
