/**
 * Rendering a job's variants: one decode, the cascade of levels from it (decode.ts), and every
 * requested format at each width encoded from the same pixels (encode.ts), each output handed to
 * the caller as soon as it exists. Why a cascade, and the decisions behind decoding, kernels,
 * colour, heights and crops: docs/architecture.md, "Rendering".
 */
import { performance } from 'node:perf_hooks';
import type { OutputFormat } from '../core/domain.js';
import { permanent } from '../core/errors.js';
import { CONTENT_TYPES } from '../core/naming.js';
import type { CropRect, VariantSpec } from '../core/schemas.js';
import {
  type AutoQualityOptions,
  QUALITY_BOUNDS,
  referenceLuma,
  scoreEncode,
  searchQuality,
  searchWidth,
} from './auto-quality.js';
import {
  assertBeforeDeadline,
  cutCrop,
  type DecodeOptions,
  decodeLevel,
  decodeOriginal,
  inspectOriginal,
  type Level,
  type Original,
  readLevel,
  resizeLevel,
  searchLevel,
  toPipelineError,
  withoutOpaqueAlpha,
} from './decode.js';
import { type EncodeOptions, type EncoderSettings, encode, withQuality } from './encode.js';
import { assertAnimationFits, renderAnimated } from './animation.js';
import { fitsFormat, heightForWidth } from './plan.js';
import { type CroppedWidth, formatLimitError, planCroppedVariants } from './render-checks.js';
import { type Placeholder, placeholderOf, placeholderOfPixels } from './placeholder.js';

/** How {@link renderVariants} renders: how to decode (decode.ts) and encode (encode.ts), and what else to do. */
export interface RenderOptions extends DecodeOptions, EncodeOptions {
  /** Collects each stage's wall time, in order (for the job's `job.done` log line). */
  timings?: StageTiming[];
  /** Each aspect's crop of the upright original (the job's `info.crops`), for aspect variants. */
  crops?: Readonly<Record<string, CropRect>> | undefined;
  /**
   * The one uncropped variant that carries the image's placeholder (the plan's smallest width, see
   * manifest.ts placeholderVariantOf); computed from that level's pixels when this job renders it.
   */
  placeholderFor?: { width: number; format: OutputFormat } | undefined;
  /**
   * The image's preview (preview.ts previewVariantOf), handed out before the rest when this job
   * renders it: resized straight from the first level, and that level reused when the cascade
   * reaches its width, so the preview costs one resize of a large level instead of a small one.
   */
  preview?: { width: number; format: OutputFormat } | undefined;
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
  /** Set on an animated variant (animation.ts). */
  animated?: true;
}

/**
 * Renders `variants` from `original`: one decode, then each distinct width largest first, each
 * resized from the previous level, and every requested format at that width encoded from the same
 * pixels. `onVariant` is awaited for each output as soon as it is encoded, so the caller can upload
 * it while the next one is encoded; outputs are small (compressed), the big buffers are the levels,
 * and each level is released as soon as the next exists. No output is kept once `onVariant` has
 * returned: a job's outputs are never all in memory together.
 *
 * @returns how many outputs were rendered, each handed to `onVariant` (widths descending, formats
 *   in the order first requested).
 * @throws PipelineError (permanent): `corrupt_image` when the original cannot be decoded,
 *   `too_many_pixels` / `too_many_frames` past the limits (for a HEIC also past what its decoder
 *   can hold), `format_not_allowed` for a HEIF that is neither HEVC nor AVIF,
 *   `invalid_job` for a width above the original's (never enlarge) or a variant larger than its
 *   format can hold (checked before decoding), `time_budget_exceeded` past
 *   `deadline`, `image_failed` if an encoder fails. Errors thrown by `onVariant` pass through as-is.
 */
export async function renderVariants(
  original: Buffer,
  variants: readonly VariantSpec[],
  options: RenderOptions,
  onVariant?: (variant: RenderedVariant) => Promise<void>,
): Promise<number> {
  return renderEach(original, variants, options, async (variant) => {
    if (onVariant)
      await timed(options.timings, { stage: 'write', width: variant.width, format: variant.format }, () =>
        onVariant(variant),
      );
  });
}

/**
 * {@link renderVariants} with every output kept and returned (widths descending, formats in the
 * order first requested): for the benches and tests that compare outputs. The pipeline itself
 * (run-job.ts) streams them through `onVariant` instead.
 */
export async function renderAll(
  original: Buffer,
  variants: readonly VariantSpec[],
  options: RenderOptions,
): Promise<RenderedVariant[]> {
  const rendered: RenderedVariant[] = [];
  await renderEach(original, variants, options, async (variant) => {
    rendered.push(variant);
  });
  return rendered;
}

/** The render itself: hands each output to `emit` as soon as it is encoded; returns how many. */
async function renderEach(
  original: Buffer,
  variants: readonly VariantSpec[],
  options: RenderOptions,
  emit: (variant: RenderedVariant) => Promise<void>,
): Promise<number> {
  assertBeforeDeadline(options.deadline);
  if (variants.length === 0) return 0;
  const decodeStarted = performance.now();
  const source = await inspectOriginal(original, options);

  const animated = variants.filter((variant) => variant.animated);
  if (animated.length > 0) assertAnimationFits(source, options.limitInputPixels);
  const formatsByWidth = new Map<number, OutputFormat[]>();
  for (const { width, format } of variants.filter((variant) => variant.aspect === undefined && !variant.animated)) {
    const formats = formatsByWidth.get(width) ?? [];
    if (!formats.includes(format)) formats.push(format);
    formatsByWidth.set(width, formats);
  }
  const cropsByLevel = planCroppedVariants(variants, source, options);
  const widths = [...new Set([...formatsByWidth.keys(), ...cropsByLevel.keys()])].sort((a, b) => b - a);
  const widest = Math.max(...widths, ...animated.map((variant) => variant.width));
  if (widest > source.width) {
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

  const pixels = await decodeOriginal(original, source, options);
  const encoders = options.autoQuality
    ? await autoQualityEncoders(pixels, source, variants, options, options.autoQuality)
    : options.encoders;
  const encodeOptions: RenderOptions = { ...options, encoders };

  const preview = formatsByWidth.get(options.preview?.width ?? 0)?.includes(options.preview?.format ?? 'jpeg')
    ? options.preview
    : undefined;
  let previewLevel: Level | undefined;
  let count = 0;
  // Encodes a level (or an aspect's piece of it) and hands the output on; the placeholder comes
  // from the pixels of the one uncropped variant that carries it.
  const emitEncoded = async (current: Level, format: OutputFormat, cropped?: CroppedWidth): Promise<void> => {
    assertBeforeDeadline(options.deadline);
    const data = await timed(options.timings, { stage: 'encode', width: current.width, format }, () =>
      encode(current, format, encodeOptions),
    ).catch((error: unknown) => {
      throw toPipelineError(error, 'image_failed');
    });
    const wanted = options.placeholderFor;
    const placeholder =
      !cropped && wanted?.width === current.width && wanted.format === format
        ? await (current.encoding === 'raw'
            ? Promise.resolve().then(() => placeholderOfPixels(current))
            : placeholderOf(readLevel(current))
          ).catch((error: unknown) => {
            throw toPipelineError(error, 'image_failed');
          })
        : undefined;
    count += 1;
    await emit({
      width: current.width,
      height: current.height,
      format,
      contentType: CONTENT_TYPES[format],
      data,
      quality: encoders[format].quality,
      ...(placeholder ? { placeholder } : {}),
      ...(cropped ? { aspect: cropped.aspect, crop: { ...cropped.crop } } : {}),
    });
  };
  const resizeTo = (from: Level, width: number): Promise<Level> =>
    timed(options.timings, { stage: 'resize', width }, () =>
      resizeLevel(from, width, heightForWidth(width, source), options),
    ).catch((error: unknown) => {
      throw toPipelineError(error, 'image_failed');
    });
  let level: Level | undefined;
  for (const width of widths) {
    assertBeforeDeadline(options.deadline);
    const height = heightForWidth(width, source);
    if (level === undefined) {
      level = await withoutOpaqueAlpha(await decodeLevel(pixels, width, height, source, options), options).catch(
        (error: unknown) => {
          throw toPipelineError(error, 'corrupt_image');
        },
      );
      options.timings?.push({ stage: 'decode', width, ms: Math.round((performance.now() - decodeStarted) * 10) / 10 });
      if (preview && preview.width < width) {
        previewLevel = await resizeTo(level, preview.width);
        await emitEncoded(previewLevel, preview.format);
      }
    } else if (previewLevel && width === previewLevel.width) {
      level = previewLevel;
    } else {
      level = await resizeTo(level, width);
    }
    // The preview's format first at its width; skipped there if it went out before the cascade.
    const formats = formatsByWidth.get(width) ?? [];
    const isPreview = (format: OutputFormat) => preview?.width === width && preview.format === format;
    for (const format of [...formats.filter(isPreview), ...formats.filter((format) => !isPreview(format))]) {
      if (!(isPreview(format) && previewLevel)) await emitEncoded(level, format);
    }
    for (const cropped of cropsByLevel.get(width) ?? []) {
      assertBeforeDeadline(options.deadline);
      const piece = await cutCrop(level, source, cropped, options).catch((error: unknown) => {
        throw toPipelineError(error, 'image_failed');
      });
      for (const format of cropped.formats) await emitEncoded(piece, format, cropped);
    }
  }
  count += await renderAnimated(original, animated, source, encodeOptions, emit, (stage, work) =>
    timed(options.timings, stage, work),
  );
  return count;
}

/**
 * QUALITY_MODE=auto: each format of the job gets the quality {@link searchQuality} finds, scored
 * on the original resized straight to the search width (shrink-on-load allowed: it is cheap, and
 * the same in every job). Those pixels depend on the original and the configuration alone, never
 * on the job's variants, so every job of an image chooses the same quality per format. Trials are
 * encoded exactly as variants are ({@link encode}, configured effort), without metadata.
 */
async function autoQualityEncoders(
  original: Original,
  source: { width: number; height: number },
  variants: readonly VariantSpec[],
  options: RenderOptions,
  auto: AutoQualityOptions,
): Promise<EncoderSettings> {
  const width = searchWidth(auto.widths, source.width);
  const height = heightForWidth(width, source);
  const plain: RenderOptions = { ...options, keepMetadata: false };
  const level = await timed(options.timings, { stage: 'quality', width }, () =>
    searchLevel(original, width, height, source, options),
  ).catch((error: unknown) => {
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
