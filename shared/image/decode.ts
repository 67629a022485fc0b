/**
 * The decode and the cascade of levels: the original is decoded once (oriented, in sRGB, already
 * resized to the largest width), and every smaller width and every crop is derived from the level
 * before it. Also the sharp failure mapping the encoders share. Why a cascade, and the decisions
 * behind decoding, kernels, colour and crops: docs/architecture.md, "Rendering".
 */
import sharp, { type Metadata, type Sharp } from 'sharp';
import { PipelineError, permanent } from '../core/errors.js';
import type { CropRect } from '../core/schemas.js';
import { decodeHeif } from './heif-decode.js';
import { type HeifSummary, summariseHeif } from './heif-summary.js';
import { sniffFormat } from './probe.js';

/** How the original is decoded and the levels are kept. */
export interface DecodeOptions {
  /** Keep EXIF/XMP/IPTC (with an sRGB ICC profile); otherwise every output is stripped. */
  keepMetadata: boolean;
  /** Largest accepted width × height of the original (checked from its header). */
  limitInputPixels: number;
  /** Most frames/pages accepted in the original (only the first is rendered, but for animated variants). */
  maxFrames: number;
  /**
   * Epoch milliseconds; work still running past it fails with permanent `time_budget_exceeded`,
   * and an AVIF encode predicted to end past it is not started (it cannot be interrupted).
   */
  deadline?: number;
  /** {@link SHRINK_ON_LOAD_MARGIN} unless given: benchmarks compare margins (Infinity: never). */
  shrinkOnLoadMargin?: number;
}

/**
 * Decoded pixels at one width. Raw pixels normally; with `keepMetadata`, an uncompressed PNG,
 * because raw buffers cannot carry EXIF and sharp cannot attach an EXIF blob to a new image,
 * while PNG carries it (eXIf chunk) at the cost of a cheap store-only encode/decode per level.
 */
export interface Level {
  width: number;
  height: number;
  channels: number;
  data: Buffer;
  encoding: 'raw' | 'png';
}

/** sharp's resize kernel for every step; see the module comment. */
export const KERNEL = 'lanczos3' as const;

export function assertBeforeDeadline(deadline: number | undefined): void {
  if (deadline !== undefined && Date.now() >= deadline) {
    throw permanent('time_budget_exceeded', 'The image took too long to process.');
  }
}

/** Whole seconds left for sharp's own timeout (it only counts seconds), at least 1; 0 = none. */
export function sharpTimeoutSeconds(deadline: number | undefined): number {
  if (deadline === undefined) return 0;
  return Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
}

function isSharpTimeout(error: unknown): boolean {
  return error instanceof Error && /timeout/i.test(error.message);
}

/**
 * libvips' `vips_malloc: out of memory`, C++ `std::bad_alloc`, V8's `Array buffer allocation
 * failed`, ENOMEM: the instance ran short of memory, which says nothing about the image.
 */
export function isAllocationError(error: unknown): boolean {
  return (
    error instanceof Error &&
    /out of memory|bad_alloc|allocation failed|(cannot|unable to|failed to) allocate|ENOMEM/i.test(error.message)
  );
}

/**
 * Maps a sharp failure to a pipeline error: allocation failures become transient
 * `out_of_memory` (retried, never recorded as the image's fault); timeouts become
 * `time_budget_exceeded`; anything else becomes `fallback` (decode failures are the image's
 * fault, later ones are not).
 */
export function toPipelineError(error: unknown, fallback: 'corrupt_image' | 'image_failed'): PipelineError {
  if (error instanceof PipelineError) return error;
  if (isAllocationError(error))
    return new PipelineError('out_of_memory', 'The instance ran out of memory processing the image; retry later.', {
      cause: error,
    });
  if (isSharpTimeout(error))
    return new PipelineError('time_budget_exceeded', 'The image took too long to process.', { cause: error });
  if (fallback === 'corrupt_image') {
    return new PipelineError('corrupt_image', 'The image is damaged or incomplete and cannot be read.', {
      cause: error,
    });
  }
  return new PipelineError('image_failed', 'The image could not be converted.', { cause: error });
}

/** Header facts about the original: its displayed size, and for a HEIC what its container says. */
export interface OriginalHeader {
  width: number;
  height: number;
  /** Frames or pages the header declares (1 for a still image). */
  frames: number;
  heif?: HeifSummary;
}

/** Header facts about the original needed before decoding; header-only, so cheap. */
export async function inspectOriginal(original: Buffer, options: DecodeOptions): Promise<OriginalHeader> {
  if (sniffFormat(original) === 'heif') {
    const heif = summariseHeif(original, { maxPixels: options.limitInputPixels, maxFrames: options.maxFrames });
    return { width: heif.width, height: heif.height, frames: 1, heif };
  }
  let metadata: Metadata;
  try {
    metadata = await sharp(original, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw toPipelineError(error, 'corrupt_image');
  }
  if (metadata.format === 'heif' && metadata.compression !== 'av1') {
    throw permanent('format_not_allowed', 'HEIF images that are not AV1-encoded (AVIF) cannot be processed.', {
      format: 'heif',
    });
  }
  const { width, height } = metadata.autoOrient;
  if (width * height > options.limitInputPixels) {
    throw permanent(
      'too_many_pixels',
      `The image is ${width}×${height} pixels, more than the limit of ${options.limitInputPixels} pixels.`,
      {
        width,
        height,
        maxPixels: options.limitInputPixels,
      },
    );
  }
  const frames = metadata.pages ?? 1;
  if (frames > options.maxFrames) {
    throw permanent(
      'too_many_frames',
      `The image has ${frames} frames or pages, more than the limit of ${options.maxFrames}.`,
      {
        frames,
        maxFrames: options.maxFrames,
      },
    );
  }
  return { width, height, frames };
}

/**
 * The original as the decode reads it: its bytes (libvips decodes them), or a HEIC's pixels,
 * decoded once per job by {@link decodeOriginal} because libvips cannot.
 */
export type Original = Buffer | Level;

/**
 * What the levels are decoded from: the bytes, or for a HEIC its pixels (heif-decode.ts; about
 * 1.6 s of CPU for 12 MP, so once per job, shared by the decode and the auto-quality search).
 */
export async function decodeOriginal(
  original: Buffer,
  header: OriginalHeader,
  options: DecodeOptions,
): Promise<Original> {
  if (!header.heif) return original;
  assertBeforeDeadline(options.deadline);
  return decodeHeif(original, header.heif, options.keepMetadata);
}

function openOriginal(original: Original, options: DecodeOptions): Sharp {
  return Buffer.isBuffer(original)
    ? sharp(original, { limitInputPixels: options.limitInputPixels, failOn: 'error', animated: false })
    : readLevel(original);
}

/**
 * The least decoded size ÷ target size (per axis) a shrink-on-load may leave before lanczos3 has
 * the last word; chosen on a tuning split, docs/performance.md ("Any photo").
 */
export const SHRINK_ON_LOAD_MARGIN = 1.5;

/**
 * The margin sharp's shrink-on-load (`fastShrinkOnLoad`, pipeline.cc) would leave: decoded size ÷
 * target, the smaller axis. JPEG: DCT scaling by the largest of 8, 4, 2 the shrink reaches, halved
 * when the shrink truncates to it (libjpeg rounding); WebP: libwebp scales to the target itself (1).
 * Infinity when nothing shrinks on load (other formats, or too small a shrink).
 */
export function shrinkOnLoadMargin(
  format: string | undefined,
  source: { width: number; height: number },
  target: { width: number; height: number },
): number {
  const shrink = Math.min(source.width / target.width, source.height / target.height);
  if (format === 'webp') return shrink > 1 ? 1 : Number.POSITIVE_INFINITY;
  if (format !== 'jpeg') return Number.POSITIVE_INFINITY;
  let scale = [8, 4, 2].find((s) => shrink >= s) ?? 1;
  if (scale > 1 && Math.trunc(shrink) === scale) scale /= 2;
  if (scale === 1) return Number.POSITIVE_INFINITY;
  return Math.min(Math.ceil(source.width / scale) / target.width, Math.ceil(source.height / scale) / target.height);
}

/** Whether the decode must resize: to a smaller width, or decoded HEIC pixels that differ from the header. */
const needsResize = (original: Original, width: number, height: number, source: { width: number }): boolean =>
  width < source.width || (!Buffer.isBuffer(original) && (original.width !== width || original.height !== height));

/** A sharp pipeline reading a level. */
export function readLevel(level: Level): Sharp {
  return level.encoding === 'raw'
    ? sharp(level.data, {
        raw: { width: level.width, height: level.height, channels: level.channels as 1 | 2 | 3 | 4 },
      })
    : sharp(level.data);
}

/** Writes a pipeline's output as a level: raw pixels, or a metadata-carrying store-only PNG. */
export async function materialise(pipeline: Sharp, keepMetadata: boolean): Promise<Level> {
  if (keepMetadata) {
    const { data, info } = await pipeline
      .withMetadata()
      .png({ compressionLevel: 0, adaptiveFiltering: false })
      .toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: info.channels, data, encoding: 'png' };
  }
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data, encoding: 'raw' };
}

/** The one decode: orient, convert to sRGB, and resize to the largest width in the same pass. */
export async function decodeLevel(
  original: Original,
  width: number,
  height: number,
  source: { width: number; height: number },
  options: DecodeOptions,
): Promise<Level> {
  let pipeline = openOriginal(original, options)
    .timeout({ seconds: sharpTimeoutSeconds(options.deadline) })
    .rotate();
  // Shrink-on-load (libjpeg DCT scaling) only when it leaves SHRINK_ON_LOAD_MARGIN × the target:
  // closer to it, the scaled IDCT's softness shows through (and libwebp's scaler is cruder still);
  // past it, lanczos3's last step hides it and the decode is cheaper. Otherwise sharp's own rule
  // (fastShrinkOnLoad off) still scales a JPEG when that leaves 2× or more.
  const fastShrinkOnLoad =
    Buffer.isBuffer(original) &&
    shrinkOnLoadMargin(sniffFormat(original), source, { width, height }) >=
      (options.shrinkOnLoadMargin ?? SHRINK_ON_LOAD_MARGIN);
  if (needsResize(original, width, height, source))
    pipeline = pipeline.resize(width, height, { fit: 'fill', kernel: KERNEL, fastShrinkOnLoad });
  pipeline = pipeline.toColourspace('srgb');
  try {
    return await materialise(pipeline, options.keepMetadata);
  } catch (error) {
    if (error instanceof Error && /pixel limit/i.test(error.message)) {
      throw permanent('too_many_pixels', `The image is larger than the limit of ${options.limitInputPixels} pixels.`, {
        maxPixels: options.limitInputPixels,
      });
    }
    throw toPipelineError(error, 'corrupt_image');
  }
}

/** A level with its alpha channel removed when every pixel is opaque (common in PNG exports). */
export async function withoutOpaqueAlpha(level: Level, options: DecodeOptions): Promise<Level> {
  if (level.channels !== 4) return level;
  // stats() reads the level itself (sharp computes statistics before any queued operation).
  if (!(await readLevel(level).stats()).isOpaque) return level;
  return materialise(
    readLevel(level)
      .timeout({ seconds: sharpTimeoutSeconds(options.deadline) })
      .removeAlpha(),
    options.keepMetadata,
  );
}

/** The next level of the cascade: `from` resized to `width` × `height`. */
export function resizeLevel(from: Level, width: number, height: number, options: DecodeOptions): Promise<Level> {
  return materialise(
    readLevel(from)
      .timeout({ seconds: sharpTimeoutSeconds(options.deadline) })
      .resize(width, height, { fit: 'fill', kernel: KERNEL }),
    options.keepMetadata,
  );
}

/** The original resized straight to `width`, without metadata and opaque alpha: auto-quality's pixels. */
export async function searchLevel(
  original: Original,
  width: number,
  height: number,
  source: { width: number },
  options: DecodeOptions,
): Promise<Level> {
  let pipeline = openOriginal(original, options)
    .timeout({ seconds: sharpTimeoutSeconds(options.deadline) })
    .rotate();
  if (needsResize(original, width, height, source))
    pipeline = pipeline.resize(width, height, { fit: 'fill', kernel: KERNEL });
  return withoutOpaqueAlpha(await materialise(pipeline.toColourspace('srgb'), false), {
    ...options,
    keepMetadata: false,
  });
}

/** Cuts a crop out of a level (the rectangle scaled to the level) at exactly `size`. */
export async function cutCrop(
  level: Level,
  source: { width: number; height: number },
  cropped: { crop: CropRect; width: number; height: number },
  options: DecodeOptions,
): Promise<Level> {
  const sx = level.width / source.width;
  const sy = level.height / source.height;
  const left = Math.min(level.width - 1, Math.round(cropped.crop.left * sx));
  const top = Math.min(level.height - 1, Math.round(cropped.crop.top * sy));
  const right = Math.max(left + 1, Math.min(level.width, Math.round((cropped.crop.left + cropped.crop.width) * sx)));
  const bottom = Math.max(top + 1, Math.min(level.height, Math.round((cropped.crop.top + cropped.crop.height) * sy)));
  return materialise(
    readLevel(level)
      .timeout({ seconds: sharpTimeoutSeconds(options.deadline) })
      .extract({ left, top, width: right - left, height: bottom - top })
      .resize(cropped.width, cropped.height, { fit: 'fill', kernel: KERNEL }),
    options.keepMetadata,
  );
}
