/**
 * No variant larger than the original file (docs/api.md, "Variants larger than the original"):
 * through the real pipeline (upload → jobs on the Pub/Sub emulator → resize pushes → local
 * storage), a tiny, well-compressed original whose wider variants encode larger than it gets
 * those variants left out and listed in `omitted`, each format keeps its smallest width, and the
 * fan-in still announces exactly one `image.ready` under duplicate delivery split across jobs.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import sharp from 'sharp';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { ManifestV1, type Manifest } from '../../shared/core/schemas.js';
import { manifestName, omittedVariantName, variantName } from '../../shared/core/naming.js';
import { readImage } from '../../shared/state/image-doc.js';
import { makePhoto } from '../fixtures/images.js';
import {
  pullEvents,
  pullJobs,
  pushBody,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
} from '../fixtures/pipeline.js';
import { serviceAsset } from '../helpers.js';

/** A 200×150 four-colour palette PNG of flat shapes: about 400 bytes, smaller than its 160 px variants. */
async function flatShapesPng(): Promise<Buffer> {
  const svg = Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="150"><rect width="200" height="150" fill="#3366cc"/>' +
      '<rect x="20" y="20" width="80" height="60" fill="#ffcc00"/><circle cx="150" cy="100" r="30" fill="#cc2244"/></svg>',
  );
  return sharp(svg).png({ palette: true, colours: 4 }).toBuffer();
}

describe('variants larger than the original are left out (local storage, Pub/Sub emulator)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  const upload = () => request(getTestServer('upload'));
  const resize = () => request(getTestServer('resize'));
  const jobsPath = () => `/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`;

  before(async () => {
    // One job per width, so the 160 px job is one whose every variant is left out; every job
    // published (the preview first in its job, not run by the upload) so that each is delivered here.
    pipeline = await startTestPipeline({ FANOUT_STRATEGY: 'per-width', PREVIEW: 'first-in-job' });
    useDeps(pipeline.deps);
  });
  after(async () => pipeline.stop());

  async function uploadAndCollectJobs(image: Buffer) {
    const response = await upload().post('/uploads').set('Content-Type', 'application/octet-stream').send(image);
    expect(response.status, JSON.stringify(response.body)).to.equal(202);
    return { id: response.body.imageId as string, jobs: await pullJobs(pipeline.jobs) };
  }

  function deliver(messages: ReadonlyArray<{ message: { data: Buffer; id: string } }>): Promise<number[]> {
    return Promise.all(
      messages.map(({ message }) =>
        resize()
          .post(jobsPath())
          .send(pushBody(message))
          .then((r) => r.status),
      ),
    );
  }

  async function manifestOf(id: string): Promise<Manifest> {
    const [bytes] = await pipeline.deps.storage.bucket('test-images').file(manifestName(id)).download();
    return ManifestV1.parse(JSON.parse(bytes.toString()));
  }

  async function namesUnder(id: string): Promise<string[]> {
    const [files] = await pipeline.deps.storage.bucket('test-images').getFiles({ prefix: `${id}/` });
    return files.map((f) => f.name).sort();
  }

  it('leaves out every larger variant but the smallest of each format, under duplicate split delivery, with one image.ready', async () => {
    const image = await flatShapesPng();
    const { id, jobs } = await uploadAndCollectJobs(image);
    expect(jobs.map(({ job }) => job.variants[0]?.width).sort((a = 0, b = 0) => a - b)).to.deep.equal([96, 160]);
    const at160 = jobs.filter(({ job }) => job.variants[0]?.width === 160);

    // The 160 px job first, delivered twice: it writes nothing (the omissions are recorded in the
    // image's document, no marker objects any more), and the image is not ready.
    expect(await deliver([...at160, ...at160])).to.deep.equal([204, 204]);
    const omittedNames = (['avif', 'webp', 'jpeg'] as const).map((f) => omittedVariantName(id, 160, f));
    expect(await namesUnder(id)).to.deep.equal([]);
    const partial = await readImage(pipeline.deps, id);
    expect(partial?.variants.map((v) => `${v.name} ${v.omitted}`).sort()).to.deep.equal(
      omittedNames.map((name) => `${name} larger_than_original`).sort(),
    );
    expect(partial?.jobsDone, 'only the 160 px job done').to.deep.equal([at160[0]!.job.job.index]);
    const processing = await upload().get(`/uploads/${serviceAsset(id)}`);
    expect(processing.status).to.equal(202);
    expect(processing.body).to.include({ status: 'processing', done: 3, total: 6 });

    // Then every job twice more, interleaved; a duplicate that raced the announcement is retried, as Pub/Sub would.
    const statuses = await deliver([...jobs, ...jobs.slice().reverse()]);
    for (const [index, status] of statuses.entries()) expect([204, 500], `delivery ${index}`).to.include(status);
    expect(await deliver(jobs)).to.deep.equal(jobs.map(() => 204));

    const manifest = await manifestOf(id);
    expect(manifest.variants.map((v) => `${v.format} ${v.width}`)).to.deep.equal(['avif 96', 'webp 96', 'jpeg 96']);
    // The floor is kept even though it too is larger than the original: no format is left without a variant.
    expect(manifest.variants.find((v) => v.format === 'jpeg')?.bytes).to.be.greaterThan(image.length);
    expect(manifest.formats).to.deep.equal(['avif', 'webp', 'jpeg']);
    expect(manifest.omitted?.map(({ bytes: _bytes, ...rest }) => rest)).to.deep.equal(
      (['avif', 'webp', 'jpeg'] as const).map((format) => ({
        width: 160,
        height: 120,
        format,
        reason: 'larger_than_original',
      })),
    );
    for (const entry of manifest.omitted ?? []) expect(entry.bytes).to.be.greaterThan(image.length);
    expect(manifest.placeholder?.color).to.match(/^#[0-9a-f]{6}$/);
    // No object for an omitted variant: only the written ones and the manifest.
    expect(await namesUnder(id)).to.deep.equal(
      [...(['avif', 'webp', 'jpeg'] as const).map((f) => variantName(id, 96, f)), manifestName(id)].sort(),
    );
    const ready = await readImage(pipeline.deps, id);
    expect(ready?.status).to.equal('ready');
    expect(
      ready?.variants
        .filter((v) => v.omitted !== undefined)
        .map((v) => `${v.name} ${v.omitted}`)
        .sort(),
      'the document records the omissions',
    ).to.deep.equal(omittedNames.map((name) => `${name} larger_than_original`).sort());
    expect(
      ready?.variants
        .filter((v) => v.omitted === undefined)
        .map((v) => v.name)
        .sort(),
    ).to.deep.equal((['avif', 'webp', 'jpeg'] as const).map((f) => variantName(id, 96, f)).sort());

    const events = (await pullEvents(pipeline.events)).filter((e) => e.imageId === id);
    expect(events.map((e) => e.type)).to.deep.equal(['image.ready']);
    expect(events[0]).to.include({ variants: 3 });
    const status = await upload().get(`/uploads/${serviceAsset(id)}`);
    expect(status.status).to.equal(200);
    expect(status.body.manifest.omitted).to.have.length(3);
  });

  it('keeps a variant that is smaller than the original next to larger ones of the same width', async () => {
    // 145 bytes of one flat colour: at 160 px WebP is smaller (~120 bytes), AVIF and JPEG larger.
    const image = await sharp({ create: { width: 200, height: 150, channels: 3, background: '#3366cc' } })
      .png({ palette: true })
      .toBuffer();
    const { id, jobs } = await uploadAndCollectJobs(image);
    expect(await deliver(jobs)).to.deep.equal(jobs.map(() => 204));
    const manifest = await manifestOf(id);
    const written = manifest.variants.map((v) => `${v.format} ${v.width}`);
    const omitted = (manifest.omitted ?? []).map((o) => `${o.format} ${o.width}`);
    expect(written).to.include.members(['avif 96', 'webp 96', 'jpeg 96', 'webp 160']);
    expect(omitted).to.include.members(['avif 160', 'jpeg 160']);
    expect([...written, ...omitted]).to.have.length(6);
    const names = await namesUnder(id);
    for (const o of manifest.omitted ?? []) {
      expect(names, `no object for omitted ${o.format} ${o.width}`).not.to.include(variantName(id, o.width, o.format));
      expect(names, `no marker for omitted ${o.format} ${o.width}`).not.to.include(
        omittedVariantName(id, o.width, o.format),
      );
    }
    const doc = await readImage(pipeline.deps, id);
    expect(
      doc?.variants
        .filter((v) => v.omitted !== undefined)
        .map((v) => v.name)
        .sort(),
      'the document records the omissions',
    ).to.deep.equal((manifest.omitted ?? []).map((o) => omittedVariantName(id, o.width, o.format)).sort());
    for (const v of manifest.variants.filter((x) => x.width === 160)) expect(v.bytes).to.be.at.most(image.length);
    const events = (await pullEvents(pipeline.events)).filter((e) => e.imageId === id);
    expect(events.map((e) => e.type)).to.deep.equal(['image.ready']);
  });

  it('changes nothing when no variant is larger than the original', async () => {
    const image = await makePhoto({ width: 640, height: 480, seed: 31 });
    const { id, jobs } = await uploadAndCollectJobs(image);
    expect(await deliver(jobs)).to.deep.equal(jobs.map(() => 204));
    const manifest = await manifestOf(id);
    expect(manifest.variants).to.have.length(6);
    expect(manifest).not.to.have.property('omitted');
    expect((await namesUnder(id)).filter((name) => name.includes('/omitted/'))).to.deep.equal([]);
    for (const v of manifest.variants) expect(v.bytes).to.be.lessThan(image.length);
  });
});
