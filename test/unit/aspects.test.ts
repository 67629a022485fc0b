/**
 * Aspect-ratio variants (ASPECTS, CROP_STRATEGY, focus): config, focal points, crop choice,
 * planning, naming, rendering from the cascade and the manifest section. Real sharp, real images.
 */
import { expect } from 'chai';
import sharp, { type Sharp } from 'sharp';
import { loadConfig, type Config } from '../../shared/core/config.js';
import { chooseCrops, cropMetadata, largestCropSize, parseCropMetadata, parseFocus } from '../../shared/image/crop.js';
import type { DocumentSnapshot } from '@google-cloud/firestore';
import { buildJobs } from '../../shared/pipeline/dispatch.js';
import { imageDocData, imageDocFrom } from '../../shared/state/image-doc.js';
import { claimForAccept, markDispatched } from '../../shared/state/transitions.js';
import { redispatchStuck } from '../../shared/state/upkeep.js';
import { PipelineError } from '../../shared/core/errors.js';
import { buildManifest, srcsetOf, type VariantObject } from '../../shared/image/manifest.js';
import {
  ManifestV1,
  parseJob,
  type AspectCrop,
  type OriginalInfo,
  type VariantSpec,
} from '../../shared/core/schemas.js';
import { variantName } from '../../shared/core/naming.js';
import { planImage, splitIntoJobs } from '../../shared/image/plan.js';
import { renderAll, type RenderOptions } from '../../shared/image/render.js';
import { encoderSettingsFromConfig } from '../../shared/image/encode.js';
import { makePhoto } from '../fixtures/images.js';

const baseEnv = { UPLOADS_BUCKET: 'test-uploads', IMAGES_BUCKET: 'test-images' };
const configWith = (env: Record<string, string>): Config => loadConfig({ ...baseEnv, ...env });

function errorOf(fn: () => unknown): PipelineError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(PipelineError);
    return error as PipelineError;
  }
  throw new Error('expected an error');
}

async function rejectionOf(promise: Promise<unknown>): Promise<PipelineError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(PipelineError);
    return error as PipelineError;
  }
  throw new Error('expected a rejection');
}

/**
 * Luma of an image resized to `width`×`height`: JPEG halves chroma resolution, which on these noisy
 * synthetic colours alone costs ~5.5/255 at 96 px, so comparisons of regions look at luma.
 */
async function rawPixels(image: Buffer | Sharp, width: number, height: number): Promise<Buffer> {
  const pipeline = Buffer.isBuffer(image) ? sharp(image) : image;
  return pipeline.resize(width, height, { fit: 'fill' }).removeAlpha().greyscale().raw().toBuffer();
}

/** Mean absolute difference of two equal-length pixel buffers, 0–255. */
function meanAbsDiff(a: Buffer, b: Buffer): number {
  expect(a.length).to.equal(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/**
 * A flat grey 800×400 picture with one busy, saturated 160×160 patch centred at (680, 200): the
 * only place that attention (saturation, skin, edges) or entropy can pick.
 */
async function salientRight(): Promise<Buffer> {
  const patch = await makePhoto({ width: 160, height: 160, seed: 3, format: 'png' });
  return sharp({ create: { width: 800, height: 400, channels: 3, background: { r: 128, g: 128, b: 128 } } })
    .composite([{ input: patch, left: 600, top: 120 }])
    .png()
    .toBuffer();
}

describe('aspects', () => {
  describe('configuration', () => {
    it('defaults to no aspects and the attention strategy', () => {
      const config = configWith({});
      expect(config.ASPECTS).to.deep.equal([]);
      expect(config.CROP_STRATEGY).to.equal('attention');
    });

    it('reads ASPECTS and CROP_STRATEGY', () => {
      const config = configWith({ ASPECTS: '1:1, 16:9,4:5', CROP_STRATEGY: 'entropy' });
      expect(config.ASPECTS).to.deep.equal(['1:1', '16:9', '4:5']);
      expect(config.CROP_STRATEGY).to.equal('entropy');
    });

    for (const [env, pattern] of [
      [{ ASPECTS: '16-9' }, /ASPECTS.*W:H/],
      [{ ASPECTS: '0:1' }, /ASPECTS.*W:H/],
      [{ ASPECTS: '1:1,1:1' }, /ASPECTS.*repeat/],
      [{ CROP_STRATEGY: 'face' }, /CROP_STRATEGY.*attention, entropy, centre/],
    ] as const) {
      it(`refuses ${JSON.stringify(env)} with a message naming the variable`, () => {
        expect(() => configWith(env)).to.throw(pattern);
      });
    }
  });

  describe('focus', () => {
    it('parses two numbers from 0 to 1', () => {
      expect(parseFocus('0.42,0.31')).to.deep.equal({ x: 0.42, y: 0.31 });
      expect(parseFocus(' 0 , 1 ')).to.deep.equal({ x: 0, y: 1 });
      expect(parseFocus('.5,1.0')).to.deep.equal({ x: 0.5, y: 1 });
      expect(parseFocus(undefined)).to.equal(undefined);
    });

    for (const bad of [
      '',
      '0.5',
      '0.5,0.5,0.5',
      'a,b',
      '-0.1,0.2',
      '1.2,0.3',
      '0.3,1.01',
      'NaN,0',
      '1e-1,0.5',
      '0x1,0',
    ]) {
      it(`refuses ${JSON.stringify(bad)} as invalid_focus (400, permanent)`, () => {
        const error = errorOf(() => parseFocus(bad));
        expect(error.code).to.equal('invalid_focus');
        expect(error.status).to.equal(400);
        expect(error.kind).to.equal('permanent');
        expect(error.message).to.match(/from 0 to 1/);
      });
    }
  });

  describe('choosing crops', () => {
    const size = { width: 400, height: 300 };

    it('takes the largest rectangle of each aspect', () => {
      expect(largestCropSize('1:1', size)).to.deep.equal({ width: 300, height: 300 });
      expect(largestCropSize('16:9', size)).to.deep.equal({ width: 400, height: 225 });
      expect(largestCropSize('4:5', size)).to.deep.equal({ width: 240, height: 300 });
      expect(largestCropSize('100:1', { width: 50, height: 50 })).to.deep.equal({ width: 50, height: 1 });
    });

    it('is nothing (and decodes nothing) without aspects', async () => {
      expect(
        await chooseCrops(Buffer.from('not an image'), size, {
          aspects: [],
          strategy: 'attention',
          limitInputPixels: 1e8,
        }),
      ).to.equal(undefined);
    });

    it('centres the crop for the centre strategy, without decoding', async () => {
      const crops = await chooseCrops(Buffer.from('not an image'), size, {
        aspects: ['1:1', '16:9'],
        strategy: 'centre',
        limitInputPixels: 1e8,
      });
      expect(crops).to.deep.equal({
        '1:1': { left: 50, top: 0, width: 300, height: 300, by: 'centre' },
        '16:9': { left: 0, top: 38, width: 400, height: 225, by: 'centre' },
      });
    });

    it('centres the crop on a focal point, clamped inside the image (the focus overrides the strategy)', async () => {
      const at = async (x: number, y: number) =>
        (await chooseCrops(Buffer.from('x'), size, {
          aspects: ['1:1'],
          strategy: 'attention',
          focus: { x, y },
          limitInputPixels: 1e8,
        }))!['1:1'];
      expect(await at(0.5, 0.5)).to.deep.equal({ left: 50, top: 0, width: 300, height: 300, by: 'focus' });
      expect(await at(0, 0)).to.include({ left: 0, top: 0 });
      expect(await at(1, 1)).to.include({ left: 100, top: 0 });
      expect(await at(0.3, 0.5)).to.include({ left: 0 }); // 120 − 150 clamps to 0
      expect(await at(0.6, 0.5)).to.include({ left: 90 }); // 240 − 150
    });

    for (const strategy of ['attention', 'entropy'] as const) {
      it(`${strategy} moves the crop onto the busy region, the same rectangle every time`, async () => {
        const image = await salientRight();
        const request = { aspects: ['1:1', '4:5'], strategy, limitInputPixels: 1e8 };
        const crops = (await chooseCrops(image, { width: 800, height: 400 }, request))!;
        expect(crops['1:1']).to.include({ width: 400, height: 400, top: 0, by: strategy });
        expect(crops['1:1']!.left).to.be.within(280, 400); // covers the patch at 600–760
        expect(crops['4:5']).to.include({ width: 320, height: 400 });
        expect(crops['4:5']!.left + crops['4:5']!.width).to.be.at.least(760);
        expect(await chooseCrops(image, { width: 800, height: 400 }, request)).to.deep.equal(crops);
      });
    }

    it('refuses an original that cannot be decoded as corrupt_image', async () => {
      const error = await rejectionOf(
        chooseCrops(Buffer.from('not an image'), size, {
          aspects: ['1:1'],
          strategy: 'attention',
          limitInputPixels: 1e8,
        }),
      );
      expect(error.code).to.equal('corrupt_image');
    });

    it('round-trips a rectangle through object metadata', () => {
      expect(parseCropMetadata(cropMetadata({ left: 1, top: 2, width: 3, height: 4 }))).to.deep.equal({
        left: 1,
        top: 2,
        width: 3,
        height: 4,
      });
      expect(parseCropMetadata('1,2,0,4')).to.equal(undefined);
      expect(parseCropMetadata(undefined)).to.equal(undefined);
    });
  });

  describe('planning and naming', () => {
    const config = configWith({ WIDTHS: '96,160,320,640', ASPECTS: '1:1,16:9' });
    const crops = {
      '1:1': { left: 50, top: 0, width: 300, height: 300 },
      '16:9': { left: 0, top: 38, width: 400, height: 225 },
    };

    it('plans every fitting width and format of each aspect, never wider than its crop', () => {
      const { variants } = planImage({ width: 400, height: 300, crops }, config);
      const of = (aspect?: string) => variants.filter((v) => v.aspect === aspect).map((v) => `${v.width}.${v.format}`);
      expect(of(undefined)).to.deep.equal([
        '96.avif',
        '96.webp',
        '96.jpeg',
        '160.avif',
        '160.webp',
        '160.jpeg',
        '320.avif',
        '320.webp',
        '320.jpeg',
        '400.avif',
        '400.webp',
        '400.jpeg',
      ]);
      expect(of('1:1')).to.deep.equal([
        '96.avif',
        '96.webp',
        '96.jpeg',
        '160.avif',
        '160.webp',
        '160.jpeg',
        '300.avif',
        '300.webp',
        '300.jpeg',
      ]);
      expect(of('16:9')).to.deep.equal(of(undefined));
    });

    it('plans the uncropped variants exactly as without aspects', () => {
      const without = planImage({ width: 400, height: 300 }, configWith({ WIDTHS: '96,160,320,640' }));
      const withAspects = planImage({ width: 400, height: 300, crops }, config);
      expect(withAspects.variants.filter((v) => v.aspect === undefined)).to.deep.equal(without.variants);
      expect(planImage({ width: 400, height: 300, crops }, configWith({ WIDTHS: '96,160,320,640' }))).to.deep.equal(
        without,
      );
    });

    it('gives a crop narrower than the smallest configured width no variants', () => {
      const tiny = { '1:1': { left: 0, top: 0, width: 80, height: 80 } };
      expect(planImage({ width: 120, height: 80, crops: tiny }, config).variants.filter((v) => v.aspect)).to.deep.equal(
        [],
      );
    });

    it("keeps each aspect's variants inside the format's limits, listing the cut pairs with their aspect", () => {
      const tall = { '1:100': { left: 0, top: 0, width: 200, height: 20000 } };
      const plan = planImage(
        { width: 200, height: 20000, crops: tall },
        configWith({ WIDTHS: '96,160,320', ASPECTS: '1:100', FORMATS: 'webp,jpeg' }),
      );
      expect(plan.variants.filter((v) => v.aspect === '1:100').map((v) => `${v.width}.${v.format}`)).to.deep.equal([
        '96.webp',
        '96.jpeg',
        '160.webp',
        '160.jpeg',
        '163.webp',
        '200.jpeg',
      ]);
      expect(plan.omitted.filter((o) => o.aspect === '1:100')).to.deep.equal([
        { width: 200, height: 20000, format: 'webp', reason: 'exceeds_format_limit', aspect: '1:100' },
      ]);
    });

    it('names aspect variants in a folder of their own, so they cannot collide with uncropped ones', () => {
      const id = 'a'.repeat(32);
      expect(variantName(id, 640, 'avif', '1:1')).to.equal(`${id}/1x1/640w.avif`);
      expect(variantName(id, 640, 'jpeg', '16:9')).to.equal(`${id}/16x9/640w.jpg`);
      expect(variantName(id, 640, 'avif')).to.equal(`${id}/640w.avif`);
      const { variants } = planImage({ width: 400, height: 300, crops }, config);
      const names = variants.map((v) => variantName(id, v.width, v.format, v.aspect));
      expect(new Set(names).size).to.equal(names.length);
    });

    it("keeps the crops in the image document, so cleanup's re-dispatch and a retried claim plan the same jobs", () => {
      const info = {
        format: 'jpeg',
        width: 400,
        height: 300,
        bytes: 9,
        contentType: 'image/jpeg',
        crops: { '1:1': { ...crops['1:1'], by: 'entropy' as const } },
      };
      const id = 'b'.repeat(32);
      const original = { bucket: 'bkt', name: 'originals/x', generation: '1' };
      const t0 = new Date(0);
      const facts = (i: OriginalInfo) => ({
        id,
        info: i,
        source: 'upload',
        acceptedAt: t0,
        recipe: 'r',
        plannedVariants: 1,
      });
      const claimed = claimForAccept(facts(info))(undefined, t0).next!;
      // As Firestore stores and returns it (crops are plain data in the document, no encoding).
      const stored = imageDocFrom({ data: () => imageDocData(claimed) } as unknown as DocumentSnapshot)!;
      expect(stored.info).to.deep.equal(info);
      const settings = { redispatchAfterMs: 60_000, maxRedispatches: 3, retentionDays: 0, imagesBucket: 'b' };
      const dispatched = markDispatched(0, 1, 1, settings)({ ...stored, original }, t0).next!;
      const redispatch = redispatchStuck('cleanup', settings)(dispatched, new Date(120_000)).result;
      expect(redispatch.kind).to.equal('redispatch');
      const again = redispatch.kind === 'redispatch' ? redispatch.doc.info : undefined;
      expect(again, 'the re-dispatch reads the crops from the document').to.deep.equal(info);
      expect(buildJobs(config, id, original, again!, 1, t0)).to.deep.equal(
        buildJobs(config, id, original, info, 1, t0),
      );
      // A claim taken over after an undispatched one keeps the first crops, whatever the retry chose.
      const retried = claimForAccept(facts({ ...info, crops: { '1:1': { ...crops['1:1'], left: 0, by: 'focus' } } }))(
        { ...stored, original },
        new Date(10 * 60_000),
      ).result;
      expect(retried.kind).to.equal('claimed');
      expect(retried.kind === 'claimed' ? retried.info : undefined).to.deep.equal(info);
    });

    it('fans aspect variants out like the others: every variant in exactly one job, crops carried in every job', () => {
      const info = {
        format: 'jpeg',
        width: 400,
        height: 300,
        bytes: 1,
        contentType: 'image/jpeg',
        crops: {
          '1:1': { ...crops['1:1'], by: 'attention' as const },
          '16:9': { ...crops['16:9'], by: 'attention' as const },
        },
      };
      for (const strategy of ['per-width', 'per-format', 'balanced', 'per-image'] as const) {
        const jobs = buildJobs(
          { ...config, FANOUT_STRATEGY: strategy },
          'b'.repeat(32),
          { bucket: 'bkt', name: 'originals/x', generation: '1' },
          info,
          0,
          new Date(0),
        );
        const all = jobs.flatMap((job) => job.variants);
        expect(all, strategy).to.have.deep.members(jobs[0]!.plan);
        expect(all).to.have.length(jobs[0]!.plan.length);
        for (const job of jobs) expect(parseJob(JSON.stringify(job)).info.crops).to.deep.equal(info.crops);
      }
      const perWidth = splitIntoJobs(planImage(info, config).variants, info, 'per-width');
      for (const group of perWidth) expect(new Set(group.map((v) => `${v.aspect}/${v.width}`)).size).to.equal(1);
    });
  });

  describe('rendering from the cascade', () => {
    // Near-lossless JPEG, so that pixel comparisons measure the crop rather than the encoder.
    const config = configWith({ AVIF_EFFORT: '2', JPEG_QUALITY: '98' });
    const options = (crops: RenderOptions['crops']): RenderOptions => ({
      encoders: encoderSettingsFromConfig(config),
      keepMetadata: false,
      limitInputPixels: 1e8,
      maxFrames: 10,
      crops,
    });
    const crop = { left: 100, top: 0, width: 300, height: 300 };
    let photo: Buffer;
    before(async () => {
      photo = await makePhoto({ width: 400, height: 300, seed: 11, format: 'png' });
    });

    it('renders each aspect variant at its size with the crop it was cut from, alongside the uncropped ones', async () => {
      const variants: VariantSpec[] = [
        { width: 320, format: 'jpeg' },
        { width: 300, format: 'webp', aspect: '1:1' },
        { width: 160, format: 'jpeg', aspect: '1:1' },
        { width: 160, format: 'avif', aspect: '1:1' },
        { width: 160, format: 'jpeg', aspect: '16:9' },
      ];
      const rendered = await renderAll(
        photo,
        variants,
        options({ '1:1': crop, '16:9': { left: 0, top: 38, width: 400, height: 225 } }),
      );
      const summary = rendered.map((v) => `${v.aspect ?? '-'} ${v.width}x${v.height} ${v.format}`);
      expect(summary).to.have.members([
        '- 320x240 jpeg',
        '1:1 300x300 webp',
        '1:1 160x160 jpeg',
        '1:1 160x160 avif',
        '16:9 160x90 jpeg',
      ]);
      for (const variant of rendered) {
        const metadata = await sharp(variant.data).metadata();
        expect([metadata.width, metadata.height]).to.deep.equal([variant.width, variant.height]);
        if (variant.aspect === '1:1') expect(variant.crop).to.deep.equal(crop);
      }
    });

    it('shows the same region at every width: two widths agree after scaling, and match the crop of the original', async () => {
      const rendered = await renderAll(
        photo,
        [
          { width: 300, format: 'jpeg', aspect: '1:1' },
          { width: 96, format: 'jpeg', aspect: '1:1' },
        ],
        options({ '1:1': crop }),
      );
      const large = rendered.find((v) => v.width === 300)!.data;
      const small = rendered.find((v) => v.width === 96)!.data;
      const largeScaled = await rawPixels(large, 96, 96);
      const smallPixels = await rawPixels(small, 96, 96);
      const reference = await rawPixels(sharp(photo).extract(crop), 96, 96);
      const elsewhere = await rawPixels(sharp(photo).extract({ ...crop, left: 0 }), 96, 96);
      expect(meanAbsDiff(largeScaled, smallPixels)).to.be.below(3);
      expect(meanAbsDiff(smallPixels, reference)).to.be.below(3);
      // The comparison can fail: the same width cut 100 px further left is far off.
      expect(meanAbsDiff(smallPixels, elsewhere)).to.be.above(15);
    });

    for (const keepMetadata of [false, true]) {
      it(`crops the upright image of an EXIF-rotated original${keepMetadata ? ', keeping metadata' : ''}`, async () => {
        // Stored 300×400 with orientation 6: upright 400×300, red top band, blue top-left corner.
        const rotated = await makePhoto({ width: 300, height: 400, orientation: 6, uprightMarker: true });
        const crops = (await chooseCrops(
          rotated,
          { width: 400, height: 300 },
          { aspects: ['1:1'], strategy: 'attention', focus: { x: 0, y: 0 }, limitInputPixels: 1e8 },
        ))!;
        expect(crops['1:1']).to.deep.equal({ left: 0, top: 0, width: 300, height: 300, by: 'focus' });
        const [square] = await renderAll(rotated, [{ width: 150, format: 'webp', aspect: '1:1' }], {
          ...options(crops),
          keepMetadata,
        });
        expect([square!.width, square!.height]).to.deep.equal([150, 150]);
        const pixel = async (left: number, top: number) =>
          (
            await sharp(square!.data).extract({ left, top, width: 1, height: 1 }).removeAlpha().raw().toBuffer()
          ).toJSON().data;
        const [cr, , cb] = await pixel(2, 2);
        expect(cb! > 150 && cr! < 100, `blue corner, got ${await pixel(2, 2)}`).to.equal(true);
        const [br, bg, bb] = await pixel(100, 2);
        expect(br! > 150 && bg! < 100 && bb! < 100, `red band, got ${await pixel(100, 2)}`).to.equal(true);
      });
    }

    it('refuses a job whose aspect has no crop, or asks for more than the crop, before decoding', async () => {
      const garbage = Buffer.from('never decoded');
      const header = await sharp(photo).jpeg().toBuffer();
      expect(
        (await rejectionOf(renderAll(header, [{ width: 96, format: 'jpeg', aspect: '1:1' }], options(undefined)))).code,
      ).to.equal('invalid_job');
      expect(
        (
          await rejectionOf(
            renderAll(header, [{ width: 301, format: 'jpeg', aspect: '1:1' }], options({ '1:1': crop })),
          )
        ).code,
      ).to.equal('invalid_job');
      const outside = { left: 200, top: 0, width: 300, height: 300 };
      expect(
        (
          await rejectionOf(
            renderAll(header, [{ width: 96, format: 'jpeg', aspect: '1:1' }], options({ '1:1': outside })),
          )
        ).code,
      ).to.equal('invalid_job');
      expect(
        (
          await rejectionOf(
            renderAll(garbage, [{ width: 96, format: 'jpeg', aspect: '1:1' }], options({ '1:1': crop })),
          )
        ).code,
      ).to.equal('corrupt_image');
    });
  });

  describe('manifest', () => {
    const id = 'c'.repeat(32);
    const crop: AspectCrop = { left: 100, top: 0, width: 300, height: 300, by: 'focus' };
    const plan: VariantSpec[] = [
      { width: 96, format: 'jpeg' },
      { width: 96, format: 'avif' },
      { width: 96, format: 'jpeg', aspect: '1:1' },
      { width: 300, format: 'jpeg', aspect: '1:1' },
      { width: 96, format: 'avif', aspect: '1:1' },
    ];
    const objectsFor = (cropOf: (spec: VariantSpec) => VariantObject['crop']) =>
      new Map(
        plan.map((spec) => {
          const name = variantName(id, spec.width, spec.format, spec.aspect);
          const object: VariantObject = {
            name,
            bytes: 10,
            width: spec.width,
            height: spec.aspect ? spec.width : 72,
            ...(spec.aspect ? { crop: cropOf(spec) } : {}),
          };
          return [name, object] as const;
        }),
      );
    const input = (objects: Map<string, VariantObject>) => ({
      id,
      original: {
        format: 'jpeg',
        width: 400,
        height: 300,
        bytes: 1,
        contentType: 'image/jpeg',
        name: 'originals/x',
        generation: '1',
        crops: { '1:1': crop },
      },
      plan,
      objects,
      baseUrl: 'https://cdn.example',
      now: new Date(0),
    });

    it('lists each aspect with its crop and srcset-ready variants, each carrying the rectangle its job used', () => {
      const { left, top, width, height } = crop;
      const manifest = ManifestV1.parse(buildManifest(input(objectsFor(() => ({ left, top, width, height })))));
      expect(manifest.variants.map((v) => v.name)).to.deep.equal([`${id}/96w.avif`, `${id}/96w.jpg`]);
      expect(manifest.original).to.not.have.property('crops');
      const aspect = manifest.aspects!['1:1']!;
      expect(aspect.crop).to.deep.equal(crop);
      expect(aspect.formats).to.deep.equal(['avif', 'jpeg']);
      expect(aspect.variants.map((v) => v.name)).to.deep.equal([
        `${id}/1x1/96w.avif`,
        `${id}/1x1/96w.jpg`,
        `${id}/1x1/300w.jpg`,
      ]);
      for (const variant of aspect.variants) expect(variant.crop).to.deep.equal({ left, top, width, height });
      expect(srcsetOf(manifest, 'jpeg', '1:1')).to.equal(
        `https://cdn.example/${id}/1x1/96w.jpg 96w, https://cdn.example/${id}/1x1/300w.jpg 300w`,
      );
      expect(srcsetOf(manifest, 'jpeg')).to.equal(`https://cdn.example/${id}/96w.jpg 96w`);
      // The ready-made srcset strings: the crop's per format, apart from the uncropped ones.
      expect(aspect.srcset).to.deep.equal({
        avif: `https://cdn.example/${id}/1x1/96w.avif 96w`,
        jpeg: srcsetOf(manifest, 'jpeg', '1:1'),
      });
      expect(manifest.srcset).to.deep.equal({
        avif: `https://cdn.example/${id}/96w.avif 96w`,
        jpeg: `https://cdn.example/${id}/96w.jpg 96w`,
      });
    });

    it('refuses to list an aspect variant whose object does not say which crop it shows', () => {
      expect(() => buildManifest(input(objectsFor(() => undefined)))).to.throw(/no crop/);
    });

    it('has no aspects section when nothing was cropped', () => {
      const manifest = buildManifest({
        ...input(objectsFor(() => undefined)),
        plan: plan.filter((v) => !v.aspect),
        original: { ...input(new Map()).original, crops: undefined },
      });
      expect(manifest).to.not.have.property('aspects');
    });
  });

  describe('with ASPECTS empty, output is what it was before aspects existed', () => {
    // What the code before aspects (commit 8173876) made of these two images: the variants and how
    // the jobs split them. Their bytes were pinned once, as SHA-256 prefixes, but bytes change with
    // every sharp or libvips build; what is compared now is pixels, against a direct resize of the
    // original, and, with ASPECTS set, against this process's own render without aspects.
    const before: Record<string, { variants: string[]; jobs: string[][] }> = {
      jpeg: {
        variants: [
          '320x240.avif',
          '320x240.webp',
          '320x240.jpeg',
          '160x120.avif',
          '160x120.webp',
          '160x120.jpeg',
          '96x72.avif',
          '96x72.webp',
          '96x72.jpeg',
        ],
        jobs: [
          ['96 avif', '96 webp', '96 jpeg'],
          ['160 avif', '160 webp', '160 jpeg'],
          ['320 avif', '320 webp', '320 jpeg'],
        ],
      },
      'png-alpha': {
        variants: [
          '200x360.avif',
          '200x360.webp',
          '200x360.jpeg',
          '160x288.avif',
          '160x288.webp',
          '160x288.jpeg',
          '96x173.avif',
          '96x173.webp',
          '96x173.jpeg',
        ],
        jobs: [
          ['96 avif', '96 webp', '96 jpeg'],
          ['160 avif', '160 webp', '160 jpeg'],
          ['200 avif', '200 webp', '200 jpeg'],
        ],
      },
    };
    const images = {
      jpeg: { width: 400, height: 300, seed: 7 },
      'png-alpha': { width: 200, height: 360, seed: 9, format: 'png' as const, alpha: true },
    };
    /** Luma at `width`×`height`, alpha flattened onto white as the JPEG variants are. */
    const flatLuma = (image: Buffer, width: number, height: number) =>
      rawPixels(sharp(image).flatten({ background: '#ffffff' }), width, height);
    const label = (v: { width: number; height: number; format: string }) => `${v.width}x${v.height}.${v.format}`;

    /** The encoder settings the variants above were recorded with (AVIF q50 at 8 bits, baseline JPEG). */
    const configFor = (aspects: string) =>
      configWith({
        WIDTHS: '96,160,320',
        AVIF_QUALITY: '50',
        AVIF_EFFORT: '2',
        AVIF_BITDEPTH: '8',
        JPEG_PROGRESSIVE: 'false',
        FANOUT_STRATEGY: 'per-width',
        ASPECTS: aspects,
        CROP_STRATEGY: 'centre',
      });

    async function render(image: Buffer, options: (typeof images)[keyof typeof images], config: Config) {
      const crops = await chooseCrops(image, options, {
        aspects: config.ASPECTS,
        strategy: config.CROP_STRATEGY,
        limitInputPixels: 1e8,
      });
      const plan = planImage({ ...options, crops }, config).variants;
      return renderAll(image, plan, { ...renderDefaults(config), crops });
    }

    for (const [name, options] of Object.entries(images)) {
      it(`${name}: the same variants and jobs, each variant a faithful resize of the original`, async function () {
        this.timeout(120_000);
        const config = configFor('');
        const image = await makePhoto(options);
        const rendered = await render(image, options, config);
        expect(rendered.map(label), name).to.deep.equal(before[name]!.variants);
        // Encoding loss on these noisy synthetic photos is 2.5–4.5/255 of luma; a wrong crop,
        // shift or flip is tens.
        const unfaithful: string[] = [];
        for (const v of rendered) {
          const gap = meanAbsDiff(await flatLuma(v.data, v.width, v.height), await flatLuma(image, v.width, v.height));
          if (gap >= 6) unfaithful.push(`${label(v)}: ${gap.toFixed(2)}`);
        }
        expect(unfaithful, `${name}: variants whose luma is 6/255 or more from a direct resize`).to.deep.equal([]);

        const info = {
          format: 'jpeg',
          width: options.width,
          height: options.height,
          bytes: image.length,
          contentType: 'image/jpeg',
        };
        const original = { bucket: 'b', name: 'originals/x', generation: '1' };
        // The layout recorded before aspects, with the preview first in the first job (as then).
        const jobs = buildJobs({ ...config, PREVIEW: 'first-in-job' }, '0'.repeat(32), original, info, 0, new Date(0));
        expect(
          jobs.map((job) => job.variants.map((v) => `${v.width} ${v.format}${v.aspect ? ` ${v.aspect}` : ''}`)),
          `${name} jobs`,
        ).to.deep.equal(before[name]!.jobs);
        const { ASPECTS: _aspects, ...noAspects } = config;
        expect(jobs, `${name}: as if ASPECTS did not exist`).to.deep.equal(
          buildJobs(
            { ...(noAspects as typeof config), PREVIEW: 'first-in-job' },
            '0'.repeat(32),
            original,
            info,
            0,
            new Date(0),
          ),
        );
      });

      it(`${name} with ASPECTS=1:1,16:9: the same uncropped variants, pixels within rounding, plus the crops`, async function () {
        this.timeout(120_000);
        const image = await makePhoto(options);
        const plain = await render(image, options, configFor(''));
        const rendered = await render(image, options, configFor('1:1,16:9'));
        const uncropped = rendered.filter((v) => v.aspect === undefined);
        expect(uncropped.map(label), name).to.deep.equal(before[name]!.variants);
        expect(rendered.length, 'aspect variants besides the uncropped ones').to.be.above(uncropped.length);
        // The cascade gains the crops' levels, so later uncropped levels are resampled from other
        // sizes: the same variants, pixels within rounding (up to 2/255 of luma on these noisy
        // photos), bytes not promised.
        const apart: string[] = [];
        for (const [i, v] of uncropped.entries()) {
          const gap = meanAbsDiff(
            await flatLuma(v.data, v.width, v.height),
            await flatLuma(plain[i]!.data, v.width, v.height),
          );
          if (gap >= 3) apart.push(`${label(v)}: ${gap.toFixed(2)}`);
        }
        expect(apart, `${name}: uncropped variants 3/255 or more from the render without aspects`).to.deep.equal([]);
      });
    }

    function renderDefaults(config: Config): RenderOptions {
      return { encoders: encoderSettingsFromConfig(config), keepMetadata: false, limitInputPixels: 1e8, maxFrames: 10 };
    }
  });
});
