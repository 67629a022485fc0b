/**
 * `@gcp-image-pipeline/client/astro`: an Astro external image service (`image.service.entrypoint`).
 * Astro asks it for the `<img src>` (`getURL`), the `srcset` candidates (`getSrcSet`) and the other
 * attributes (`getHTMLAttributes`); every URL it answers is a variant that exists, and the `srcset`
 * lists each made width once instead of Astro's default widths (docs/frameworks.md).
 *
 * ```js
 * // astro.config.mjs
 * export default defineConfig({ image: { service: { entrypoint: '@gcp-image-pipeline/client/astro' } } });
 * ```
 */
import { parseLoaderSrc, resolveVariant, variantUrlFor } from './variants.js';

export { type LoaderImage, type LoaderImageOptions, loaderImage } from './variants.js';

/** The part of Astro's `ImageTransform` the service reads (declared here so astro is no dependency). */
export interface AstroImageTransform {
  /** A {@link loaderImage} `src`; an imported image's metadata is passed through. */
  readonly src: string | { readonly src: string };
  readonly width?: number | undefined;
  readonly height?: number | undefined;
  readonly widths?: readonly number[] | undefined;
  readonly densities?: readonly (number | `${number}x`)[] | undefined;
  readonly format?: string | undefined;
  readonly quality?: unknown;
  readonly [attribute: string]: unknown;
}

/** One `srcset` candidate, as Astro's `getSrcSet` returns it. */
export interface AstroSrcSetValue {
  readonly transform: AstroImageTransform;
  readonly descriptor: string;
  readonly attributes: Record<string, unknown>;
}

/** Options of Astro's `<Image>` that are not HTML attributes (as Astro's base service strips them). */
const NOT_HTML = new Set([
  'src',
  'width',
  'height',
  'format',
  'quality',
  'densities',
  'widths',
  'formats',
  'layout',
  'priority',
  'fit',
  'position',
  'background',
  'inferSize',
]);

const srcOf = (options: AstroImageTransform) => (typeof options.src === 'string' ? options.src : options.src.src);

/** The made variant for the `width` asked (the widest without one), in `format` when the image has it. */
function getURL(options: AstroImageTransform): string {
  return variantUrlFor(srcOf(options), options.width ?? Number.POSITIVE_INFINITY, options.format);
}

/**
 * The `srcset`: Astro's requested `widths` (set by `layout`, or the `widths` prop) or `densities`
 * (× `width`) snapped to made widths, each URL once, with the made width as its `w` descriptor
 * (densities keep their `x`). Without either, none, as Astro's own services do: `<Picture>` then
 * puts the bare `src` first, which `w` candidates must not follow.
 */
function getSrcSet(options: AstroImageTransform): AstroSrcSetValue[] {
  const parsed = parseLoaderSrc(srcOf(options));
  if (parsed === undefined) return [];
  const widest = resolveVariant(parsed, Number.POSITIVE_INFINITY, options.format);
  const asked: Array<{ width: number; density?: number }> = options.widths
    ? options.widths.map((width) => ({ width }))
    : (options.densities ?? []).map((d) => {
        const density = typeof d === 'number' ? d : Number.parseFloat(d);
        return { width: (options.width ?? widest.width) * density, density };
      });
  const seen = new Set<string>();
  const candidates: AstroSrcSetValue[] = [];
  for (const { width, density } of asked) {
    const variant = resolveVariant(parsed, width, options.format);
    if (seen.has(variant.url)) continue;
    seen.add(variant.url);
    candidates.push({
      transform: { ...options, width: variant.width },
      descriptor: density === undefined ? `${variant.width}w` : `${density}x`,
      attributes: {},
    });
  }
  return candidates;
}

/** The `<img>`'s other attributes: the caller's HTML ones, `width`/`height`, lazy loading by default. */
function getHTMLAttributes(options: AstroImageTransform): Record<string, unknown> {
  const attributes = Object.fromEntries(Object.entries(options).filter(([key]) => !NOT_HTML.has(key)));
  return {
    ...attributes,
    width: options.width,
    height: options.height,
    loading: attributes.loading ?? 'lazy',
    decoding: attributes.decoding ?? 'async',
  };
}

/** The service object Astro loads as the entrypoint's default export. */
const service = { getURL, getSrcSet, getHTMLAttributes };

export default service;
export { getHTMLAttributes, getSrcSet, getURL };
