/**
 * The pixel work: decode an original once, derive every requested width from it largest first
 * (a cascade of in-memory levels), and encode each requested format at each width. Why a cascade,
 * and the decisions behind decoding, kernels, colour, heights and crops: docs/architecture.md,
 * "Rendering".
 */
import { performance } from 'node:perf_hooks';
import sharp, { type Metadata, type Sharp } from 'sharp';
import type { Config } from '../core/config.js';
import { AvifEncodeTimeModel } from './encode-time.js';
import { PipelineError, permanent } from '../core/errors.js';
import type { CropRect, VariantSpec } from '../core/schemas.js';
import { CONTENT_TYPES } from '../core/naming.js';
import { FORMAT_LIMITS, fitsFormat, heightForWidth } from './plan.js';
import { type Placeholder, placeholderOf, placeholderOfPixels } from './placeholder.js';
import type { OutputFormat } from '../core/domain.js';
import {
  type AutoQualityOptions,
  QUALITY_BOUNDS,
  referenceLuma,
  scoreEncode,
  searchQuality,
  searchWidth,
} from './auto-quality.js';

/** Encoder settings per output format. */
export interface EncoderSettings {
  /** `progressive`: the same pixels in progressive scans, in fewer bytes. */
  jpeg: { quality: number; mozjpeg: boolean; progressive?: boolean };
  webp: { quality: number; effort: number };
  /** `bitdepth` 10 codes 8-bit pixels at 10 bits: fewer bytes at equal quality (docs/performance.md). */
  avif: { quality: number; effort: number; bitdepth?: 8 | 10 };
}

/** Encoder settings from configuration. */
export function encoderSettingsFromConfig(
  config: Pick<
    Config,
    | 'JPEG_QUALITY'
    | 'JPEG_MOZJPEG'
    | 'JPEG_PROGRESSIVE'
    | 'WEBP_QUALITY'
    | 'WEBP_EFFORT'
    | 'AVIF_QUALITY'
    | 'AVIF_EFFORT'
    | 'AVIF_BITDEPTH'
  >,
): EncoderSettings {
  return {
    jpeg: { quality: config.JPEG_QUALITY, mozjpeg: config.JPEG_MOZJPEG, progressive: config.JPEG_PROGRESSIVE },
    webp: { quality: config.WEBP_QUALITY, effort: config.WEBP_EFFORT },
    avif: { quality: config.AVIF_QUALITY, effort: config.AVIF_EFFORT, bitdepth: config.AVIF_BITDEPTH },
  };
}

/**
 * Sets sharp's process-wide knobs on purpose rather than inheriting its defaults: sharp 0.35
 * silently drops to one libvips thread on glibc without jemalloc, and its operation cache keeps
 * decoded buffers alive (up to 50 MB) that a one-image-per-invocation function never reuses.
 *
 * @param settings.concurrency libvips threads per image; 0 lets libvips use one per CPU core.
 * @param settings.cache whether libvips' operation cache is on (off is right for functions).
 */
export function configureSharp(settings: { concurrency: number; cache: boolean }): void {
  sharp.concurrency(settings.concurrency);
  sharp.cache(settings.cache);
}

/** How {@link renderVariants} renders. */
export interface RenderOptions {
  encoders: EncoderSettings;
  /** Keep EXIF/XMP/IPTC (with an sRGB ICC profile); otherwise every output is stripped. */
  keepMetadata: boolean;
  /** Largest accepted width × height of the original (checked from its header). */
  limitInputPixels: number;
  /** Most frames/pages accepted in the original (only the first is rendered). */
  maxFrames: number;
  /**
   * Epoch milliseconds; work still running past it fails with permanent `time_budget_exceeded`,
   * and an AVIF encode predicted to end past it is not started (it cannot be interrupted).
   */
  deadline?: number;
  /** The AVIF encode-time model to consult and teach; this process's own by default. */
  avifEncodeTimes?: AvifEncodeTimeModel;
  /** Collects each stage's wall time, in order (for the job's `job.done` log line). */
  timings?: StageTiming[];
  /** Each aspect's crop of the upright original (the job's `info.crops`), for aspect variants. */
  crops?: Readonly<Record<string, CropRect>> | undefined;
  /**
   * The one uncropped variant that carries the image's placeholder (the plan's smallest width, see
   * manifest.ts placeholderVariantOf); computed from that level's pixels when this job renders it.
   */
  placeholderFor?: { width: number; format: OutputFormat } | undefined;
  /** QUALITY_MODE=auto: search each format's quality for this image (auto-quality.ts) instead of `encoders`'. */
  autoQuality?: AutoQualityOptions | undefined;
}

/**
 * One stage's wall time: `decode` (header check, the one decode already resized to the largest
 * width, opaque-alpha removal), `resize` to each further width, `encode` and `write` (the
 * `onVariant` call) of each format at each width; `quality`: the auto-quality search's decode to
 * the search width, then its trials per format.
 */
export interface StageTiming {
  stage: 'decode' | 'resize' | 'encode' | 'write' | 'quality';
  width?: number;
  format?: OutputFormat;
  ms: number;
}

async function timed<T>(
  timings: StageTiming[] | undefined,
  stage: Omit<StageTiming, 'ms'>,
  work: () => Promise<T>,
): Promise<T> {
  if (!timings) return work();
  const started = performance.now();
  try {
    return await work();
  } finally {
    timings.push({ ...stage, ms: Math.round((performance.now() - started) * 10) / 10 });
  }
}

/** One encoded output. */
export interface RenderedVariant {
  width: number;
  height: number;
  format: OutputFormat;
  contentType: string;
  data: Buffer;
  /** For a variant of an aspect's crop: the aspect and the rectangle it was cut from. */
  aspect?: string;
  crop?: CropRect;
  /** Set on the variant named by `RenderOptions.placeholderFor`. */
  placeholder?: Placeholder;
  /** The encoder quality it was made with (configured, or chosen by the auto-quality search). */
  quality: number;
}

/**
 * Decoded pixels at one width. Raw pixels normally; with `keepMetadata`, an uncompressed PNG,
 * because raw buffers cannot carry EXIF and sharp cannot attach an EXIF blob to a new image,
 * while PNG carries it (eXIf chunk) at the cost of a cheap store-only encode/decode per level.
 */
interface Level {
  width: number;
  height: number;
  channels: number;
  data: Buffer;
  encoding: 'raw' | 'png';
}

/** sharp's resize kernel for every step; see the module comment. */
const KERNEL = 'lanczos3' as const;

/**
 * sharp encodes AVIF at 4:4:4 unless told otherwise, while its JPEG and all lossy WebP are 4:2:0.
 * Halving chroma resolution as the other formats do measured 30% less AVIF CPU at q50 effort 4 on
 * corpus photos at 2048 px (string: 7.9 s vs 11.0 s; elephants: 13.5 s vs 19.4 s) for 2–10%
 * fewer bytes. A tuning knob for the bench, kept here until EncoderSettings grows one.
 */
const AVIF_CHROMA_SUBSAMPLING = '4:2:0';

/** sharp's JPEG options for progressive output, which changes no pixel (docs/performance.md). */
export function progressiveJpeg(progressive: boolean | undefined): { progressive?: true } {
  return progressive ? { progressive: true } : {};
}

/** Background that transparent pixels are flattened onto in formats without alpha. */
const FLATTEN_BACKGROUND = { r: 255, g: 255, b: 255 } as const;

function assertBeforeDeadline(deadline: number | undefined): void {
  if (deadline !== undefined && Date.now() >= deadline) {
    throw permanent('time_budget_exceeded', 'The image took too long to process.');
  }
}

/** Whole seconds left for sharp's own timeout (it only counts seconds), at least 1; 0 = none. */
function sharpTimeoutSeconds(deadline: number | undefined): number {
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
function toPipelineError(error: unknown, fallback: 'corrupt_image' | 'image_failed'): PipelineError {
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

/** Header facts about the original needed before decoding; header-only, so cheap. */
async function inspectOriginal(original: Buffer, options: RenderOptions): Promise<{ width: number; height: number }> {
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
  return { width, height };
}

/** A sharp pipeline reading a level. */
function readLevel(level: Level): Sharp {
  return level.encoding === 'raw'
    ? sharp(level.data, {
        raw: { width: level.width, height: level.height, channels: level.channels as 1 | 2 | 3 | 4 },
      })
    : sharp(level.data);
}

/** Writes a pipeline's output as a level: raw pixels, or a metadata-carrying store-only PNG. */
async function materialise(pipeline: Sharp, keepMetadata: boolean): Promise<Level> {
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
async function decodeLevel(
  original: Buffer,
  width: number,
  height: number,
  source: { width: number },
  options: RenderOptions,
): Promise<Level> {
  let pipeline = sharp(original, { limitInputPixels: options.limitInputPixels, failOn: 'error', animated: false })
    .timeout({ seconds: sharpTimeoutSeconds(options.deadline) })
    .rotate();
  // fastShrinkOnLoad off: with it, libjpeg/libwebp decode at 1/2–1/8 size by DCT scaling before
  // lanczos3, which cost up to 0.0074 SSIM against a direct resize (18 MP noisy photo at 1600 px)
  // to save ~0.1–0.4 s of decode CPU; libvips still streams the decode, so memory barely moves.
  if (width < source.width)
    pipeline = pipeline.resize(width, height, { fit: 'fill', kernel: KERNEL, fastShrinkOnLoad: false });
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
async function withoutOpaqueAlpha(level: Level, options: RenderOptions): Promise<Level> {
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

/** What this process has learned about its own AVIF encode speed (see encode-time.ts). */
const processAvifEncodeTimes = new AvifEncodeTimeModel();

/**
 * Encodes AVIF unless the encode is predicted to end past the deadline: once started it cannot be
 * stopped (encode-time.ts), so an encode that would overrun is refused before it starts.
 */
async function encodeAvifWithinDeadline(level: Level, pipeline: Sharp, options: RenderOptions): Promise<Buffer> {
  const model = options.avifEncodeTimes ?? processAvifEncodeTimes;
  const pixels = level.width * level.height;
  const { effort, bitdepth = 8 } = options.encoders.avif;
  if (options.deadline !== undefined) {
    const predictedMs = model.predictMs(pixels, effort, bitdepth);
    const leftMs = options.deadline - Date.now();
    if (predictedMs > leftMs) {
      throw permanent(
        'time_budget_exceeded',
        `The image took too long to process: its ${level.width}×${level.height} AVIF variant would need about ${Math.ceil(predictedMs / 1000)} s, more than the ${Math.max(0, Math.floor(leftMs / 1000))} s left of its time budget.`,
        { width: level.width, height: level.height, format: 'avif', predictedSeconds: Math.ceil(predictedMs / 1000) },
      );
    }
  }
  const started = Date.now();
  const data = await pipeline.toBuffer();
  model.observe(pixels, effort, Date.now() - started, bitdepth);
  return data;
}

/** Encodes one format from a level. */
async function encode(level: Level, format: OutputFormat, options: RenderOptions): Promise<Buffer> {
  let pipeline = readLevel(level).timeout({ seconds: sharpTimeoutSeconds(options.deadline) });
  if (options.keepMetadata) pipeline = pipeline.withMetadata();
  const { jpeg, webp, avif } = options.encoders;
  switch (format) {
    case 'jpeg':
      pipeline = pipeline
        .flatten({ background: FLATTEN_BACKGROUND })
        .jpeg({ quality: jpeg.quality, mozjpeg: jpeg.mozjpeg, ...progressiveJpeg(jpeg.progressive) });
      break;
    case 'webp':
      pipeline = pipeline.webp({ quality: webp.quality, effort: webp.effort });
      break;
    case 'avif':
      return encodeAvifWithinDeadline(
        level,
        pipeline.avif({
          quality: avif.quality,
          effort: avif.effort,
          chromaSubsampling: AVIF_CHROMA_SUBSAMPLING,
          bitdepth: avif.bitdepth ?? 8,
        }),
        options,
      );
  }
  return pipeline.toBuffer();
}

/**
 * Renders `variants` from `original`: one decode, then each distinct width largest first, each
 * resized from the previous level, and every requested format at that width encoded from the same
 * pixels. `onVariant` is awaited for each output as soon as it is encoded, so the caller can upload
 * it while the next one is encoded; outputs are small (compressed), the big buffers are the levels,
 * and each level is released as soon as the next exists.
 *
 * @returns the outputs, widths descending, formats in the order first requested.
 * @throws PipelineError (permanent): `corrupt_image` when the original cannot be decoded,
 *   `too_many_pixels` / `too_many_frames` past the limits, `format_not_allowed` for HEIC,
 *   `invalid_job` for a width above the original's (never enlarge) or a variant larger than its
 *   format can hold (checked before decoding), `time_budget_exceeded` past
 *   `deadline`, `image_failed` if an encoder fails. Errors thrown by `onVariant` pass through as-is.
 */
export async function renderVariants(
  original: Buffer,
  variants: readonly VariantSpec[],
  options: RenderOptions,
  onVariant?: (variant: RenderedVariant) => Promise<void>,
): Promise<RenderedVariant[]> {
  assertBeforeDeadline(options.deadline);
  if (variants.length === 0) return [];
  const decodeStarted = performance.now();
  const source = await inspectOriginal(original, options);

  const formatsByWidth = new Map<number, OutputFormat[]>();
  for (const { width, format } of variants.filter((variant) => variant.aspect === undefined)) {
    const formats = formatsByWidth.get(width) ?? [];
    if (!formats.includes(format)) formats.push(format);
    formatsByWidth.set(width, formats);
  }
  const cropsByLevel = planCroppedVariants(variants, source, options);
  const widths = [...new Set([...formatsByWidth.keys(), ...cropsByLevel.keys()])].sort((a, b) => b - a);
  const [widest] = widths;
  if (widest !== undefined && widest > source.width) {
    throw permanent(
      'invalid_job',
      `The job asks for a ${widest}px variant of a ${source.width}px image; images are never enlarged.`,
      {
        width: widest,
        originalWidth: source.width,
      },
    );
  }
  for (const { width, format } of variants.filter((variant) => variant.aspect === undefined)) {
    const height = heightForWidth(width, source);
    if (!fitsFormat(format, width, height)) throw formatLimitError(width, height, format);
  }

  const encoders = options.autoQuality
    ? await autoQualityEncoders(original, source, variants, options, options.autoQuality)
    : options.encoders;
  const encodeOptions: RenderOptions = { ...options, encoders };

  const rendered: RenderedVariant[] = [];
  const emit = async (variant: RenderedVariant): Promise<void> => {
    rendered.push(variant);
    if (onVariant)
      await timed(options.timings, { stage: 'write', width: variant.width, format: variant.format }, () =>
        onVariant(variant),
      );
  };
  let level: Level | undefined;
  for (const width of widths) {
    assertBeforeDeadline(options.deadline);
    const height = heightForWidth(width, source);
    if (level === undefined) {
      level = await withoutOpaqueAlpha(await decodeLevel(original, width, height, source, options), options).catch(
        (error: unknown) => {
          throw toPipelineError(error, 'corrupt_image');
        },
      );
      options.timings?.push({ stage: 'decode', width, ms: Math.round((performance.now() - decodeStarted) * 10) / 10 });
    } else {
      const from: Level = level;
      level = await timed(options.timings, { stage: 'resize', width }, () =>
        materialise(
          readLevel(from)
            .timeout({ seconds: sharpTimeoutSeconds(options.deadline) })
            .resize(width, height, { fit: 'fill', kernel: KERNEL }),
          options.keepMetadata,
        ),
      ).catch((error: unknown) => {
        throw toPipelineError(error, 'image_failed');
      });
    }
    for (const format of formatsByWidth.get(width) ?? []) {
      assertBeforeDeadline(options.deadline);
      const current: Level = level;
      const data = await timed(options.timings, { stage: 'encode', width, format }, () =>
        encode(current, format, encodeOptions),
      ).catch((error: unknown) => {
        throw toPipelineError(error, 'image_failed');
      });
      const wanted = options.placeholderFor;
      const placeholder =
        wanted?.width === width && wanted.format === format
          ? await (current.encoding === 'raw'
              ? Promise.resolve().then(() => placeholderOfPixels(current))
              : placeholderOf(readLevel(current))
            ).catch((error: unknown) => {
              throw toPipelineError(error, 'image_failed');
            })
          : undefined;
      await emit({
        width: level.width,
        height: level.height,
        format,
        contentType: CONTENT_TYPES[format],
        data,
        quality: encoders[format].quality,
        ...(placeholder ? { placeholder } : {}),
      });
    }
    for (const cropped of cropsByLevel.get(width) ?? []) {
      assertBeforeDeadline(options.deadline);
      const piece = await cutCrop(level, source, cropped, options).catch((error: unknown) => {
        throw toPipelineError(error, 'image_failed');
      });
      for (const format of cropped.formats) {
        assertBeforeDeadline(options.deadline);
        const data = await timed(options.timings, { stage: 'encode', width: piece.width, format }, () =>
          encode(piece, format, encodeOptions),
        ).catch((error: unknown) => {
          throw toPipelineError(error, 'image_failed');
        });
        await emit({
          width: piece.width,
          height: piece.height,
          format,
          contentType: CONTENT_TYPES[format],
          data,
          quality: encoders[format].quality,
          aspect: cropped.aspect,
          crop: { ...cropped.crop },
        });
      }
    }
  }
  return rendered;
}

/** `encoders` with one format's quality replaced. */
function withQuality(encoders: EncoderSettings, format: OutputFormat, quality: number): EncoderSettings {
  return { ...encoders, [format]: { ...encoders[format], quality } };
}

/**
 * QUALITY_MODE=auto: each format of the job gets the quality {@link searchQuality} finds, scored
 * on the original resized straight to the search width (shrink-on-load allowed: it is cheap, and
 * the same in every job). Those pixels depend on the original and the configuration alone, never
 * on the job's variants, so every job of an image chooses the same quality per format. Trials are
 * encoded exactly as variants are ({@link encode}, configured effort), without metadata.
 */
async function autoQualityEncoders(
  original: Buffer,
  source: { width: number; height: number },
  variants: readonly VariantSpec[],
  options: RenderOptions,
  auto: AutoQualityOptions,
): Promise<EncoderSettings> {
  const width = searchWidth(auto.widths, source.width);
  const height = heightForWidth(width, source);
  const plain: RenderOptions = { ...options, keepMetadata: false };
  const level = await timed(options.timings, { stage: 'quality', width }, async () => {
    let pipeline = sharp(original, { limitInputPixels: options.limitInputPixels, failOn: 'error', animated: false })
      .timeout({ seconds: sharpTimeoutSeconds(options.deadline) })
      .rotate();
    if (width < source.width) pipeline = pipeline.resize(width, height, { fit: 'fill', kernel: KERNEL });
    return withoutOpaqueAlpha(await materialise(pipeline.toColourspace('srgb'), false), plain);
  }).catch((error: unknown) => {
    throw toPipelineError(error, 'corrupt_image');
  });
  const reference = await referenceLuma(level);
  let encoders = options.encoders;
  for (const format of new Set(variants.map((variant) => variant.format))) {
    const result = await timed(options.timings, { stage: 'quality', width, format }, () =>
      searchQuality(
        async (quality) => {
          assertBeforeDeadline(options.deadline);
          const data = await encode(level, format, {
            ...plain,
            encoders: withQuality(options.encoders, format, quality),
          });
          return scoreEncode(reference, level.width, level.height, data);
        },
        {
          target: auto.targets[format],
          ...QUALITY_BOUNDS[format],
          start: options.encoders[format].quality,
          maxTrials: auto.maxTrials,
        },
      ),
    ).catch((error: unknown) => {
      throw toPipelineError(error, 'image_failed');
    });
    auto.searches?.push({ format, width, quality: result.quality, trials: result.trials, outcome: result.outcome });
    encoders = withQuality(encoders, format, result.quality);
  }
  return encoders;
}

function formatLimitError(width: number, height: number, format: OutputFormat): PipelineError {
  const { name, maxWidth, maxHeight } = FORMAT_LIMITS[format];
  return permanent(
    'invalid_job',
    `The job asks for a ${width}×${height} ${name} variant; ${name} images are at most ${maxWidth}×${maxHeight} pixels.`,
    {
      width,
      height,
      format,
    },
  );
}

/** One width of one aspect's crop, with its formats. */
interface CroppedWidth {
  aspect: string;
  crop: CropRect;
  width: number;
  height: number;
  formats: OutputFormat[];
}

/**
 * Groups a job's aspect variants by the cascade level they are cut from: the width at which the
 * whole image must be for the crop rectangle to be the variant's width. Checks them first (crop
 * present and inside the image, never enlarged, within the format's limits) so that a malformed
 * job fails before the decode.
 */
function planCroppedVariants(
  variants: readonly VariantSpec[],
  source: { width: number; height: number },
  options: RenderOptions,
): Map<number, CroppedWidth[]> {
  const byLevel = new Map<number, CroppedWidth[]>();
  for (const { width, format, aspect } of variants) {
    if (aspect === undefined) continue;
    const crop = options.crops?.[aspect];
    if (!crop || crop.left + crop.width > source.width || crop.top + crop.height > source.height) {
      throw permanent(
        'invalid_job',
        `The job asks for aspect ${aspect} without a crop rectangle inside the ${source.width}×${source.height} image.`,
        {
          aspect,
        },
      );
    }
    if (width > crop.width) {
      throw permanent(
        'invalid_job',
        `The job asks for a ${width}px variant of a ${crop.width}px crop; images are never enlarged.`,
        {
          width,
          aspect,
        },
      );
    }
    const height = heightForWidth(width, crop);
    if (!fitsFormat(format, width, height)) throw formatLimitError(width, height, format);
    const levelWidth = Math.min(source.width, Math.max(1, Math.round((source.width * width) / crop.width)));
    const group = byLevel.get(levelWidth) ?? [];
    const entry = group.find((other) => other.aspect === aspect && other.width === width);
    if (entry) {
      if (!entry.formats.includes(format)) entry.formats.push(format);
    } else {
      group.push({ aspect, crop, width, height, formats: [format] });
    }
    byLevel.set(levelWidth, group);
  }
  return byLevel;
}

/** Cuts a crop out of a level (the rectangle scaled to the level) at exactly the variant's size. */
async function cutCrop(
  level: Level,
  source: { width: number; height: number },
  cropped: CroppedWidth,
  options: RenderOptions,
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
