import { expect } from 'chai';
import sharp, { type Sharp } from 'sharp';
import { transient, type ErrorCode } from '../../shared/core/errors.js';
import type { VariantSpec } from '../../shared/core/schemas.js';
import { renderAll, renderVariants, type RenderedVariant, type RenderOptions } from '../../shared/image/render.js';
import { configureSharp, encoderSettingsFromConfig } from '../../shared/image/encode.js';
import { AvifEncodeTimeModel } from '../../shared/image/encode-time.js';
import {
  badCrcPng,
  floatPlanarTiff,
  makeAnimatedGif,
  makeAnimatedWebp,
  makePhoto,
  markerBand,
  multiPageTiff,
  textPosingAsJpeg,
  transparentDisc,
  truncated,
  type PhotoFormat,
} from '../fixtures/images.js';
import { FAST_RENDER_OPTIONS, rejection, expectSameBytes } from '../helpers.js';
import type { OutputFormat } from '../../shared/core/domain.js';

const options: RenderOptions = FAST_RENDER_OPTIONS;

const ALL_FORMATS: readonly OutputFormat[] = ['avif', 'webp', 'jpeg'];
/** What sharp's metadata calls each output format. */
const DECODER_FORMAT: Record<OutputFormat, string> = { avif: 'heif', webp: 'webp', jpeg: 'jpeg' };

const every = (widths: readonly number[], formats: readonly OutputFormat[] = ALL_FORMATS): VariantSpec[] =>
  widths.flatMap((width) => formats.map((format) => ({ width, format })));

/** Decoded RGBA pixels of an output, for pixel checks. */
async function pixelsOf(
  variant: RenderedVariant,
): Promise<{ data: Buffer; width: number; height: number; at(x: number, y: number): number[] }> {
  const { data, info } = await sharp(variant.data).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  return {
    data,
    width: info.width,
    height: info.height,
    at: (x, y) => [...data.subarray((y * info.width + x) * 4, (y * info.width + x) * 4 + 4)],
  };
}

/** Mean RGB of a rectangle of an output. */
async function meanColour(
  variant: RenderedVariant,
  box: { left: number; top: number; width: number; height: number },
): Promise<number[]> {
  // stats() ignores queued operations, so the crop is materialised first.
  const crop = await sharp(variant.data).extract(box).png().toBuffer();
  const stats = await sharp(crop).stats();
  return stats.channels.slice(0, 3).map((channel) => channel.mean);
}

/** Mean RGB of a whole encoded image. */
async function meanOf(image: Buffer): Promise<number[]> {
  return (await sharp(image).stats()).channels.slice(0, 3).map((channel) => channel.mean);
}

/**
 * SSIM of two greyscale images of the same size, over 8×8 windows with a stride of 4 (Wang et
 * al.'s constants for 8-bit data). Enough to compare resize paths; not a reference implementation.
 */
function ssim(a: Uint8Array, b: Uint8Array, width: number, height: number): number {
  const C1 = (0.01 * 255) ** 2;
  const C2 = (0.03 * 255) ** 2;
  let sum = 0;
  let windows = 0;
  for (let top = 0; top + 8 <= height; top += 4) {
    for (let left = 0; left + 8 <= width; left += 4) {
      let meanA = 0;
      let meanB = 0;
      for (let y = top; y < top + 8; y++)
        for (let x = left; x < left + 8; x++) {
          meanA += a[y * width + x]!;
          meanB += b[y * width + x]!;
        }
      meanA /= 64;
      meanB /= 64;
      let varA = 0;
      let varB = 0;
      let cov = 0;
      for (let y = top; y < top + 8; y++) {
        for (let x = left; x < left + 8; x++) {
          const da = a[y * width + x]! - meanA;
          const db = b[y * width + x]! - meanB;
          varA += da * da;
          varB += db * db;
          cov += da * db;
        }
      }
      varA /= 63;
      varB /= 63;
      cov /= 63;
      sum += ((2 * meanA * meanB + C1) * (2 * cov + C2)) / ((meanA ** 2 + meanB ** 2 + C1) * (varA + varB + C2));
      windows++;
    }
  }
  return sum / windows;
}

const greyOf = (image: Buffer | Sharp): Promise<Buffer> =>
  (Buffer.isBuffer(image) ? sharp(image) : image).greyscale().raw().toBuffer();

describe('render', () => {
  before(() => configureSharp({ concurrency: 2, cache: false }));

  describe('encoderSettingsFromConfig', () => {
    it('maps the eight settings', () => {
      expect(
        encoderSettingsFromConfig({
          JPEG_QUALITY: 81,
          JPEG_MOZJPEG: true,
          JPEG_PROGRESSIVE: false,
          WEBP_QUALITY: 82,
          WEBP_EFFORT: 3,
          AVIF_QUALITY: 51,
          AVIF_EFFORT: 5,
          AVIF_BITDEPTH: 10,
        }),
      ).to.deep.equal({
        jpeg: { quality: 81, mozjpeg: true, progressive: false },
        webp: { quality: 82, effort: 3 },
        avif: { quality: 51, effort: 5, bitdepth: 10 },
      });
    });
  });

  describe('configureSharp', () => {
    it('sets libvips threads and the operation cache', () => {
      configureSharp({ concurrency: 3, cache: true });
      expect(sharp.concurrency()).to.equal(3);
      expect(sharp.cache().memory.max).to.be.above(0);
      configureSharp({ concurrency: 2, cache: false });
      expect(sharp.concurrency()).to.equal(2);
      expect(sharp.cache().memory.max).to.equal(0);
    });
  });

  describe('every variant decodes to its declared format and size', () => {
    const inputs: Array<[PhotoFormat, { width: number; height: number }]> = [
      ['jpeg', { width: 1000, height: 667 }],
      ['png', { width: 999, height: 500 }],
      ['webp', { width: 700, height: 700 }],
      ['avif', { width: 500, height: 900 }],
      ['tiff', { width: 640, height: 480 }],
      ['gif', { width: 400, height: 300 }],
    ];
    for (const [format, size] of inputs) {
      it(`from ${format} ${size.width}×${size.height}`, async () => {
        const widths = [320, 640].filter((width) => width < size.width).concat(size.width);
        const variants = every(widths);
        const rendered = await renderAll(await makePhoto({ ...size, format }), variants, options);
        expect(rendered).to.have.length(variants.length);
        for (const variant of rendered) {
          const metadata = await sharp(variant.data).metadata();
          expect(metadata.format).to.equal(DECODER_FORMAT[variant.format]);
          if (variant.format === 'avif') expect(metadata.compression).to.equal('av1');
          expect(variant.contentType).to.equal(`image/${variant.format}`);
          expect([metadata.width, metadata.height]).to.deep.equal([variant.width, variant.height]);
          expect(variant.height).to.equal(Math.round((size.height * variant.width) / size.width));
          expect(metadata.space).to.equal('srgb');
        }
      });
    }
  });

  it('returns widths largest first and formats in the order asked, calling onVariant for each before the next', async () => {
    const seen: string[] = [];
    let inCallback = false;
    const count = await renderVariants(
      await makePhoto({ width: 800, height: 600 }),
      [
        { width: 320, format: 'jpeg' },
        { width: 640, format: 'webp' },
        { width: 320, format: 'avif' },
        { width: 640, format: 'jpeg' },
      ],
      options,
      async (variant) => {
        expect(inCallback, 'callbacks never overlap').to.equal(false);
        inCallback = true;
        await new Promise((resolve) => setTimeout(resolve, 5));
        seen.push(`${variant.width}${variant.format}`);
        inCallback = false;
      },
    );
    expect(count).to.equal(4);
    expect(seen).to.deep.equal(['640webp', '640jpeg', '320jpeg', '320avif']);
  });

  it('passes errors thrown by onVariant through unchanged', async () => {
    const failure = transient('storage_unavailable', 'Storage is down.');
    const error = await rejection(
      renderVariants(await makePhoto({ width: 400, height: 300 }), every([200]), options, async () => {
        throw failure;
      }),
    );
    expect(error).to.equal(failure);
  });

  it('renders nothing for no variants', async () => {
    expect(await renderAll(await makePhoto({ width: 64, height: 64 }), [], options)).to.deep.equal([]);
  });

  it('gives a width the same height whichever cascade produced it', async () => {
    const photo = await makePhoto({ width: 1003, height: 701 });
    const alone = await renderAll(photo, [{ width: 331, format: 'jpeg' }], options);
    const cascaded = await renderAll(photo, every([997, 640, 500, 331], ['jpeg']), options);
    expect(cascaded.find((v) => v.width === 331)!.height)
      .to.equal(alone[0]!.height)
      .and.to.equal(Math.round((701 * 331) / 1003));
  });

  describe('progressive JPEG', () => {
    it('writes progressive JPEG when asked, with the same pixels as baseline in fewer bytes', async () => {
      const photo = await makePhoto({ width: 800, height: 600 });
      const [baseline] = await renderAll(photo, [{ width: 640, format: 'jpeg' }], options);
      const [progressive] = await renderAll(photo, [{ width: 640, format: 'jpeg' }], {
        ...options,
        encoders: { ...options.encoders, jpeg: { ...options.encoders.jpeg, progressive: true } },
      });
      if (!baseline || !progressive) throw new Error('no JPEG rendered');
      expect((await sharp(baseline.data).metadata()).isProgressive).to.equal(false);
      expect((await sharp(progressive.data).metadata()).isProgressive).to.equal(true);
      expect(progressive.data.length).to.be.below(baseline.data.length);
      const raw = (data: Buffer) => sharp(data).raw().toBuffer();
      expectSameBytes(await raw(progressive.data), await raw(baseline.data), 'progressive and baseline JPEG pixels');
    });
  });

  describe('AVIF bit depth', () => {
    it('codes AVIF at 8 bits unless told 10, and the 10-bit file decodes to the same picture', async () => {
      const photo = await makePhoto({ width: 400, height: 300 });
      const [eight] = await renderAll(photo, [{ width: 320, format: 'avif' }], options);
      const [ten] = await renderAll(photo, [{ width: 320, format: 'avif' }], {
        ...options,
        encoders: { ...options.encoders, avif: { ...options.encoders.avif, bitdepth: 10 } },
      });
      if (!eight || !ten) throw new Error('no AVIF rendered');
      expect((await sharp(eight.data).metadata()).bitsPerSample).to.equal(8);
      expect((await sharp(ten.data).metadata()).bitsPerSample).to.equal(10);
      // Decoded to 8-bit as a browser shows it (sharp reads 10-bit AVIF as 16-bit, raw() casts to uchar).
      const meanOfLuma = async (data: Buffer) => {
        const grey = await sharp(data).greyscale().raw().toBuffer();
        return grey.reduce((sum, value) => sum + value, 0) / grey.length;
      };
      expect(await meanOfLuma(ten.data)).to.be.closeTo(await meanOfLuma(eight.data), 2);
    });
  });

  describe('extreme shapes', () => {
    const line = (width: number, height: number) =>
      sharp({ create: { width, height, channels: 3, background: '#c04020' } })
        .png()
        .toBuffer();

    it('renders a 50000×1 line at every width in every format, each 1 px tall (320 / 50000 rounds to 0)', async () => {
      const widths = [2048, 1600, 1024, 640, 320];
      const rendered = await renderAll(await line(50000, 1), every(widths), options);
      expect(rendered.map((r) => `${r.width}×${r.height} ${r.format}`)).to.deep.equal(
        every(widths).map((v) => `${v.width}×1 ${v.format}`),
      );
      for (const variant of rendered)
        expect(await sharp(variant.data).metadata()).to.include({ width: variant.width, height: 1 });
    });

    it('renders a 1×50000 line as a 1×50000 JPEG', async () => {
      const [jpeg] = await renderAll(await line(1, 50000), [{ width: 1, format: 'jpeg' }], options);
      expect(await sharp(jpeg!.data).metadata()).to.include({ format: 'jpeg', width: 1, height: 50000 });
    });

    it('renders WebP and AVIF of a 1080×20000 screenshot up to 884 px wide (16,370 px tall)', async () => {
      const rendered = await renderAll(await line(1080, 20000), every([884], ['webp', 'avif']), {
        ...options,
        encoders: { ...options.encoders, avif: { quality: 50, effort: 0 } },
      });
      for (const variant of rendered)
        expect(await sharp(variant.data).metadata()).to.include({ width: 884, height: 16370 });
    });

    const tooBig: Array<[string, number, number, VariantSpec]> = [
      ['a 1024 px WebP of 1080×20000 (18963 px tall)', 1080, 20000, { width: 1024, format: 'webp' }],
      ['a 1080 px AVIF of 1080×20000', 1080, 20000, { width: 1080, format: 'avif' }],
      ['a 1 px WebP of 1×16384', 1, 16384, { width: 1, format: 'webp' }],
    ];
    for (const [what, width, height, variant] of tooBig) {
      it(`refuses ${what} as an invalid job before decoding or writing anything`, async () => {
        const written: RenderedVariant[] = [];
        const job = [{ width: Math.min(320, width), format: 'jpeg' as const }, variant];
        const error = await rejection(
          renderVariants(await line(width, height), job, options, async (v) => void written.push(v)),
        );
        expect(error.code).to.equal('invalid_job');
        expect(error.details).to.deep.include({ format: variant.format, width: variant.width });
        expect(written).to.deep.equal([]);
      });
    }
  });

  it('never enlarges: a width above the original is an invalid job', async () => {
    const error = await rejection(renderAll(await makePhoto({ width: 300, height: 200 }), every([320]), options));
    expect(error.code).to.equal('invalid_job');
    expect(error.details).to.deep.equal({ width: 320, originalWidth: 300 });
  });

  describe('EXIF orientation', () => {
    for (const orientation of [1, 2, 3, 4, 5, 6, 7, 8]) {
      it(`renders orientation ${orientation} upright: red top edge, blue top-left corner`, async () => {
        const photo = await makePhoto({ width: 400, height: 200, orientation, uprightMarker: true });
        const swapped = orientation >= 5;
        const [width, height] = swapped ? [200, 400] : [400, 200];
        const rendered = await renderAll(photo, every([width, width / 2], ['jpeg', 'webp']), options);
        for (const variant of rendered) {
          expect([variant.width, variant.height]).to.deep.equal(
            variant.width === width ? [width, height] : [width / 2, height / 2],
          );
          const band = Math.floor(variant.height * markerBand);
          const inBand = Math.max(1, Math.floor(band / 2));
          const [r, g, b] = await meanColour(variant, {
            left: band * 2,
            top: 0,
            width: variant.width - band * 3,
            height: inBand,
          });
          expect(r, 'top edge red').to.be.above(200);
          expect(g! + b!, 'top edge red').to.be.below(80);
          const [cr, , cb] = await meanColour(variant, { left: 0, top: 0, width: inBand, height: inBand });
          expect(cb, 'top-left corner blue').to.be.above(200);
          expect(cr, 'top-left corner blue').to.be.below(60);
          const [br, bg, bb] = await meanColour(variant, {
            left: 0,
            top: variant.height - inBand,
            width: variant.width,
            height: inBand,
          });
          expect(br! > 200 && bg! + bb! < 80, 'bottom edge is not the marker').to.equal(false);
        }
      });
    }
  });

  describe('alpha', () => {
    it('keeps transparency in WebP and AVIF and flattens JPEG onto white', async () => {
      const photo = await makePhoto({ width: 300, height: 200, format: 'png', alpha: true });
      const rendered = await renderAll(photo, every([300, 150]), options);
      for (const variant of rendered) {
        const pixels = await pixelsOf(variant);
        const centre = pixels.at(
          Math.floor(variant.width * transparentDisc.cx),
          Math.floor(variant.height * transparentDisc.cy),
        );
        const corner = pixels.at(2, variant.height - 3);
        const metadata = await sharp(variant.data).metadata();
        if (variant.format === 'jpeg') {
          expect(metadata.hasAlpha).to.equal(false);
          for (const channel of centre.slice(0, 3)) expect(channel, 'flattened onto white').to.be.above(245);
        } else {
          expect(metadata.hasAlpha, variant.format).to.equal(true);
          expect(centre[3], 'transparent centre').to.be.below(16);
          expect(corner[3], 'opaque corner').to.be.above(240);
        }
      }
    });

    it('drops an alpha channel that is opaque everywhere', async () => {
      const opaqueRgba = await sharp(await makePhoto({ width: 200, height: 100, format: 'png' }))
        .ensureAlpha(1)
        .png()
        .toBuffer();
      expect((await sharp(opaqueRgba).metadata()).channels).to.equal(4);
      for (const variant of await renderAll(opaqueRgba, every([200, 100], ['avif', 'webp']), options)) {
        expect((await sharp(variant.data).metadata()).hasAlpha, variant.format).to.equal(false);
      }
    });
  });

  describe('colour', () => {
    const srgbMean = async (): Promise<number[]> => meanOf(await makePhoto({ width: 200, height: 100, format: 'png' }));
    const cases: Array<[string, Parameters<typeof makePhoto>[0], number]> = [
      // sharp's generic CMYK profile is not an exact inverse, hence the wider tolerance.
      ['a CMYK JPEG', { width: 200, height: 100, cmyk: true, quality: 95 }, 16],
      ['a Display P3 JPEG', { width: 200, height: 100, icc: 'p3', quality: 95 }, 1.5],
      ['a 16-bit PNG', { width: 200, height: 100, format: 'png', sixteenBit: true }, 0.5],
      ['a 16-bit TIFF', { width: 200, height: 100, format: 'tiff', sixteenBit: true }, 0.5],
    ];
    for (const [what, photo, tolerance] of cases) {
      it(`converts ${what} to 8-bit sRGB with the original colours (±${tolerance})`, async () => {
        const expected = await srgbMean();
        const [rendered] = await renderAll(await makePhoto(photo), [{ width: 200, format: 'webp' }], {
          ...options,
          encoders: { ...options.encoders, webp: { quality: 100, effort: 2 } },
        });
        const metadata = await sharp(rendered!.data).metadata();
        expect([metadata.space, metadata.channels, metadata.depth]).to.deep.equal(['srgb', 3, 'uchar']);
        const actual = await meanOf(rendered!.data);
        actual.forEach((value, channel) => {
          expect(value).to.be.closeTo(expected[channel]!, tolerance);
        });
      });
    }

    it('applies the embedded profile rather than reading P3 numbers as sRGB', async () => {
      const p3 = await makePhoto({ width: 200, height: 100, icc: 'p3', quality: 95 });
      const expected = await srgbMean();
      const misread = await meanOf(await sharp(p3, { ignoreIcc: true }).png().toBuffer());
      expect(Math.max(...misread.map((value, channel) => Math.abs(value - expected[channel]!)))).to.be.above(2);
    });

    it('renders a greyscale JPEG as neutral grey', async () => {
      const [rendered] = await renderAll(
        await makePhoto({ width: 200, height: 100, grayscale: true }),
        [{ width: 100, format: 'jpeg' }],
        options,
      );
      const [r, g, b] = await meanOf(rendered!.data);
      expect(r).to.be.closeTo(g!, 1).and.closeTo(b!, 1);
    });
  });

  describe('multi-frame input', () => {
    // The same first-frame policy for both animated formats.
    for (const [kind, make] of [
      ['GIF', makeAnimatedGif],
      ['WebP', makeAnimatedWebp],
    ] as const) {
      it(`renders the first frame of an animated ${kind}, as a still`, async () => {
        const animation = await make({ width: 120, height: 80, frames: 3 }); // red, green, blue
        expect((await sharp(animation).metadata()).pages).to.equal(3);
        const rendered = await renderAll(animation, every([120, 60]), options);
        expect(rendered).to.have.length(6);
        for (const variant of rendered) {
          const [r, g, b] = await meanOf(variant.data);
          expect(r, variant.format).to.be.above(200);
          expect(g! + b!, variant.format).to.be.below(60);
          const metadata = await sharp(variant.data).metadata();
          expect(metadata.pages ?? 1).to.equal(1);
          expect([variant.width, variant.height]).to.deep.equal([metadata.width, metadata.height]);
        }
      });
    }

    it('renders the first page of a multi-page TIFF', async () => {
      const rendered = await renderAll(multiPageTiff(), every([64, 32], ['jpeg']), options);
      expect(rendered.map((v) => [v.width, v.height])).to.deep.equal([
        [64, 48],
        [32, 24],
      ]);
    });
  });

  describe('metadata', () => {
    const tagged = async (): Promise<Buffer> =>
      sharp(await makePhoto({ width: 400, height: 200, orientation: 6, icc: 'p3' }))
        .keepIccProfile()
        .withExif({
          IFD0: { Copyright: 'Test Copyright', Orientation: '6' },
          IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '51/1 30/1 0/1' },
        })
        .jpeg()
        .toBuffer();

    it('strips EXIF, GPS and ICC by default', async () => {
      const input = await tagged();
      expect((await sharp(input).metadata()).exif?.toString('latin1')).to.contain('Test Copyright');
      for (const variant of await renderAll(input, every([200, 100]), options)) {
        const metadata = await sharp(variant.data).metadata();
        expect(metadata.exif, variant.format).to.equal(undefined);
        expect(metadata.xmp, variant.format).to.equal(undefined);
        expect(metadata.orientation, variant.format).to.equal(undefined);
        expect(metadata.hasProfile, variant.format).to.equal(false);
      }
    });

    it('keeps EXIF with an sRGB profile when asked, without re-applying the orientation', async () => {
      for (const variant of await renderAll(await tagged(), every([200, 100]), {
        ...options,
        keepMetadata: true,
      })) {
        const metadata = await sharp(variant.data).metadata();
        expect(metadata.exif?.toString('latin1'), variant.format).to.contain('Test Copyright');
        expect(metadata.orientation ?? 1, variant.format).to.equal(1);
        expect(metadata.autoOrient.height, variant.format).to.be.above(metadata.autoOrient.width);
        expect(metadata.hasProfile, variant.format).to.equal(true);
      }
    });
  });

  it('keeps the cascade within 0.002 SSIM of direct resizes of the original', async function () {
    this.timeout(120_000);
    // PNG, so that the direct resize has no JPEG shrink-on-load and is a pure lanczos3 reference.
    const original = await makePhoto({ width: 3000, height: 2000, format: 'png' });
    const widths = [2048, 1600, 1024, 640, 320];
    const rendered = await renderAll(original, every(widths, ['jpeg']), options);
    const deltas: number[] = [];
    for (const variant of rendered) {
      const { width, height } = variant;
      const reference = await sharp(original)
        .resize(width, height, { fit: 'fill', kernel: 'lanczos3' })
        .raw()
        .toBuffer();
      const raw = { raw: { width, height, channels: 3 as const } };
      const directEncoded = await sharp(reference, raw).jpeg(options.encoders.jpeg).toBuffer();
      const referenceGrey = await greyOf(sharp(reference, raw));
      // The reference is the direct path's own pixels, so this comparison favours it.
      const direct = ssim(await greyOf(directEncoded), referenceGrey, width, height);
      const cascade = ssim(await greyOf(variant.data), referenceGrey, width, height);
      deltas.push(direct - cascade);
    }
    const mean = deltas.reduce((sum, delta) => sum + delta, 0) / deltas.length;
    expect(mean, `mean SSIM loss (per width: ${deltas.map((d) => d.toFixed(4)).join(', ')})`).to.be.below(0.002);
    expect(Math.max(...deltas), 'worst width').to.be.below(0.004);
  });

  describe('failures', () => {
    const cases: Array<[string, () => Buffer | Promise<Buffer>, Partial<RenderOptions>, ErrorCode]> = [
      [
        'a JPEG cut in half',
        async () => truncated(await makePhoto({ width: 400, height: 300 }), 0.5),
        {},
        'corrupt_image',
      ],
      [
        'a PNG cut in half',
        async () => truncated(await makePhoto({ width: 400, height: 300, format: 'png' }), 0.5),
        {},
        'corrupt_image',
      ],
      ['a PNG with a bad checksum', () => badCrcPng(), {}, 'corrupt_image'],
      ['a float planar TIFF', () => floatPlanarTiff(), {}, 'corrupt_image'],
      ['text', () => textPosingAsJpeg(), {}, 'corrupt_image'],
      [
        'an image over the pixel limit',
        () => makePhoto({ width: 200, height: 100 }),
        { limitInputPixels: 19_999 },
        'too_many_pixels',
      ],
      [
        'an animation over the frame limit',
        () => makeAnimatedGif({ width: 8, height: 8, frames: 5 }),
        { maxFrames: 4 },
        'too_many_frames',
      ],
      [
        'an animated WebP over the frame limit',
        () => makeAnimatedWebp({ width: 8, height: 8, frames: 5 }),
        { maxFrames: 4 },
        'too_many_frames',
      ],
      [
        'a deadline already past',
        () => makePhoto({ width: 64, height: 64 }),
        { deadline: Date.now() - 1 },
        'time_budget_exceeded',
      ],
    ];
    for (const [what, make, overrides, code] of cases) {
      it(`${what}: ${code}`, async () => {
        const error = await rejection(
          renderAll(await make(), [{ width: 4, format: 'jpeg' }], { ...options, ...overrides }),
        );
        expect(error.code).to.equal(code);
        expect(error.kind).to.equal('permanent');
        expect(error.message).not.to.match(/vips|sharp|\//i);
      });
    }

    it('stops with time_budget_exceeded when the deadline passes mid-render', async () => {
      const written: number[] = [];
      const error = await rejection(
        renderVariants(
          await makePhoto({ width: 400, height: 300 }),
          every([400, 200, 100], ['jpeg']),
          { ...options, deadline: Date.now() + 300 },
          async (variant) => {
            written.push(variant.width);
            await new Promise((resolve) => setTimeout(resolve, 400));
          },
        ),
      );
      expect(error.code).to.equal('time_budget_exceeded');
      expect(written).to.deep.equal([400]);
    });

    // An AVIF encode cannot be interrupted once started (encode-time.ts), so the budget is applied
    // before it: these check that the prediction is consulted and that a refused encode never runs.
    it('refuses an AVIF encode predicted to end past the deadline without starting it, after writing what came before', async () => {
      const model = new AvifEncodeTimeModel();
      const written: string[] = [];
      const error = await rejection(
        renderVariants(
          await makePhoto({ width: 2000, height: 1500 }),
          [
            { width: 2000, format: 'jpeg' },
            { width: 2000, format: 'avif' },
          ],
          // effort 9 at 3 MP is predicted at about two minutes; the budget is 30 s.
          {
            ...options,
            encoders: { ...options.encoders, avif: { quality: 50, effort: 9 } },
            deadline: Date.now() + 30_000,
            avifEncodeTimes: model,
          },
          async (variant) => void written.push(`${variant.format} ${variant.width}`),
        ),
      );
      expect(error.code).to.equal('time_budget_exceeded');
      expect(error.kind).to.equal('permanent');
      expect(error.message).to.match(/2000×1500 AVIF variant would need about \d+ s/);
      expect(error.details).to.include({ format: 'avif', width: 2000, height: 1500 });
      expect(written).to.deep.equal(['jpeg 2000']);
      expect(model.factor, 'no encode ran, so nothing was learned').to.equal(1);
    });

    it('encodes an AVIF predicted to fit, and learns its speed from it', async () => {
      const model = new AvifEncodeTimeModel();
      const [variant] = await renderAll(
        await makePhoto({ width: 800, height: 600 }),
        [{ width: 800, format: 'avif' }],
        {
          ...options,
          deadline: Date.now() + 60_000,
          avifEncodeTimes: model,
        },
      );
      expect((await sharp(variant!.data).metadata()).format).to.equal('heif');
      expect(model.factor, 'the observed encode moved the speed factor').to.not.equal(1);
    });

    it('refuses an AVIF encode that a model which learned a slow machine predicts past the deadline, which a fresh model would allow', async () => {
      const photo = await makePhoto({ width: 1000, height: 1000 });
      const budget = { ...options, encoders: { ...options.encoders, avif: { quality: 50, effort: 4 } } };
      // Fresh: 1 MP at effort 4 is predicted at ~1.9 s, well inside 20 s.
      await renderAll(photo, [{ width: 1000, format: 'avif' }], {
        ...budget,
        deadline: Date.now() + 20_000,
        avifEncodeTimes: new AvifEncodeTimeModel(),
      });
      const slow = new AvifEncodeTimeModel();
      for (let i = 0; i < 8; i++) slow.observe(1_000_000, 4, 1900 * 15); // fifteen times the bench machine's time
      const error = await rejection(
        renderAll(photo, [{ width: 1000, format: 'avif' }], {
          ...budget,
          deadline: Date.now() + 20_000,
          avifEncodeTimes: slow,
        }),
      );
      expect(error.code).to.equal('time_budget_exceeded');
    });

    it('encodes AVIF without a prediction when there is no deadline', async () => {
      const model = new AvifEncodeTimeModel();
      for (let i = 0; i < 8; i++) model.observe(1_000_000, 2, 1e9);
      const [variant] = await renderAll(
        await makePhoto({ width: 400, height: 300 }),
        [{ width: 400, format: 'avif' }],
        { ...options, avifEncodeTimes: model },
      );
      expect(variant!.format).to.equal('avif');
    });
  });
});
