/** {@link pictureSources}: the attributes of a `<picture>` built from a manifest alone. */
import type { Format, Manifest, ManifestVariant } from './types.js';

/** One `<source>`: a format's variants. */
export interface PictureSource {
  readonly type: string;
  readonly srcset: string;
  readonly sizes: string;
}

/** The `<img>`: the fallback format's variants, and the intrinsic size that reserves the layout box. */
export interface PictureImg {
  readonly src: string;
  readonly srcset: string;
  readonly sizes: string;
  readonly width: number;
  readonly height: number;
}

/** Options of {@link pictureSources}. */
export interface PictureOptions {
  /** The `sizes` attribute: how wide the image is laid out, e.g. `(max-width: 600px) 100vw, 600px`. Default `100vw`. */
  readonly sizes?: string | undefined;
  /** An aspect of the manifest's `aspects` (e.g. `16:9`): its crop's variants instead of the whole image's. */
  readonly aspect?: string | undefined;
  /** The width the `<img src>` should have for browsers without `srcset`; the narrowest at least this wide is used (default 1024). */
  readonly srcWidth?: number | undefined;
}

/**
 * `<source>`s in the manifest's format preference order (AVIF, then WebP…) and the `<img>` with the
 * JPEGs, which every browser decodes (the last format listed when there are none). Widths within a
 * format ascend. Throws when the manifest (or the aspect) has no variant to show.
 *
 * ```ts
 * const { sources, img } = pictureSources(manifest, { sizes: '(max-width: 40rem) 100vw, 40rem' });
 * ```
 */
export function pictureSources(
  manifest: Manifest,
  options: PictureOptions = {},
): { sources: PictureSource[]; img: PictureImg } {
  const sizes = options.sizes ?? '100vw';
  const { formats, variants } = variantsOf(manifest, options.aspect);
  const present = formats.filter((format) => variants.some((v) => v.format === format));
  const fallback: Format | undefined = present.includes('jpeg') ? 'jpeg' : present.at(-1);
  if (fallback === undefined)
    throw new Error(`The manifest of ${manifest.id} has no variants${options.aspect ? ` for ${options.aspect}` : ''}.`);
  const ofFormat = (format: Format) => variants.filter((v) => v.format === format).sort((a, b) => a.width - b.width);
  const sources = present
    .filter((format) => format !== fallback)
    .map((format) => {
      const list = ofFormat(format);
      return { type: list[0]?.contentType ?? `image/${format}`, srcset: srcsetOf(list), sizes };
    });
  const fallbacks = ofFormat(fallback);
  const srcWidth = options.srcWidth ?? 1024;
  const src = fallbacks.find((v) => v.width >= srcWidth) ?? (fallbacks.at(-1) as ManifestVariant);
  return {
    sources,
    img: { src: src.url, srcset: srcsetOf(fallbacks), sizes, width: src.width, height: src.height },
  };
}

/** The manifest's variants, or an aspect's crop's; throws naming the aspects there are for an unknown one. */
export function variantsOf(
  manifest: Manifest,
  aspect: string | undefined,
): { formats: readonly Format[]; variants: readonly ManifestVariant[] } {
  if (aspect === undefined) return manifest;
  const cropped = manifest.aspects?.[aspect];
  if (!cropped)
    throw new Error(
      `The manifest of ${manifest.id} has no aspect ${aspect} (it has: ${Object.keys(manifest.aspects ?? {}).join(', ') || 'none'}).`,
    );
  return cropped;
}

/** `url 320w, url 640w`; commas in a URL would end a candidate, so they are escaped. */
function srcsetOf(variants: readonly ManifestVariant[]): string {
  return variants.map((v) => `${v.url.replaceAll(',', '%2C')} ${v.width}w`).join(', ');
}
