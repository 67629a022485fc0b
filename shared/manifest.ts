/**
 * Manifest building and the fan-in check, as pure functions over object listings.
 */
import type { OutputFormat } from './config.js';
import type { Manifest, ManifestVariant, OmittedVariant, OriginalInfo, VariantSpec } from './messages.js';
import { CONTENT_TYPES, variantName } from './naming.js';
import type { Recipe } from './recipe.js';

/** `<source>` order: the smallest files first, JPEG as the universal fallback last. */
export const FORMAT_PREFERENCE: readonly OutputFormat[] = ['avif', 'webp', 'jpeg'];

/** What the fan-in needs to know of a variant object that exists. */
export interface VariantObject {
  readonly name: string;
  readonly bytes: number;
  /** Pixel dimensions written into the object's metadata by `resize`. */
  readonly width: number;
  readonly height: number;
}

/** The planned variants whose objects are not in `existing` (names of the image's objects). */
export function missingVariants(id: string, plan: readonly VariantSpec[], existing: ReadonlySet<string>): VariantSpec[] {
  return plan.filter((variant) => !existing.has(variantName(id, variant.width, variant.format)));
}

/** Inputs of {@link buildManifest}. */
export interface ManifestInput {
  readonly id: string;
  readonly original: OriginalInfo & { name: string; generation: string };
  readonly plan: readonly VariantSpec[];
  /** Configured width × format pairs the plan left out for the format's limits (from the job). */
  readonly omitted?: readonly OmittedVariant[];
  /** Objects found for the image, keyed by name; must cover the plan. */
  readonly objects: ReadonlyMap<string, VariantObject>;
  /** Base URL of the images bucket, without a trailing slash. */
  readonly baseUrl: string;
  readonly now: Date;
  /** The recipe the plan was made with (shared/recipe.ts). */
  readonly recipe?: Recipe;
}

/**
 * Builds `manifest.json`: variants sorted by format preference then width, each with the URL a
 * page can put straight into `srcset`, and `omitted` (same order) when the plan left pairs out
 * for a format's limits. Throws if a planned variant is missing (a fan-in bug).
 */
export function buildManifest(input: ManifestInput): Manifest {
  const variants: ManifestVariant[] = input.plan.map((spec) => {
    const name = variantName(input.id, spec.width, spec.format);
    const object = input.objects.get(name);
    if (!object) throw new Error(`buildManifest: ${name} is missing`);
    return {
      width: object.width,
      height: object.height,
      format: spec.format,
      contentType: CONTENT_TYPES[spec.format],
      bytes: object.bytes,
      name,
      url: `${input.baseUrl}/${name.split('/').map(encodeURIComponent).join('/')}`,
    };
  });
  const rank = (format: OutputFormat) => FORMAT_PREFERENCE.indexOf(format);
  variants.sort((a, b) => rank(a.format) - rank(b.format) || a.width - b.width);
  const formats = FORMAT_PREFERENCE.filter((format) => variants.some((v) => v.format === format));
  const omitted = [...(input.omitted ?? [])].map((o) => ({ ...o })).sort((a, b) => rank(a.format) - rank(b.format) || a.width - b.width);
  return {
    v: 1,
    id: input.id,
    original: { ...input.original },
    formats,
    variants,
    ...(omitted.length > 0 ? { omitted } : {}),
    ...(input.recipe ? { recipe: input.recipe } : {}),
    createdAt: input.now.toISOString(),
  };
}

/** A `srcset` attribute value for one format of a manifest, e.g. for a `<source>` element. */
export function srcsetOf(manifest: Manifest, format: OutputFormat): string {
  return manifest.variants
    .filter((v) => v.format === format)
    .map((v) => `${v.url} ${v.width}w`)
    .join(', ');
}
