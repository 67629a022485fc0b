/**
 * QUALITY_MODE=auto through the real pipeline: upload → jobs on the Pub/Sub emulator → resize
 * (functions-framework) → variants and manifest in the local storage server. Each image's jobs
 * (per-width: one per width, so the plan is split) must agree on one quality per format, the
 * manifest must list it, and the stored variants must be exactly what a fixed-quality render at
 * those qualities writes.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import sharp from 'sharp';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import type { OutputFormat } from '../../shared/core/domain.js';
import { manifestName, VARIANT_METADATA } from '../../shared/core/naming.js';
import { renderAll } from '../../shared/image/render.js';
import { encoderSettingsFromConfig } from '../../shared/image/encode.js';
import { type JobMessage, type Manifest, ManifestV1 } from '../../shared/core/schemas.js';
import { makePhoto } from '../fixtures/images.js';
import { pullJobs, pushBody, startTestPipeline, TEST_PROJECT, type TestPipeline } from '../fixtures/pipeline.js';

describe('pipeline with QUALITY_MODE=auto (local storage, Pub/Sub emulator)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;

  before(async () => {
    pipeline = await startTestPipeline({ QUALITY_MODE: 'auto', FANOUT_STRATEGY: 'per-width', WIDTHS: '96,160' });
    useDeps(pipeline.deps);
  });
  after(async () => pipeline.stop());

  /** Uploads an image, delivers its jobs to resize as pushes, returns its manifest and jobs. */
  async function processImage(image: Buffer): Promise<{ manifest: Manifest; jobs: JobMessage[] }> {
    const response = await request(getTestServer('upload'))
      .post('/uploads')
      .set('Content-Type', 'application/octet-stream')
      .send(image);
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    const jobs = await pullJobs(pipeline.jobs);
    expect(jobs.length).to.equal(2); // per-width: the plan is split over two jobs
    for (const { message } of jobs) {
      const pushed = await request(getTestServer('resize'))
        .post(`/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`)
        .send(pushBody(message));
      expect(pushed.status).to.equal(204);
    }
    const [bytes] = await pipeline.deps.storage
      .bucket(pipeline.config.IMAGES_BUCKET)
      .file(manifestName(response.body.imageId as string))
      .download();
    return { manifest: ManifestV1.parse(JSON.parse(bytes.toString())), jobs: jobs.map(({ job }) => job) };
  }

  /** Checks the stored variants carry the manifest's quality and are what a fixed render at it writes. */
  async function checkEncodedAt(manifest: Manifest, original: Buffer, jobs: readonly JobMessage[]): Promise<void> {
    const qualities = manifest.qualities ?? {};
    const base = encoderSettingsFromConfig(pipeline.config);
    const encoders = {
      avif: { ...base.avif, quality: qualities.avif ?? 0 },
      webp: { ...base.webp, quality: qualities.webp ?? 0 },
      jpeg: { ...base.jpeg, quality: qualities.jpeg ?? 0 },
    };
    const images = pipeline.deps.storage.bucket(pipeline.config.IMAGES_BUCKET);
    for (const job of jobs) {
      const expected = await renderAll(original, job.variants, {
        encoders,
        keepMetadata: pipeline.config.KEEP_METADATA,
        limitInputPixels: pipeline.config.MAX_INPUT_PIXELS,
        maxFrames: pipeline.config.MAX_INPUT_FRAMES,
      });
      for (const variant of expected) {
        const entry = manifest.variants.find((v) => v.width === variant.width && v.format === variant.format);
        expect(entry, `${variant.format} ${variant.width}`).to.not.equal(undefined);
        const [stored] = await images.file(entry!.name).download();
        const [metadata] = await images.file(entry!.name).getMetadata();
        expect(metadata.metadata?.[VARIANT_METADATA.quality], entry!.name).to.equal(String(qualities[variant.format]));
        expect(
          stored.equals(variant.data),
          `${entry!.name} is the fixed render at q${qualities[variant.format]}`,
        ).to.equal(true);
      }
    }
  }

  it('records one quality per format in the manifest, encodes every variant at it, and gives a smooth image less than a textured photo', async () => {
    const side = 320;
    const gradient = Buffer.alloc(side * 240 * 3);
    for (let y = 0; y < 240; y++)
      for (let x = 0; x < side; x++) gradient.set([x >> 1, y, (x + y) >> 2], (y * side + x) * 3);
    const smooth = await sharp(gradient, { raw: { width: side, height: 240, channels: 3 } })
      .png()
      .toBuffer();
    const photo = await makePhoto({ width: 320, height: 240, seed: 21 });

    const smoothRun = await processImage(smooth);
    const photoRun = await processImage(photo);
    const formats: OutputFormat[] = ['avif', 'webp', 'jpeg'];
    for (const run of [smoothRun, photoRun]) {
      expect(Object.keys(run.manifest.qualities ?? {}).sort()).to.deep.equal([...formats].sort());
      expect(run.manifest.recipe?.settings).to.include({ QUALITY_MODE: 'auto' });
    }
    await checkEncodedAt(smoothRun.manifest, smooth, smoothRun.jobs);
    await checkEncodedAt(photoRun.manifest, photo, photoRun.jobs);
    for (const format of formats) {
      expect(smoothRun.manifest.qualities?.[format], format).to.be.lessThan(photoRun.manifest.qualities![format]!);
    }
    const done = pipeline.logs.filter((line) => line.event === 'job.done' && line.qualitySearch);
    expect(done.length).to.be.at.least(4);
    for (const line of done) {
      for (const search of Object.values(line.qualitySearch as Record<string, { trials: number }>)) {
        expect(search.trials).to.be.within(1, pipeline.config.AUTO_QUALITY_MAX_TRIALS);
      }
    }
  });
});
