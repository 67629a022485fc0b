/**
 * Per-upload metadata and events through the upload API, a signed URL and ingest
 * (functions-framework test servers, local storage server, Firestore and Pub/Sub emulators, jobs
 * run in-process by runJob): metadata on every upload path, refused with `invalid_metadata` when
 * bad, returned by the status routes; one `upload.ready` (or `upload.failed`, `upload.deleted`)
 * per upload carrying its id, owner, metadata and the manifest's public URL. Owners are named with
 * UPLOAD_AUTH=none and X-Upload-Owner.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import type { PipelineDeps } from '../../shared/cloud/deps.js';
import { assetIdOf, imageIdOf } from '../../shared/core/naming.js';
import type { EventMessage, JobMessage } from '../../shared/core/schemas.js';
import { ingestObject } from '../../shared/pipeline/ingest-object.js';
import { runJob } from '../../shared/pipeline/run-job.js';
import { readAsset } from '../../shared/state/assets.js';
import { readImage } from '../../shared/state/image-doc.js';
import { SERVICE_OWNER } from '../../shared/auth/principal.js';
import { makePhoto } from '../fixtures/images.js';
import { publishedSchema } from '../fixtures/contract.js';
import {
  connectIngest,
  pullEvents,
  pullJobs,
  startTestPipeline,
  type TestPipeline,
  withSigningKey,
} from '../fixtures/pipeline.js';
import { waitFor } from '../helpers.js';

describe('per-upload metadata and upload.* events (local storage, Firestore and Pub/Sub emulators)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let deps: PipelineDeps;
  let ingest: { close(): Promise<void> };
  let seed = 5200;
  const server = () => request(getTestServer('upload'));
  const photo = () => makePhoto({ width: 200, height: 150, seed: seed++ });

  before(async () => {
    pipeline = await startTestPipeline();
    deps = withSigningKey(pipeline);
    useDeps(deps);
    ingest = await connectIngest(pipeline);
  });
  after(async () => {
    await ingest.close();
    await pipeline.stop();
  });
  afterEach(() => useDeps(deps));

  const raw = (owner: string, bytes: Buffer) =>
    server().post('/uploads').set('X-Upload-Owner', owner).set('Content-Type', 'image/jpeg').send(bytes);
  const form = (owner: string, bytes: Buffer, metadata?: string) => {
    const post = server().post('/uploads').set('X-Upload-Owner', owner).attach('file', bytes, 'photo.jpg');
    return metadata === undefined ? post : post.field('metadata', metadata);
  };
  const get = (owner: string, id: string) => server().get(`/uploads/${id}`).set('X-Upload-Owner', owner);

  async function runJobsOf(imageId: string): Promise<JobMessage[]> {
    const jobs = (await pullJobs(pipeline.jobs)).map(({ job }) => job).filter((job) => job.imageId === imageId);
    for (const job of jobs) await runJob(deps, job);
    return jobs;
  }
  /** Every event of the image, both families, each checked against its published JSON Schema. */
  async function eventsOf(imageId: string): Promise<EventMessage[]> {
    const events = (await pullEvents(pipeline.events, { family: 'all' })).filter((e) => e.imageId === imageId);
    for (const event of events)
      expect(publishedSchema(`events/${event.type}.schema.json`)(event), JSON.stringify(event)).to.deep.equal([]);
    return events;
  }
  const summary = (events: EventMessage[]) =>
    events.map((e) => ('id' in e ? `${e.type} ${e.owner ?? 'service'}` : e.type)).sort();

  it('takes metadata as the form field, the header or ?metadata=, keeps it on the upload and answers it from GET and the list', async () => {
    const [a, b, c] = [await photo(), await photo(), await photo()];
    const byForm = await form('alice', a, JSON.stringify({ postId: 'p1', rank: 2, draft: false }));
    expect(byForm.status, JSON.stringify(byForm.body)).to.equal(202);
    const byHeader = await raw('alice', b).set('X-Upload-Metadata', '{"postId":"p2","caption":"caf\\u00e9"}');
    expect(byHeader.status, JSON.stringify(byHeader.body)).to.equal(202);
    const byQuery = await server()
      .post(`/uploads?metadata=${encodeURIComponent('{"postId":"p3"}')}`)
      .set('X-Upload-Owner', 'alice')
      .set('Content-Type', 'image/jpeg')
      .send(c);
    expect(byQuery.status, JSON.stringify(byQuery.body)).to.equal(202);
    expect((await get('alice', byForm.body.id)).body.metadata).to.deep.equal({ postId: 'p1', rank: 2, draft: false });
    expect((await get('alice', byHeader.body.id)).body.metadata).to.deep.equal({ postId: 'p2', caption: 'café' });
    expect((await get('alice', byQuery.body.id)).body.metadata).to.deep.equal({ postId: 'p3' });
    const listed = (await server().get('/uploads').set('X-Upload-Owner', 'alice')).body.items as Array<{
      id: string;
      metadata?: unknown;
    }>;
    expect(listed.find((i) => i.id === byHeader.body.id)?.metadata).to.deep.equal({ postId: 'p2', caption: 'café' });
    const none = await form('alice', await photo());
    expect((await get('alice', none.body.id)).body, 'no metadata given: none answered').to.not.have.property(
      'metadata',
    );
  });

  it('answers bad metadata with 400 invalid_metadata saying what is wrong, and stores nothing', async () => {
    const bytes = await photo();
    const cases: Array<[string, () => request.Test, RegExp]> = [
      ['not JSON', () => form('alice', bytes, '{"postId":'), /\(form field\) is not JSON text/],
      ['an array', () => form('alice', bytes, '["p1"]'), /must be a JSON object/],
      ['a nested value', () => form('alice', bytes, '{"post":{"id":1}}'), /at "post": values must be strings/],
      [
        '33 keys',
        () => form('alice', bytes, JSON.stringify(Object.fromEntries([...Array(33).keys()].map((i) => [`k${i}`, i])))),
        /at most 32 keys/,
      ],
      [
        'over 4 KiB',
        () => raw('alice', bytes).set('X-Upload-Metadata', JSON.stringify({ s: 'x'.repeat(4100) })),
        /at most 4096 bytes/,
      ],
      ['twice', () => form('alice', bytes, '{"a":1}').field('metadata', '{"a":2}'), /once/],
      [
        'header and query',
        () =>
          server()
            .post('/uploads?metadata=%7B%7D')
            .set('X-Upload-Metadata', '{}')
            .set('Content-Type', 'image/jpeg')
            .send(bytes),
        /once/,
      ],
      ['a reserved key', () => form('alice', bytes, '{"__name__":"x"}'), /reserved/],
    ];
    for (const [what, send, message] of cases) {
      const response = await send();
      expect(response.status, `${what}: ${JSON.stringify(response.body)}`).to.equal(400);
      expect(response.body.error.code, what).to.equal('invalid_metadata');
      expect(response.body.error.message, what).to.match(message);
    }
    expect(await readImage(deps, imageIdOf(bytes)), 'no image claimed').to.equal(undefined);
    expect(await readAsset(deps, assetIdOf('user:alice', imageIdOf(bytes))), 'no upload made').to.equal(undefined);
  });

  it('two owners upload the same bytes with their own metadata: one image.ready, and one upload.ready each with its id, owner, metadata and a manifest URL that loads', async () => {
    const bytes = await photo();
    const imageId = imageIdOf(bytes);
    await pullEvents(pipeline.events, { family: 'all' });
    const alice = await form('alice', bytes, '{"postId":"a-1"}');
    const bob = await form('bob', bytes, '{"productId":"b-9","featured":true}');
    expect([alice.status, bob.status]).to.deep.equal([202, 202]);
    await runJobsOf(imageId);
    const events = await waitFor('the image and both uploads to be announced', async () => {
      const got = await eventsOf(imageId);
      return got.length >= 3 ? got : undefined;
    });
    expect(summary(events)).to.deep.equal(['image.ready', 'upload.ready alice', 'upload.ready bob']);
    const aliceReady = events.find((e) => e.type === 'upload.ready' && e.owner === 'alice');
    expect(aliceReady).to.deep.include({ id: alice.body.id, imageId, metadata: { postId: 'a-1' } });
    const bobReady = events.find((e) => e.type === 'upload.ready' && e.owner === 'bob');
    expect(bobReady).to.deep.include({ id: bob.body.id, imageId, metadata: { productId: 'b-9', featured: true } });
    const url = (bobReady as { manifestUrl: string }).manifestUrl;
    const manifest = await fetch(url);
    expect(manifest.status, url).to.equal(200);
    expect(((await manifest.json()) as { id: string }).id).to.equal(imageId);

    // Carol uploads the ready image: 200, and her own upload.ready at once; nobody else hears anything.
    const carol = await form('carol', bytes, '{"postId":"c-3"}');
    expect(carol.status).to.equal(200);
    const later = await waitFor('carol’s upload to be announced', async () => {
      const got = await eventsOf(imageId);
      return got.length > 0 ? got : undefined;
    });
    expect(summary(later)).to.deep.equal(['upload.ready carol']);
    expect(later[0]).to.deep.include({ id: carol.body.id, metadata: { postId: 'c-3' }, manifestUrl: url });

    // Deletes: each upload hears its own; the last one takes the image with it.
    expect((await server().delete(`/uploads/${alice.body.id}`).set('X-Upload-Owner', 'alice')).status).to.equal(204);
    expect((await server().delete(`/uploads/${bob.body.id}`).set('X-Upload-Owner', 'bob')).status).to.equal(204);
    expect((await server().delete(`/uploads/${carol.body.id}`).set('X-Upload-Owner', 'carol')).status).to.equal(204);
    const deleted = await waitFor('the deletes to be announced', async () => {
      const got = await eventsOf(imageId);
      return got.length >= 4 ? got : undefined;
    });
    expect(summary(deleted)).to.deep.equal([
      'image.deleted',
      'upload.deleted alice',
      'upload.deleted bob',
      'upload.deleted carol',
    ]);
    expect(deleted.find((e) => e.type === 'upload.deleted' && e.owner === 'bob')).to.deep.include({
      id: bob.body.id,
      metadata: { productId: 'b-9', featured: true },
    });
  });

  it('a signed URL carries its metadata to the upload it becomes and to its upload.ready; bad metadata is 400 before anything is signed', async () => {
    const bad = await server()
      .post('/uploads/signed-url')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ contentType: 'image/jpeg', size: 1000, metadata: { tags: ['x'] } }));
    expect(bad.status).to.equal(400);
    expect(bad.body.error).to.include({ code: 'invalid_metadata' });
    expect(bad.body.error.message).to.match(/signed-URL request.*at "tags"/);

    const bytes = await photo();
    const imageId = imageIdOf(bytes);
    await pullEvents(pipeline.events, { family: 'all' });
    const signed = await server()
      .post('/uploads/signed-url')
      .set('Content-Type', 'application/json')
      .set('X-Upload-Owner', 'dora')
      .send(JSON.stringify({ contentType: 'image/jpeg', size: bytes.length, metadata: { profileId: 'd-4' } }));
    expect(signed.status, JSON.stringify(signed.body)).to.equal(201);
    const put = await fetch(signed.body.uploadUrl, {
      method: 'PUT',
      headers: signed.body.headers,
      body: Uint8Array.from(bytes),
    });
    expect(put.status).to.equal(200);
    const assetId = assetIdOf('user:dora', imageId);
    const asset = await waitFor('ingest to file the upload', () => readAsset(deps, assetId));
    expect(asset.metadata).to.deep.equal({ profileId: 'd-4' });
    await waitFor('the jobs to be published', async () =>
      (await readImage(deps, imageId))?.dispatchedAt ? true : undefined,
    );
    await runJobsOf(imageId);
    const events = await waitFor('the upload to be announced', async () => {
      const got = await eventsOf(imageId);
      return got.length >= 2 ? got : undefined;
    });
    expect(summary(events)).to.deep.equal(['image.ready', 'upload.ready dora']);
    expect(events.find((e) => e.type === 'upload.ready')).to.deep.include({
      id: assetId,
      metadata: { profileId: 'd-4' },
    });
  });

  it("an incoming/ object's custom metadata is its upload's; invalid, the object is removed and its bytes' image left alone", async () => {
    const bytes = await photo();
    const imageId = imageIdOf(bytes);
    /** Writes `incoming/{name}` with custom metadata `metadata` and ingests it as its finalize event would. */
    const ingestWith = async (name: string, metadataText: string) => {
      const file = deps.storage.bucket(pipeline.config.UPLOADS_BUCKET).file(`incoming/${name}`);
      await file.save(bytes, { resumable: false, metadata: { metadata: { metadata: metadataText } } });
      const [object] = await file.getMetadata();
      const outcome = await ingestObject(deps, {
        ...object,
        bucket: object.bucket ?? '',
        name: file.name,
        generation: String(object.generation),
      });
      return { file, outcome };
    };
    const bad = await ingestWith('bad-metadata.jpg', '{"postId":');
    expect(bad.outcome).to.deep.include({ outcome: 'rejected', code: 'invalid_metadata' });
    expect((await bad.file.exists())[0], 'removed').to.equal(false);
    expect(await readImage(deps, imageId), 'the image is not failed for it').to.equal(undefined);
    expect(pipeline.logs.some((l) => l.event === 'ingest.reject' && l.code === 'invalid_metadata')).to.equal(true);

    const { outcome: taken } = await ingestWith('good-metadata.jpg', '{"postId":"i-5"}');
    expect(taken).to.deep.include({ outcome: 'accepted', state: 'processing' });
    expect((await readAsset(deps, assetIdOf(SERVICE_OWNER, imageId)))?.metadata).to.deep.equal({ postId: 'i-5' });
  });
});
