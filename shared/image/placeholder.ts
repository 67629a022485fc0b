/**
 * Placeholders a page shows while the `<picture>` loads: the dominant colour and a ThumbHash
 * (https://evanw.github.io/thumbhash/, npm `thumbhash`). Both come from the smallest planned level
 * of the render cascade, which is raw pixels in memory: one pass in plain JS box-filters it down to
 * at most {@link THUMB_MAX}² RGBA (ThumbHash keeps only a few low frequencies) and fills the colour
 * histogram, so no sharp pipeline is started. Where it is computed and carried, and the measured
 * cost: docs/api.md ("Placeholder"), docs/performance.md ("Placeholders").
 */
import type { Sharp } from 'sharp';
import { rgbaToThumbHash } from 'thumbhash';

/** The manifest's `placeholder`. */
export interface Placeholder {
  /** Dominant colour, `#rrggbb`: the centre of the fullest bin of a 16×16×16 RGB histogram. */
  color: string;
  /** ThumbHash bytes, standard base64. */
  thumbhash: string;
}

/** Raw interleaved 8-bit pixels: 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels. */
export interface RawPixels {
  readonly width: number;
  readonly height: number;
  readonly channels: number;
  readonly data: Uint8Array;
}

/**
 * The thumbnail's longest side. ThumbHash accepts up to 100 px but encodes at most 7 cosine terms
 * per axis; 32 px gives its decoder the same picture (docs/performance.md) at a tenth of the cost.
 */
const THUMB_MAX = 32;

/** Histogram bins per channel, as sharp's `stats().dominant` (libvips `hist_find_ndim`, 16 bins). */
const BINS = 16;

/**
 * The bin of each 8-bit value as sharp's `stats()` bins it: an exact multiple of 16 lands in the
 * bin below (measured value by value on sharp 0.35.5: 16 → 0, 17 → 1), as if libvips saw every
 * value a hair lower. Matched so that the colour is the one sharp reports (docs/performance.md).
 */
const BIN_OF = Uint8Array.from({ length: 256 }, (_, v) => (v === 0 ? 0 : (v - 1) >> 4));
/** {@link BIN_OF} shifted into a red and a green histogram index (`r·256 + g·16 + b`). */
const BIN_R = Uint16Array.from(BIN_OF, (bin) => bin * BINS * BINS);
const BIN_G = Uint16Array.from(BIN_OF, (bin) => bin * BINS);

const hex = (value: number) =>
  Math.max(0, Math.min(255, Math.round(value)))
    .toString(16)
    .padStart(2, '0');

/*
 * One row at a time into the thumbnail sums (per cell: alpha-weighted R, G, B, alpha, pixel count)
 * and the histogram. Small functions called once per row: V8 optimises them within the first
 * image, where one long loop ran unoptimised for most of it (docs/performance.md, "Placeholders").
 */

/** A row of opaque RGB: plain sums (weighted afterwards). */
function addRgbRow(
  data: Uint8Array,
  start: number,
  width: number,
  row: number,
  column: Int32Array,
  sums: Float64Array,
  histogram: Uint32Array,
): void {
  for (let x = 0, i = start; x < width; x++, i += 3) {
    const r = data[i] as number;
    const g = data[i + 1] as number;
    const b = data[i + 2] as number;
    const cell = (row + (column[x] as number)) * 5;
    sums[cell] = (sums[cell] as number) + r;
    sums[cell + 1] = (sums[cell + 1] as number) + g;
    sums[cell + 2] = (sums[cell + 2] as number) + b;
    sums[cell + 4] = (sums[cell + 4] as number) + 1;
    const bin = (BIN_R[r] as number) | (BIN_G[g] as number) | (BIN_OF[b] as number);
    histogram[bin] = (histogram[bin] as number) + 1;
  }
}

/** A row of grey, grey + alpha or RGBA: alpha-weighted, transparent pixels out of the histogram. */
function addRow(
  data: Uint8Array,
  start: number,
  width: number,
  channels: number,
  row: number,
  column: Int32Array,
  sums: Float64Array,
  histogram: Uint32Array,
): void {
  const grey = channels < 3;
  const hasAlpha = channels === 2 || channels === 4;
  for (let x = 0, i = start; x < width; x++, i += channels) {
    const r = data[i] as number;
    const g = grey ? r : (data[i + 1] as number);
    const b = grey ? r : (data[i + 2] as number);
    const a = hasAlpha ? (data[i + channels - 1] as number) : 255;
    const cell = (row + (column[x] as number)) * 5;
    sums[cell] = (sums[cell] as number) + r * a;
    sums[cell + 1] = (sums[cell + 1] as number) + g * a;
    sums[cell + 2] = (sums[cell + 2] as number) + b * a;
    sums[cell + 3] = (sums[cell + 3] as number) + a;
    sums[cell + 4] = (sums[cell + 4] as number) + 1;
    if (a > 0) {
      const bin = (BIN_R[r] as number) | (BIN_G[g] as number) | (BIN_OF[b] as number);
      histogram[bin] = (histogram[bin] as number) + 1;
    }
  }
}

/**
 * The placeholder of raw pixels. Averages premultiplied by alpha (as sharp's resize does), so
 * transparent pixels lend no colour to the thumbnail; they are left out of the histogram too.
 */
export function placeholderOfPixels(pixels: RawPixels): Placeholder {
  const { width, height, channels, data } = pixels;
  if (channels < 1 || channels > 4 || data.length < width * height * channels)
    throw new Error(`placeholder: ${width}×${height}×${channels} pixels do not match ${data.length} bytes`);
  const scale = Math.min(1, THUMB_MAX / Math.max(width, height));
  const tw = Math.max(1, Math.round(width * scale));
  const th = Math.max(1, Math.round(height * scale));
  const column = new Int32Array(width);
  for (let x = 0; x < width; x++) column[x] = Math.floor((x * tw) / width);
  // Per thumbnail pixel: alpha-weighted R, G, B, the alpha sum, and the source pixel count.
  const sums = new Float64Array(tw * th * 5);
  const histogram = new Uint32Array(BINS * BINS * BINS);
  for (let y = 0; y < height; y++) {
    const row = Math.floor((y * th) / height) * tw;
    if (channels === 3) addRgbRow(data, y * width * 3, width, row, column, sums, histogram);
    else addRow(data, y * width * channels, width, channels, row, column, sums, histogram);
  }
  if (channels === 3) {
    // Opaque rows summed plain colour: weight it as alpha 255 like the general case.
    for (let cell = 0; cell < tw * th; cell++) {
      for (let c = 0; c < 3; c++) sums[cell * 5 + c] = (sums[cell * 5 + c] as number) * 255;
      sums[cell * 5 + 3] = (sums[cell * 5 + 4] as number) * 255;
    }
  }
  const rgba = new Uint8Array(tw * th * 4);
  for (let cell = 0; cell < tw * th; cell++) {
    const alpha = sums[cell * 5 + 3] as number;
    const count = sums[cell * 5 + 4] as number;
    for (let c = 0; c < 3; c++) rgba[cell * 4 + c] = alpha > 0 ? Math.round((sums[cell * 5 + c] as number) / alpha) : 0;
    rgba[cell * 4 + 3] = Math.round(alpha / count);
  }
  let best = 0;
  for (let bin = 1; bin < histogram.length; bin++)
    if ((histogram[bin] as number) > (histogram[best] as number)) best = bin;
  const centre = (index: number) => index * (256 / BINS) + 256 / BINS / 2;
  const color = `#${hex(centre(Math.floor(best / (BINS * BINS))))}${hex(centre(Math.floor(best / BINS) % BINS))}${hex(centre(best % BINS))}`;
  return { color, thumbhash: Buffer.from(rgbaToThumbHash(tw, th, rgba)).toString('base64') };
}

/** The placeholder of an image sharp can read (an encoded image, or a PNG-encoded level): decoded, then as raw pixels. */
export async function placeholderOf(input: Sharp): Promise<Placeholder> {
  const { data, info } = await input.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  return placeholderOfPixels({ width: info.width, height: info.height, channels: info.channels, data });
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
