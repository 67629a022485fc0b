/**
 * ASPECTS end to end: upload (with and without `?focus=`) and `incoming/` (with `focus` metadata)
 * → jobs on the real Pub/Sub emulator, fanned out one per width → resize → variants and manifest
 * in the local storage server.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import type { Server } from 'node:http';
import sharp from 'sharp';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { FailureRecordV1, ManifestV1, type Manifest, OriginalInfo } from '../../shared/core/schemas.js';
import { recipeOf } from '../../shared/core/recipe.js';
import { readImage, transactImage } from '../../shared/state/image-doc.js';
import { claimForAccept, recordOriginal } from '../../shared/state/transitions.js';
import { UNDISPATCHED_GRACE_MS } from '../../shared/state/policy.js';
import { errorRecordName, imageIdOf, manifestName, originalName } from '../../shared/core/naming.js';
import { planImage, planVariants } from '../../shared/image/plan.js';
import { makePhoto } from '../fixtures/images.js';
import { freePort, serviceAsset } from '../helpers.js';
import {
  pullEvents,
  pullJobs,
  pushBody,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
} from '../fixtures/pipeline.js';

describe('aspects: upload → fanned-out jobs → cropped variants and manifest (local storage, Pub/Sub emulator)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let ingestServer: Server;
  const upload = () => request(getTestServer('upload'));
  const resize = () => request(getTestServer('resize'));
  const images = () => pipeline.deps.storage.bucket('test-images');
  const jobsPath = () => `/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`;

  before(async () => {
    pipeline = await startTestPipeline({
      ASPECTS: '1:1,16:9',
      FANOUT_STRATEGY: 'per-width',
      WIDTHS: '96,160,320',
      CROP_STRATEGY: 'attention',
    });
    useDeps(pipeline.deps);
    const port = await freePort();
    ingestServer = getTestServer('ingest').listen(port, '127.0.0.1');
    pipeline.storageServer.addNotification('test-uploads', `http://127.0.0.1:${port}/`);
  });
  after(async () => {
    await new Promise((r) => ingestServer.close(r));
    await pipeline.stop();
  });

  async function processAll(): Promise<number> {
    const jobs = await pullJobs(pipeline.jobs);
    const statuses = await Promise.all(
      jobs.map(({ message }) =>
        resize()
          .post(jobsPath())
          .send(pushBody(message))
          .then((r) => r.status),
      ),
    );
    expect(statuses).to.deep.equal(jobs.map(() => 204));
    return jobs.length;
  }

  async function manifestOf(id: string): Promise<Manifest> {
    const [bytes] = await images().file(manifestName(id)).download();
    return ManifestV1.parse(JSON.parse(bytes.toString()));
  }

  async function download(name: string): Promise<Buffer> {
    return (await images().file(name).download())[0];
  }

  /** Luma at 48×48 (JPEG noise of the 96 px variants averages out), for comparing regions. */
  const luma = (image: Buffer) => sharp(image).resize(48, 48, { fit: 'fill' }).greyscale().raw().toBuffer();
  const meanAbsDiff = (a: Buffer, b: Buffer) =>
    a.reduce((sum, value, i) => sum + Math.abs(value - b[i]!), 0) / a.length;

  it('yields both aspects at every fitting width and format, with the same crop in every entry, counted in progress', async () => {
    const image = await makePhoto({ width: 400, height: 240, seed: 61 });
    const response = await upload().post('/uploads').set('Content-Type', 'image/jpeg').send(image);
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    const id = response.body.imageId as string;
    const listed = response.body.variants as Array<{ width: number; format: string; aspect?: string; name: string }>;
    expect(listed.filter((v) => v.aspect === '1:1').map((v) => v.name)).to.include(`${id}/1x1/240w.avif`);
    expect(listed.filter((v) => v.aspect === '16:9').map((v) => v.name)).to.include(`${id}/16x9/320w.jpg`);

    // Job 0, the preview alone, ran in the upload (PREVIEW=inline): one variant done, the rest to come.
    expect(response.body.preview, 'the preview in the 202').to.include({ width: 96, format: 'jpeg' });
    const progress = await upload().get(`/uploads/${serviceAsset(id)}`);
    expect(progress.body).to.include({ status: 'processing', done: 1, total: listed.length });

    expect(await processAll()).to.be.above(3); // one job per width of each frame
    const manifest = await manifestOf(id);
    expect(Object.keys(manifest.aspects ?? {})).to.deep.equal(['1:1', '16:9']);
    const expected = {
      '1:1': { size: [240, 240], widths: [96, 160, 240] },
      '16:9': { size: [400, 225], widths: [96, 160, 320] }, // no configured width ≥ 400, so no 400 px one
    } as const;
    for (const [aspect, { size, widths }] of Object.entries(expected)) {
      const section = manifest.aspects![aspect]!;
      expect([section.crop.width, section.crop.height], aspect).to.deep.equal(size);
      expect(section.crop.by).to.equal('attention');
      expect(section.formats).to.deep.equal(['avif', 'webp', 'jpeg']);
      const { left, top, width, height } = section.crop;
      for (const format of ['avif', 'webp', 'jpeg'] as const) {
        expect(
          section.variants.filter((v) => v.format === format).map((v) => v.width),
          `${aspect} ${format}`,
        ).to.deep.equal([...widths]);
      }
      for (const variant of section.variants) {
        // Every job that rendered a variant recorded the rectangle it used: all agree.
        expect(variant.crop, variant.name).to.deep.equal({ left, top, width, height });
        const bytes = await download(variant.name);
        const metadata = await sharp(bytes).metadata();
        expect([metadata.width, metadata.height], variant.name).to.deep.equal([variant.width, variant.height]);
        expect(variant.height).to.equal(Math.round((variant.width * height) / width));
        expect(bytes.length).to.equal(variant.bytes);
      }
      // Two widths, rendered by different jobs, show the same pixels once scaled to one size.
      const jpegs = section.variants.filter((v) => v.format === 'jpeg');
      const [smallest, largest] = [jpegs[0]!, jpegs[jpegs.length - 1]!];
      const small = await luma(await download(smallest.name));
      expect(meanAbsDiff(small, await luma(await download(largest.name))), aspect).to.be.below(4);
      // …while the uncropped picture, squeezed to the same size, is far off (the check can fail).
      expect(meanAbsDiff(small, await luma(await download(manifest.variants.at(-1)!.name))), aspect).to.be.above(8);
    }
    // Uncropped variants are as they always were.
    expect(manifest.variants.map((v) => v.name)).to.deep.equal(
      planImage({ width: 400, height: 240 }, { WIDTHS: [96, 160, 320], FORMATS: ['avif', 'webp', 'jpeg'] })
        .variants.sort(
          (a, b) =>
            ['avif', 'webp', 'jpeg'].indexOf(a.format) - ['avif', 'webp', 'jpeg'].indexOf(b.format) ||
            a.width - b.width,
        )
        .map((v) => `${id}/${v.width}w.${v.format === 'jpeg' ? 'jpg' : v.format}`),
    );
    const events = await pullEvents(pipeline.events);
    expect(
      events.filter((e) => e.imageId === id).map((e) => (e.type === 'image.ready' ? e.variants : -1)),
    ).to.deep.equal([listed.length]);
  });

  it('moves the crop to a focal point given with ?focus=', async () => {
    const left = await makePhoto({ width: 400, height: 240, seed: 62 });
    const right = await makePhoto({ width: 400, height: 240, seed: 63 });
    const a = await upload().post('/uploads?focus=0.05,0.5').set('Content-Type', 'image/jpeg').send(left);
    const b = await upload().post('/uploads?focus=0.95,0.5').set('Content-Type', 'image/jpeg').send(right);
    expect([a.status, b.status]).to.deep.equal([202, 202]);
    await processAll();
    const cropA = (await manifestOf(a.body.imageId)).aspects!['1:1']!.crop;
    const cropB = (await manifestOf(b.body.imageId)).aspects!['1:1']!.crop;
    expect(cropA).to.deep.equal({ left: 0, top: 0, width: 240, height: 240, by: 'focus' });
    expect(cropB).to.deep.equal({ left: 160, top: 0, width: 240, height: 240, by: 'focus' });
    // The pixels follow: B's square is the right-hand 240 px of its original.
    const square = (await manifestOf(b.body.imageId)).aspects!['1:1']!.variants.find(
      (v) => v.format === 'jpeg' && v.width === 240,
    )!;
    const reference = await sharp(right).extract({ left: 160, top: 0, width: 240, height: 240 }).toBuffer();
    expect(meanAbsDiff(await luma(await download(square.name)), await luma(reference))).to.be.below(4);
    await pullEvents(pipeline.events, { quietMs: 300 });
  });

  it('keeps the crops stored with an original whose first dispatch never finished, whatever the retry would choose', async () => {
    const image = await makePhoto({ width: 400, height: 240, seed: 67 });
    const id = imageIdOf(image);
    const stored = {
      '1:1': { left: 0, top: 0, width: 240, height: 240, by: 'focus' },
      '16:9': { left: 0, top: 0, width: 400, height: 225, by: 'focus' },
    };
    // As accept leaves it when it dies between storing the original and publishing its jobs: the
    // claim (with its crops) and the recorded original in the document, past the claim's grace.
    const info = {
      format: 'jpeg',
      width: 400,
      height: 240,
      bytes: image.length,
      contentType: 'image/jpeg',
      crops: stored,
    };
    const earlier = {
      firestore: pipeline.deps.firestore,
      now: () => new Date(Date.now() - UNDISPATCHED_GRACE_MS - 60_000),
    };
    const claim = await transactImage(
      earlier,
      id,
      claimForAccept({
        id,
        info: OriginalInfo.parse(info),
        source: 'upload',
        acceptedAt: earlier.now(),
        recipe: recipeOf(pipeline.config).hash,
        plannedVariants: planVariants(info, pipeline.config).length,
      }),
    );
    expect(claim.kind).to.equal('claimed');
    const file = pipeline.deps.storage.bucket('test-uploads').file(originalName(id));
    await file.save(image, {
      resumable: false,
      contentType: 'image/jpeg',
      metadata: { metadata: { imageId: id, format: 'jpeg', width: '400', height: '240', source: 'upload' } },
    });
    const [{ generation }] = await file.getMetadata();
    const original = { bucket: 'test-uploads', name: originalName(id), generation: String(generation) };
    expect(
      await transactImage(earlier, id, recordOriginal(claim.kind === 'claimed' ? claim.dispatch : -1, original)),
    ).to.equal('recorded');
    // The same image again (no focus: a focus would name another image, its crops its own);
    // CROP_STRATEGY would place the crops elsewhere, but the stored ones are kept.
    const response = await upload().post('/uploads').set('Content-Type', 'image/jpeg').send(image);
    expect(response.status).to.equal(202);
    expect(response.body.imageId).to.equal(id);
    const jobs = await pullJobs(pipeline.jobs);
    expect(jobs.length).to.be.above(1);
    for (const { job } of jobs) expect(job.info.crops, `job ${job.job.index}`).to.deep.equal(stored);
    for (const { job } of jobs)
      expect(job.original, `job ${job.job.index} reads the stored original`).to.deep.equal(original);
    expect((await readImage(pipeline.deps, id))?.info.crops, 'the document keeps its crops').to.deep.equal(stored);
    for (const { message } of jobs) await resize().post(jobsPath()).send(pushBody(message));
    expect((await manifestOf(id)).aspects!['1:1']!.crop).to.deep.equal(stored['1:1']);
    await pullEvents(pipeline.events, { quietMs: 300 });
  });

  for (const bad of ['1.5,0.5', 'left', '0.5']) {
    it(`answers ?focus=${bad} with 400 invalid_focus and stores nothing`, async () => {
      const image = await makePhoto({ width: 200, height: 120, seed: 64 });
      const response = await upload()
        .post(`/uploads?focus=${encodeURIComponent(bad)}`)
        .set('Content-Type', 'image/jpeg')
        .send(image);
      expect(response.status).to.equal(400);
      expect(response.body.error).to.include({ code: 'invalid_focus', retryable: false });
      expect(response.body.error.message).to.match(/two numbers from 0 to 1|from 0 to 1/);
      const [exists] = await pipeline.deps.storage
        .bucket('test-uploads')
        .file(`originals/${imageIdOf(image)}`)
        .exists();
      expect(exists).to.equal(false);
    });
  }

  it('reads focus metadata on incoming/ objects, and records a bad one as a permanent invalid_focus failure', async () => {
    const good = await makePhoto({ width: 400, height: 240, seed: 65 });
    const bad = await makePhoto({ width: 400, height: 240, seed: 66 });
    const uploads = pipeline.deps.storage.bucket('test-uploads');
    await uploads
      .file('incoming/good.jpg')
      .save(good, { resumable: false, contentType: 'image/jpeg', metadata: { metadata: { focus: '1,1' } } });
    await uploads
      .file('incoming/bad.jpg')
      .save(bad, { resumable: false, contentType: 'image/jpeg', metadata: { metadata: { focus: '2,2' } } });

    const record = await waitForObject(errorRecordName(imageIdOf(bad)));
    const failure = FailureRecordV1.parse(JSON.parse(record.toString()));
    expect(failure.code).to.equal('invalid_focus');
    expect(failure.message).to.match(/from 0 to 1/);
    expect(failure.source).to.deep.equal({ bucket: 'test-uploads', name: 'incoming/bad.jpg' });

    await processAll();
    // With ASPECTS set, the focus is part of the image's identity (docs/state.md, "Assets").
    const crop = (await manifestOf(imageIdOf(good, { x: 1, y: 1 }))).aspects!['16:9']!.crop;
    expect(crop).to.deep.equal({ left: 0, top: 15, width: 400, height: 225, by: 'focus' });
    await pullEvents(pipeline.events, { quietMs: 300 });
  });

  /** Waits for the images-bucket object that the ingest notification's handler writes. */
  async function waitForObject(name: string): Promise<Buffer> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const [exists] = await images().file(name).exists();
      if (exists) return download(name);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${name}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
});
