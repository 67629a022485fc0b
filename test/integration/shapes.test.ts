/**
 * The shape matrix: long, wide and extreme-aspect images through both ways in (`POST /uploads`
 * over HTTP, and an object under `incoming/` that reaches `ingest` as the local storage server's
 * finalize notification), with the real pipeline behind them (Pub/Sub emulator, resize over HTTP
 * push, local storage server). Every shape ends either ready, with every variant inside its
 * format's limits (read back from the written objects with sharp), or refused up front (a 4xx on
 * upload, a failure record with the probe's code and no stored original on `incoming/`). Never a
 * late `image_failed` from dimensions.
 *
 * Default widths (320…2048) and formats (AVIF, WebP, JPEG), so that the planned variants of the
 * long images really do cross the WebP and AVIF height limits. Images are solid colour (cheap to
 * make, decode and encode); the limits below are the encoders' own, measured with sharp 0.35.5
 * on this machine, and written out here rather than imported so the test does not trust the
 * table it checks.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Message } from '@google-cloud/pubsub';
import { expect } from 'chai';
import sharp from 'sharp';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import {
  FailureRecordV1,
  ManifestV1,
  type EventMessage,
  type JobMessage,
  type Manifest,
} from '../../shared/core/schemas.js';
import { errorRecordName, imageIdOf, manifestName, originalName } from '../../shared/core/naming.js';
import { blackPng } from '../fixtures/images.js';
import {
  connectIngest,
  publishedAll,
  pushBody,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
} from '../fixtures/pipeline.js';
import { Changes, eventually, serviceAsset } from '../helpers.js';
import type { OutputFormat } from '../../shared/core/domain.js';

/** Largest width and height each encoder writes (sharp 0.35.5: libwebp, libheif/aom, libjpeg). */
const ENCODER_MAX: Readonly<Record<OutputFormat, number>> = { webp: 16383, avif: 16384, jpeg: 65500 };

const UPLOADS = 'test-uploads';
const IMAGES = 'test-images';

/** A solid-colour PNG, a different colour for every `seed` (so every row and path has its own id). */
function solidPng(width: number, height: number, seed: number): Promise<Buffer> {
  const background = { r: (seed * 37) % 256, g: (seed * 91) % 256, b: (seed * 53) % 256 };
  return sharp({ create: { width, height, channels: 3, background } })
    .png({ compressionLevel: 9 })
    .toBuffer();
}

type Expected = { ready: true; formats: OutputFormat[] } | { ready: false; status: number; code: string };

const SHAPES: Array<{ width: number; height: number; make: (seed: number) => Promise<Buffer>; expected: Expected }> = [
  // 21.6 MP long screenshot: its 1024 and 1080 px WebP/AVIF variants would be 18,963 and 20,000 px tall.
  {
    width: 1080,
    height: 20000,
    make: (seed) => solidPng(1080, 20000, seed),
    expected: { ready: true, formats: ['avif', 'webp', 'jpeg'] },
  },
  {
    width: 20000,
    height: 1080,
    make: (seed) => solidPng(20000, 1080, seed),
    expected: { ready: true, formats: ['avif', 'webp', 'jpeg'] },
  },
  // One pixel wide: only JPEG can hold 50,000 px; the WebP and AVIF variants are left out.
  { width: 1, height: 50000, make: (seed) => solidPng(1, 50000, seed), expected: { ready: true, formats: ['jpeg'] } },
  // One pixel tall: every variant is 1 px tall (320 / 50000 × 1 rounds to 0, and must not).
  {
    width: 50000,
    height: 1,
    make: (seed) => solidPng(50000, 1, seed),
    expected: { ready: true, formats: ['avif', 'webp', 'jpeg'] },
  },
  {
    width: 16384,
    height: 1,
    make: (seed) => solidPng(16384, 1, seed),
    expected: { ready: true, formats: ['avif', 'webp', 'jpeg'] },
  },
  // 268 MP: over the default 50 MP cap, refused by the probe before anything is stored.
  {
    width: 16385,
    height: 16385,
    make: () => Promise.resolve(blackPng(16385, 16385)),
    expected: { ready: false, status: 422, code: 'too_many_pixels' },
  },
  // Taller than any encoder can write at any width: nothing can be made of it, so it is refused up front.
  {
    width: 1,
    height: 65501,
    make: (seed) => solidPng(1, 65501, seed),
    expected: { ready: false, status: 422, code: 'unsupported_dimensions' },
  },
];

/** The widths the defaults plan for an original `width` wide (every width below it, plus itself). */
function nominalWidths(width: number): number[] {
  const widths = [320, 640, 1024, 1600, 2048];
  return [...new Set([...widths.filter((w) => w < width), ...(widths.some((w) => w >= width) ? [width] : [])])];
}

const heightAt = (width: number, original: { width: number; height: number }) =>
  width === original.width ? original.height : Math.max(1, Math.round((original.height * width) / original.width));

describe('shape matrix: long, wide and one-pixel images, upload and incoming/ (local storage, Pub/Sub emulator)', function () {
  this.timeout(180_000);
  let pipeline: TestPipeline;
  let ingest: { close(): Promise<void> };
  const api = () => request(getTestServer('upload'));
  const resize = () => request(getTestServer('resize'));
  const images = () => pipeline.deps.storage.bucket(IMAGES);
  const uploads = () => pipeline.deps.storage.bucket(UPLOADS);

  // Jobs and events as the pull subscriptions deliver them, with waiters woken on arrival.
  const jobsById = new Map<string, Message[]>();
  const events: EventMessage[] = [];
  const changes = new Changes();
  const until = <T>(what: string, check: () => T | undefined) => changes.until(what, check);

  before(async () => {
    pipeline = await startTestPipeline({ WIDTHS: '' });
    expect(pipeline.config.WIDTHS).to.deep.equal([320, 640, 1024, 1600, 2048]);
    expect(pipeline.config.FORMATS).to.include.members(['avif', 'webp']);
    expect(pipeline.config.MAX_INPUT_PIXELS).to.equal(50_000_000);
    useDeps(pipeline.deps);
    ingest = await connectIngest(pipeline);
    pipeline.jobs.on('message', (message: Message) => {
      const job = JSON.parse(message.data.toString()) as JobMessage;
      jobsById.set(job.imageId, [...(jobsById.get(job.imageId) ?? []), message]);
      message.ack();
      changes.notify();
    });
    pipeline.events.on('message', (message: Message) => {
      const event = JSON.parse(message.data.toString()) as EventMessage;
      // The image's events; its upload's (upload.*) are the upload-events suite's.
      if (event.type.startsWith('image.')) events.push(event);
      message.ack();
      changes.notify();
    });
  });

  after(async () => {
    await ingest.close();
    await pipeline.stop();
  });

  /** Delivers every job of an image to resize, as the push subscription would. */
  async function runJobsOf(id: string): Promise<void> {
    const messages = await eventually(
      async () => {
        const got = jobsById.get(id) ?? [];
        const jobs = got.map((message) => JSON.parse(message.data.toString()) as JobMessage);
        return (await publishedAll(pipeline.deps, id, jobs)) ? got : undefined;
      },
      60_000,
      `the jobs of ${id}`,
    );
    const path = `/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`;
    for (const message of messages) {
      const response = await resize().post(path).send(pushBody(message));
      expect(response.status, 'resize acknowledges').to.equal(204);
    }
  }

  async function expectReady(
    id: string,
    original: { width: number; height: number },
    formats: OutputFormat[],
  ): Promise<void> {
    const event = await until(`the outcome of ${id}`, () => events.find((e) => e.imageId === id));
    expect(event, JSON.stringify(event)).to.include({ type: 'image.ready' });
    const [bytes] = await images().file(manifestName(id)).download();
    const manifest: Manifest = ManifestV1.parse(JSON.parse(bytes.toString()));
    expect(manifest.original).to.include(original);
    expect(manifest.formats).to.have.members(formats);

    for (const variant of manifest.variants) {
      const [data] = await images().file(variant.name).download();
      const metadata = await sharp(data, { limitInputPixels: false }).metadata();
      expect([metadata.width, metadata.height], variant.name).to.deep.equal([variant.width, variant.height]);
      expect(Math.max(variant.width, variant.height), `${variant.name} within ${variant.format}'s limit`).to.be.at.most(
        ENCODER_MAX[variant.format],
      );
      expect(variant.height, variant.name).to.equal(heightAt(variant.width, original));
    }

    // Every width the defaults plan, in every format: made if it fits the format, else listed as omitted.
    // Solid colour compresses to almost nothing, so a variant that fits may also be left out for
    // encoding larger than the original file (docs/api.md), except each format's smallest width.
    const omitted = manifest.omitted ?? [];
    for (const format of pipeline.config.FORMATS) {
      const smallest = Math.min(
        ...[...manifest.variants, ...omitted].filter((v) => v.format === format).map((v) => v.width),
      );
      for (const width of nominalWidths(original.width)) {
        const fits = Math.max(width, heightAt(width, original)) <= ENCODER_MAX[format];
        const made = manifest.variants.some((v) => v.format === format && v.width === width);
        const left = omitted.find((o) => o.format === format && o.width === width);
        const reason = left?.reason;
        const label = `${width} px ${format} of ${original.width}×${original.height}`;
        if (!fits) expect([made, reason], label).to.deep.equal([false, 'exceeds_format_limit']);
        else if (made || width === smallest) expect([made, reason], label).to.deep.equal([true, undefined]);
        else {
          expect([made, reason], label).to.deep.equal([false, 'larger_than_original']);
          expect(left?.bytes, label).to.be.above(manifest.original.bytes);
        }
      }
      // A format that lost widths to its limit still gets the largest width that fits, if any does.
      const largest = Math.max(
        0,
        ...[...manifest.variants, ...omitted.filter((o) => o.reason === 'larger_than_original')]
          .filter((v) => v.format === format)
          .map((v) => v.width),
      );
      if (largest > 0 && largest < Math.min(original.width, 2048)) {
        expect(heightAt(largest + 1, original), `${format}: ${largest} px is the widest that fits`).to.be.above(
          ENCODER_MAX[format],
        );
      }
    }
    expect(events.filter((e) => e.imageId === id).map((e) => e.type)).to.deep.equal(['image.ready']);
    expect((await api().get(`/uploads/${serviceAsset(id)}`)).status).to.equal(200);
  }

  SHAPES.forEach((shape, row) => {
    const size = `${shape.width}×${shape.height}`;
    const { expected } = shape;
    const outcome = expected.ready ? `ready in ${expected.formats.join(', ')}` : `${expected.status} ${expected.code}`;

    it(`${size} via POST /uploads: ${outcome}`, async () => {
      const image = await shape.make(2 * row + 1);
      const id = imageIdOf(image);
      const response = await api().post('/uploads').set('Content-Type', 'application/octet-stream').send(image);
      if (!expected.ready) {
        expect(response.status, JSON.stringify(response.body)).to.equal(expected.status);
        expect(response.body.error.code).to.equal(expected.code);
        expect((await uploads().file(originalName(id)).exists())[0], 'nothing stored').to.equal(false);
        return;
      }
      expect(response.status, JSON.stringify(response.body)).to.equal(202);
      await runJobsOf(id);
      await expectReady(id, { width: shape.width, height: shape.height }, expected.formats);
    });

    it(`${size} via incoming/: ${expected.ready ? outcome : `refused as ${expected.code}, nothing stored`}`, async () => {
      const image = await shape.make(2 * row + 2);
      const id = imageIdOf(image);
      await uploads().file(`incoming/shapes/${size}.png`).save(image, { resumable: false, contentType: 'image/png' });
      if (!expected.ready) {
        const event = await until(`the outcome of ${id}`, () => events.find((e) => e.imageId === id));
        expect(event).to.include({ type: 'image.failed', code: expected.code });
        const [record] = await images().file(errorRecordName(id)).download();
        expect(FailureRecordV1.parse(JSON.parse(record.toString()))).to.include({ code: expected.code });
        expect((await uploads().file(originalName(id)).exists())[0], 'refused before the original was stored').to.equal(
          false,
        );
        return;
      }
      await runJobsOf(id);
      await expectReady(id, { width: shape.width, height: shape.height }, expected.formats);
    });
  });
});
