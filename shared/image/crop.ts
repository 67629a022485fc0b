/**
 * Aspect crops: where each configured aspect (`ASPECTS`) is cut from an original. Chosen once per
 * image, when it is accepted, and carried in every job (`info.crops`) and stored on the original's
 * metadata (for cleanup's re-dispatch), so every job of a fanned-out image, and every width and
 * format of an aspect, shows exactly the same region. Why not in each job: each job's cascade
 * starts at a different width, and attention/entropy on differently resampled pixels can choose a
 * different offset; computing it once removes the question (docs/architecture.md, Aspect crops).
 *
 * The crop is the largest rectangle of the aspect that fits the upright original. Its position:
 * - a focal point from the uploader (`focus=x,y`, relative 0–1): the crop is centred on it,
 *   clamped to the image;
 * - otherwise `CROP_STRATEGY`: `centre` is geometry alone; `attention` and `entropy` run sharp's
 *   strategy on one small decode (at most {@link ANALYSIS_SIZE} px on the long side, using
 *   shrink-on-load) shared by all aspects, and scale its offset back to original pixels.
 */
import sharp, { type OutputInfo } from 'sharp';
import { permanent } from '../core/errors.js';
import type { AspectCrop, CropRect } from '../core/schemas.js';
import type { ImageSize } from './plan.js';
import type { CropStrategy } from '../core/domain.js';

/** A focal point, relative to the upright original: 0,0 is the top left, 1,1 the bottom right. */
export interface Focus {
  readonly x: number;
  readonly y: number;
}

/** Long side of the level that attention/entropy analyse: enough for saliency, cheap to decode. */
export const ANALYSIS_SIZE = 512;

const FOCUS_EXAMPLE = 'e.g. focus=0.42,0.31';

/**
 * Parses a focal point `x,y` (two numbers from 0 to 1). Undefined for an absent value.
 * @throws PipelineError `invalid_focus` (400, permanent) saying what was wrong.
 */
export function parseFocus(raw: string | undefined): Focus | undefined {
  if (raw === undefined) return undefined;
  const parts = raw.split(',').map((part) => part.trim());
  if (parts.length !== 2 || parts.some((part) => !/^(\d+(\.\d*)?|\.\d+)$/.test(part))) {
    throw permanent(
      'invalid_focus',
      `The focus "${raw.slice(0, 40)}" must be two numbers from 0 to 1 separated by a comma (x,y; ${FOCUS_EXAMPLE}).`,
      {
        focus: raw.slice(0, 40),
      },
    );
  }
  const [x, y] = parts.map(Number) as [number, number];
  if (x > 1 || y > 1) {
    throw permanent(
      'invalid_focus',
      `The focus "${raw.slice(0, 40)}" is outside the image: x and y must be from 0 to 1 (${FOCUS_EXAMPLE}).`,
      {
        focus: raw.slice(0, 40),
      },
    );
  }
  return { x, y };
}

/** `W:H` as numbers. */
function ratioOf(aspect: string): { w: number; h: number } {
  const [w, h] = aspect.split(':').map(Number) as [number, number];
  return { w, h };
}

/** The size of the largest `aspect` rectangle inside `frame` (rounded, at least 1×1). */
export function largestCropSize(aspect: string, frame: ImageSize): ImageSize {
  const { w, h } = ratioOf(aspect);
  if (frame.width * h >= frame.height * w) {
    return { width: Math.max(1, Math.min(frame.width, Math.round((frame.height * w) / h))), height: frame.height };
  }
  return { width: frame.width, height: Math.max(1, Math.min(frame.height, Math.round((frame.width * h) / w))) };
}

const clamp = (value: number, low: number, high: number): number => Math.min(high, Math.max(low, value));

/** Places a `size` crop centred on (`cx`, `cy`) in original pixels, clamped inside the image. */
function centredOn(size: ImageSize, original: ImageSize, cx: number, cy: number): { left: number; top: number } {
  return {
    left: clamp(Math.round(cx - size.width / 2), 0, original.width - size.width),
    top: clamp(Math.round(cy - size.height / 2), 0, original.height - size.height),
  };
}

/** Inputs of {@link chooseCrops}. */
export interface CropRequest {
  readonly aspects: readonly string[];
  readonly strategy: CropStrategy;
  readonly focus?: Focus | undefined;
  /** Pixel limit for the analysis decode (MAX_INPUT_PIXELS). */
  readonly limitInputPixels: number;
}

/**
 * Every aspect's crop of `original` (upright size `size`), or undefined when no aspect is
 * configured. Decodes only for attention/entropy without a focus, once for all aspects.
 * @throws PipelineError `corrupt_image` when the analysis decode fails.
 */
export async function chooseCrops(
  original: Buffer,
  size: ImageSize,
  request: CropRequest,
): Promise<Record<string, AspectCrop> | undefined> {
  if (request.aspects.length === 0) return undefined;
  const crops: Record<string, AspectCrop> = {};
  if (request.focus || request.strategy === 'centre') {
    const cx = request.focus ? request.focus.x * size.width : size.width / 2;
    const cy = request.focus ? request.focus.y * size.height : size.height / 2;
    for (const aspect of request.aspects) {
      const crop = largestCropSize(aspect, size);
      crops[aspect] = { ...centredOn(crop, size, cx, cy), ...crop, by: request.focus ? 'focus' : 'centre' };
    }
    return crops;
  }
  let small: { data: Buffer; info: OutputInfo };
  try {
    small = await sharp(original, { limitInputPixels: request.limitInputPixels, failOn: 'error', animated: false })
      .rotate()
      .resize(ANALYSIS_SIZE, ANALYSIS_SIZE, { fit: 'inside', withoutEnlargement: true })
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (error) {
    throw Object.assign(permanent('corrupt_image', 'The image is damaged or incomplete and cannot be read.'), {
      cause: error,
    });
  }
  const level = { width: small.info.width, height: small.info.height };
  const raw = { width: level.width, height: level.height, channels: small.info.channels as 1 | 2 | 3 | 4 };
  for (const aspect of request.aspects) {
    const inLevel = largestCropSize(aspect, level);
    const crop = largestCropSize(aspect, size);
    const { info } = await sharp(small.data, { raw })
      .resize(inLevel.width, inLevel.height, { fit: 'cover', position: sharp.strategy[request.strategy] })
      .raw()
      .toBuffer({ resolveWithObject: true });
    // sharp reports the offset as a negative number of level pixels; scale its centre back up.
    const left = -(info.cropOffsetLeft ?? 0);
    const top = -(info.cropOffsetTop ?? 0);
    const cx = ((left + inLevel.width / 2) * size.width) / level.width;
    const cy = ((top + inLevel.height / 2) * size.height) / level.height;
    crops[aspect] = { ...centredOn(crop, size, cx, cy), ...crop, by: request.strategy };
  }
  return crops;
}

/** A crop rectangle as object metadata: `left,top,width,height` in original pixels. */
export function cropMetadata(crop: CropRect): string {
  return `${crop.left},${crop.top},${crop.width},${crop.height}`;
}

/** Reads {@link cropMetadata} back; undefined when absent or malformed. */
export function parseCropMetadata(value: unknown): CropRect | undefined {
  const match = typeof value !== 'string' ? null : /^(\d+),(\d+),(\d+),(\d+)$/.exec(value);
  if (!match) return undefined;
  const [left, top, width, height] = match.slice(1).map(Number) as [number, number, number, number];
  return width > 0 && height > 0 ? { left, top, width, height } : undefined;
}
