/**
 * Manifest building and the fan-in check, as pure functions over object listings.
 */
import type {
  AspectVariant,
  CropRect,
  Manifest,
  ManifestAspect,
  ManifestVariant,
  OmittedVariant,
  OriginalInfo,
  SrcsetByFormat,
  VariantSpec,
} from '../core/schemas.js';
import { CONTENT_TYPES, omittedVariantName, variantName } from '../core/naming.js';
import type { Placeholder } from './placeholder.js';
import type { Recipe } from '../core/recipe.js';
import type { OutputFormat } from '../core/domain.js';

/** `<source>` order: the smallest files first, JPEG as the universal fallback last. */
export const FORMAT_PREFERENCE: readonly OutputFormat[] = ['avif', 'webp', 'jpeg'];

/**
 * The variant whose object carries the placeholder: the plan's smallest uncropped width, in the
 * first format of `FORMAT_PREFERENCE` the plan has there. Exactly one job renders it, so exactly one
 * job's pixels feed the manifest's placeholder whatever the split.
 */
export function placeholderVariantOf(
  plan: readonly VariantSpec[],
  preference: readonly OutputFormat[] = FORMAT_PREFERENCE,
): { width: number; format: OutputFormat; animated?: true } | undefined {
  const uncropped = plan.filter((spec) => spec.aspect === undefined);
  if (uncropped.length === 0) return undefined;
  const width = Math.min(...uncropped.map((spec) => spec.width));
  const format = preference.find((f) => uncropped.some((spec) => spec.width === width && spec.format === f));
  const animated = uncropped.some((spec) => spec.width === width && spec.format === format && spec.animated);
  return format ? { width, format, ...(animated ? { animated: true as const } : {}) } : undefined;
}

/** What the fan-in needs to know of a variant object that exists. */
export interface VariantObject {
  readonly name: string;
  readonly bytes: number;
  /** Pixel dimensions written into the object's metadata by `resize`. */
  readonly width: number;
  readonly height: number;
  /** For an aspect variant: the crop rectangle its job cut it from (object metadata). */
  readonly crop?: CropRect;
  /** The image's placeholder, on the one variant that carries it (render.ts placeholderVariantOf). */
  readonly placeholder?: Placeholder;
  /** The encoder quality it was made with (object metadata; absent on variants from before it). */
  readonly quality?: number;
}

/** Inputs of {@link buildManifest}. */
export interface ManifestInput {
  readonly id: string;
  readonly original: OriginalInfo & { name: string; generation: string };
  /** The planned variants that were written (those left out at render time are in `omitted`). */
  readonly plan: readonly VariantSpec[];
  /** Configured width × format pairs left out: for the format's limits (from the job), or at render time. */
  readonly omitted?: readonly OmittedVariant[];
  /** Objects found for the image, keyed by name; must cover the plan. */
  readonly objects: ReadonlyMap<string, VariantObject>;
  /** Base URL of the images bucket, without a trailing slash. */
  readonly baseUrl: string;
  readonly now: Date;
  /** The recipe the plan was made with (shared/core/recipe.ts). */
  readonly recipe?: Recipe;
}

/**
 * Builds `manifest.json`: variants sorted by format preference then width, each with the URL a
 * page can put straight into `srcset`, and `omitted` (same order) when the plan left pairs out
 * for a format's limits. Throws if a planned variant is missing (a fan-in bug).
 */
export function buildManifest(input: ManifestInput): Manifest {
  const entryOf = (spec: VariantSpec): ManifestVariant & { crop?: CropRect } => {
    const name = variantName(input.id, spec.width, spec.format, spec.aspect, spec.animated);
    const object = input.objects.get(name);
    if (!object) throw new Error(`buildManifest: ${name} is missing`);
    return {
      width: object.width,
      height: object.height,
      format: spec.format,
      contentType: CONTENT_TYPES[spec.format],
      bytes: object.bytes,
      name,
      url: variantUrl(input.baseUrl, name),
      ...(spec.aspect !== undefined && object.crop ? { crop: { ...object.crop } } : {}),
      ...(spec.animated ? { animated: true as const } : {}),
    };
  };
  const rank = (format: OutputFormat) => FORMAT_PREFERENCE.indexOf(format);
  const byPreference = (a: { format: OutputFormat; width: number }, b: { format: OutputFormat; width: number }) =>
    rank(a.format) - rank(b.format) || a.width - b.width;
  const formatsOf = (list: readonly { format: OutputFormat }[]) =>
    FORMAT_PREFERENCE.filter((format) => list.some((v) => v.format === format));

  const variants: ManifestVariant[] = input.plan
    .filter((spec) => spec.aspect === undefined)
    .map(entryOf)
    .sort(byPreference);
  const aspects: Record<string, ManifestAspect> = {};
  for (const spec of input.plan) {
    if (spec.aspect === undefined || aspects[spec.aspect]) continue;
    const crop = input.original.crops?.[spec.aspect];
    if (!crop) throw new Error(`buildManifest: no crop for aspect ${spec.aspect}`);
    const entries = input.plan.filter((other) => other.aspect === spec.aspect).map(entryOf) as AspectVariant[];
    for (const entry of entries) if (!entry.crop) throw new Error(`buildManifest: ${entry.name} has no crop metadata`);
    entries.sort(byPreference);
    aspects[spec.aspect] = {
      crop: { ...crop },
      formats: formatsOf(entries),
      variants: entries,
      srcset: srcsetByFormat(entries),
    };
  }
  const omitted = [...(input.omitted ?? [])]
    .map((o) => ({ ...o }))
    .sort((a, b) => rank(a.format) - rank(b.format) || a.width - b.width);
  const { crops: _crops, ...original } = input.original;
  const qualities = qualitiesOf(input);
  const carrier = placeholderVariantOf(input.plan);
  const placeholder = carrier
    ? input.objects.get(variantName(input.id, carrier.width, carrier.format, undefined, carrier.animated))?.placeholder
    : undefined;
  return {
    v: 1,
    id: input.id,
    original,
    formats: formatsOf(variants),
    variants,
    srcset: srcsetByFormat(variants),
    ...(omitted.length > 0 ? { omitted } : {}),
    ...(input.recipe ? { recipe: input.recipe } : {}),
    ...(Object.keys(aspects).length > 0 ? { aspects } : {}),
    ...(Object.keys(qualities).length > 0 ? { qualities } : {}),
    ...(placeholder ? { placeholder: { ...placeholder } } : {}),
    createdAt: input.now.toISOString(),
  };
}

/**
 * Each format's encoder quality, from its variants' objects. Every job of an image chooses the same
 * quality per format, so they agree; they can differ only after a recipe update that kept older
 * variants, and then the widest variant's is given. Formats whose variants carry none are left out.
 */
function qualitiesOf(input: ManifestInput): Partial<Record<OutputFormat, number>> {
  const qualities: Partial<Record<OutputFormat, number>> = {};
  const widestFirst = [...input.plan].sort((a, b) => b.width - a.width);
  for (const format of FORMAT_PREFERENCE) {
    for (const spec of widestFirst.filter((s) => s.format === format)) {
      const quality = input.objects.get(
        variantName(input.id, spec.width, spec.format, spec.aspect, spec.animated),
      )?.quality;
      if (quality !== undefined) {
        qualities[format] = quality;
        break;
      }
    }
  }
  return qualities;
}

/** A `srcset` attribute value for one format of a manifest, e.g. for a `<source>` element. */
export function srcsetOf(manifest: Manifest, format: OutputFormat, aspect?: string): string {
  const list = aspect === undefined ? manifest.variants : (manifest.aspects?.[aspect]?.variants ?? []);
  return srcsetOfVariants(list.filter((v) => v.format === format));
}

/**
 * The manifest's `srcset` field: one value per format that has variants, in preference order.
 * The variants come sorted by width within a format ({@link buildManifest}), so each value ascends.
 */
function srcsetByFormat(variants: readonly ManifestVariant[]): SrcsetByFormat {
  const srcset: SrcsetByFormat = {};
  for (const format of FORMAT_PREFERENCE) {
    const list = variants.filter((v) => v.format === format);
    if (list.length > 0) srcset[format] = srcsetOfVariants(list);
  }
  return srcset;
}

/** `url 320w, url 640w`; a comma would end a candidate, so one in a URL (say, the base URL's) is escaped. */
function srcsetOfVariants(variants: readonly ManifestVariant[]): string {
  return variants.map((v) => `${v.url.replaceAll(',', '%2C')} ${v.width}w`).join(', ');
}

/** Every variant a manifest lists, uncropped and of every aspect (the `image.ready` count). */
export function variantCount(manifest: Manifest): number {
  return (
    manifest.variants.length +
    Object.values(manifest.aspects ?? {}).reduce((sum, aspect) => sum + aspect.variants.length, 0)
  );
}

/**
 * The object names a manifest accounts for: every variant it lists (uncropped and of every
 * aspect) and every omission's name. After an update, anything else under the image is stale.
 */
export function manifestObjectNames(manifest: Manifest): Set<string> {
  return new Set([
    ...manifest.variants.map((v) => v.name),
    ...Object.values(manifest.aspects ?? {}).flatMap((aspect) => aspect.variants.map((v) => v.name)),
    ...(manifest.omitted ?? []).map((o) => omittedVariantName(manifest.id, o.width, o.format, o.aspect)),
  ]);
}

/** A variant's public URL: the base URL and its object name, each path segment encoded. */
export function variantUrl(baseUrl: string, name: string): string {
  return `${baseUrl}/${name.split('/').map(encodeURIComponent).join('/')}`;
}
