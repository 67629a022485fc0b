/**
 * What the framework loaders share: a `src` that carries the widths that exist, and the snapping of
 * a requested width to one of them. Loaders are called synchronously, once per width, with nothing
 * but `src` (next/image's `loader({src, width})`, unpic's transformer): so `src` itself says what
 * was made, and no URL a loader returns can name a variant that was not (docs/frameworks.md).
 */
import { variantsOf } from '../picture.js';
import type { Format, Manifest, ManifestVariant } from '../types.js';

/** File extension per format, as the pipeline names variants (shared/core/naming.ts EXTENSIONS). */
const EXTENSIONS: Readonly<Record<Format, string>> = { avif: 'avif', webp: 'webp', jpeg: 'jpg' };
// A literal, not Object.keys(EXTENSIONS): a call at module level would survive tree-shaking in every import.
const FORMATS: readonly Format[] = ['avif', 'webp', 'jpeg'];

/** Marks a fragment as ours, so a loader can tell our `src` from any other image's. */
const MARK = 'gip';

/** Options of {@link loaderImage}. */
export interface LoaderImageOptions {
  /** An aspect of the manifest's `aspects` (e.g. `16:9`): its crop's variants instead of the whole image's. */
  readonly aspect?: string | undefined;
  /**
   * The format a loader returns when the framework does not ask for one (next/image never does).
   * Default: WebP when the manifest has it (every current browser decodes it), else JPEG, else the
   * first format. A framework that asks for a format the image has (Astro's `format`, unpic's
   * `operations.format`) gets it.
   */
  readonly format?: Format | undefined;
}

/** What a framework image component needs: the loader `src`, and the intrinsic size it reserves. */
export interface LoaderImage {
  /**
   * The URL of the default format's widest variant, with a fragment listing every made width per
   * format: `https://…/{id}/2048w.webp#gip&webp=320-640-1024-2048&avif=…`. It answers 200 as it is
   * (a fragment is never sent), so it is a working image even where no loader runs.
   */
  readonly src: string;
  readonly width: number;
  readonly height: number;
}

/**
 * The `src`, `width` and `height` to give next/image, Astro's `<Image>` or unpic's `<Image>` with
 * this package's loader. Built from the manifest on the server (or wherever the manifest is read);
 * the loader then needs nothing else. Throws when the manifest (or the aspect) has no variant.
 *
 * ```tsx
 * <Image {...loaderImage(manifest)} alt="" sizes="100vw" />
 * ```
 */
export function loaderImage(manifest: Manifest, options: LoaderImageOptions = {}): LoaderImage {
  const { variants } = variantsOf(manifest, options.aspect);
  const first = variants[0];
  if (first === undefined)
    throw new Error(`The manifest of ${manifest.id} has no variants${options.aspect ? ` for ${options.aspect}` : ''}.`);
  const folder = first.url.slice(0, first.url.lastIndexOf('/') + 1);
  const present = FORMATS.filter((format) => variants.some((v) => v.format === format));
  if (options.format !== undefined && !present.includes(options.format))
    throw new Error(`The manifest of ${manifest.id} has no ${options.format} variants.`);
  const preferred =
    options.format ?? (['webp', 'jpeg'] as const).find((f) => present.includes(f)) ?? (present[0] as Format);
  const order = [preferred, ...present.filter((format) => format !== preferred)];
  const params: string[] = [MARK];
  const animated: Format[] = [];
  let widest: ManifestVariant | undefined;
  for (const format of order) {
    const list = variants.filter((v) => v.format === format).sort((a, b) => a.width - b.width);
    const anim = list.every((v) => v.animated === true);
    // Only variants whose URL is the one a loader will rebuild from the width: so every URL a
    // loader returns is a URL the manifest lists.
    const made = list.filter((v) => v.url === fileUrl(folder, v.width, format, anim));
    if (made.length === 0) continue;
    params.push(`${format}=${made.map((v) => v.width).join('-')}`);
    if (anim) animated.push(format);
    widest ??= made.at(-1);
  }
  if (widest === undefined) throw new Error(`The manifest of ${manifest.id} has no variant under one folder.`);
  if (animated.length > 0) params.push(`anim=${animated.join('-')}`);
  return { src: `${widest.url}#${params.join('&')}`, width: widest.width, height: widest.height };
}

/** What a {@link loaderImage} `src` says. */
export interface ParsedLoaderSrc {
  /** The variants' folder, ending with `/`. */
  readonly folder: string;
  /** The default format first, then the others. */
  readonly formats: readonly Format[];
  /** Made widths per format, ascending. */
  readonly widths: Readonly<Partial<Record<Format, readonly number[]>>>;
  readonly animated: ReadonlySet<Format>;
}

/** The parts of a {@link loaderImage} `src`, or undefined for any other `src`. */
export function parseLoaderSrc(src: string): ParsedLoaderSrc | undefined {
  const hash = src.lastIndexOf('#');
  if (hash < 0) return undefined;
  const params = src.slice(hash + 1).split('&');
  if (params[0] !== MARK) return undefined;
  const url = src.slice(0, hash);
  const formats: Format[] = [];
  const widths: Partial<Record<Format, number[]>> = {};
  const animated = new Set<Format>();
  for (const param of params.slice(1)) {
    const [key, value = ''] = param.split('=');
    const list = value.split('-').map(Number);
    if (key === 'anim') for (const f of value.split('-')) if (isFormat(f)) animated.add(f);
    if (!isFormat(key) || list.some((w) => !Number.isInteger(w) || w <= 0)) continue;
    formats.push(key);
    widths[key] = list.sort((a, b) => a - b);
  }
  if (formats.length === 0) return undefined;
  return { folder: url.slice(0, url.lastIndexOf('/') + 1), formats, widths, animated };
}

/**
 * The made width to serve for a requested one: the narrowest at least as wide (never blurrier
 * than asked), else the widest there is (variants are never enlarged past the original).
 */
export function snapWidth(widths: readonly number[], requested: number): number {
  const widest = widths.at(-1);
  if (widest === undefined) throw new Error('snapWidth: no widths');
  return widths.find((w) => w >= requested) ?? widest;
}

/**
 * The variant URL a loader returns for `width` (and `format`, when the image has it): always one
 * the manifest listed. A `src` that is not a {@link loaderImage} one (a static asset through the
 * same next/image) is returned unchanged, as the framework would load it without a loader.
 */
export function variantUrlFor(src: string, width: number, format?: string): string {
  const parsed = parseLoaderSrc(src);
  if (parsed === undefined) return src;
  return resolveVariant(parsed, width, format).url;
}

/** The made variant for a requested width and format: its width, format and URL. */
export function resolveVariant(
  parsed: ParsedLoaderSrc,
  width: number,
  format?: string,
): { width: number; format: Format; url: string } {
  // Frameworks spell JPEG `jpg` too (Astro's `format`).
  const asked = format === 'jpg' ? 'jpeg' : format;
  const chosen = (isFormat(asked) && parsed.widths[asked] ? asked : parsed.formats[0]) as Format;
  const made = snapWidth(parsed.widths[chosen] as readonly number[], width);
  return { width: made, format: chosen, url: fileUrl(parsed.folder, made, chosen, parsed.animated.has(chosen)) };
}

/** A variant's URL in `folder`, named as shared/core/naming.ts variantName does. */
function fileUrl(folder: string, width: number, format: Format, animated: boolean): string {
  return `${folder}${width}w${animated ? '.anim' : ''}.${EXTENSIONS[format]}`;
}

function isFormat(value: string | undefined): value is Format {
  return value !== undefined && Object.hasOwn(EXTENSIONS, value);
}
