/**
 * HDR and wide-gamut HEIC to 8-bit sRGB (shared/image/hdr.ts): the committed 10-bit fixtures
 * (test/fixtures/hdr-scene.ts's patches in BT.2020 with PQ, HLG and BT.2020's SDR transfer)
 * decoded and checked patch by patch: highlights white rather than grey, reference white near SDR
 * white, greys in order, the gradient never inverted, saturated colours keeping their hue. Read
 * as sRGB (as before hdr.ts), the PQ white comes out at 191 and these fail. Also: a primary `tmap`
 * shows its base image, and the mapping's own rules on synthetic planes.
 */
import { expect } from 'chai';
import sharp from 'sharp';
import { decodeHeif } from '../../shared/image/heif-decode.js';
import { summariseHeif } from '../../shared/image/heif-summary.js';
import { eetf, type Plane, REFERENCE_WHITE_NITS, toSrgb8 } from '../../shared/image/hdr.js';
import { probeImage, type ProbeLimits } from '../../shared/image/probe.js';
import { renderAll } from '../../shared/image/render.js';
import { GRADIENT_Y, HDR_HEIGHT, HDR_PATCHES, HDR_WIDTH, type Rgb } from '../fixtures/hdr-scene.js';
import { HDR_ALPHA_FIXTURE, HDR_HEIC_FIXTURES, heicFixture } from '../fixtures/images.js';
import { FAST_RENDER_OPTIONS } from '../helpers.js';
import { imageItems, prop, readHevcImage, writeHeif } from '../fixtures/heif.js';

const limits: ProbeLimits = {
  maxBytes: 25 * 1024 * 1024,
  maxPixels: 50_000_000,
  maxFrames: 100,
  allowSvg: false,
  widths: [256],
  formats: ['webp'],
};

/** Decoded 8-bit RGB of a fixture, as the pipeline's level holds it. */
async function decoded(file: string): Promise<Buffer> {
  const bytes = heicFixture(file);
  const level = await decodeHeif(bytes, summariseHeif(bytes, limits));
  expect(level).to.include({ width: HDR_WIDTH, height: HDR_HEIGHT, channels: 3, encoding: 'raw' });
  return level.data;
}

/** Mean RGB of the 16×16 block centred on (x, y). */
function meanAt(pixels: Buffer, x: number, y: number, size = 16): Rgb {
  const sum = [0, 0, 0];
  for (let row = y - size / 2; row < y + size / 2; row++)
    for (let column = x - size / 2; column < x + size / 2; column++)
      for (let c = 0; c < 3; c++) sum[c] = (sum[c] ?? 0) + (pixels[(row * HDR_WIDTH + column) * 3 + c] ?? 0);
  return sum.map((total) => total / size ** 2) as unknown as Rgb;
}

const toLinear = (code: number) => {
  const v = code / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
};

/** HSV hue in degrees of linear RGB (unchanged by scaling and by mixing with grey). */
function hue([r, g, b]: Rgb): number {
  const max = Math.max(r, g, b);
  const span = max - Math.min(r, g, b);
  const sector = max === r ? (g - b) / span : max === g ? 2 + (b - r) / span : 4 + (r - g) / span;
  return (sector * 60 + 360) % 360;
}

const hueDistance = (a: number, b: number) => Math.min(Math.abs(a - b), 360 - Math.abs(a - b));
const patch = (name: string) => HDR_PATCHES.find((p) => p.name.startsWith(name)) as (typeof HDR_PATCHES)[number];
const at = (pixels: Buffer, name: string) => meanAt(pixels, patch(name).x, patch(name).y);

/** The colour patches keep the hue of their colour in BT.709 (out-of-gamut ones their dominant hue). */
function expectHues(pixels: Buffer): void {
  for (const name of ['BT.2020 red', 'BT.2020 green', 'sRGB orange', 'sRGB blue']) {
    const { bt709 } = patch(name);
    const ours = at(pixels, name);
    const theirs = hue(bt709 as Rgb);
    expect(hueDistance(hue(ours.map(toLinear) as unknown as Rgb), theirs), `${name}: ${ours} hue`).to.be.below(4);
  }
  const red = at(pixels, 'BT.2020 red');
  expect(red[0], 'red stays red').to.be.above(Math.max(red[1], red[2]) + 150);
}

describe('HDR and BT.2020 HEIC to sRGB', () => {
  for (const { file, what } of HDR_HEIC_FIXTURES.filter((fixture) => fixture.transfer !== 14)) {
    describe(`${file} (${what})`, () => {
      it('maps 1000 nits to white (not grey), 203-nit reference white to 225–240, greys in order below it', async () => {
        const pixels = await decoded(file);
        const white = at(pixels, '1000-nit');
        const reference = at(pixels, '203-nit');
        const midGrey = at(pixels, '26-nit');
        const dark = at(pixels, '5-nit');
        for (let c = 0; c < 3; c++) {
          expect(white[c], `1000-nit white channel ${c}`).to.be.at.least(245);
          expect(reference[c], `reference white channel ${c}`).to.be.within(225, 240);
          // BT.2408's 18 % grey, 26 nits, is 0.128 of reference white before the highlight roll-off: sRGB ≈ 100.
          expect(midGrey[c], `mid-grey channel ${c}`).to.be.within(92, 108);
          expect(dark[c], `5-nit grey channel ${c}`).to.be.within(20, (midGrey[c] ?? 0) - 20);
        }
        expect(Math.max(...reference) - Math.min(...reference), 'reference white is grey').to.be.below(3);
      });

      it('keeps the 0–1000-nit gradient monotonic, from black to white', async () => {
        const pixels = await decoded(file);
        const columns = Array.from({ length: HDR_WIDTH }, (_, x) => {
          let sum = 0;
          for (let y = GRADIENT_Y.from; y < GRADIENT_Y.to; y++) sum += pixels[(y * HDR_WIDTH + x) * 3 + 1] ?? 0;
          return sum / (GRADIENT_Y.to - GRADIENT_Y.from);
        });
        for (let x = 1; x < HDR_WIDTH; x++)
          expect(columns[x], `column ${x} against ${x - 1}`).to.be.at.least((columns[x - 1] ?? 0) - 1);
        expect(columns[2], 'black end').to.be.below(6);
        expect(columns[HDR_WIDTH - 3], 'white end').to.be.at.least(245);
        // Even PQ steps: no stretch of the ramp is flattened into one level.
        const quarter = HDR_WIDTH / 4;
        for (let x = quarter; x < HDR_WIDTH - quarter; x += quarter)
          expect((columns[x + quarter] ?? 0) - (columns[x] ?? 0), `rise after ${x}`).to.be.above(10);
      });

      it('keeps the hue of saturated BT.2020 colours inside and outside sRGB', async () => {
        expectHues(await decoded(file));
      });
    });
  }

  it("sdr-bt2020.heic (BT.2020's SDR transfer): white stays white, mid-grey at sRGB's 0.128, hues kept", async () => {
    const pixels = await decoded('sdr-bt2020.heic');
    for (const value of at(pixels, '203-nit')) expect(value).to.be.at.least(250);
    for (const value of at(pixels, '26-nit')) expect(value).to.be.within(96, 104);
    expectHues(pixels);
  });

  it('reads clli (MaxCLL) as the peak and counts the 16-bit output in the decoder memory', () => {
    const summary = summariseHeif(heicFixture('hdr-pq.heic'), limits);
    expect(summary).to.include({ peakNits: 1000, bitDepth: 10 });
    expect(summary.decoderBytes).to.be.above(HDR_WIDTH * HDR_HEIGHT * (2 * 4.5 + 8));
    expect(summariseHeif(heicFixture('hdr-hlg.heic'), limits).peakNits).to.equal(undefined);
    // Without clli, the mastering display's peak (mdcv) is the content's.
    const image = readHevcImage(heicFixture('hdr-pq.heic'));
    const properties = image.properties.filter((p) => p.type !== 'clli' && p.type !== 'mdcv');
    const mastered = writeHeif(imageItems({ ...image, properties }, 1, [prop.mdcv(4000)]));
    expect(summariseHeif(mastered, limits).peakNits).to.equal(4000);
  });

  it('renders the PQ file through the pipeline: a white highlight, reference white below it', async () => {
    const [variant] = await renderAll(heicFixture('hdr-pq.heic'), [{ width: 256, format: 'webp' }], {
      ...FAST_RENDER_OPTIONS,
      encoders: { ...FAST_RENDER_OPTIONS.encoders, webp: { quality: 100, effort: 2 } },
    });
    const { data } = await sharp(variant?.data).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    for (const value of meanAt(data, 32, 32)) expect(value).to.be.at.least(245);
    for (const value of meanAt(data, 96, 32)) expect(value).to.be.within(222, 243); // lossy WebP
  });

  it('keeps 10-bit alpha: opaque where it was, transparent over the 5-nit patch, colour still mapped', async () => {
    const bytes = heicFixture(HDR_ALPHA_FIXTURE);
    const level = await decodeHeif(bytes, summariseHeif(bytes, limits));
    expect(level).to.include({ width: HDR_WIDTH, height: HDR_HEIGHT, channels: 4, encoding: 'raw' });
    const pixel = (x: number, y: number) => [
      ...level.data.subarray((y * HDR_WIDTH + x) * 4, (y * HDR_WIDTH + x) * 4 + 4),
    ];
    const [r, g, b, alpha] = pixel(32, 32);
    expect(alpha, 'opaque 1000-nit white').to.equal(255);
    for (const value of [r, g, b]) expect(value, '1000-nit white').to.be.at.least(245);
    expect(pixel(96, 32)[3], 'opaque reference white').to.equal(255);
    expect(pixel(224, 32)[3], 'transparent patch').to.equal(0);
  });

  describe('a primary `tmap` (ISO 21496-1 gain-map image)', () => {
    it('is one image, sized and coloured as its base, and is not refused', async () => {
      const bytes = heicFixture('tmap-primary.heic');
      const summary = summariseHeif(bytes, limits);
      expect(summary).to.deep.include({ images: 1, width: 480, height: 360, bitDepth: 8 });
      expect(summary.base?.id).to.equal(2);
      expect(await probeImage(bytes, { ...limits, widths: [320], formats: ['jpeg'] })).to.include({ format: 'heif' });
    });

    it("decodes the base image's pixels (as heif-convert decodes the base alone)", async () => {
      const bytes = heicFixture('tmap-primary.heic');
      const level = await decodeHeif(bytes, summariseHeif(bytes, limits));
      expect(level).to.include({ width: 480, height: 360, encoding: 'raw' });
      const reference = await sharp(heicFixture('tmap-primary.ref.webp')).removeAlpha().raw().toBuffer();
      let worst = 0;
      for (let i = 0; i < reference.length; i++)
        worst = Math.max(worst, Math.abs((level.data[i] ?? 0) - (reference[i] ?? 0)));
      expect(worst, 'largest channel difference').to.be.below(8);
    });

    it("checks the pixel limit on the base image's size", () => {
      expect(() => summariseHeif(heicFixture('tmap-primary.heic'), { ...limits, maxPixels: 480 * 359 }))
        .to.throw()
        .with.property('code', 'too_many_pixels');
    });
  });

  describe('the mapping (hdr.ts) on synthetic planes', () => {
    /** One row of 10-bit PQ samples (little-endian words), 3 or 4 channels. */
    const pqPlane = (pixels: number[][], channels: 3 | 4): Plane => {
      const words = new Uint16Array(pixels.flat());
      return {
        data: new Uint8Array(words.buffer),
        stride: words.byteLength,
        width: pixels.length,
        height: 1,
        channels,
        bits: 10,
      };
    };
    const pq = { kind: 'nclx', primaries: 9, transfer: 16, matrix: 9, fullRange: true } as const;

    it('rolls highlights off by the content peak: a 1000-nit grey is darker in 4000-nit content', () => {
      const plane = pqPlane([[769, 769, 769]], 3); // PQ code for 1000 nits
      const at1000 = toSrgb8(plane, pq, 1000)[0] ?? 0;
      const at4000 = toSrgb8(plane, pq, 4000)[0] ?? 0;
      expect(at1000).to.equal(255);
      // BT.2390's knee starts lower for a 4000-nit peak: 1000 nits no longer reaches SDR white.
      expect(at4000).to.be.within(235, 252);
    });

    it('the EETF is monotonic, reaches the target only at the peak, and leaves dark light alone', () => {
      let previous = 0;
      for (let nits = 1; nits <= 1000; nits += 1) {
        const mapped = eetf(nits, 1000, REFERENCE_WHITE_NITS);
        expect(mapped).to.be.at.least(previous);
        previous = mapped;
      }
      expect(eetf(1000, 1000, REFERENCE_WHITE_NITS)).to.be.closeTo(REFERENCE_WHITE_NITS, 0.01);
      expect(eetf(50, 1000, REFERENCE_WHITE_NITS)).to.equal(50);
    });

    it('scales 10-bit alpha to 8 bits', () => {
      const out = toSrgb8(
        pqPlane(
          [
            [0, 0, 0, 1023],
            [0, 0, 0, 512],
            [0, 0, 0, 0],
          ],
          4,
        ),
        pq,
      );
      expect([out[3], out[7], out[11]]).to.deep.equal([255, 128, 0]);
    });
  });
});
