/**
 * Rendering a job's variants: one decode, the cascade of levels from it (decode.ts), and every
 * requested format at each width encoded from the same pixels (encode.ts), each output handed to
 * the caller as soon as it exists. Why a cascade, and the decisions behind decoding, kernels,
 * colour, heights and crops: docs/architecture.md, "Rendering".
 */
import { performance } from 'node:perf_hooks';
import type { OutputFormat } from '../core/domain.js';
import { type PipelineError, permanent } from '../core/errors.js';
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
import { FORMAT_LIMITS, fitsFormat, heightForWidth } from './plan.js';
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

  let count = 0;
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
    } else {
      const from: Level = level;
      level = await timed(options.timings, { stage: 'resize', width }, () =>
        resizeLevel(from, width, height, options),
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
      count += 1;
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
        count += 1;
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
