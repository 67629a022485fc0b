/**
 * `POST /uploads/signed-url` and its status route, through functions-framework's test servers
 * for `upload` and `ingest`, the local storage server (which verifies the V4 signature), the
 * Pub/Sub emulator and the Firestore emulator (tickets and quotas). The URL is signed by
 * @google-cloud/storage with a throwaway key, as on the local stack; production signs through IAM
 * signBlob, which cannot run here. Owners are named with UPLOAD_AUTH=none and X-Upload-Owner.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { readImage } from '../../shared/state/image-doc.js';
import { ingestObject } from '../../shared/pipeline/ingest-object.js';
import { readAsset } from '../../shared/state/assets.js';
import { SERVICE_OWNER } from '../../shared/auth/principal.js';
import { createStorageClient, type PipelineDeps } from '../../shared/cloud/deps.js';
import {
  assetIdOf,
  imageIdOf,
  incomingTicketName,
  manifestName,
  newTicketId,
  originalName,
} from '../../shared/core/naming.js';
import { ManifestV1 } from '../../shared/core/schemas.js';
import { newTicketDoc, readTicket, TICKET_GRACE_MS, ticketRef } from '../../shared/state/tickets.js';
import { ownerDocFrom, ownerRef } from '../../shared/state/owners.js';
import { withSeed } from '../fixtures/heif.js';
import {
  againstReference,
  heicFixture,
  makePhoto,
  PHONE_HEIC_FIXTURES,
  phoneHeic,
  phoneHeicReference,
  textPosingAsJpeg,
} from '../fixtures/images.js';
import { waitFor } from '../helpers.js';
import {
  connectIngest,
  pullJobs,
  pushBody,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
  withSigningKey,
} from '../fixtures/pipeline.js';

const KiB = 1024;

describe('signed-URL uploads: POST /uploads/signed-url → PUT to storage → ingest → status (local storage verifies the signature)', function () {
  this.timeout(60_000);
  let pipeline: TestPipeline;
  let deps: PipelineDeps;
  let ingest: { close(): Promise<void> };
  const api = () => request(getTestServer('upload'));

  before(async () => {
    pipeline = await startTestPipeline({
      MAX_UPLOAD_BYTES: String(100 * KiB),
      MAX_INGEST_BYTES: String(2048 * KiB),
      CORS_ORIGINS: 'https://app.example',
    });
    deps = withSigningKey(pipeline);
    useDeps(deps);
    ingest = await connectIngest(pipeline);
  });
  after(async () => {
    await ingest.close();
    await pipeline.stop();
  });
  afterEach(() => useDeps(deps));

  async function sign(body: unknown, owner?: string) {
    const post = api().post('/uploads/signed-url').set('Content-Type', 'application/json');
    if (owner !== undefined) post.set('X-Upload-Owner', owner);
    return post.send(JSON.stringify(body));
  }

  /** The status route as `owner` (the service when none). */
  function ticketAnswer(statusUrl: string, owner?: string) {
    const get = api().get(new URL(statusUrl).pathname);
    return owner === undefined ? get : get.set('X-Upload-Owner', owner);
  }

  /** The `ingest.ticket_refused` log line about `object`, once ingest wrote it. */
  function refusal(object: string) {
    return waitFor('ingest to refuse the object', () =>
      pipeline.logs.find((line) => line.event === 'ingest.ticket_refused' && line.source === object),
    );
  }

  async function put(uploadUrl: string, headers: Record<string, string>, bytes: Buffer) {
    const response = await fetch(uploadUrl, { method: 'PUT', headers, body: Uint8Array.from(bytes) });
    return { status: response.status, text: await response.text() };
  }

  /** The status route's answer (as `owner`), once it is no longer `waiting`. */
  async function settled(statusUrl: string, owner?: string) {
    return waitFor('ticket to be ingested', async () => {
      const response = await ticketAnswer(statusUrl, owner);
      return response.status === 202 && response.body.status === 'waiting' ? undefined : response;
    });
  }

  it('signs a PUT of one incoming/{ticket}/{filename} object bound to type and size; an image over MAX_UPLOAD_BYTES goes through to processing', async () => {
    const photo = await makePhoto({ width: 700, height: 500, format: 'png', seed: 71 });
    expect(photo.length).to.be.greaterThan(100 * KiB, 'the fixture must exceed MAX_UPLOAD_BYTES');
    const signed = await sign({ filename: '../../my "scan"\r\n.png', contentType: 'image/png', size: photo.length });
    expect(signed.status, JSON.stringify(signed.body)).to.equal(201);
    const { uploadUrl, method, headers, expiresAt, statusUrl, ticket } = signed.body as {
      uploadUrl: string;
      method: string;
      expiresAt: string;
      statusUrl: string;
      ticket: string;
      headers: Record<string, string>;
    };
    expect(method).to.equal('PUT');
    expect(headers).to.deep.equal({
      'Content-Type': 'image/png',
      'x-goog-content-length-range': `1,${photo.length}`,
      'x-goog-if-generation-match': '0',
    });
    const url = new URL(uploadUrl);
    expect(decodeURIComponent(url.pathname)).to.equal(`/test-uploads/incoming/${ticket}/my scan.png`);
    expect(url.searchParams.get('X-Goog-Algorithm')).to.equal('GOOG4-RSA-SHA256');
    expect(url.searchParams.get('X-Goog-SignedHeaders')).to.equal(
      'content-type;host;x-goog-content-length-range;x-goog-if-generation-match',
    );
    expect(new Date(expiresAt).getTime() - Date.now()).to.be.within(890_000, 900_000);
    expect(statusUrl).to.match(new RegExp(`/uploads/signed-url/${ticket}$`));

    const before = await api().get(new URL(statusUrl).pathname);
    expect(before.status).to.equal(202);
    expect(before.body).to.deep.equal({ ticket, status: 'waiting' });

    const stored = await put(uploadUrl, headers, photo);
    expect(stored.status, stored.text).to.equal(200);
    const answer = await settled(statusUrl);
    const id = imageIdOf(photo);
    expect(answer.status).to.equal(202);
    expect(answer.body).to.include({ id: assetIdOf(SERVICE_OWNER, id), imageId: id, status: 'processing' });
    const [metadata] = await pipeline.deps.storage.bucket('test-uploads').file(originalName(id)).getMetadata();
    expect(metadata.metadata).to.include({ source: `incoming/${ticket}/my scan.png` });
    expect(metadata.metadata).to.not.have.property('filename');
    const recorded = await readTicket(pipeline.deps, ticket);
    expect(recorded).to.deep.include({
      owner: 'service',
      objectName: `incoming/${ticket}/my scan.png`,
      size: photo.length,
      contentType: 'image/png',
      state: 'used',
    });
    expect(recorded?.used)
      .to.include({ imageId: id, assetId: assetIdOf(SERVICE_OWNER, id) })
      .and.have.property('generation')
      .that.is.a('string');
    expect(recorded?.expiresAt.toISOString()).to.equal(expiresAt);
    const doc = await readImage(pipeline.deps, id);
    expect(doc).to.deep.include({ status: 'processing', source: `incoming/${ticket}/my scan.png` });
    expect(await readAsset(pipeline.deps, assetIdOf(SERVICE_OWNER, id))).to.deep.include({ filename: 'my scan.png' });
    expect(doc?.dispatchedAt, 'the document marked dispatched').to.be.an.instanceOf(Date);
    const jobs = await pullJobs(pipeline.jobs);
    expect(jobs.length).to.be.greaterThan(0);
    expect(jobs.map(({ job }) => job.imageId)).to.deep.equal(jobs.map(() => id));
  });

  for (const contentType of ['image/heic', 'image/heif']) {
    it(`signs a HEIC upload as ${contentType} (what phones and browsers call it) and ingests it`, async () => {
      const heic = withSeed(heicFixture('grid.heic'), contentType.length + 2);
      const signed = await sign({ filename: 'IMG_0001.HEIC', contentType, size: heic.length });
      expect(signed.status, JSON.stringify(signed.body)).to.equal(201);
      expect((await put(signed.body.uploadUrl, signed.body.headers, heic)).status).to.equal(200);
      const answer = await settled(signed.body.statusUrl);
      expect(answer.status, JSON.stringify(answer.body)).to.equal(202);
      expect(answer.body).to.include({ imageId: imageIdOf(heic), status: 'processing' });
      expect((await readImage(pipeline.deps, imageIdOf(heic)))?.info).to.include({
        format: 'heif',
        contentType: 'image/heic',
        width: 480,
        height: 360,
      });
      await pullJobs(pipeline.jobs);
    });
  }

  for (const phone of PHONE_HEIC_FIXTURES) {
    it(`takes ${phone.file} (${phone.phone}) through a signed URL to ready: upright, as heif-convert decodes it`, async function () {
      const original = phoneHeic(phone.file);
      const reference = original && phoneHeicReference(phone);
      if (!original || !reference) this.skip(); // not on this machine: test/fixtures/heic/README.md
      const heic = withSeed(original, 7);
      const id = imageIdOf(heic);
      const signed = await sign({ filename: 'IMG_4242.HEIC', contentType: 'image/heic', size: heic.length });
      expect(signed.status, JSON.stringify(signed.body)).to.equal(201);
      expect((await put(signed.body.uploadUrl, signed.body.headers, heic)).status).to.equal(200);
      const answer = await settled(signed.body.statusUrl);
      expect(answer.body).to.include({ imageId: id, status: 'processing' });
      expect((await readImage(pipeline.deps, id))?.info).to.include({ width: phone.width, height: phone.height });
      for (const { message } of await pullJobs(pipeline.jobs)) {
        const pushed = await request(getTestServer('resize'))
          .post(`/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`)
          .send(pushBody(message));
        expect(pushed.status, 'resize acknowledges').to.equal(204);
      }
      expect((await ticketAnswer(signed.body.statusUrl)).body).to.include({ imageId: id, status: 'ready' });
      const images = pipeline.deps.storage.bucket('test-images');
      const [manifest] = await images.file(manifestName(id)).download();
      const variants = ManifestV1.parse(JSON.parse(manifest.toString())).variants;
      const [widest] = variants.filter((v) => v.format === 'jpeg').sort((a, b) => b.width - a.width);
      const [bytes] = await images.file(widest?.name as string).download();
      const match = await againstReference(bytes, reference);
      expect(match.height, 'upright').to.equal(Math.round((match.width * phone.height) / phone.width));
      expect(match.ssim, 'SSIM against heif-convert (JPEG q80 at 160 px)').to.be.above(0.92);
      expect(match.worstBlock, 'largest 16×16 block colour difference').to.be.below(4);
    });
  }

  it('answers a ticket whose object was a bad image with the image failure, id included', async () => {
    const bytes = textPosingAsJpeg();
    const signed = await sign({ filename: 'fake.jpg', contentType: 'image/jpeg', size: bytes.length });
    expect(signed.status).to.equal(201);
    expect((await put(signed.body.uploadUrl, signed.body.headers, bytes)).status).to.equal(200);
    const answer = await settled(signed.body.statusUrl);
    expect(answer.status).to.equal(422);
    expect(answer.body.error).to.deep.include({ code: 'image_failed' });
    expect(answer.body.error.details).to.deep.equal({
      id: assetIdOf(SERVICE_OWNER, imageIdOf(bytes)),
      imageId: imageIdOf(bytes),
      cause: 'not_an_image',
    });
    const recorded = await readTicket(pipeline.deps, signed.body.ticket);
    expect(recorded?.used?.failure).to.include({ code: 'not_an_image', retryable: false });
  });

  it('takes a URL once: the same URL PUT again after ingest is refused (removed, logged, no second image), and the ticket keeps answering the first image', async () => {
    const first = await makePhoto({ width: 64, height: 48, format: 'png', seed: 81 });
    const second = await makePhoto({ width: 64, height: 48, format: 'png', seed: 82 });
    const signed = await sign({
      filename: 'once.png',
      contentType: 'image/png',
      size: Math.max(first.length, second.length),
    });
    expect(signed.status).to.equal(201);
    const { uploadUrl, headers, statusUrl, ticket } = signed.body;
    expect((await put(uploadUrl, headers, first)).status).to.equal(200);
    expect((await settled(statusUrl)).body).to.include({
      id: assetIdOf(SERVICE_OWNER, imageIdOf(first)),
      imageId: imageIdOf(first),
      status: 'processing',
    });
    const object = incomingTicketName(ticket, 'once.png');
    const file = pipeline.deps.storage.bucket('test-uploads').file(object);
    await waitFor('ingest to remove the first object', async () => ((await file.exists())[0] ? undefined : true));

    // Nothing is at that name any more, so create-only does not stop the PUT: ingest must.
    const again = await put(uploadUrl, headers, second);
    expect(again.status, again.text).to.equal(200);
    const line = await refusal(object);
    expect(line).to.include({ severity: 'WARNING', reason: 'reused', ticket });
    expect(line.usedBy).to.equal((await readTicket(pipeline.deps, ticket))?.used?.generation);
    expect((await file.exists())[0], 'the second object is removed').to.equal(false);
    expect(await readImage(pipeline.deps, imageIdOf(second)), 'no second image').to.equal(undefined);
    expect(pipeline.logs.filter((l) => l.event === 'ingest.reject' && l.source === object)).to.deep.equal([]);
    const still = await ticketAnswer(statusUrl);
    expect(still.body).to.include({ imageId: imageIdOf(first) });
    const jobs = await pullJobs(pipeline.jobs);
    expect([...new Set(jobs.map(({ job }) => job.imageId))]).to.deep.equal([imageIdOf(first)]);
  });

  it('carries on for a redelivered event of the object that used the ticket (same generation): no refusal', async () => {
    const photo = await makePhoto({ width: 64, height: 48, format: 'png', seed: 87 });
    const signed = await sign({ filename: 'redelivered.png', contentType: 'image/png', size: photo.length });
    expect((await put(signed.body.uploadUrl, signed.body.headers, photo)).status).to.equal(200);
    await settled(signed.body.statusUrl);
    const used = await readTicket(pipeline.deps, signed.body.ticket);
    const object = incomingTicketName(signed.body.ticket, 'redelivered.png');
    const event = { bucket: 'test-uploads', name: object, size: photo.length, contentType: 'image/png' };
    const outcome = await ingestObject(pipeline.deps, { ...event, generation: used!.used!.generation });
    expect(outcome).to.deep.equal({ outcome: 'ignored', reason: 'object no longer exists' });
    expect(pipeline.logs.filter((line) => line.event === 'ingest.ticket_refused' && line.source === object)).to.be
      .empty;
    expect(await readTicket(pipeline.deps, signed.body.ticket)).to.deep.equal(used);
    await pullJobs(pipeline.jobs);
  });

  it("answers a ticket to its owner only: another owner's (or the service's) request is 404", async () => {
    const photo = await makePhoto({ width: 64, height: 48, format: 'png', seed: 83 });
    const signed = await sign({ filename: 'mine.png', contentType: 'image/png', size: photo.length }, 'alice');
    expect(signed.status).to.equal(201);
    const { statusUrl, ticket } = signed.body;
    expect(Object.keys(signed.body).sort()).to.deep.equal(
      ['expiresAt', 'headers', 'maxBytes', 'method', 'statusUrl', 'ticket', 'uploadUrl'],
      'the answer names nothing else (no owner, no document)',
    );
    expect((await readTicket(pipeline.deps, ticket))?.owner).to.equal('user:alice');
    expect((await ticketAnswer(statusUrl, 'alice')).status).to.equal(202);
    const notYours = async () => {
      for (const other of ['bob', undefined]) {
        const answer = await ticketAnswer(statusUrl, other);
        expect(answer.status, `as ${other ?? 'the service'}`).to.equal(404);
        expect(answer.body.error).to.include({ code: 'not_found' });
      }
    };
    await notYours();
    expect((await put(signed.body.uploadUrl, signed.body.headers, photo)).status).to.equal(200);
    expect((await settled(statusUrl, 'alice')).body).to.include({
      id: assetIdOf('user:alice', imageIdOf(photo)),
      imageId: imageIdOf(photo),
      status: 'processing',
    });
    await notYours();
    await pullJobs(pipeline.jobs);
  });

  it('charges open tickets at minting (QUOTA_OPEN_TICKETS=1): a second URL is 429 until the first expires or is used', async () => {
    useDeps({ ...deps, config: { ...deps.config, QUOTA_OPEN_TICKETS: 1 } });
    const photo = await makePhoto({ width: 64, height: 48, format: 'png', seed: 84 });
    const body = { filename: 'q.png', contentType: 'image/png', size: photo.length };
    const first = await sign(body, 'carol');
    expect(first.status).to.equal(201);
    const second = await sign(body, 'carol');
    expect(second.status, JSON.stringify(second.body)).to.equal(429);
    expect(second.body.error).to.include({ code: 'quota_exceeded' });
    expect(second.body.error.details).to.include({ quota: 'open_tickets', limit: 1, used: 1 });
    const untilExpiry = (new Date(first.body.expiresAt).getTime() - Date.now()) / 1000;
    expect(Number(second.headers['retry-after'])).to.be.within(untilExpiry - 5, untilExpiry + 5);
    expect((await sign(body, 'dave')).status, 'another owner has its own quota').to.equal(201);

    expect((await put(first.body.uploadUrl, first.body.headers, photo)).status).to.equal(200);
    await settled(first.body.statusUrl, 'carol');
    const afterUse = await sign(body, 'carol');
    expect(afterUse.status, 'a used ticket is no longer open').to.equal(201);
    const owner = ownerDocFrom(await ownerRef(pipeline.deps.firestore, 'user:carol').get());
    expect(owner?.openTickets.map((t) => t.ticket)).to.deep.equal([afterUse.body.ticket]);
    await pullJobs(pipeline.jobs);
  });

  it('counts a minted URL as an upload of its declared size (QUOTA_UPLOADS_PER_DAY), and ingest charges nothing more', async () => {
    useDeps({ ...deps, config: { ...deps.config, QUOTA_UPLOADS_PER_DAY: 2 } });
    const photo = await makePhoto({ width: 64, height: 48, format: 'png', seed: 85 });
    const body = { filename: 'd.png', contentType: 'image/png', size: photo.length + 100 };
    const first = await sign(body, 'erin');
    expect(first.status).to.equal(201);
    expect((await sign(body, 'erin')).status).to.equal(201);
    const third = await sign(body, 'erin');
    expect(third.status).to.equal(429);
    expect(third.body.error.details).to.include({ quota: 'uploads_per_day', limit: 2, used: 2 });
    expect((await put(first.body.uploadUrl, first.body.headers, photo)).status).to.equal(200);
    await settled(first.body.statusUrl, 'erin');
    const owner = ownerDocFrom(await ownerRef(pipeline.deps.firestore, 'user:erin').get());
    expect(owner).to.deep.include({ uploads: 2, bytes: 2 * body.size });
    await pullJobs(pipeline.jobs);
  });

  it('refuses an object under incoming/{ticket}/ whose ticket was never minted: removed, logged, no image', async () => {
    const photo = await makePhoto({ width: 64, height: 48, format: 'png', seed: 86 });
    const ticket = newTicketId(new Date(Date.now() + 600_000), randomBytes(12));
    const object = incomingTicketName(ticket, 'forged.png');
    const file = pipeline.deps.storage.bucket('test-uploads').file(object);
    await file.save(photo, { contentType: 'image/png', resumable: false });
    expect(await refusal(object)).to.include({ reason: 'unknown_ticket', ticket });
    expect((await file.exists())[0]).to.equal(false);
    expect(await readImage(pipeline.deps, imageIdOf(photo))).to.equal(undefined);
    expect((await api().get(`/uploads/signed-url/${ticket}`)).status).to.equal(404);
  });

  it('refuses a body larger than the size it signed for (the storage server enforces the range)', async () => {
    const signed = await sign({ filename: 'a.jpg', contentType: 'image/jpeg', size: 1000 });
    const refused = await put(signed.body.uploadUrl, signed.body.headers, Buffer.alloc(1001, 1));
    expect(refused.status).to.equal(400);
    expect(refused.text).to.include('<Code>EntityTooLarge</Code>');
  });

  const refusals: Array<[string, unknown, number, string]> = [
    [
      'a type the pipeline does not accept',
      { filename: 'a.txt', contentType: 'text/plain', size: 10 },
      415,
      'format_not_allowed',
    ],
    [
      'an empty type (a browser that did not recognise the file)',
      { filename: 'a.xyz', contentType: '', size: 10 },
      415,
      'format_not_allowed',
    ],
    [
      'SVG while ALLOW_SVG is off',
      { filename: 'a.svg', contentType: 'image/svg+xml', size: 10 },
      415,
      'format_not_allowed',
    ],
    [
      'a size over MAX_INGEST_BYTES',
      { filename: 'a.tif', contentType: 'image/tiff', size: 2048 * KiB + 1 },
      413,
      'payload_too_large',
    ],
    ['a body that is not JSON', 'not json', 400, 'bad_request'],
    ['a missing size', { filename: 'a.jpg', contentType: 'image/jpeg' }, 400, 'bad_request'],
    ['a size of zero', { filename: 'a.jpg', contentType: 'image/jpeg', size: 0 }, 400, 'bad_request'],
  ];
  for (const [what, body, status, code] of refusals) {
    it(`refuses ${what}: ${status} ${code}`, async () => {
      const response =
        typeof body === 'string'
          ? await api()
              .post('/uploads/signed-url')
              .set('Content-Type', 'application/octet-stream')
              .send(Buffer.from(body))
          : await sign(body);
      expect(response.status, JSON.stringify(response.body)).to.equal(status);
      expect(response.body.error).to.include({ code });
      expect(response.body.error.message).to.be.a('string').and.not.empty;
      if (status === 413) expect(response.body.error.details).to.deep.equal({ maxBytes: 2048 * KiB });
    });
  }

  it("has the API's auth, CORS and method rules", async () => {
    useDeps({ ...deps, config: { ...deps.config, UPLOAD_AUTH: 'token', UPLOAD_TOKEN: 'a-very-long-secret-token' } });
    const body = JSON.stringify({ contentType: 'image/jpeg', size: 10 });
    const anonymous = await api().post('/uploads/signed-url').set('Content-Type', 'application/json').send(body);
    expect(anonymous.status).to.equal(401);
    const authorized = await api()
      .post('/uploads/signed-url')
      .set('Authorization', 'Bearer a-very-long-secret-token')
      .set('Content-Type', 'application/json')
      .send(body);
    expect(authorized.status).to.equal(201);
    useDeps(deps);
    const foreign = await api()
      .post('/uploads/signed-url')
      .set('Origin', 'https://evil.example')
      .set('Content-Type', 'application/json')
      .send(body);
    expect(foreign.status).to.equal(403);
    const allowed = await api()
      .post('/uploads/signed-url')
      .set('Origin', 'https://app.example')
      .set('Content-Type', 'application/json')
      .send(body);
    expect(allowed.status).to.equal(201);
    expect(allowed.headers['access-control-allow-origin']).to.equal('https://app.example');
    const get = await api().get('/uploads/signed-url');
    expect(get.status).to.equal(405);
    expect(get.headers.allow).to.match(/^POST/);
  });

  it("answers 503 with the API's JSON error when signing fails (IAM signBlob stubbed: it cannot run here)", async () => {
    const storage = createStorageClient(pipeline.config);
    // Without a key the client signs through IAM signBlob; here that call is refused.
    const denied = Object.assign(new Error('Permission iam.serviceAccounts.signBlob denied'), { code: 403 });
    Object.assign(storage.authClient, {
      getCredentials: async () => ({ client_email: 'upload@test-project.iam.gserviceaccount.com' }),
      sign: async () => {
        throw denied;
      },
    });
    useDeps({ ...deps, storage });
    const response = await sign({ filename: 'a.jpg', contentType: 'image/jpeg', size: 10 });
    expect(response.status).to.equal(503);
    expect(response.body.error).to.include({ code: 'unavailable', retryable: true });
    expect(JSON.stringify(response.body)).not.to.include('signBlob');
  });

  it('answers 404 for a malformed or unknown ticket, and one past expiry plus the grace period with nothing recorded and no object', async () => {
    const now = Date.now();
    const status = (ticket: string) => api().get(`/uploads/signed-url/${ticket}`);
    expect((await status('not-a-ticket')).status).to.equal(404);
    expect((await status(newTicketId(new Date(now + 600_000), randomBytes(12)))).status).to.equal(404, 'never minted');
    const recordOpen = async (expiresAt: Date, used?: { generation: string }) => {
      const ticket = newTicketId(expiresAt, randomBytes(12));
      const facts = { ticket, owner: 'service', objectName: incomingTicketName(ticket, 'a.jpg'), expiresAt };
      const doc = newTicketDoc({ ...facts, size: 10, contentType: 'image/jpeg' }, new Date(now - 2 * TICKET_GRACE_MS));
      await ticketRef(pipeline.deps.firestore, ticket).set(used ? { ...doc, state: 'used', used } : doc);
      return ticket;
    };
    const expiredRecently = await recordOpen(new Date(now - TICKET_GRACE_MS / 2));
    expect((await status(expiredRecently)).status).to.equal(202, 'within the grace period it may still arrive');
    const expiredLongAgo = await recordOpen(new Date(now - TICKET_GRACE_MS - 60_000));
    const gone = await status(expiredLongAgo);
    expect(gone.status).to.equal(404);
    expect(gone.body.error).to.include({ code: 'not_found' });
    const abandoned = await recordOpen(new Date(now - TICKET_GRACE_MS - 60_000), { generation: '1' });
    expect((await status(abandoned)).status).to.equal(404, 'used long ago, its object gone, nothing recorded');
  });
});
