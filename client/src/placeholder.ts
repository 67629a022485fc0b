/**
 * {@link placeholderDataURL}: the manifest's ThumbHash as a small PNG to show while the
 * `<picture>` loads. The decoder is npm `thumbhash` (MIT, Evan Wallace), bundled into the build.
 */
import { thumbHashToDataURL } from 'thumbhash';

/** Anything with the API's placeholder: a manifest, or a processing status that already has one. */
export interface HasPlaceholder {
  readonly placeholder?: { readonly color: string; readonly thumbhash: string } | undefined;
}

/**
 * A `data:image/png;base64,…` URL of the blurred preview (about 32 px on its long side, the image's
 * aspect ratio and alpha), or `undefined` when there is no placeholder (manifests from before
 * placeholders). Pair it with `placeholder.color` as a background for the very first paint.
 */
export function placeholderDataURL(source: HasPlaceholder): string | undefined {
  const base64 = source.placeholder?.thumbhash;
  if (!base64) return undefined;
  const binary = atob(base64);
  const hash = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) hash[i] = binary.charCodeAt(i);
  return thumbHashToDataURL(hash);
}
