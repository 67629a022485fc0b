/**
 * ANIMATION=keep through the pipeline (upload function, jobs on the Pub/Sub emulator pushed to
 * resize, local storage server): an animated GIF or WebP gets animated WebP variants with every
 * frame, its delays and loop, stills in JPEG and AVIF, and a manifest that says which are
 * animated; an image made with first-frame is brought up to date when keep is deployed.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import sharp from 'sharp';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { createDeps } from '../../shared/cloud/deps.js';
import { imageIdOf, manifestName } from '../../shared/core/naming.js';
import { recipeOf } from '../../shared/core/recipe.js';
import { type Manifest, ManifestV1 } from '../../shared/core/schemas.js';
import { srcsetOf } from '../../shared/image/manifest.js';
import { runJob } from '../../shared/pipeline/run-job.js';
import { ANIMATION_FIXTURE, makeAnimatedGif, makeAnimatedWebp } from '../fixtures/images.js';
import {
  pullEvents,
  pullJobs,
  pushBody,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
} from '../fixtures/pipeline.js';
import { serviceAsset } from '../helpers.js';

describe('animation: ANIMATION=keep through upload → Pub/Sub → resize → manifest', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  const upload = () => request(getTestServer('upload'));
  const { width, height, frames, delays, loop } = ANIMATION_FIXTURE;
  const MAX_PIXELS = 2_000_000;

  before(async () => {
    // A small pixel cap, so that an animation past it is cheap to make.
    pipeline = await startTestPipeline({ ANIMATION: 'keep', MAX_INPUT_PIXELS: String(MAX_PIXELS) });
    useDeps(pipeline.deps);
  });
  after(async () => pipeline.stop());

  async function download(name: string): Promise<Buffer> {
    const [bytes] = await pipeline.deps.storage.bucket('test-images').file(name).download();
    return bytes;
  }

  async function manifestOf(id: string): Promise<Manifest> {
    return ManifestV1.parse(JSON.parse((await download(manifestName(id))).toString()));
  }

  /** Every variant as stored: WebP animated with the original's frames, delays and loop; the rest frame 1. */
  async function expectAnimatedWebp(manifest: Manifest) {
    expect(manifest.original.frames).to.equal(frames);
    // Every WebP is animated (a lossless WebP of flat colours is so small that the wider animated
    // WebP encodes larger than it and is left out as `larger_than_original`: the smallest stays).
    const webps = manifest.variants.filter((v) => v.format === 'webp');
    expect(webps.length).to.be.above(0);
    expect(manifest.variants.filter((v) => v.animated)).to.deep.equal(webps);
    for (const variant of manifest.variants) {
      const metadata = await sharp(await download(variant.name)).metadata();
      expect([metadata.width, metadata.pageHeight ?? metadata.height], variant.name).to.deep.equal([
        variant.width,
        variant.height,
      ]);
      if (variant.format === 'webp') {
        expect(variant.animated, variant.name).to.equal(true);
        expect(variant.name).to.match(/\/\d+w\.anim\.webp$/);
        expect(metadata.pages, variant.name).to.equal(frames);
        expect(metadata.delay, variant.name).to.deep.equal([...delays]);
        expect(metadata.loop, variant.name).to.equal(loop);
      } else {
        expect(variant.animated, variant.name).to.equal(undefined);
        expect(metadata.pages ?? 1, variant.name).to.equal(1);
      }
    }
    // The WebP <source> lists the animated variants, as any srcset does.
    expect(srcsetOf(manifest, 'webp').split(', ')).to.deep.equal(
      manifest.variants.filter((v) => v.format === 'webp').map((v) => `${v.url} ${v.width}w`),
    );
  }

  for (const [name, make] of [
    ['GIF', () => makeAnimatedGif({ width, height, frames, delays, loop })],
    ['WebP', () => makeAnimatedWebp({ width, height, frames, delays, loop })],
  ] as const) {
    it(`an animated ${name} goes to ready with animated WebP variants, and the manifest says so`, async () => {
      const image = await make();
      const response = await upload().post('/uploads').set('Content-Type', 'application/octet-stream').send(image);
      expect(response.status, JSON.stringify(response.body)).to.equal(202);
      const id = response.body.imageId as string;
      const answered = response.body.variants as Array<{ format: string; animated?: boolean; name: string }>;
      expect(answered.filter((v) => v.animated).every((v) => v.format === 'webp' && v.name.endsWith('.anim.webp'))).to
        .be.true;
      const jobs = await pullJobs(pipeline.jobs);
      const path = `/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`;
      for (const { message } of jobs) {
        const pushed = await request(getTestServer('resize')).post(path).send(pushBody(message));
        expect(pushed.status).to.equal(204);
      }
      expect((await upload().get(`/uploads/${serviceAsset(id)}`)).status).to.equal(200);
      const manifest = await manifestOf(id);
      expect(manifest.recipe?.settings).to.include({ ANIMATION: 'keep' });
      await expectAnimatedWebp(manifest);
      const events = (await pullEvents(pipeline.events)).filter((e) => e.imageId === id);
      expect(events.map((e) => e.type)).to.deep.equal(['image.ready']);
    });
  }

  it('an animation whose frames together pass MAX_INPUT_PIXELS is a 422 too_many_pixels at upload, before any decode', async () => {
    const image = await makeAnimatedGif({ width: 500, height: 500, frames: 9 }); // 2.25 MP in all, 0.25 MP a frame
    const response = await upload().post('/uploads').set('Content-Type', 'image/gif').send(image);
    expect(response.status, JSON.stringify(response.body)).to.equal(422);
    expect(response.body.error.code).to.equal('too_many_pixels');
    expect(response.body.error.details).to.include({ frames: 9, maxPixels: MAX_PIXELS });
  });

  it('an animation made with first-frame is re-rendered when keep is deployed: animated WebP replace the stills', async () => {
    const image = await makeAnimatedGif({
      width,
      height,
      frames,
      delays,
      loop,
      colours: [
        [250, 200, 0],
        [0, 90, 250],
      ],
    });
    const id = imageIdOf(image);
    const stills = createDeps({ ...pipeline.config, ANIMATION: 'first-frame' }, { log: pipeline.deps.log });
    useDeps(stills);
    try {
      expect((await upload().post('/uploads').set('Content-Type', 'image/gif').send(image)).status).to.equal(202);
      for (const { job } of await pullJobs(pipeline.jobs)) await runJob(stills, job);
    } finally {
      useDeps(pipeline.deps);
    }
    const before = await manifestOf(id);
    expect(before.variants.some((v) => v.animated)).to.equal(false);
    expect(before.recipe?.hash).to.equal(recipeOf(stills.config).hash);
    expect(recipeOf(pipeline.config).hash).to.not.equal(before.recipe?.hash);
    await pullEvents(pipeline.events);

    const response = await upload().post('/uploads').set('Content-Type', 'image/gif').send(image);
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    const jobs = (await pullJobs(pipeline.jobs)).map(({ job }) => job);
    expect(jobs.every((job) => job.replaces === before.recipe?.hash)).to.equal(true);
    for (const job of jobs) await runJob(pipeline.deps, job);
    const after = await manifestOf(id);
    expect(after.recipe?.hash).to.equal(recipeOf(pipeline.config).hash);
    await expectAnimatedWebp(after);
    // The still WebP variants went once the new manifest was out; JPEG and AVIF were kept as they were.
    const [files] = await pipeline.deps.storage.bucket('test-images').getFiles({ prefix: `${id}/` });
    expect(files.map((f) => f.name).filter((n) => /\d+w\.webp$/.test(n))).to.deep.equal([]);
    expect(after.variants.filter((v) => !v.animated).map((v) => v.name)).to.deep.equal(
      before.variants.filter((v) => v.format !== 'webp').map((v) => v.name),
    );
    const events = (await pullEvents(pipeline.events)).filter((e) => e.imageId === id);
    expect(events.map((e) => e.type)).to.deep.equal(['image.updated']);
  });
});
