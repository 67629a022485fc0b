import { expect } from 'chai';
import sharp from 'sharp';
import {
  type DecodeOptions,
  decodeLevel,
  SHRINK_ON_LOAD_MARGIN,
  shrinkOnLoadMargin,
} from '../../shared/image/decode.js';
import { makePhoto } from '../fixtures/images.js';

const options: DecodeOptions = { keepMetadata: false, limitInputPixels: 50_000_000, maxFrames: 100 };

describe('shrink-on-load with a margin (decode.ts)', () => {
  describe('shrinkOnLoadMargin: what sharp would decode at, ÷ the target', () => {
    const jpeg = (w: number, h: number, tw: number, th: number) =>
      shrinkOnLoadMargin('jpeg', { width: w, height: h }, { width: tw, height: th });

    it('takes the largest DCT scale (8, 4, 2) the shrink reaches', () => {
      // 6000 → 1600: shrink 3.75, 1/2 → 3000 px, 1.875× the target.
      expect(jpeg(6000, 4000, 1600, 1067)).to.be.closeTo(1.875, 1e-3);
      // 6000 → 1024: shrink 5.86, 1/4 → 1500 px.
      expect(jpeg(6000, 4000, 1024, 683)).to.be.closeTo(1500 / 1024, 1e-3);
      // 6000 → 640: shrink 9.4, 1/8 → 750 px.
      expect(jpeg(6000, 4000, 640, 427)).to.be.closeTo(750 / 640, 1e-3);
    });

    it('uses the smaller axis, and rounds a partial DCT block up', () => {
      // 3001 × 2000 → 1000 × 500: shrink min(3.0, 4.0) = 3, 1/2 → 1501 px wide.
      expect(jpeg(3001, 2000, 1000, 500)).to.be.closeTo(1501 / 1000, 1e-3);
    });

    it('halves the scale when the shrink truncates to it (libjpeg rounding), and is Infinity when none is left', () => {
      // 6000 → 2048: shrink 2.93 truncates to 2 → no scaling.
      expect(jpeg(6000, 4000, 2048, 1365)).to.equal(Number.POSITIVE_INFINITY);
      // Shrink exactly 4 → 1/2, not 1/4.
      expect(jpeg(4096, 2048, 1024, 512)).to.equal(2);
      // Shrink exactly 2 → no scaling at all.
      expect(jpeg(4000, 3000, 2000, 1500)).to.equal(Number.POSITIVE_INFINITY);
      // Shrink under 2: nothing to scale.
      expect(jpeg(3000, 2000, 2048, 1365)).to.equal(Number.POSITIVE_INFINITY);
    });

    it('WebP scales to the target itself (margin 1); PNG and others never shrink on load', () => {
      expect(shrinkOnLoadMargin('webp', { width: 4096, height: 4096 }, { width: 2048, height: 2048 })).to.equal(1);
      expect(shrinkOnLoadMargin('webp', { width: 2048, height: 2048 }, { width: 2048, height: 2048 })).to.equal(
        Number.POSITIVE_INFINITY,
      );
      expect(shrinkOnLoadMargin('png', { width: 8000, height: 6000 }, { width: 640, height: 480 })).to.equal(
        Number.POSITIVE_INFINITY,
      );
    });

    it('meets the margin for a 24 MP photo at 1600 px (1/2), not at 1024 (1/4) or 640 px (1/8)', () => {
      const meets = (tw: number, th: number) => jpeg(6000, 4000, tw, th) >= SHRINK_ON_LOAD_MARGIN;
      expect([meets(1600, 1067), meets(1024, 683), meets(640, 427)]).to.deep.equal([true, false, false]);
    });
  });

  describe('decodeLevel', function () {
    this.timeout(20_000);
    let photo: Buffer;
    const resized = async (width: number, height: number, fastShrinkOnLoad: boolean) =>
      sharp(photo)
        .rotate()
        .resize(width, height, { fit: 'fill', kernel: 'lanczos3', fastShrinkOnLoad })
        .toColourspace('srgb')
        .raw()
        .toBuffer();

    before(async () => {
      photo = await makePhoto({ width: 3200, height: 2000, format: 'jpeg', seed: 5 });
    });

    it('decodes at 1/2 when that leaves the margin (3200 → 1000 px: 1600 px decoded, 1.6×)', async () => {
      const level = await decodeLevel(photo, 1000, 625, { width: 3200, height: 2000 }, options);
      const shrunk = await resized(1000, 625, true);
      expect(level.data.equals(shrunk)).to.equal(true);
      expect(level.data.equals(await resized(1000, 625, false))).to.equal(false);
    });

    it('keeps sharp’s 2× rule when 1/4 would leave less than the margin (3200 → 600 px: 800 px, 1.33×)', async () => {
      const level = await decodeLevel(photo, 600, 375, { width: 3200, height: 2000 }, options);
      expect(level.data.equals(await resized(600, 375, false))).to.equal(true);
      expect(level.data.equals(await resized(600, 375, true))).to.equal(false);
    });

    it('never shrinks on load beyond sharp’s own rule with an infinite margin', async () => {
      const level = await decodeLevel(
        photo,
        1000,
        625,
        { width: 3200, height: 2000 },
        { ...options, shrinkOnLoadMargin: Number.POSITIVE_INFINITY },
      );
      expect(level.data.equals(await resized(1000, 625, false))).to.equal(true);
    });
  });
});
