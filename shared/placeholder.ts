/**
 * Placeholders a page shows while the `<picture>` loads: the dominant colour and a ThumbHash
 * (https://evanw.github.io/thumbhash/, npm `thumbhash`). Both come from the smallest planned level
 * of the render cascade, shrunk to at most 100×100 RGBA (ThumbHash's input limit), so the cost is
 * one tiny resize; where it is computed and carried is in docs/api.md ("Placeholder").
 */
import sharp, { type Sharp } from 'sharp';
import { rgbaToThumbHash } from 'thumbhash';

/** The manifest's `placeholder`. */
export interface Placeholder {
  /** Dominant colour, `#rrggbb` (sharp's `stats().dominant`). */
  color: string;
  /** ThumbHash bytes, standard base64. */
  thumbhash: string;
}

/** ThumbHash's largest accepted side. */
const THUMB_MAX = 100;

const hex = (value: number) =>
  Math.max(0, Math.min(255, Math.round(value)))
    .toString(16)
    .padStart(2, '0');

/** The placeholder of an image from pixels sharp can read (a raw level or an encoded image). */
export async function placeholderOf(input: Sharp): Promise<Placeholder> {
  const { data, info } = await input
    .resize(THUMB_MAX, THUMB_MAX, { fit: 'inside', withoutEnlargement: true })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { dominant } = await sharp(data, { raw: { width: info.width, height: info.height, channels: 4 } }).stats();
  const hash = rgbaToThumbHash(info.width, info.height, data);
  return {
    color: `#${hex(dominant.r)}${hex(dominant.g)}${hex(dominant.b)}`,
    thumbhash: Buffer.from(hash).toString('base64'),
  };
}

/** Object metadata form: `#rrggbb base64` (one custom-metadata value). */
export function placeholderMetadata(placeholder: Placeholder): string {
  return `${placeholder.color} ${placeholder.thumbhash}`;
}

/** Reads {@link placeholderMetadata} back; undefined for anything else (older variants). */
export function parsePlaceholderMetadata(value: unknown): Placeholder | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^(#[0-9a-f]{6}) ([A-Za-z0-9+/]+={0,2})$/.exec(value);
  const color = match?.[1];
  const thumbhash = match?.[2];
  return color !== undefined && thumbhash !== undefined ? { color, thumbhash } : undefined;
}
