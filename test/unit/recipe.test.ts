import { createHash } from 'node:crypto';
import { expect } from 'chai';
import { loadConfig } from '../../shared/core/config.js';
import { EventMessageV1 } from '../../shared/core/schemas.js';
import { NO_RECIPE, RECIPE_KEYS, recipeHashOf, recipeOf } from '../../shared/core/recipe.js';
import { costOf, estimateUpdateCpuSeconds } from '../../shared/pipeline/reprocess.js';
import { variantName } from '../../shared/core/naming.js';

const config = loadConfig({ UPLOADS_BUCKET: 'p-uploads', IMAGES_BUCKET: 'p-images' });
const id = '0123456789abcdef0123456789abcdef';

describe('recipe', () => {
  it('leaves an empty list setting out, so a feature left off (no ASPECTS) keeps the recipe it had before', () => {
    const { ASPECTS: _aspects, ...withoutAspects } = config;
    expect(recipeOf({ ...config, ASPECTS: [] }).hash).to.equal(recipeOf(withoutAspects as typeof config).hash);
    expect(recipeOf({ ...config, ASPECTS: [] }).settings).to.not.have.property('ASPECTS');
    expect(recipeOf({ ...config, ASPECTS: ['1:1'] }).hash).to.not.equal(recipeOf({ ...config, ASPECTS: [] }).hash);
  });

  it('records every recipe setting by variable name, with a 12-hex-digit hash', () => {
    const recipe = recipeOf(config);
    // Every key but the empty lists of features left off (ASPECTS by default), in the default
    // QUALITY_MODE=fixed the auto-quality settings, and ANIMATION at its default first-frame.
    expect(Object.keys(recipe.settings)).to.deep.equal(
      RECIPE_KEYS.filter(
        (key) => key !== 'ASPECTS' && key !== 'QUALITY_MODE' && !key.startsWith('AUTO_QUALITY_') && key !== 'ANIMATION',
      ),
    );
    expect(recipe.settings.WIDTHS).to.deep.equal(config.WIDTHS);
    expect(recipe.hash).to.match(/^[0-9a-f]{12}$/);
  });

  it('changes its hash when any recipe setting changes, and not for settings outside it', () => {
    const base = recipeOf(config).hash;
    expect(recipeOf({ ...config, WIDTHS: [320, 640] }).hash).to.not.equal(base);
    expect(recipeOf({ ...config, AVIF_EFFORT: config.AVIF_EFFORT + 1 }).hash).to.not.equal(base);
    expect(recipeOf({ ...config, AVIF_BITDEPTH: config.AVIF_BITDEPTH === 10 ? 8 : 10 }).hash).to.not.equal(base);
    expect(recipeOf({ ...config, JPEG_PROGRESSIVE: !config.JPEG_PROGRESSIVE }).hash).to.not.equal(base);
    expect(recipeOf({ ...config, KEEP_METADATA: true }).hash).to.not.equal(base);
    const other = { ...config, FANOUT_STRATEGY: 'per-width' as const, MAX_INPUT_PIXELS: 1 };
    expect(recipeOf(other).hash).to.equal(base);
  });

  it('keeps the recipe of images made before auto-quality in fixed mode, and records the search settings in auto', () => {
    // The hash as recipeOf computed it before QUALITY_MODE existed (the same keys, same order).
    const before = [
      'WIDTHS',
      'FORMATS',
      'JPEG_QUALITY',
      'JPEG_MOZJPEG',
      'JPEG_PROGRESSIVE',
      'WEBP_QUALITY',
      'WEBP_EFFORT',
      'AVIF_QUALITY',
      'AVIF_EFFORT',
      'AVIF_BITDEPTH',
      'KEEP_METADATA',
    ] as const;
    const legacy = createHash('sha256')
      .update(JSON.stringify(before.map((key) => [key, config[key]])))
      .digest('hex')
      .slice(0, 12);
    expect(recipeOf(config).hash).to.equal(legacy);
    expect(recipeOf({ ...config, AUTO_QUALITY_TARGET_AVIF: 0.9 }).hash).to.equal(legacy);

    const auto = { ...config, QUALITY_MODE: 'auto' as const };
    expect(recipeOf(auto).hash).to.not.equal(legacy);
    expect(recipeOf(auto).settings).to.include({
      QUALITY_MODE: 'auto',
      AUTO_QUALITY_TARGET_AVIF: config.AUTO_QUALITY_TARGET_AVIF,
      AUTO_QUALITY_MAX_TRIALS: config.AUTO_QUALITY_MAX_TRIALS,
      AVIF_QUALITY: config.AVIF_QUALITY,
    });
    expect(recipeOf({ ...auto, AUTO_QUALITY_TARGET_JPEG: 0.9 }).hash).to.not.equal(recipeOf(auto).hash);
    expect(recipeOf({ ...auto, AUTO_QUALITY_MAX_TRIALS: 2 }).hash).to.not.equal(recipeOf(auto).hash);
  });

  it('treats a manifest without a recipe as `none`', () => {
    expect(recipeHashOf({})).to.equal(NO_RECIPE);
    expect(recipeHashOf({ recipe: recipeOf(config) })).to.equal(recipeOf(config).hash);
  });

  it('validates image.updated and image.deleted events (the tombstone markers went with the move to Firestore)', () => {
    const at = '2026-01-01T00:00:00.000Z';
    expect(EventMessageV1.safeParse({ v: 1, type: 'image.deleted', imageId: id, at }).success).to.equal(true);
    const updated = {
      v: 1,
      type: 'image.updated',
      imageId: id,
      manifest: { bucket: 'b', name: 'n' },
      variants: 3,
      recipe: 'abc',
      previousRecipe: 'none',
      at,
    };
    expect(EventMessageV1.safeParse(updated).success).to.equal(true);
    expect(EventMessageV1.safeParse({ ...updated, recipe: undefined }).success).to.equal(false);
  });
});

describe('reprocess cost estimate', () => {
  const photo = { format: 'jpeg', width: 4000, height: 3000, bytes: 1, contentType: 'image/jpeg' };

  it('is zero when nothing of the plan is missing, and counts only the missing variants', () => {
    const all = new Set(config.WIDTHS.concat(4000).flatMap((w) => config.FORMATS.map((f) => variantName(id, w, f))));
    expect(estimateUpdateCpuSeconds(photo, all, id, config)).to.equal(0);
    const without2048 = new Set([...all].filter((n) => !n.includes('/2048w.')));
    const some = estimateUpdateCpuSeconds(photo, without2048, id, config);
    const everything = estimateUpdateCpuSeconds(photo, new Set(), id, config);
    expect(some).to.be.greaterThan(0);
    expect(everything).to.be.greaterThan(some);
  });

  it('prices CPU-seconds at the vCPU rate plus the memory held', () => {
    expect(costOf(1000)).to.be.closeTo(1000 * 0.000024 + 500 * 2 * 0.0000025, 1e-12);
  });
});
