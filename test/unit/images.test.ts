import { expect } from 'chai';
import sharp, { type Metadata } from 'sharp';
import { crc32 } from 'node:zlib';
import {
  badCrcPng,
  billionLaughsSvg,
  floatPlanarTiff,
  heicContainer,
  jpegHeaderClaiming,
  makeAnimatedGif,
  makePhoto,
  multiPageTiff,
  pngBomb,
  simpleSvg,
  svgWithEntities,
  truncated,
  uprightSize,
  type PhotoOptions,
} from '../fixtures/images.js';
import { expectSameBytes } from '../helpers.js';

/** Header facts, without sharp's pixel limit (some fixtures claim to be enormous). */
const metadataOf = (bytes: Buffer): Promise<Metadata> => sharp(bytes, { limitInputPixels: false }).metadata();

describe('image fixtures', () => {
  describe('makePhoto', () => {
    const cases: Array<[string, PhotoOptions, Partial<Metadata>]> = [
      [
        'a JPEG',
        { width: 120, height: 80 },
        { format: 'jpeg', width: 120, height: 80, channels: 3, isProgressive: false },
      ],
      ['a progressive JPEG', { width: 120, height: 80, progressive: true }, { format: 'jpeg', isProgressive: true }],
      ['a PNG', { width: 120, height: 80, format: 'png' }, { format: 'png', channels: 3, depth: 'uchar' }],
      [
        'an interlaced PNG',
        { width: 120, height: 80, format: 'png', progressive: true },
        { format: 'png', isProgressive: true },
      ],
      ['a PNG with alpha', { width: 120, height: 80, format: 'png', alpha: true }, { hasAlpha: true, channels: 4 }],
      ['a WebP', { width: 120, height: 80, format: 'webp' }, { format: 'webp' }],
      ['an AVIF', { width: 120, height: 80, format: 'avif' }, { format: 'heif', compression: 'av1' }],
      ['a TIFF', { width: 120, height: 80, format: 'tiff' }, { format: 'tiff' }],
      ['a GIF', { width: 120, height: 80, format: 'gif' }, { format: 'gif', isPalette: true }],
      ['a CMYK JPEG', { width: 120, height: 80, cmyk: true }, { space: 'cmyk', channels: 4 }],
      ['a greyscale JPEG', { width: 120, height: 80, grayscale: true }, { space: 'b-w', channels: 1 }],
      [
        'a 16-bit PNG',
        { width: 120, height: 80, format: 'png', sixteenBit: true },
        { space: 'rgb16', depth: 'ushort' },
      ],
      ['a 16-bit TIFF', { width: 120, height: 80, format: 'tiff', sixteenBit: true }, { depth: 'ushort' }],
      ['a JPEG with a P3 profile', { width: 120, height: 80, icc: 'p3' }, { hasProfile: true }],
      [
        'a JPEG tagged with orientation 6',
        { width: 400, height: 200, orientation: 6 },
        { width: 400, height: 200, orientation: 6 },
      ],
    ];
    for (const [what, options, expected] of cases) {
      it(`makes ${what}`, async () => {
        expect(await metadataOf(await makePhoto(options))).to.include(expected);
      });
    }

    it('is deterministic for a seed and varies between seeds', async () => {
      const a = await makePhoto({ width: 64, height: 48, format: 'png', seed: 7 });
      expectSameBytes(
        await makePhoto({ width: 64, height: 48, format: 'png', seed: 7 }),
        a,
        'the same photo generated again',
      );
      expect((await makePhoto({ width: 64, height: 48, format: 'png', seed: 8 })).equals(a)).to.equal(false);
    });

    it('has photo-like detail rather than flat colour', async () => {
      const stats = await sharp(await makePhoto({ width: 200, height: 150, format: 'png' })).stats();
      for (const channel of stats.channels) expect(channel.stdev).to.be.above(20);
      expect(stats.entropy).to.be.above(6);
    });

    for (const orientation of [1, 2, 3, 4, 5, 6, 7, 8]) {
      it(`stores orientation ${orientation} so that auto-orienting shows the marker on top`, async () => {
        const photo = await makePhoto({ width: 90, height: 60, format: 'png', orientation, uprightMarker: true });
        const upright = uprightSize(90, 60, orientation);
        const { data, info } = await sharp(photo).rotate().raw().toBuffer({ resolveWithObject: true });
        expect([info.width, info.height]).to.deep.equal([upright.width, upright.height]);
        const pixel = (x: number, y: number): number[] => [
          ...data.subarray((y * info.width + x) * 3, (y * info.width + x) * 3 + 3),
        ];
        expect(pixel(0, 0), 'top-left blue').to.deep.equal([0, 0, 255]);
        expect(pixel(info.width - 1, 0), 'top-right red').to.deep.equal([255, 0, 0]);
        expect(pixel(info.width - 1, info.height - 1), 'bottom-right not red').to.not.deep.equal([255, 0, 0]);
      });
    }
  });

  it('makes an animated GIF with one colour per frame', async () => {
    const gif = await makeAnimatedGif({ width: 20, height: 10, frames: 4 });
    expect(await metadataOf(gif)).to.include({ format: 'gif', width: 20, height: 10, pages: 4 });
    const second = await sharp(gif, { page: 1 }).raw().toBuffer();
    expect([...second.subarray(0, 3)]).to.deep.equal([0, 255, 0]);
  });

  describe('hostile inputs', () => {
    const bombs: Array<[string, () => Buffer | Promise<Buffer>, number, number]> = [
      ['pngBomb', () => pngBomb(60_000, 60_000), 60_000, 60_000],
      ['jpegHeaderClaiming', () => jpegHeaderClaiming(65_000, 64_000), 65_000, 64_000],
    ];
    for (const [name, make, width, height] of bombs) {
      it(`${name} is tiny but claims ${width}×${height}`, async () => {
        const bomb = await make();
        expect(bomb.length).to.be.below(1024);
        expect(await metadataOf(bomb)).to.include({ width, height });
      });
    }

    it('badCrcPng has an IHDR whose checksum does not match', () => {
      const png = badCrcPng();
      expect(png.subarray(12, 16).toString('latin1')).to.equal('IHDR');
      expect(crc32(png.subarray(12, 29))).to.not.equal(png.readUInt32BE(29));
    });

    it('truncated keeps the requested fraction', () => {
      expect(truncated(Buffer.alloc(1000, 1), 0.25)).to.have.length(250);
    });

    it('multiPageTiff has pages of different shapes; libvips reads the first', async () => {
      expect(await metadataOf(multiPageTiff())).to.include({
        format: 'tiff',
        pages: 3,
        width: 64,
        height: 48,
        channels: 3,
      });
      await sharp(multiPageTiff(), { pages: -1 })
        .metadata()
        .then(
          () => expect.fail('reading all pages should fail'),
          (error: Error) => expect(error.message).to.match(/differs/),
        );
    });

    it('floatPlanarTiff reproduces "samples out of range"', async () => {
      await metadataOf(floatPlanarTiff()).then(
        () => expect.fail('should be refused'),
        (error: Error) => expect(error.message).to.match(/samples out of range/),
      );
    });

    it('the SVGs are what they say', async () => {
      expect(await metadataOf(simpleSvg(300, 200))).to.include({ format: 'svg', width: 300, height: 200 });
      expect(svgWithEntities().toString()).to.match(/<!ENTITY secret SYSTEM "file:\/\/\/etc\/passwd">/);
      expect(
        billionLaughsSvg()
          .toString()
          .match(/<!ENTITY/g),
      ).to.have.length(10);
      expect(heicContainer().subarray(4, 12).toString('latin1')).to.equal('ftypheic');
    });
  });
});
