/**
 * upload → jobs on the real Pub/Sub emulator → resize → variants, manifest and exactly one
 * `image.ready`, through the local storage server. Jobs reach `resize` the way a Pub/Sub push
 * subscription delivers them: as an HTTP push that functions-framework turns into a CloudEvent.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import type { Server } from 'node:http';
import sharp from 'sharp';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { ManifestV1, type EventMessage, type Manifest } from '../../shared/core/schemas.js';
import { errorRecordName, imageIdOf, manifestName } from '../../shared/core/naming.js';
import { pushPath } from '../../shared/core/topology.js';
import { makeAnimatedGif, makeAnimatedWebp, makePhoto, markerBand, truncated } from '../fixtures/images.js';
import { freePort, serviceAsset } from '../helpers.js';
import {
  pullEvents,
  pullJobs,
  pushBody,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
} from '../fixtures/pipeline.js';

describe('pipeline: upload → Pub/Sub → resize → manifest (local storage, Pub/Sub emulator)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  const upload = () => request(getTestServer('upload'));
  const resize = () => request(getTestServer('resize'));
  const jobsPath = () => `/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`;

  before(async () => {
    pipeline = await startTestPipeline();
    useDeps(pipeline.deps);
  });
  after(async () => pipeline.stop());

  async function uploadAndCollectJobs(image: Buffer) {
    const response = await upload().post('/uploads').set('Content-Type', 'application/octet-stream').send(image);
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    const jobs = await pullJobs(pipeline.jobs);
    return {
      id: response.body.imageId as string,
      jobs,
      variants: response.body.variants as Array<{ width: number; format: string; name: string }>,
    };
  }

  async function deliver(
    messages: Array<{ message: { data: Buffer; id: string; attributes?: Record<string, string> } }>,
  ) {
    const statuses = await Promise.all(
      messages.map(({ message }) =>
        resize()
          .post(jobsPath())
          .send(pushBody(message))
          .then((r) => r.status),
      ),
    );
    return statuses;
  }

  async function manifestOf(id: string): Promise<Manifest> {
    const [bytes] = await pipeline.deps.storage.bucket('test-images').file(manifestName(id)).download();
    return ManifestV1.parse(JSON.parse(bytes.toString()));
  }

  async function checkVariants(manifest: Manifest, expected: { width: number; height: number }) {
    for (const variant of manifest.variants) {
      const [bytes] = await pipeline.deps.storage.bucket('test-images').file(variant.name).download();
      const metadata = await sharp(bytes).metadata();
      expect(metadata.format, variant.name).to.equal(variant.format === 'avif' ? 'heif' : variant.format);
      if (variant.format === 'avif') expect(metadata.compression).to.equal('av1');
      expect([metadata.width, metadata.height], variant.name).to.deep.equal([variant.width, variant.height]);
      expect(bytes.length).to.equal(variant.bytes);
      expect(variant.height).to.equal(Math.round((variant.width * expected.height) / expected.width));
    }
  }

  it('turns an upload into every variant, a manifest and exactly one image.ready', async () => {
    const image = await makePhoto({ width: 640, height: 480, seed: 21 });
    const { id, jobs, variants } = await uploadAndCollectJobs(image);
    expect(await deliver(jobs)).to.deep.equal(jobs.map(() => 204));
    const manifest = await manifestOf(id);
    expect(manifest.variants).to.have.length(variants.length);
    expect(manifest.original).to.include({ width: 640, height: 480, format: 'jpeg', bytes: image.length });
    expect(manifest.formats).to.deep.equal(['avif', 'webp', 'jpeg']);
    await checkVariants(manifest, { width: 640, height: 480 });
    // The placeholder, from the smallest width's job (docs/api.md, "Placeholder").
    expect(manifest.placeholder?.color).to.match(/^#[0-9a-f]{6}$/);
    expect(Buffer.from(manifest.placeholder!.thumbhash, 'base64').length).to.be.greaterThan(4);
    const [first] = await pipeline.deps.storage.bucket('test-images').file(manifest.variants[0]!.name).getMetadata();
    expect(first.cacheControl).to.equal('public, max-age=31536000, immutable');
    expect(first.metadata?.sourceGeneration).to.equal(manifest.original.generation);

    const events = await pullEvents(pipeline.events);
    expect(events.filter((e) => e.imageId === id).map((e) => e.type)).to.deep.equal(['image.ready']);
    const status = await upload().get(`/uploads/${serviceAsset(id)}`);
    expect(status.status).to.equal(200);
    expect(status.body.manifest.variants).to.have.length(variants.length);
    const again = await upload().post('/uploads').set('Content-Type', 'image/jpeg').send(image);
    expect(again.status).to.equal(200);
    expect(again.body).to.include({ id: serviceAsset(id), imageId: id, status: 'ready' });
  });

  it('delivers every job 3× interleaved and still writes one object per variant, one manifest, one image.ready', async () => {
    const image = await makePhoto({ width: 500, height: 400, format: 'png', alpha: true, seed: 22 });
    const { id, jobs, variants } = await uploadAndCollectJobs(image);
    pipeline.clearLogs();
    const triple = [...jobs, ...jobs.slice().reverse(), ...jobs];
    const statuses = await deliver(triple);
    expect(
      statuses.filter((s) => s !== 204 && s !== 500),
      `each duplicate acked (204) or sent back for retry (500): ${statuses.join(',')}`,
    ).to.deep.equal([]);
    // A duplicate that raced the manifest's announcement asks to be retried: redeliver stragglers as Pub/Sub would.
    expect(await deliver(jobs)).to.deep.equal(jobs.map(() => 204));

    const [files] = await pipeline.deps.storage.bucket('test-images').getFiles({ prefix: `${id}/` });
    expect(files.map((f) => f.name).sort()).to.deep.equal([...variants.map((v) => v.name), manifestName(id)].sort());
    expect(
      files
        .filter((f) => String(f.metadata.metageneration) !== '1' && f.name !== manifestName(id))
        .map((f) => `${f.name} at metageneration ${f.metadata.metageneration}`),
      'variants written once and never patched',
    ).to.deep.equal([]);
    const ready = pipeline.logs.filter((l) => l.message === 'image.ready published');
    expect(ready, 'one writer announced').to.have.length(1);
    const events = await pullEvents(pipeline.events);
    expect(events.filter((e) => e.imageId === id && e.type === 'image.ready')).to.have.length(1);
  });

  it('delivers jobs through a real push subscription on the emulator', async () => {
    const port = await freePort();
    const server: Server = getTestServer('resize').listen(port, '127.0.0.1');
    const [subscription] = await pipeline.pubsub.topic(pipeline.config.JOBS_TOPIC).createSubscription(`push-${port}`, {
      pushEndpoint: `http://127.0.0.1:${port}${pushPath(TEST_PROJECT, 'jobs').replace(/[^/]+$/, pipeline.config.JOBS_TOPIC)}`,
      ackDeadlineSeconds: 60,
    });
    try {
      const image = await makePhoto({ width: 480, height: 320, format: 'webp', seed: 23 });
      const response = await upload().post('/uploads').set('Content-Type', 'image/webp').send(image);
      expect(response.status).to.equal(202);
      const id = response.body.imageId as string;
      const deadline = Date.now() + 60_000;
      let status = 202;
      while (status !== 200 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        status = (await upload().get(`/uploads/${serviceAsset(id)}`)).status;
      }
      expect(status).to.equal(200);
      await checkVariants(await manifestOf(id), { width: 480, height: 320 });
    } finally {
      await subscription.delete();
      await new Promise((r) => server.close(r));
      await pullJobs(pipeline.jobs); // the pull subscription got copies too
      await pullEvents(pipeline.events);
    }
  });

  const kinds: Array<
    [
      string,
      () => Promise<Buffer>,
      { width: number; height: number },
      (manifest: Manifest, first: Buffer) => Promise<void>,
    ]
  > = [
    [
      'a JPEG with EXIF orientation 6 comes out upright',
      () => makePhoto({ width: 400, height: 200, orientation: 6, uprightMarker: true, seed: 24 }),
      { width: 200, height: 400 },
      async (_manifest, first) => {
        const { data, info } = await sharp(first).removeAlpha().raw().toBuffer({ resolveWithObject: true });
        const pixel = (x: number, y: number) => data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3);
        const top = pixel(Math.floor(info.width / 2), Math.floor(info.height * markerBand * 0.3));
        expect(top[0]! > 150 && top[1]! < 100 && top[2]! < 100, `red band on top, got ${[...top]}`).to.equal(true);
      },
    ],
    [
      'a PNG with alpha keeps alpha in AVIF and WebP',
      () => makePhoto({ width: 300, height: 300, format: 'png', alpha: true, seed: 25 }),
      { width: 300, height: 300 },
      async (manifest) => {
        for (const variant of manifest.variants.filter((v) => v.format !== 'jpeg')) {
          const [bytes] = await pipeline.deps.storage.bucket('test-images').file(variant.name).download();
          expect((await sharp(bytes).metadata()).hasAlpha, variant.name).to.equal(true);
        }
      },
    ],
    [
      'an animated GIF becomes stills of its first frame',
      () => makeAnimatedGif({ width: 200, height: 120, frames: 5 }),
      { width: 200, height: 120 },
      async () => undefined,
    ],
    [
      'an animated WebP becomes stills of its first frame',
      () => makeAnimatedWebp({ width: 200, height: 120, frames: 5 }),
      { width: 200, height: 120 },
      async (_manifest, first) => {
        const { channels } = await sharp(first).stats(); // frame 0 is red
        expect(channels[0]!.mean).to.be.above(200);
        expect(channels[1]!.mean + channels[2]!.mean).to.be.below(60);
      },
    ],
    [
      'a 16-bit PNG',
      () => makePhoto({ width: 256, height: 200, format: 'png', sixteenBit: true, seed: 26 }),
      { width: 256, height: 200 },
      async () => undefined,
    ],
    [
      'a CMYK JPEG comes out as sRGB',
      () => makePhoto({ width: 300, height: 200, cmyk: true, seed: 27 }),
      { width: 300, height: 200 },
      async (_manifest, first) => void expect((await sharp(first).metadata()).space).to.equal('srgb'),
    ],
    [
      'a grayscale JPEG',
      () => makePhoto({ width: 320, height: 240, grayscale: true, seed: 28 }),
      { width: 320, height: 240 },
      async () => undefined,
    ],
  ];
  for (const [what, make, size, check] of kinds) {
    it(what, async () => {
      const image = await make();
      const { id, jobs } = await uploadAndCollectJobs(image);
      expect(await deliver(jobs)).to.deep.equal(jobs.map(() => 204));
      const manifest = await manifestOf(id);
      expect([manifest.original.width, manifest.original.height]).to.deep.equal([size.width, size.height]);
      await checkVariants(manifest, size);
      const [first] = await pipeline.deps.storage
        .bucket('test-images')
        .file(manifest.variants.find((v) => v.format === 'jpeg')!.name)
        .download();
      await check(manifest, first);
      await pullEvents(pipeline.events, { quietMs: 300 });
    });
  }

  it('records a truncated JPEG as failed in the upload (its job 0 ran there): 422 at once, error.json, one image.failed, no job published', async () => {
    const image = truncated(await makePhoto({ width: 600, height: 400, seed: 29 }), 0.5);
    const id = imageIdOf(image);
    const response = await upload().post('/uploads').set('Content-Type', 'image/jpeg').send(image);
    expect(response.status, JSON.stringify(response.body)).to.equal(422);
    expect(response.body.error).to.include({ code: 'image_failed' });
    expect(response.body.error.details).to.include({ imageId: id, cause: 'corrupt_image' });
    expect((await pullJobs(pipeline.jobs)).filter(({ job }) => job.imageId === id)).to.deep.equal([]);
    const [record] = await pipeline.deps.storage.bucket('test-images').file(errorRecordName(id)).download();
    expect(JSON.parse(record.toString())).to.include({ id, code: 'corrupt_image' });
    const events: EventMessage[] = await pullEvents(pipeline.events);
    expect(events.filter((e) => e.imageId === id).map((e) => e.type)).to.deep.equal(['image.failed']);
    const status = await upload().get(`/uploads/${serviceAsset(id)}`);
    expect(status.status).to.equal(422);
    expect(status.body.error).to.include({ code: 'image_failed' });
    expect(status.body.error.details.cause).to.equal('corrupt_image');
  });

  it('acknowledges a malformed job and logs why', async () => {
    pipeline.clearLogs();
    const response = await resize()
      .post(jobsPath())
      .send(pushBody({ data: Buffer.from('{"v":1,"kind":"resize"}'), id: 'bad-1' }));
    expect(response.status).to.equal(204);
    expect(
      pipeline.logs.map((l) => `${l.severity} ${l.event}`),
      'an ERROR line job.invalid among the logs',
    ).to.include('ERROR job.invalid');
  });

  it('asks for redelivery (500) when storage fails mid-job, and the redelivery completes the image', async () => {
    const image = await makePhoto({ width: 420, height: 300, seed: 30 });
    const { id, jobs } = await uploadAndCollectJobs(image);
    pipeline.storageServer.injectFault({ path: /test-images/, status: 503, times: 1000 });
    const failed = await deliver(jobs);
    pipeline.storageServer.clearFaults();
    expect(failed, 'every delivery during the outage asks for redelivery').to.deep.equal(jobs.map(() => 500));
    expect(await deliver(jobs)).to.deep.equal(jobs.map(() => 204));
    expect((await manifestOf(id)).variants).to.have.length(6);
    await pullEvents(pipeline.events);
  });
});
