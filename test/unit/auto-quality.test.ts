import { expect } from 'chai';
import sharp from 'sharp';
import {
  type AutoQualityOptions,
  autoQualityFromConfig,
  QUALITY_BOUNDS,
  type QualitySearch,
  referenceLuma,
  scoreEncode,
  searchQuality,
  searchWidth,
} from '../../shared/image/auto-quality.js';
import { loadConfig } from '../../shared/core/config.js';
import type { OutputFormat } from '../../shared/core/domain.js';
import { splitIntoJobs, planVariants } from '../../shared/image/plan.js';
import { type RenderOptions, renderAll } from '../../shared/image/render.js';
import { makePhoto } from '../fixtures/images.js';

/** A smooth, monotone stand-in for "SSIM as a function of quality". */
const curve = (quality: number): number => 1 - 0.3 * Math.exp(-quality / 18);
/** The lowest quality in [min, max] whose curve value reaches `target`, by brute force. */
function lowestMeeting(target: number, min: number, max: number): number | undefined {
  for (let q = min; q <= max; q++) if (curve(q) >= target) return q;
  return undefined;
}

function counted(score: (q: number) => number): { calls: number[]; fn: (q: number) => Promise<number> } {
  const calls: number[] = [];
  return {
    calls,
    fn: async (q) => {
      calls.push(q);
      return score(q);
    },
  };
}

describe('auto-quality', () => {
  describe('searchWidth', () => {
    it('is the configured width nearest 640 px, the smaller on a tie, never wider than the image', () => {
      expect(searchWidth([320, 640, 1024, 1600, 2048], 4000)).to.equal(640);
      expect(searchWidth([320, 1024, 2048], 4000)).to.equal(320); // 320 off by 320, 1024 by 384
      expect(searchWidth([480, 800], 4000)).to.equal(480); // a tie
      expect(searchWidth([1200, 2400], 4000)).to.equal(1200);
      expect(searchWidth([320, 640, 1024], 500)).to.equal(500);
    });
  });

  describe('searchQuality', () => {
    it('finds the lowest quality that meets the target when it has enough trials', async () => {
      for (const target of [0.9, 0.95, 0.97, 0.98, 0.99]) {
        const { fn } = counted(curve);
        const result = await searchQuality(fn, { target, min: 20, max: 95, start: 50, maxTrials: 12, tolerance: 0 });
        expect(result.quality, `target ${target}`).to.equal(lowestMeeting(target, 20, 95));
        expect(result.outcome).to.equal('met');
      }
    });

    it('never makes more than maxTrials trials, and chooses a quality it saw meet the target', async () => {
      for (const maxTrials of [1, 2, 3, 4, 5]) {
        for (const target of [0.9, 0.96, 0.985]) {
          const { calls, fn } = counted(curve);
          const result = await searchQuality(fn, { target, min: 20, max: 95, start: 80, maxTrials, tolerance: 0 });
          expect(calls.length).to.be.at.most(maxTrials);
          expect(result.trials.map((t) => t.quality)).to.deep.equal(calls);
          if (result.outcome === 'met') {
            expect(calls).to.include(result.quality);
            expect(curve(result.quality)).to.be.at.least(target);
          } else expect(result.quality).to.equal(95);
        }
      }
    });

    it('lands near the lowest passing quality within the default 4 trials', async () => {
      for (const target of [0.93, 0.96, 0.98]) {
        const result = await searchQuality(async (q) => curve(q), {
          target,
          min: 20,
          max: 95,
          start: 50,
          maxTrials: 4,
          tolerance: 0,
        });
        const exact = lowestMeeting(target, 20, 95) ?? 95;
        expect(result.quality, `target ${target}`).to.be.within(exact, exact + 4);
      }
    });

    it('stops at once when a trial lands within the tolerance above the target', async () => {
      const { calls, fn } = counted(curve);
      const result = await searchQuality(fn, { target: curve(60) - 0.001, min: 20, max: 95, start: 60, maxTrials: 5 });
      expect(calls).to.deep.equal([60]);
      expect(result).to.include({ quality: 60, outcome: 'met' });
    });

    it('uses the ceiling when no quality meets the target, and the floor when every one does', async () => {
      const high = counted(curve);
      const unreachable = await searchQuality(high.fn, { target: 0.9999, min: 30, max: 80, start: 50, maxTrials: 5 });
      expect(unreachable).to.include({ quality: 80, outcome: 'ceiling' });
      expect(
        high.calls.filter((q) => q < 30 || q > 80),
        'trial qualities outside 30–80',
      ).to.deep.equal([]);

      const low = counted(curve);
      const easy = await searchQuality(low.fn, {
        target: 0.5,
        min: 30,
        max: 80,
        start: 50,
        maxTrials: 5,
        tolerance: 0,
      });
      expect(easy).to.include({ quality: 30, outcome: 'met' });
      expect(
        low.calls.filter((q) => q < 30 || q > 80),
        'trial qualities outside 30–80',
      ).to.deep.equal([]);
    });

    it('clamps a start outside the bounds', async () => {
      const { calls, fn } = counted(curve);
      await searchQuality(fn, { target: 0.95, min: 30, max: 80, start: 99, maxTrials: 3 });
      expect(calls[0]).to.equal(80);
    });

    it('chooses a quality that does not fall as the target rises (monotone)', async () => {
      let previous = 0;
      for (let target = 0.85; target <= 0.995; target += 0.005) {
        const result = await searchQuality(async (q) => curve(q), {
          target,
          min: 20,
          max: 95,
          start: 60,
          maxTrials: 12,
          tolerance: 0,
        });
        expect(result.quality, `target ${target.toFixed(3)}`).to.be.at.least(previous);
        previous = result.quality;
      }
    });

    it('is deterministic: the same scores give the same trials', async () => {
      const options = { target: 0.975, min: 20, max: 95, start: 75, maxTrials: 4 };
      const a = await searchQuality(async (q) => curve(q), options);
      const b = await searchQuality(async (q) => curve(q), options);
      expect(a).to.deep.equal(b);
    });
  });

  describe('scoreEncode', () => {
    it('is 1 for a lossless encode, lower for a coarser one, and refuses a size mismatch', async () => {
      const photo = await makePhoto({ width: 96, height: 64, seed: 4 });
      const { data, info } = await sharp(photo).raw().toBuffer({ resolveWithObject: true });
      const pixels = { data, width: info.width, height: info.height, channels: info.channels };
      const reference = await referenceLuma(pixels);
      const raw = () => sharp(data, { raw: { width: 96, height: 64, channels: info.channels as 3 } });
      const lossless = await raw().png().toBuffer();
      const fine = await raw().jpeg({ quality: 95 }).toBuffer();
      const coarse = await raw().jpeg({ quality: 20 }).toBuffer();
      expect(await scoreEncode(reference, 96, 64, lossless)).to.be.closeTo(1, 1e-9);
      const fineScore = await scoreEncode(reference, 96, 64, fine);
      expect(fineScore)
        .to.be.lessThan(1)
        .and.greaterThan(await scoreEncode(reference, 96, 64, coarse));
      const smaller = await raw().resize(48, 32).png().toBuffer();
      const error = await scoreEncode(reference, 96, 64, smaller).catch((e: unknown) => e);
      expect(String(error)).to.match(/48×32.*96×64/);
    });
  });

  describe('configuration', () => {
    const buckets = { UPLOADS_BUCKET: 'b-uploads', IMAGES_BUCKET: 'b-images' };

    it('is off (fixed) by default and reads targets and trials in auto mode', () => {
      expect(autoQualityFromConfig(loadConfig(buckets))).to.equal(undefined);
      const auto = autoQualityFromConfig(
        loadConfig({
          ...buckets,
          QUALITY_MODE: 'auto',
          AUTO_QUALITY_TARGET_WEBP: '0.95',
          AUTO_QUALITY_MAX_TRIALS: '3',
        }),
      );
      expect(auto?.targets.webp).to.equal(0.95);
      expect(auto?.maxTrials).to.equal(3);
      expect(auto?.widths).to.deep.equal([320, 640, 1024, 1600, 2048]);
    });

    it('refuses bad values with a message naming the variable', () => {
      const bad = (env: Record<string, string>) => () => loadConfig({ ...buckets, ...env });
      expect(bad({ QUALITY_MODE: 'best' })).to.throw(/QUALITY_MODE must be one of fixed, auto \("best"\)/);
      expect(bad({ AUTO_QUALITY_TARGET_AVIF: '1.5' })).to.throw(/AUTO_QUALITY_TARGET_AVIF must be at most 0.999/);
      expect(bad({ AUTO_QUALITY_TARGET_JPEG: '0.2' })).to.throw(/AUTO_QUALITY_TARGET_JPEG must be at least 0.5/);
      expect(bad({ AUTO_QUALITY_TARGET_WEBP: 'high' })).to.throw(/AUTO_QUALITY_TARGET_WEBP must be a number/);
      expect(bad({ AUTO_QUALITY_MAX_TRIALS: '0' })).to.throw(/AUTO_QUALITY_MAX_TRIALS must be at least 1/);
      expect(bad({ AUTO_QUALITY_MAX_TRIALS: '2.5' })).to.throw(/AUTO_QUALITY_MAX_TRIALS must be a whole number/);
    });
  });

  describe('through renderVariants (real encoders)', function () {
    this.timeout(60_000);
    const config = loadConfig({
      UPLOADS_BUCKET: 'b-uploads',
      IMAGES_BUCKET: 'b-images',
      WIDTHS: '96,160,256',
      AVIF_EFFORT: '2',
      WEBP_EFFORT: '2',
    });
    const base: RenderOptions = {
      encoders: {
        jpeg: { quality: 80, mozjpeg: false },
        webp: { quality: 80, effort: 2 },
        avif: { quality: 50, effort: 2 },
      },
      keepMetadata: false,
      limitInputPixels: 50_000_000,
      maxFrames: 100,
    };
    const auto = (searches?: QualitySearch[]): AutoQualityOptions => ({
      targets: { avif: 0.97, webp: 0.97, jpeg: 0.97 },
      maxTrials: 4,
      widths: config.WIDTHS,
      ...(searches ? { searches } : {}),
    });
    const qualitiesOf = (variants: ReadonlyArray<{ format: OutputFormat; quality: number }>) => {
      const out: Partial<Record<OutputFormat, number[]>> = {};
      for (const v of variants) out[v.format] = [...(out[v.format] ?? []), v.quality];
      return out;
    };

    it('gives every job of an image the same quality per format, however the plan splits it', async () => {
      const photo = await makePhoto({ width: 400, height: 300, seed: 7 });
      const plan = planVariants({ width: 400, height: 300 }, config);
      const perWidth = splitIntoJobs(plan, { width: 400, height: 300 }, 'per-width');
      expect(perWidth.length).to.be.at.least(3);
      const whole = await renderAll(photo, plan, { ...base, autoQuality: auto() });
      const chosen = qualitiesOf(whole);
      for (const [format, list] of Object.entries(chosen)) expect(new Set(list).size, format).to.equal(1);
      for (const job of perWidth) {
        // Each job's widest level differs (96, 160, 256 px): the search must not depend on it.
        const rendered = await renderAll(photo, job, { ...base, autoQuality: auto() });
        for (const variant of rendered)
          expect(variant.quality, `${variant.format} ${variant.width}`).to.equal(chosen[variant.format]![0]);
      }
    });

    it('searches only the formats the job renders, and encodes its variants at the chosen quality', async () => {
      const photo = await makePhoto({ width: 400, height: 300, seed: 8 });
      const searches: QualitySearch[] = [];
      const variants = [
        { width: 256, format: 'webp' as const },
        { width: 160, format: 'webp' as const },
      ];
      const rendered = await renderAll(photo, variants, { ...base, autoQuality: auto(searches) });
      expect(searches.map((s) => s.format)).to.deep.equal(['webp']);
      const [search] = searches;
      expect(search!.width).to.equal(256);
      expect(search!.trials.length).to.be.within(1, 4);
      expect(search!.quality).to.be.within(QUALITY_BOUNDS.webp.min, QUALITY_BOUNDS.webp.max);
      // The same bytes as a fixed-quality render at the chosen quality: the variants use it.
      const fixed = await renderAll(photo, variants, {
        ...base,
        encoders: { ...base.encoders, webp: { ...base.encoders.webp, quality: search!.quality } },
      });
      expect(rendered.map((v) => v.quality)).to.deep.equal([search!.quality, search!.quality]);
      expect(rendered.map((v) => v.data.equals(fixed[rendered.indexOf(v)]!.data))).to.deep.equal([true, true]);
      expect(fixed.map((v) => v.quality)).to.deep.equal([search!.quality, search!.quality]);
    });

    it('spends less quality on a smooth gradient than on a noisy textured photo', async () => {
      const side = 256;
      const gradient = Buffer.alloc(side * side * 3);
      for (let y = 0; y < side; y++)
        for (let x = 0; x < side; x++) gradient.set([x, y, (x + y) >> 1], (y * side + x) * 3);
      const smooth = await sharp(gradient, { raw: { width: side, height: side, channels: 3 } })
        .png()
        .toBuffer();
      // Fine texture and per-pixel noise: every quality step shows in its SSIM.
      const noisy = await makePhoto({ width: side, height: side, seed: 3 });
      const variants = (['avif', 'webp', 'jpeg'] as const).map((format) => ({ width: 160, format }));
      const smoothQ = qualitiesOf(await renderAll(smooth, variants, { ...base, autoQuality: auto() }));
      const noisyQ = qualitiesOf(await renderAll(noisy, variants, { ...base, autoQuality: auto() }));
      for (const format of ['avif', 'webp', 'jpeg'] as const) {
        expect(smoothQ[format]![0], format).to.be.lessThan(noisyQ[format]![0]!);
        expect(smoothQ[format]![0], format).to.be.lessThan(base.encoders[format].quality);
      }
    });

    it('keeps the configured qualities without autoQuality (fixed mode)', async () => {
      const photo = await makePhoto({ width: 200, height: 150, seed: 9 });
      const rendered = await renderAll(
        photo,
        (['avif', 'webp', 'jpeg'] as const).map((format) => ({ width: 160, format })),
        base,
      );
      expect(rendered.map((v) => [v.format, v.quality])).to.deep.equal([
        ['avif', 50],
        ['webp', 80],
        ['jpeg', 80],
      ]);
    });
  });
});
