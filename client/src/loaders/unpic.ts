/**
 * `@gcp-image-pipeline/client/unpic`: a transformer for unpic's `<Image>` (`@unpic/react`, `/vue`,
 * `/svelte`, `/astro`… `transformer` prop). unpic calls it once per breakpoint of its `srcset`, and
 * each call answers the URL of a variant that exists: the width snapped to a made one, in the
 * format asked for when the image has it (docs/frameworks.md).
 *
 * ```tsx
 * import { Image } from '@unpic/react';
 * import { loaderImage, transformer } from '@gcp-image-pipeline/client/unpic';
 * <Image {...loaderImage(manifest)} layout="constrained" transformer={transformer} alt="" />
 * ```
 */
import { variantUrlFor } from './variants.js';

export { type LoaderImage, type LoaderImageOptions, loaderImage } from './variants.js';

/** The operations unpic passes a transformer (declared here so unpic is no dependency). */
export interface UnpicOperations {
  readonly width?: number | undefined;
  /** Ignored: variants keep the image's (or the aspect's) proportions. */
  readonly height?: number | undefined;
  readonly format?: string | undefined;
  /** Ignored: every variant was made at the quality the manifest's `qualities` records. */
  readonly quality?: number | undefined;
}

/**
 * unpic's `(src, operations) → URL`: the made variant for `operations.width` (the widest without
 * one). A `src` not made by {@link loaderImage} comes back unchanged.
 */
export function transformer(src: string | URL, operations: UnpicOperations = {}): string {
  return variantUrlFor(String(src), operations.width ?? Number.POSITIVE_INFINITY, operations.format);
}

export default transformer;
