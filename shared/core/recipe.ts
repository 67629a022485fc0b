/**
 * The recipe: every setting that determines an image's variants (which ones, and how they are
 * encoded). Each manifest records the recipe it was made with and a short hash of it, so that
 * images made with another recipe can be found and brought up to date (docs/state.md,
 * "Updates"). Adding a setting to the recipe is one line in {@link RECIPE_KEYS}; a list setting
 * that is empty (a feature left off, e.g. no ASPECTS) is left out, and so are the auto-quality
 * settings in QUALITY_MODE=fixed and ANIMATION at its default `first-frame`, so adding a feature does not change the recipe of images made
 * without it. In `auto` mode the *_QUALITY settings stay in: they are where the search starts.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Config } from './config.js';

/** The configuration variables that determine the variants, in the order they are hashed. */
export const RECIPE_KEYS = [
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
  'ASPECTS',
  'QUALITY_MODE',
  'AUTO_QUALITY_TARGET_AVIF',
  'AUTO_QUALITY_TARGET_WEBP',
  'AUTO_QUALITY_TARGET_JPEG',
  'AUTO_QUALITY_MAX_TRIALS',
  'ANIMATION',
] as const satisfies ReadonlyArray<keyof Config>;

/**
 * Recipe keys that decide the variants only with QUALITY_MODE=auto: left out in `fixed` mode (the
 * *_QUALITY settings alone decide then), so images made before auto-quality keep their recipe.
 */
const AUTO_QUALITY_KEYS: ReadonlySet<string> = new Set([
  'QUALITY_MODE',
  'AUTO_QUALITY_TARGET_AVIF',
  'AUTO_QUALITY_TARGET_WEBP',
  'AUTO_QUALITY_TARGET_JPEG',
  'AUTO_QUALITY_MAX_TRIALS',
]);

/** A recipe as manifests and jobs carry it: the settings by variable name, and their hash. */
export const RecipeV1 = z.object({
  /** First 12 hex digits of the SHA-256 of the settings' canonical JSON. */
  hash: z.string().regex(/^[0-9a-f]{12}$/),
  /** The settings by environment variable name (lists as arrays). */
  settings: z.record(z.string(), z.unknown()),
});
/** A recipe and its hash. */
export type Recipe = z.infer<typeof RecipeV1>;

/** Hash of a manifest without a recipe (made before recipes were recorded): never current. */
export const NO_RECIPE = 'none';

/** The recipe of a configuration. Pure. */
export function recipeOf(config: Pick<Config, (typeof RECIPE_KEYS)[number]>): Recipe {
  const settings: Record<string, unknown> = {};
  for (const key of RECIPE_KEYS) {
    if (config.QUALITY_MODE !== 'auto' && AUTO_QUALITY_KEYS.has(key)) continue;
    // The default changes nothing that images made before ANIMATION existed did: left out likewise.
    if (key === 'ANIMATION' && config.ANIMATION === 'first-frame') continue;
    const value = config[key];
    if (value !== undefined && !(Array.isArray(value) && value.length === 0)) settings[key] = value;
  }
  const hash = createHash('sha256')
    .update(JSON.stringify(Object.entries(settings)))
    .digest('hex')
    .slice(0, 12);
  return { hash, settings };
}

/** The recipe hash a manifest records, or {@link NO_RECIPE}. */
export function recipeHashOf(manifest: { recipe?: Recipe | undefined }): string {
  return manifest.recipe?.hash ?? NO_RECIPE;
}
