/**
 * `@gcp-image-pipeline/client/next`: a next/image loader (`images.loaderFile`). next/image calls it
 * once per width of its `srcset` (its `deviceSizes` and `imageSizes`), and each call answers the URL
 * of a variant that exists: the width snapped to a made one (docs/frameworks.md).
 *
 * ```js
 * // image-loader.js, named by next.config.js `images: { loader: 'custom', loaderFile: './image-loader.js' }`
 * 'use client';
 * export { default } from '@gcp-image-pipeline/client/next';
 * ```
 */
import { variantUrlFor } from './variants.js';

export { type LoaderImage, type LoaderImageOptions, loaderImage } from './variants.js';

/** What next/image passes a loader (`ImageLoaderProps`, declared here so next is no dependency). */
export interface NextImageLoaderProps {
  readonly src: string;
  readonly width: number;
  /** Ignored: every variant was made at the quality the manifest's `qualities` records. */
  readonly quality?: number | undefined;
}

/**
 * The URL of the made variant for `width`, in the `src`'s default format (next/image asks for no
 * format; see {@link loaderImage} `format`). A `src` not made by {@link loaderImage} comes back
 * unchanged.
 */
export default function nextImageLoader({ src, width }: NextImageLoaderProps): string {
  return variantUrlFor(src, width);
}

export { nextImageLoader };
