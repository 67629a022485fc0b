/**
 * The published contract against the running pipeline (functions-framework test servers for
 * `upload` and `ingest`, local storage, Pub/Sub and Firestore emulators, jobs run in-process by
 * runJob): every route is called, and every answer is validated against the schema that the
 * served `GET /openapi.json` gives its path, method and status (with the headers it documents);
 * every event pulled from the events topic against docs/schemas/events/, and the manifest
 * object against docs/schemas/manifest.schema.json. Owners: UPLOAD_AUTH=none and X-Upload-Owner.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import type { PipelineDeps } from '../../shared/cloud/deps.js';
import { manifestName } from '../../shared/core/naming.js';
import { runJob } from '../../shared/pipeline/run-job.js';
import { makePhoto, pngBomb, textPosingAsJpeg, truncated } from '../fixtures/images.js';
import { Contract, committedDocument, publishedSchema } from '../fixtures/contract.js';
import {
  connectIngest,
  pullJobs,
  pullMessages,
  startTestPipeline,
  type TestPipeline,
  withSigningKey,
} from '../fixtures/pipeline.js';
import { waitFor } from '../helpers.js';

const ORIGIN = 'https://app.example';
const QUOTA = 5;

describe('the contract holds for every answer, event and manifest (local storage, Firestore and Pub/Sub emulators)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let deps: PipelineDeps;
  let ingest: { close(): Promise<void> };
  let contract: Contract;
  let seed = 900;
  const api = () => request(getTestServer('upload'));
  const photo = (width = 160, height = 120) => makePhoto({ width, height, seed: seed++ });
  /** Every status each path and method answered, to show the run covered them. */
  const seen = new Set<string>();

  before(async () => {
    pipeline = await startTestPipeline({
      MAX_UPLOAD_BYTES: String(200 * 1024),
      QUOTA_UPLOADS_PER_DAY: String(QUOTA),
      QUOTA_OPEN_TICKETS: '1',
      CORS_ORIGINS: ORIGIN,
      // A job per width: one runs first, for a status with finished variants and more to come.
      FANOUT_STRATEGY: 'per-width',
    });
    deps = withSigningKey(pipeline);
    useDeps(deps);
    ingest = await connectIngest(pipeline);
    const served = await api().get('/openapi.json');
    contract = new Contract(served.body);
    await pullMessages(pipeline.events);
  });
  after(async () => {
    await ingest?.close();
    await pipeline?.stop();
  });

  /**
   * `response` to `method template` must match the served contract: a documented status, its
   * body's schema, its headers, and JSON whenever it has a body.
   */
  function holds(method: string, template: string, response: request.Response): request.Response {
    seen.add(`${method} ${template} ${response.status}`);
    const body = response.status === 204 ? undefined : response.body;
    expect(contract.check(method, template, response.status, body), JSON.stringify(response.body)).to.deep.equal([]);
    const documented = contract.response(method, template, response.status);
    for (const header of Object.keys((documented?.headers as object | undefined) ?? {}))
      expect(response.headers[header.toLowerCase()], `${method} ${template} ${response.status}: ${header}`).to.be.a(
        'string',
      );
    if (body !== undefined) expect(response.headers['content-type']).to.match(/^application\/json/);
    return response;
  }

  /** An error answer to a request the document does not describe (a method a path does not take). */
  function isError(response: request.Response): void {
    expect(contract.component('Error')(response.body), JSON.stringify(response.body)).to.deep.equal([]);
  }

  const as = (owner: string) => ({
    upload: (bytes: Buffer, query = '') =>
      api()
        .post(`/uploads${query}`)
        .set('X-Upload-Owner', owner)
        .set('Content-Type', 'image/jpeg')
        .send(bytes)
        .then((r) => holds('POST', '/uploads', r)),
    status: (id: string) =>
      api()
        .get(`/uploads/${id}`)
        .set('X-Upload-Owner', owner)
        .then((r) => holds('GET', '/uploads/{id}', r)),
    sign: (body: unknown) =>
      api()
        .post('/uploads/signed-url')
        .set('X-Upload-Owner', owner)
        .set('Content-Type', 'application/json')
        .send(JSON.stringify(body))
        .then((r) => holds('POST', '/uploads/signed-url', r)),
    ticket: (statusUrl: string) =>
      api()
        .get(new URL(statusUrl).pathname)
        .set('X-Upload-Owner', owner)
        .then((r) => holds('GET', '/uploads/signed-url/{ticket}', r)),
  });
  const alice = as('alice');

  async function runJobsOf(imageId: string, using: PipelineDeps = deps): Promise<number> {
    const jobs = (await pullJobs(pipeline.jobs)).map(({ job }) => job).filter((job) => job.imageId === imageId);
    for (const job of jobs) await runJob(using, job);
    return jobs.length;
  }

  /** The image's manifest object must match the published manifest schema. */
  async function manifestHolds(imageId: string): Promise<void> {
    const [manifest] = await pipeline.deps.storage.bucket('test-images').file(manifestName(imageId)).download();
    expect(publishedSchema('manifest.schema.json')(JSON.parse(manifest.toString()))).to.deep.equal([]);
  }

  it('serves the committed document without a credential', async () => {
    const served = holds('GET', '/openapi.json', await api().get('/openapi.json'));
    expect(served.body).to.deep.equal(committedDocument());
    holds('GET', '/healthz', await api().get('/healthz'));
    holds('GET', '/healthz', await api().get('/healthz').set('Origin', 'https://evil.example'));
    holds('OPTIONS', '/uploads', await api().options('/uploads').set('Origin', ORIGIN));
  });

  it('with UPLOAD_AUTH=token: 401 without the token, the contract and the health check still open', async () => {
    useDeps({ ...deps, config: { ...deps.config, UPLOAD_AUTH: 'token', UPLOAD_TOKEN: 'contract-token-0123456789' } });
    try {
      expect(holds('GET', '/uploads', await api().get('/uploads')).status).to.equal(401);
      expect((await alice.status('0'.repeat(32))).status).to.equal(401);
      expect((await alice.sign({ contentType: 'image/jpeg', size: 10 })).status).to.equal(401);
      expect(holds('GET', '/openapi.json', await api().get('/openapi.json')).status).to.equal(200);
      expect(holds('GET', '/healthz', await api().get('/healthz')).status).to.equal(200);
    } finally {
      useDeps(deps);
    }
  });

  it('an upload: 202 processing, 202 status with what is finished, 200 ready with the manifest; 200 again; brought up to date under a new recipe; the list; delete', async () => {
    const bytes = await photo(320, 240);
    const accepted = await alice.upload(bytes, '?filename=a.jpg&focus=0.4,0.6');
    expect(accepted.status).to.equal(202);
    const { id, imageId } = accepted.body as { id: string; imageId: string };
    expect((await alice.status(id)).status).to.equal(202);
    const [first, ...rest] = (await pullJobs(pipeline.jobs)).map(({ job }) => job).filter((j) => j.imageId === imageId);
    expect(first, 'a job per width').to.not.equal(undefined);
    expect(rest).to.have.length.greaterThan(0);
    if (first) await runJob(pipeline.deps, first);
    const partly = await alice.status(id);
    expect(partly.status).to.equal(202);
    expect(partly.body.finished).to.have.length.greaterThan(0);
    expect(partly.body.placeholder).to.be.an('object');
    for (const job of rest) await runJob(pipeline.deps, job);
    const ready = await alice.status(id);
    expect(ready.status).to.equal(200);
    await manifestHolds(imageId);
    expect((await alice.upload(bytes)).status).to.equal(200);

    // Another recipe deployed: the same bytes again bring the image up to date (image.updated).
    const redeployed = { ...deps, config: { ...deps.config, FORMATS: ['webp' as const, 'jpeg' as const] } };
    useDeps(redeployed);
    try {
      expect((await alice.upload(bytes)).status).to.equal(202);
      expect(await runJobsOf(imageId, redeployed)).to.be.greaterThan(0);
      expect((await alice.status(id)).status).to.equal(200);
      await manifestHolds(imageId);
    } finally {
      useDeps(deps);
    }

    const multipart = await api()
      .post('/uploads')
      .set('X-Upload-Owner', 'alice')
      .attach('file', await photo(), { filename: 'b.jpg', contentType: 'image/jpeg' });
    expect(holds('POST', '/uploads', multipart).status).to.equal(202);

    const list = holds('GET', '/uploads', await api().get('/uploads?limit=1').set('X-Upload-Owner', 'alice'));
    expect(list.status).to.equal(200);
    expect(list.body.nextCursor).to.be.a('string');
    const next = await api()
      .get(`/uploads?limit=1&cursor=${encodeURIComponent(list.body.nextCursor)}`)
      .set('X-Upload-Owner', 'alice');
    expect(holds('GET', '/uploads', next).status).to.equal(200);

    const gone = await api().delete(`/uploads/${id}`).set('X-Upload-Owner', 'alice');
    expect(holds('DELETE', '/uploads/{id}', gone).status).to.equal(204);
    const again = await api().delete(`/uploads/${id}`).set('X-Upload-Owner', 'alice');
    expect(holds('DELETE', '/uploads/{id}', again).status).to.equal(404);
    expect((await alice.status(id)).status).to.equal(404);
  });

  it('a failed image: 422 image_failed from the upload (its job 0 ran there), then on its status', async () => {
    const bytes = truncated(await makePhoto({ width: 600, height: 400, seed: 29 }), 0.5);
    const answered = await alice.upload(bytes);
    expect(answered.status).to.equal(422);
    expect(answered.body.error.code).to.equal('image_failed');
    await runJobsOf(answered.body.error.details.imageId);
    expect((await alice.status(answered.body.error.details.id)).status).to.equal(422);
  });

  it('refusals: 400, 404, 405, 413, 415, 422 and 429, each with the error body the document gives its status', async () => {
    expect((await alice.upload(textPosingAsJpeg())).status).to.equal(415);
    expect((await alice.upload(pngBomb(20_000, 20_000))).status).to.equal(422);
    expect((await alice.upload(Buffer.alloc(300 * 1024, 1))).status).to.equal(413);
    expect((await alice.upload(await photo(), '?focus=2,2')).status).to.equal(400);
    const noFile = await api()
      .post('/uploads')
      .set('X-Upload-Owner', 'alice')
      .field('other', 'x')
      .then((r) => holds('POST', '/uploads', r));
    expect(noFile.status).to.equal(400);
    expect(holds('GET', '/uploads', await api().get('/uploads?limit=0')).status).to.equal(400);
    expect((await alice.status('0'.repeat(32))).status).to.equal(404);
    expect((await alice.sign({ contentType: 'image/jpeg' })).status).to.equal(400);
    expect((await alice.sign({ contentType: 'text/html', size: 10 })).status).to.equal(415);
    expect((await alice.sign({ contentType: 'image/jpeg', size: 1e12 })).status).to.equal(413);

    const wrongMethod = await api().put('/uploads');
    expect(wrongMethod.status).to.equal(405);
    isError(wrongMethod);
    const unknownPath = await api().get('/nowhere');
    expect(unknownPath.status).to.equal(404);
    isError(unknownPath);

    const carol = as('carol');
    for (let i = 0; i < QUOTA; i += 1) expect((await carol.upload(await photo(48, 32))).status).to.equal(202);
    expect((await carol.upload(await photo(48, 32))).status).to.equal(429);
    const dave = as('dave');
    expect((await dave.sign({ contentType: 'image/jpeg', size: 1000 })).status).to.equal(201);
    expect((await dave.sign({ contentType: 'image/jpeg', size: 1000 })).status).to.equal(429);
  });

  it('a signed-URL upload: 201, 202 waiting, then the status of the upload it became', async () => {
    const bytes = await photo(200, 150);
    const signed = await alice.sign({ filename: 's.jpg', contentType: 'image/jpeg', size: bytes.length });
    expect(signed.status).to.equal(201);
    const waiting = await alice.ticket(signed.body.statusUrl);
    expect(waiting.body).to.include({ status: 'waiting' });
    const put = await fetch(signed.body.uploadUrl, {
      method: 'PUT',
      headers: signed.body.headers,
      body: Uint8Array.from(bytes),
    });
    expect(put.status).to.equal(200);
    const taken = await waitFor('ingest to take the object', async () => {
      const answer = await alice.ticket(signed.body.statusUrl);
      return answer.body.status === 'waiting' ? undefined : answer;
    });
    expect(taken.status).to.equal(202);
    await runJobsOf(taken.body.imageId);
    expect((await alice.ticket(signed.body.statusUrl)).status).to.equal(200);
  });

  it('every event on the events topic matches its published schema; the run saw every route', async () => {
    const events = (await pullMessages(pipeline.events)).map((m) => JSON.parse(m.data.toString()) as { type: string });
    const types = new Set(events.map((e) => e.type));
    expect([...types]).to.include.members(['image.ready', 'image.failed', 'image.updated', 'image.deleted']);
    for (const event of events)
      expect(publishedSchema(`events/${event.type}.schema.json`)(event), JSON.stringify(event)).to.deep.equal([]);
    expect([...seen]).to.include.members([
      'GET /openapi.json 200',
      'GET /healthz 200',
      'GET /healthz 403',
      'OPTIONS /uploads 204',
      'POST /uploads 200',
      'POST /uploads 202',
      'POST /uploads 400',
      'POST /uploads 413',
      'POST /uploads 415',
      'POST /uploads 422',
      'POST /uploads 429',
      'GET /uploads/{id} 200',
      'GET /uploads/{id} 202',
      'GET /uploads/{id} 404',
      'GET /uploads/{id} 422',
      'GET /uploads 200',
      'GET /uploads 400',
      'GET /uploads 401',
      'GET /uploads/{id} 401',
      'POST /uploads/signed-url 401',
      'DELETE /uploads/{id} 204',
      'DELETE /uploads/{id} 404',
      'POST /uploads/signed-url 201',
      'POST /uploads/signed-url 400',
      'POST /uploads/signed-url 413',
      'POST /uploads/signed-url 415',
      'POST /uploads/signed-url 429',
      'GET /uploads/signed-url/{ticket} 200',
      'GET /uploads/signed-url/{ticket} 202',
    ]);
  });
});
