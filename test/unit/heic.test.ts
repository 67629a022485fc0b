/**
 * HEIC input as phones write it: each committed fixture (test/fixtures/heic/, made by heif-enc and
 * assembled by test/fixtures/heif.ts) probed, then its 320 px variant compared with heif-convert's
 * decode of the same file (SSIM and the colour of the saturated shapes), upright, alpha kept. The
 * limits are checked from the container before any decode; the hostile files are refused there,
 * except garbage HEVC, which only the decoder can find.
 */
import { expect } from 'chai';
import sharp from 'sharp';
import type { ErrorCode } from '../../shared/core/errors.js';
import { decodeHeif } from '../../shared/image/heif-decode.js';
import { HEIF_DECODER_MEMORY, MAX_HEIF_ITEMS, summariseHeif } from '../../shared/image/heif-summary.js';
import { probeImage, type ProbeLimits, sniffFormat } from '../../shared/image/probe.js';
import { renderAll, type RenderOptions } from '../../shared/image/render.js';
import { luma, ssim } from '../../shared/image/ssim.js';
import { type HostileHeic, hostileHeic, imageItems, prop, readHevcImage, writeHeif } from '../fixtures/heif.js';
import {
  againstReference,
  HEIC_FIXTURE_SIZE,
  HEIC_FIXTURES,
  heicFixture,
  PHONE_HEIC_FIXTURES,
  phoneHeic,
  phoneHeicReference,
} from '../fixtures/images.js';
import { rejection } from '../helpers.js';

const limits: ProbeLimits = {
  maxBytes: 25 * 1024 * 1024,
  maxPixels: 50_000_000,
  maxFrames: 100,
  allowSvg: false,
  widths: [320, 480],
  formats: ['jpeg', 'webp'],
};

const options: RenderOptions = {
  encoders: {
    jpeg: { quality: 92, mozjpeg: false },
    webp: { quality: 92, effort: 2 },
    avif: { quality: 60, effort: 2 },
  },
  keepMetadata: false,
  limitInputPixels: limits.maxPixels,
  maxFrames: limits.maxFrames,
};

/** `image` as RGBA pixels at 320×240 (the reference resized by sharp's lanczos3, like the pipeline). */
async function at320(image: Buffer): Promise<Buffer> {
  return sharp(image).resize(320, 240, { fit: 'fill' }).toColourspace('srgb').ensureAlpha().raw().toBuffer();
}

/** SSIM of the luma of two 320×240 RGBA images, premultiplied: hidden colour under alpha 0 does not count. */
function ssimOf(a: Buffer, b: Buffer): number {
  const premultiplied = (pixels: Buffer) =>
    luma(pixels, 320, 240, 4).map((value, i) => (value * (pixels[i * 4 + 3] ?? 255)) / 255);
  return ssim(premultiplied(a), premultiplied(b), 320, 240);
}

/** Mean RGBA over a rectangle of 320×240 RGBA pixels. */
function meanAt(pixels: Buffer, box: { left: number; top: number; size: number }): number[] {
  const sum = [0, 0, 0, 0];
  for (let y = box.top; y < box.top + box.size; y++)
    for (let x = box.left; x < box.left + box.size; x++)
      for (let c = 0; c < 4; c++) sum[c] = (sum[c] ?? 0) + (pixels[(y * 320 + x) * 4 + c] ?? 0);
  return sum.map((total) => total / box.size ** 2);
}

/**
 * Patches of the upright picture at 320×240: the red top band, the blue corner, the red disc, the
 * green box, the gradient's two ends. A turned, mirrored or wrongly coloured decode misses them.
 */
const PATCHES = {
  band: { left: 150, top: 4, size: 12 },
  corner: { left: 8, top: 8, size: 16 },
  redDisc: { left: 92, top: 132, size: 16 },
  greenBox: { left: 270, top: 170, size: 12 },
  gradientTopRight: { left: 290, top: 40, size: 12 },
  gradientBottomRight: { left: 300, top: 220, size: 12 },
} as const;

const image = () => readHevcImage(heicFixture('8bit.heic'));
const withSize = (width: number, height: number) =>
  image().properties.map((property) => (property.type === 'ispe' ? prop.ispe(width, height) : property));

describe('HEIC input', () => {
  describe('the committed fixtures', () => {
    for (const fixture of HEIC_FIXTURES) {
      describe(fixture.name, () => {
        const heic = () => heicFixture(fixture.file);

        it('is sniffed and probed from its container: HEIC, 480×360, no EXIF orientation', async () => {
          expect(sniffFormat(heic())).to.equal('heif');
          const probe = await probeImage(heic(), limits);
          expect(probe).to.deep.include({
            format: 'heif',
            contentType: 'image/heic',
            ...HEIC_FIXTURE_SIZE,
            orientation: 1,
            hasAlpha: fixture.hasAlpha,
          });
        });

        it("renders a 320 px variant matching heif-convert's decode: upright, in sRGB, alpha kept", async () => {
          const format = fixture.hasAlpha ? 'webp' : 'jpeg';
          const [variant] = await renderAll(heic(), [{ width: 320, format }], options);
          expect(variant).to.include({ width: 320, height: 240, format });
          const ours = await at320(variant?.data as Buffer);
          const reference = await at320(heicFixture(fixture.reference));
          const upright = await at320(heicFixture('upright.webp'));
          // The upright picture has no hole: give it the reference's alpha.
          for (let i = 3; i < upright.length; i += 4) upright[i] = reference[i] ?? 255;
          expect(ssimOf(ours, reference), 'SSIM against heif-convert').to.be.above(0.97);
          expect(ssimOf(ours, upright), 'SSIM against the upright picture').to.be.above(0.93);
          for (const [name, box] of Object.entries(PATCHES)) {
            const mine = meanAt(ours, box);
            const theirs = meanAt(reference, box);
            for (let c = 0; c < 3; c++)
              expect(Math.abs((mine[c] ?? 0) - (theirs[c] ?? 0)), `${name} channel ${c}`).to.be.below(6);
          }
          if (fixture.hasAlpha) {
            expect(meanAt(ours, { left: 152, top: 112, size: 16 })[3], 'the transparent disc').to.be.below(8);
            expect(meanAt(ours, PATCHES.greenBox)[3], 'opaque elsewhere').to.equal(255);
          }
        });
      });
    }
  });

  describe('photos straight from phones (read from PHONE_HEIC_DIR or ../shared/corpus/heic/, skipped when absent)', () => {
    for (const fixture of PHONE_HEIC_FIXTURES) {
      it(`${fixture.file}, ${fixture.phone}: ${fixture.what}: upright, in sRGB, metadata stripped, as heif-convert decodes it`, async function () {
        this.timeout(60_000);
        const heic = phoneHeic(fixture.file);
        const reference = heic && phoneHeicReference(fixture);
        if (!heic || !reference) this.skip();
        const upright = { width: fixture.width, height: fixture.height };
        expect(await probeImage(heic, limits)).to.deep.include({ format: 'heif', ...upright, orientation: 1 });
        const [variant] = await renderAll(heic, [{ width: 320, format: 'jpeg' }], options);
        const height = Math.round((320 * fixture.height) / fixture.width);
        expect(variant).to.include({ width: 320, height, format: 'jpeg' });
        const metadata = await sharp(variant?.data).metadata();
        expect(metadata, 'EXIF, XMP and the phone profile stripped').to.not.have.any.keys('exif', 'xmp', 'icc');
        const match = await againstReference(variant?.data as Buffer, reference);
        expect(match.ssim, 'SSIM against heif-convert').to.be.above(0.97);
        // Display P3 left unconverted differs from sRGB by up to 14 levels in these photos.
        expect(match.worstBlock, 'largest 16×16 block colour difference').to.be.below(4);
        // KEEP_METADATA keeps the phone's EXIF, but never an orientation that would turn it again.
        const [kept] = await renderAll(heic, [{ width: 320, format: 'jpeg' }], { ...options, keepMetadata: true });
        expect(await sharp(kept?.data).metadata()).to.deep.include({ orientation: 1, width: 320, height });
      });
    }
  });

  describe('the committed fixtures: containers and decoded pixels', () => {
    it('counts the primary as an image when a gain map (`tmap`, as Samsung writes it) is derived from it', async () => {
      const photo = image();
      const file = writeHeif({
        primaryId: 1,
        items: [
          { id: 1, type: 'hvc1', data: photo.data, properties: photo.properties },
          { id: 2, type: 'hvc1', data: photo.data, properties: photo.properties, hidden: true },
          { id: 3, type: 'tmap', data: Buffer.alloc(16), properties: [prop.ispe(480, 360)] },
        ],
        references: [{ type: 'dimg', from: 3, to: [1, 2] }],
      });
      expect(summariseHeif(file, limits)).to.include({ images: 1, width: 480, height: 360 });
      const [variant] = await renderAll(file, [{ width: 320, format: 'jpeg' }], options);
      expect(variant).to.include({ width: 320, height: 240 });
    });

    it('reads the colour profile, the grid and the primary of a multi-image file from the container', () => {
      const icc = summariseHeif(heicFixture('display-p3-icc.heic'), limits);
      expect(icc.colour?.kind).to.equal('icc');
      expect(summariseHeif(heicFixture('display-p3-nclx.heic'), limits).colour).to.deep.include({
        kind: 'nclx',
        primaries: 12,
        transfer: 13,
      });
      expect(summariseHeif(heicFixture('grid.heic'), limits)).to.include({ tiles: 4, items: 5, images: 1 });
      expect(summariseHeif(heicFixture('multi-image.heic'), limits)).to.include({ images: 2, width: 480 });
      expect(summariseHeif(heicFixture('10bit.heic'), limits).bitDepth).to.equal(10);
      expect(summariseHeif(heicFixture('alpha.heic'), limits).hasAlpha).to.equal(true);
    });

    it('keeps the decoded pixels in their profile until sharp converts them: Display P3 differs from sRGB', async () => {
      const heic = heicFixture('display-p3-icc.heic');
      const level = await decodeHeif(heic, summariseHeif(heic, limits));
      expect(level).to.include({ width: 480, height: 360, channels: 3, encoding: 'png' });
      expect((await sharp(level.data).metadata()).icc?.length).to.be.above(0);
      const plain = await decodeHeif(heicFixture('8bit.heic'), summariseHeif(heicFixture('8bit.heic'), limits));
      expect(plain).to.include({ encoding: 'raw', channels: 3 });
    });

    it("strips the HEIC's EXIF (with its orientation 6) from every output, as for other formats", async () => {
      const rendered = await renderAll(
        heicFixture('exif-orientation.heic'),
        [
          { width: 320, format: 'jpeg' },
          { width: 320, format: 'webp' },
          { width: 320, format: 'avif' },
        ],
        options,
      );
      for (const variant of rendered) {
        const metadata = await sharp(variant.data).metadata();
        expect(metadata.exif, variant.format).to.equal(undefined);
        expect(metadata.xmp, variant.format).to.equal(undefined);
        expect(metadata.autoOrient, variant.format).to.deep.equal({ width: 320, height: 240 });
      }
    });

    it('with KEEP_METADATA keeps the EXIF, its orientation set to 1 since the pixels are upright', async () => {
      const [variant] = await renderAll(heicFixture('exif-orientation.heic'), [{ width: 320, format: 'jpeg' }], {
        ...options,
        keepMetadata: true,
      });
      const metadata = await sharp(variant?.data).metadata();
      expect(metadata.exif?.length, 'EXIF kept').to.be.above(0);
      expect(metadata.orientation).to.equal(1);
      expect(metadata.autoOrient).to.deep.equal({ width: 320, height: 240 });
      const ours = await at320(variant?.data as Buffer);
      expect(ssimOf(ours, await at320(heicFixture('exif-orientation.ref.webp')))).to.be.above(0.97);
    });

    it("with KEEP_METADATA keeps the HEIC's XMP packet (its application/rdf+xml item) in every format; without, strips it", async () => {
      const packet =
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>Ana Lopes</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>';
      const image = imageItems(readHevcImage(heicFixture('8bit.heic')), 1);
      const withXmp = writeHeif({
        ...image,
        items: [...image.items, { id: 2, type: 'mime', contentType: 'application/rdf+xml', data: Buffer.from(packet) }],
        references: [...(image.references ?? []), { type: 'cdsc', from: 2, to: [1] }],
      });
      expect(Buffer.from(summariseHeif(withXmp, limits).xmp ?? []).toString()).to.equal(packet);
      const formats = ['jpeg', 'webp', 'avif'] as const;
      const variants = formats.map((format) => ({ width: 320, format }));
      for (const variant of await renderAll(withXmp, variants, { ...options, keepMetadata: true }))
        expect((await sharp(variant.data).metadata()).xmp?.toString(), variant.format).to.include('Ana Lopes');
      for (const variant of await renderAll(withXmp, variants, options))
        expect((await sharp(variant.data).metadata()).xmp, variant.format).to.equal(undefined);
    });

    it('counts the pixels of the displayed size (irot swaps the axes) against the limit', async () => {
      const error = await rejection(probeImage(heicFixture('irot-imir.heic'), { ...limits, maxPixels: 480 * 359 }));
      expect(error).to.deep.include({ code: 'too_many_pixels', status: 422 });
    });
  });

  describe('hostile files', () => {
    const cases: [HostileHeic, ErrorCode][] = [
      ['truncated', 'corrupt_image'],
      ['huge-ispe', 'too_many_pixels'],
      ['grid-missing-tiles', 'corrupt_image'],
      ['grid-oversized-tiles', 'corrupt_image'],
      ['thousands-of-items', 'too_many_frames'],
      ['zero-length-item', 'corrupt_image'],
    ];
    for (const [kind, code] of cases) {
      it(`${kind}: refused by the probe with ${code}, before any decode`, async () => {
        const error = await rejection(probeImage(hostileHeic(kind, heicFixture('8bit.heic')), limits));
        expect(error).to.deep.include({ code, status: 422 });
      });
    }

    it(`thousands-of-items names the item limit (${MAX_HEIF_ITEMS})`, async () => {
      const error = await rejection(probeImage(hostileHeic('thousands-of-items', heicFixture('8bit.heic')), limits));
      expect(error.details).to.deep.equal({ items: 3001, maxItems: MAX_HEIF_ITEMS });
    });

    it('garbage HEVC behind an intact container: the probe passes, the decode fails as corrupt_image', async () => {
      const garbage = hostileHeic('garbage-hevc', heicFixture('8bit.heic'));
      expect(await probeImage(garbage, limits)).to.include({ width: 480, height: 360 });
      const error = await rejection(renderAll(garbage, [{ width: 320, format: 'jpeg' }], options));
      expect(error).to.deep.include({ code: 'corrupt_image', status: 422 });
    });

    it('every byte-prefix of a fixture is refused or decoded, never a crash or a hang', async () => {
      const heic = heicFixture('grid.heic');
      for (let length = 0; length < heic.length; length += 97) {
        const prefix = heic.subarray(0, length);
        try {
          summariseHeif(prefix, limits);
        } catch (error) {
          expect(error, `prefix of ${length} bytes`).to.have.property('code').that.is.oneOf(['corrupt_image']);
        }
      }
    });

    it('mutated containers: the probe answers a 4xx or accepts, the decoder decodes or answers corrupt_image', async function () {
      this.timeout(120_000);
      // Seeded byte flips in the boxes (the first 1 KB) of two fixtures: no crash, no other error.
      let state = 12345;
      const next = () => {
        state = (state * 1103515245 + 12345) >>> 0;
        return state;
      };
      const outcomes = new Map<string, number>();
      for (const file of ['grid.heic', 'alpha.heic']) {
        const original = heicFixture(file);
        for (let round = 0; round < 150; round++) {
          const mutated = Buffer.from(original);
          for (let flips = 1 + (next() % 4); flips > 0; flips--) mutated[next() % 1024] = next() >>> 24;
          let outcome: string;
          try {
            const summary = summariseHeif(mutated, limits);
            outcome = await decodeHeif(mutated, summary).then(
              () => 'decoded',
              (error: { code?: string }) => `decode ${error.code}`,
            );
          } catch (error) {
            outcome = `probe ${(error as { status?: number }).status} ${(error as { code?: string }).code}`;
          }
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }
      }
      for (const outcome of outcomes.keys())
        expect(outcome).to.match(/^(decoded|decode corrupt_image|probe 4\d\d [a-z_]+)$/, JSON.stringify([...outcomes]));
      expect(outcomes.get('decoded'), 'some mutations only touch what does not matter').to.be.above(0);
    });

    it('a file whose decode would not fit the decoder is refused from its header (422), one that fits is not', async () => {
      const claiming = (width: number, height: number) =>
        writeHeif(imageItems({ ...image(), properties: withSize(width, height) }, 1));
      const unlimited = { ...limits, maxPixels: 1_000_000_000 };
      // About 8.5 bytes a pixel at 8 bits: 108 MP fits in the 1.5 GiB budget, 192 MP does not.
      expect(await probeImage(claiming(12000, 9000), unlimited)).to.include({ width: 12000, height: 9000 });
      const error = await rejection(probeImage(claiming(16000, 12000), unlimited));
      expect(error).to.deep.include({ code: 'too_many_pixels', status: 422 });
      expect(error.details).to.have.property('maxDecoderBytes', HEIF_DECODER_MEMORY);
    });
  });
});
