import { expect } from 'chai';
import sharp from 'sharp';
import type { ErrorCode } from '../../shared/core/errors.js';
import {
  probeImage,
  probeLimitsFromConfig,
  sniffFormat,
  type InputFormat,
  type ProbeLimits,
  type ProbeResult,
} from '../../shared/image/probe.js';
import {
  badCrcPng,
  billionLaughsSvg,
  floatPlanarTiff,
  heicContainer,
  htmlPosingAsImage,
  jpegHeaderClaiming,
  makeAnimatedGif,
  makeAnimatedWebp,
  makePhoto,
  multiPageTiff,
  pngBomb,
  simpleSvg,
  svgWithEntities,
  textPosingAsJpeg,
  truncated,
  zeroBytes,
} from '../fixtures/images.js';
import { rejection } from '../helpers.js';

const limits: ProbeLimits = {
  maxBytes: 25 * 1024 * 1024,
  maxPixels: 50_000_000,
  maxFrames: 100,
  allowSvg: false,
  widths: [320, 640, 1024, 1600, 2048],
  formats: ['avif', 'webp', 'jpeg'],
};

const ascii = (text: string): Buffer => Buffer.from(text, 'latin1');
const ftyp = (major: string, ...compatible: string[]): Buffer => {
  const box = Buffer.concat([Buffer.alloc(4), ascii(`ftyp${major}`), Buffer.alloc(4), ...compatible.map(ascii)]);
  box.writeUInt32BE(box.length, 0);
  return Buffer.concat([box, Buffer.alloc(32)]);
};

describe('probe', () => {
  describe('probeLimitsFromConfig', () => {
    it('maps the six settings', () => {
      expect(
        probeLimitsFromConfig({
          MAX_UPLOAD_BYTES: 10,
          MAX_INPUT_PIXELS: 20,
          MAX_INPUT_FRAMES: 3,
          ALLOW_SVG: true,
          WIDTHS: [100],
          FORMATS: ['webp'],
        }),
      ).to.deep.equal({ maxBytes: 10, maxPixels: 20, maxFrames: 3, allowSvg: true, widths: [100], formats: ['webp'] });
    });
  });

  describe('sniffFormat', () => {
    const cases: Array<[string, () => Buffer | Promise<Buffer>, InputFormat | undefined]> = [
      ['a JPEG', () => makePhoto({ width: 16, height: 16 }), 'jpeg'],
      ['a PNG', () => makePhoto({ width: 16, height: 16, format: 'png' }), 'png'],
      ['a WebP', () => makePhoto({ width: 16, height: 16, format: 'webp' }), 'webp'],
      ['an AVIF written by sharp', () => makePhoto({ width: 16, height: 16, format: 'avif' }), 'avif'],
      ['an AVIF with major brand mif1', () => ftyp('mif1', 'mif1', 'avif', 'miaf'), 'avif'],
      ['an AVIF image sequence', () => ftyp('avis', 'avis', 'msf1'), 'avif'],
      ['a HEIC from a phone', () => heicContainer(), 'heif'],
      ['a generic HEIF', () => ftyp('mif1', 'mif1'), 'heif'],
      ['an MP4 video', () => ftyp('isom', 'isom', 'mp41'), undefined],
      ['a GIF89a', () => makeAnimatedGif({ width: 8, height: 8, frames: 2 }), 'gif'],
      ['a GIF87a header', () => ascii('GIF87a\x01\x00\x01\x00'), 'gif'],
      ['a little-endian TIFF', () => makePhoto({ width: 16, height: 16, format: 'tiff' }), 'tiff'],
      ['a big-endian TIFF header', () => Buffer.from([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8]), 'tiff'],
      ['a BigTIFF header', () => Buffer.from([0x49, 0x49, 0x2b, 0x00, 8, 0, 0, 0]), 'tiff'],
      ['an SVG with an XML declaration', () => simpleSvg(), 'svg'],
      ['a bare SVG', () => ascii('<svg xmlns="http://www.w3.org/2000/svg"/>'), 'svg'],
      [
        'an SVG with a BOM, comment and DOCTYPE',
        () =>
          Buffer.concat([
            Buffer.from([0xef, 0xbb, 0xbf]),
            ascii(
              '<!-- x --><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n<svg>',
            ),
          ]),
        'svg',
      ],
      ['an SVG with an entity subset', () => billionLaughsSvg(), 'svg'],
      ['HTML', () => htmlPosingAsImage(), undefined],
      ['HTML with an inline <svg>', () => ascii('<html><body><svg></svg></body></html>'), undefined],
      ['XML that is not SVG', () => ascii('<?xml version="1.0"?><rss></rss>'), undefined],
      ['text named photo.jpg', () => textPosingAsJpeg(), undefined],
      ['zero bytes', () => zeroBytes, undefined],
      ['two bytes of a JPEG', () => Buffer.from([0xff, 0xd8]), undefined],
      ['a PDF', () => ascii('%PDF-1.7\n'), undefined],
    ];
    for (const [what, make, expected] of cases) {
      it(`sniffs ${what} as ${expected ?? 'nothing'}`, async () => {
        expect(sniffFormat(await make())).to.equal(expected);
      });
    }
  });

  describe('probeImage accepts', () => {
    const cases: Array<[string, () => Buffer | Promise<Buffer>, Partial<ProbeLimits>, Partial<ProbeResult>]> = [
      [
        'a baseline JPEG',
        () => makePhoto({ width: 120, height: 80 }),
        {},
        {
          format: 'jpeg',
          contentType: 'image/jpeg',
          width: 120,
          height: 80,
          frames: 1,
          hasAlpha: false,
          orientation: 1,
        },
      ],
      [
        'a progressive JPEG',
        () => makePhoto({ width: 120, height: 80, progressive: true }),
        {},
        { format: 'jpeg', width: 120, height: 80 },
      ],
      [
        'a JPEG with EXIF orientation 6, reporting upright size',
        () => makePhoto({ width: 400, height: 200, orientation: 6 }),
        {},
        { width: 200, height: 400, orientation: 6 },
      ],
      [
        'a CMYK JPEG',
        () => makePhoto({ width: 64, height: 48, cmyk: true }),
        {},
        { format: 'jpeg', width: 64, height: 48 },
      ],
      [
        'a PNG with alpha',
        () => makePhoto({ width: 64, height: 48, format: 'png', alpha: true }),
        {},
        { format: 'png', contentType: 'image/png', hasAlpha: true },
      ],
      [
        'a 16-bit PNG',
        () => makePhoto({ width: 64, height: 48, format: 'png', sixteenBit: true }),
        {},
        { format: 'png', width: 64 },
      ],
      [
        'a WebP',
        () => makePhoto({ width: 64, height: 48, format: 'webp' }),
        {},
        { format: 'webp', contentType: 'image/webp' },
      ],
      [
        'an AVIF',
        () => makePhoto({ width: 64, height: 48, format: 'avif' }),
        {},
        { format: 'avif', contentType: 'image/avif', width: 64, height: 48 },
      ],
      [
        'an animated GIF, counting its frames',
        () => makeAnimatedGif({ width: 40, height: 30, frames: 5 }),
        {},
        { format: 'gif', contentType: 'image/gif', width: 40, height: 30, frames: 5 },
      ],
      [
        'an animated WebP, counting its frames',
        () => makeAnimatedWebp({ width: 40, height: 30, frames: 5 }),
        {},
        { format: 'webp', contentType: 'image/webp', width: 40, height: 30, frames: 5 },
      ],
      [
        'a TIFF',
        () => makePhoto({ width: 64, height: 48, format: 'tiff' }),
        {},
        { format: 'tiff', contentType: 'image/tiff' },
      ],
      [
        'a multi-page TIFF, sized by its first page',
        () => multiPageTiff(),
        {},
        { format: 'tiff', width: 64, height: 48, frames: 3 },
      ],
      [
        'an SVG when SVG is allowed',
        () => simpleSvg(300, 200),
        { allowSvg: true },
        { format: 'svg', contentType: 'image/svg+xml', width: 300, height: 200 },
      ],
      [
        'an image exactly at the pixel limit',
        () => makePhoto({ width: 100, height: 50, format: 'png' }),
        { maxPixels: 5000 },
        { width: 100, height: 50 },
      ],
      [
        'an animation exactly at the frame limit',
        () => makeAnimatedGif({ width: 8, height: 8, frames: 4 }),
        { maxFrames: 4 },
        { frames: 4 },
      ],
    ];
    for (const [what, make, limitOverrides, expected] of cases) {
      it(what, async () => {
        const bytes = await make();
        const result = await probeImage(bytes, { ...limits, ...limitOverrides });
        expect(result).to.include({ ...expected, bytes: bytes.length });
      });
    }
  });

  describe('probeImage rejects', () => {
    const cases: Array<
      [string, () => Buffer | Promise<Buffer>, Partial<ProbeLimits>, ErrorCode, Record<string, unknown>?]
    > = [
      ['zero bytes', () => zeroBytes, {}, 'not_an_image'],
      [
        'a file over the byte limit',
        () => makePhoto({ width: 64, height: 64 }),
        { maxBytes: 100 },
        'payload_too_large',
        { maxBytes: 100 },
      ],
      ['text posing as a JPEG', () => textPosingAsJpeg(), {}, 'not_an_image'],
      ['HTML posing as an image', () => htmlPosingAsImage(), {}, 'not_an_image'],
      ['HEIC brands without a meta box', () => heicContainer(), {}, 'corrupt_image'],
      ['an SVG when SVG is not allowed', () => simpleSvg(), {}, 'format_not_allowed', { format: 'svg' }],
      [
        'an SVG declaring an external entity (XXE), even when SVG is allowed',
        () => svgWithEntities(),
        { allowSvg: true },
        'format_not_allowed',
        { format: 'svg' },
      ],
      [
        'a billion-laughs SVG, even when SVG is allowed',
        () => billionLaughsSvg(),
        { allowSvg: true },
        'format_not_allowed',
        { format: 'svg' },
      ],
      [
        'a billion-laughs SVG when SVG is not allowed',
        () => billionLaughsSvg(),
        {},
        'format_not_allowed',
        { format: 'svg' },
      ],
      [
        'a PNG claiming 20000×20000',
        () => pngBomb(20_000, 20_000),
        {},
        'too_many_pixels',
        { width: 20_000, height: 20_000, maxPixels: 50_000_000 },
      ],
      [
        'a PNG claiming 60000×60000',
        () => pngBomb(60_000, 60_000),
        {},
        'too_many_pixels',
        { width: 60_000, height: 60_000, maxPixels: 50_000_000 },
      ],
      [
        'a JPEG header claiming 65000×65000',
        () => jpegHeaderClaiming(65_000, 65_000),
        {},
        'too_many_pixels',
        { width: 65_000, height: 65_000, maxPixels: 50_000_000 },
      ],
      [
        'a real image one pixel over the limit',
        () => makePhoto({ width: 100, height: 50, format: 'png' }),
        { maxPixels: 4999 },
        'too_many_pixels',
        { width: 100, height: 50, maxPixels: 4999 },
      ],
      [
        'an animation over the frame limit',
        () => makeAnimatedGif({ width: 8, height: 8, frames: 5 }),
        { maxFrames: 4 },
        'too_many_frames',
        { frames: 5, maxFrames: 4 },
      ],
      [
        'an animated WebP over the frame limit',
        () => makeAnimatedWebp({ width: 8, height: 8, frames: 5 }),
        { maxFrames: 4 },
        'too_many_frames',
        { frames: 5, maxFrames: 4 },
      ],
      [
        'a multi-page TIFF over the page limit',
        () => multiPageTiff(),
        { maxFrames: 2 },
        'too_many_frames',
        { frames: 3, maxFrames: 2 },
      ],
      ['a PNG with a bad header checksum', () => badCrcPng(), {}, 'corrupt_image'],
      [
        'a JPEG cut inside its header',
        async () => truncated(await makePhoto({ width: 64, height: 64 }), 0.05),
        {},
        'corrupt_image',
      ],
      [
        'a PNG cut inside its header',
        async () => truncated(await makePhoto({ width: 64, height: 64, format: 'png' }), 0.001),
        {},
        'corrupt_image',
      ],
      ['a float, planar, multi-page TIFF ("samples out of range")', () => floatPlanarTiff(), {}, 'corrupt_image'],
      [
        'a GIF signature followed by garbage',
        () => Buffer.concat([ascii('GIF89a'), Buffer.alloc(20, 0xff)]),
        {},
        'corrupt_image',
      ],
    ];
    for (const [what, make, limitOverrides, code, details] of cases) {
      it(`${what}: ${code}`, async () => {
        const error = await rejection(probeImage(await make(), { ...limits, ...limitOverrides }));
        expect(error.code).to.equal(code);
        expect(error.kind).to.equal('permanent');
        if (details) expect(error.details).to.deep.equal(details);
        // Safe to show a client: one short sentence, no paths, no library internals.
        expect(error.message).to.match(/^[A-Z][^\n]{5,160}\.$/);
        expect(error.message).not.to.match(/vips|sharp|libpng|tiff2vips|\/tmp|\bat \w/i);
      });
    }
  });

  describe('pixel bombs', () => {
    const bombs: Array<[string, () => Buffer | Promise<Buffer>]> = [
      ['PNG 20000×20000', () => pngBomb(20_000, 20_000)],
      ['PNG 60000×60000', () => pngBomb(60_000, 60_000)],
      ['JPEG 65000×65000', () => jpegHeaderClaiming(65_000, 65_000)],
    ];
    for (const [what, make] of bombs) {
      it(`rejects a ${what} from the header alone, quickly and without allocating`, async () => {
        const bomb = await make();
        expect(bomb.length).to.be.below(1024);
        sharp.cache(false);
        const rssBefore = process.memoryUsage().rss;
        const started = performance.now();
        const error = await rejection(probeImage(bomb, limits));
        const elapsed = performance.now() - started;
        const grown = process.memoryUsage().rss - rssBefore;
        expect(error.code).to.equal('too_many_pixels');
        expect(elapsed, 'milliseconds').to.be.below(250);
        expect(grown, 'bytes of RSS growth').to.be.below(50 * 1024 * 1024);
      });
    }
  });

  it('passes a file whose body (not header) is truncated: the decode catches that later', async () => {
    const photo = await makePhoto({ width: 200, height: 100 });
    const result = await probeImage(truncated(photo, 0.5), limits);
    expect(result).to.include({ format: 'jpeg', width: 200, height: 100 });
  });

  it('takes the format from the bytes, whatever the client called the file', async () => {
    const png = await makePhoto({ width: 32, height: 32, format: 'png' });
    expect((await probeImage(png, limits)).contentType).to.equal('image/png');
  });

  describe('shapes: refuses only what no variant can be made of', () => {
    // Header-only PNGs (one row of data): the probe reads the header, so the shape is all that matters.
    const accepted: Array<[number, number, Partial<ProbeLimits>]> = [
      [1080, 20000, {}],
      [20000, 1080, {}],
      [1, 50000, {}],
      [50000, 1, {}],
      [16384, 1, {}],
      [1, 65500, {}], // JPEG's limit exactly
      [1, 16384, { formats: ['avif'] }], // AVIF's limit exactly
      [1, 16383, { formats: ['webp'] }], // WebP's limit exactly
      [2, 32766, { formats: ['webp'] }], // a 1 px wide WebP of it is 16383 tall
    ];
    for (const [width, height, overrides] of accepted) {
      const formats = overrides.formats ?? limits.formats;
      it(`accepts ${width}×${height} with ${formats.join(', ')}`, async () => {
        expect(await probeImage(pngBomb(width, height), { ...limits, ...overrides })).to.include({ width, height });
      });
    }

    const refused: Array<[number, number, Partial<ProbeLimits>]> = [
      [1, 65501, {}],
      [1, 1_000_000, {}],
      [1, 16385, { formats: ['avif', 'webp'] }],
      [1, 16384, { formats: ['webp'] }],
      [2, 32768, { formats: ['webp'] }],
    ];
    for (const [width, height, overrides] of refused) {
      const formats = overrides.formats ?? limits.formats;
      it(`refuses ${width}×${height} with ${formats.join(', ')}: unsupported_dimensions, a 422 that says why`, async () => {
        const error = await rejection(probeImage(pngBomb(width, height), { ...limits, ...overrides }));
        expect(error.code).to.equal('unsupported_dimensions');
        expect(error.status).to.equal(422);
        expect(error.kind).to.equal('permanent');
        expect(error.details).to.deep.equal({ width, height });
        expect(error.message).to.match(/^[A-Z][^\n]{5,200}\.$/);
        expect(error.message).to.include(`${width}×${height}`);
      });
    }
  });
});
