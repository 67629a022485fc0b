/**
 * ANIMATION=keep: the plan marks an animation's uncropped WebP variants animated, the render makes
 * them animated WebP with every frame, delay and the loop count, JPEG and AVIF stay the first
 * frame, the bound on all frames' pixels refuses before any decode, and the recipe changes.
 */
import { expect } from 'chai';
import sharp from 'sharp';
import { loadConfig } from '../../shared/core/config.js';
import { recipeOf } from '../../shared/core/recipe.js';
import { variantName, isVariantName } from '../../shared/core/naming.js';
import { animationFrames, assertAnimationFits, isAnimation, markAnimated } from '../../shared/image/animation.js';
import { estimateVariantCost, planImage } from '../../shared/image/plan.js';
import { probeImage, probeLimitsFromConfig } from '../../shared/image/probe.js';
import { renderAll, type RenderOptions } from '../../shared/image/render.js';
import { ANIMATION_FIXTURE, makeAnimatedGif, makeAnimatedWebp, makePhoto } from '../fixtures/images.js';
import { FAST_RENDER_OPTIONS, rejection } from '../helpers.js';

const config = loadConfig({ UPLOADS_BUCKET: 'p-uploads', IMAGES_BUCKET: 'p-images' });
const keep = { ...config, ANIMATION: 'keep' as const };

const options: RenderOptions = FAST_RENDER_OPTIONS;

const { width, height, frames, delays, loop } = ANIMATION_FIXTURE;
const makers = {
  GIF: () => makeAnimatedGif({ width, height, frames, delays, loop }),
  WebP: () => makeAnimatedWebp({ width, height, frames, delays, loop }),
};

describe('animation (ANIMATION=keep)', () => {
  it('marks only the uncropped WebP variants of a GIF or WebP animation, and only with keep', () => {
    const info = {
      width: 1000,
      height: 500,
      format: 'gif',
      frames: 4,
      crops: { '1:1': { left: 0, top: 0, width: 500, height: 500 } },
    };
    const plan = planImage(info, { ...keep, WIDTHS: [320, 640], ASPECTS: ['1:1'] }).variants;
    const animated = plan.filter((v) => v.animated);
    expect(animated.map((v) => `${v.format} ${v.width}`)).to.deep.equal(['webp 320', 'webp 640']);
    expect(animated.every((v) => v.aspect === undefined)).to.equal(true);
    expect(planImage(info, { ...config, WIDTHS: [320, 640] }).variants.some((v) => v.animated)).to.equal(false);
    // A still GIF, and a multi-page TIFF (a document, not an animation), stay still.
    expect(markAnimated([{ width: 320, format: 'webp' }], { format: 'gif', frames: 1 }, 'keep')).to.deep.equal([
      { width: 320, format: 'webp' },
    ]);
    expect(isAnimation({ format: 'tiff', frames: 3 })).to.equal(false);
    expect(isAnimation({ format: 'webp', frames: 3 })).to.equal(true);
    // What accept records: the frames of an animation that needs no EXIF turn (sharp turns pages by 180° only).
    expect(animationFrames({ format: 'webp', frames: 3, orientation: 1 })).to.equal(3);
    expect(animationFrames({ format: 'webp', frames: 3, orientation: 6 })).to.equal(undefined);
    expect(animationFrames({ format: 'webp', frames: 3, orientation: 2 })).to.equal(undefined);
    expect(animationFrames({ format: 'tiff', frames: 3, orientation: 1 })).to.equal(undefined);
  });

  it('prices an animated variant as every frame encoded (the fan-out sees it)', () => {
    const info = { width: 640, height: 360, format: 'gif', frames: 30 };
    const still = estimateVariantCost({ width: 320, format: 'webp' }, info);
    const animated = estimateVariantCost({ width: 320, format: 'webp', animated: true }, info);
    expect(animated).to.be.closeTo(30 * still, 1e-9);
  });

  it('names an animated variant apart from the still one, and cleanup still knows it as a variant', () => {
    const id = '0123456789abcdef0123456789abcdef';
    expect(variantName(id, 320, 'webp', undefined, true)).to.equal(`${id}/320w.anim.webp`);
    expect(variantName(id, 320, 'webp')).to.equal(`${id}/320w.webp`);
    expect(isVariantName(`${id}/320w.anim.webp`)).to.equal(true);
  });

  for (const [name, make] of Object.entries(makers)) {
    it(`renders an animated ${name} as animated WebP with every frame, its delays and loop; JPEG and AVIF are frame 1`, async () => {
      const original = await make();
      const rendered = await renderAll(
        original,
        [
          { width: 240, format: 'webp', animated: true },
          { width: 120, format: 'webp', animated: true },
          { width: 120, format: 'jpeg' },
          { width: 120, format: 'avif' },
        ],
        options,
      );
      const webps = rendered.filter((v) => v.format === 'webp');
      expect(webps.map((v) => [v.width, v.height, v.animated])).to.deep.equal([
        [240, 160, true],
        [120, 80, true],
      ]);
      for (const webp of webps) {
        const meta = await sharp(webp.data).metadata();
        expect(meta.pages, 'frames').to.equal(frames);
        expect(meta.delay, 'delays').to.deep.equal([...delays]);
        expect(meta.loop, 'loop').to.equal(loop);
        expect([meta.width, meta.pageHeight ?? meta.height]).to.deep.equal([webp.width, webp.height]);
        // Frame 2 (green) is really there, not frame 1 repeated.
        const second = await sharp(webp.data, { page: 1 }).stats();
        expect(second.channels[1]!.mean).to.be.above(200);
        expect(second.channels[0]!.mean).to.be.below(40);
      }
      for (const still of rendered.filter((v) => v.format !== 'webp')) {
        const meta = await sharp(still.data).metadata();
        expect(meta.pages ?? 1, still.format).to.equal(1);
        expect([meta.width, meta.height], still.format).to.deep.equal([120, 80]);
        expect(still.animated).to.equal(undefined);
        const { channels } = await sharp(still.data).stats(); // frame 1 is red
        expect(channels[0]!.mean, still.format).to.be.above(200);
        expect(channels[1]!.mean, still.format).to.be.below(40);
      }
    });
  }

  it('bounds all frames together by MAX_INPUT_PIXELS: too_many_pixels at the probe and before the decode', async () => {
    expect(() => assertAnimationFits({ width: 100, height: 100, frames: 10 }, 100_000)).to.not.throw();
    const original = await makeAnimatedGif({ width: 100, height: 100, frames: 11 });
    const limits = { ...probeLimitsFromConfig(keep), maxPixels: 100_000 };
    expect((await rejection(probeImage(original, limits))).code).to.equal('too_many_pixels');
    // ANIMATION=first-frame decodes one frame: the same file passes.
    expect((await probeImage(original, { ...limits, animation: 'first-frame' })).frames).to.equal(11);
    const error = await rejection(
      renderAll(original, [{ width: 100, format: 'webp', animated: true }], { ...options, limitInputPixels: 100_000 }),
    );
    expect(error.code).to.equal('too_many_pixels');
    expect(error.message).to.match(/11 frames of 100×100/);
  });

  it('refuses more frames than MAX_INPUT_FRAMES at the probe', async () => {
    const original = await makeAnimatedGif({ width: 8, height: 8, frames: 12 });
    const error = await rejection(probeImage(original, { ...probeLimitsFromConfig(keep), maxFrames: 10 }));
    expect(error.code).to.equal('too_many_frames');
  });

  it('changes the recipe with keep, and leaves the default out of it (images made before keep their hash)', async () => {
    expect(recipeOf(keep).hash).to.not.equal(recipeOf(config).hash);
    expect(recipeOf(keep).settings).to.include({ ANIMATION: 'keep' });
    expect(recipeOf(config).settings).to.not.have.property('ANIMATION');
    // A still photo is planned alike either way.
    const photo = await probeImage(
      await makePhoto({ width: 400, height: 300, format: 'jpeg' }),
      probeLimitsFromConfig(keep),
    );
    expect(planImage(photo, keep).variants).to.deep.equal(planImage(photo, config).variants);
  });
});
