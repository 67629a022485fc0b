/**
 * Planning: which variants an image gets, and how they are split into jobs (the fan-out).
 *
 * Splitting trades latency against waste: every job decodes the whole original once (a 20 MP
 * JPEG costs as much to decode as encoding it as a 1–3 MP JPEG), while one job per image leaves
 * the biggest AVIF encodes in series. The cost model below (output pixels × a per-format factor,
 * plus one decode per job) lets the `balanced` strategy make as few jobs as keep the biggest
 * variant on the critical path. Pure functions, deterministic output.
 */
import type { Config } from '../core/config.js';
import type { CropRect, OmittedVariant, VariantSpec } from '../core/schemas.js';
import type { FanoutStrategy, OutputFormat } from '../core/domain.js';
import { markAnimated } from './animation.js';

/** An original's upright size (after EXIF orientation), as the probe reports it. */
export interface ImageSize {
  width: number;
  height: number;
}

/** An original's size and, when aspects are configured, each aspect's crop (chosen at accept). */
export interface PlanInput extends ImageSize {
  crops?: Readonly<Record<string, CropRect>> | undefined;
  /** The original's format and frames (OriginalInfo), for ANIMATION=keep (animation.ts). */
  format?: string;
  frames?: number | undefined;
}

/**
 * The frame a variant is cut from: the whole original, or its aspect's crop rectangle. A variant's
 * height is {@link heightForWidth} of its frame, so the widest variant of a crop is the crop itself.
 */
export function frameOf(variant: Pick<VariantSpec, 'aspect'>, info: PlanInput): ImageSize {
  if (variant.aspect === undefined) return info;
  const crop = info.crops?.[variant.aspect];
  if (!crop) throw new Error(`no crop for aspect ${variant.aspect}`);
  return crop;
}

/** A variant's pixel size. */
export function variantSize(variant: VariantSpec, info: PlanInput): ImageSize {
  return { width: variant.width, height: heightForWidth(variant.width, frameOf(variant, info)) };
}

/**
 * The widths to render for an original `originalWidth` wide: every configured width strictly below
 * it, plus the original width itself when some configured width is at or above it, so that the
 * largest variant is the full-resolution image rather than an enlargement. Ascending, no repeats.
 */
export function targetWidths(originalWidth: number, widths: readonly number[]): number[] {
  const below = widths.filter((width) => width < originalWidth);
  const capped = widths.some((width) => width >= originalWidth) ? [...below, originalWidth] : below;
  return [...new Set(capped)].sort((a, b) => a - b);
}

/**
 * The height of the `width`-wide variant of an original: its upright aspect ratio, rounded, at
 * least 1. Computed from the original, never from an intermediate size, so every job and the
 * manifest agree.
 */
export function heightForWidth(width: number, original: ImageSize): number {
  if (width === original.width) return original.height;
  return Math.max(1, Math.round((original.height * width) / original.width));
}

/**
 * The one table of output format limits: the largest width and height each encoder writes, as
 * sharp 0.35.5 enforces them (measured on the bench machine, see docs/format-limits.md): libwebp
 * 16383 px, libheif 16384 px, libjpeg 65500 px (sharp's own check says 65535, libjpeg refuses
 * first). The smallest is 1×1 for all three, odd sizes included (AVIF 4:2:0 pads its chroma).
 */
export const FORMAT_LIMITS: Readonly<
  Record<OutputFormat, { readonly name: string; readonly maxWidth: number; readonly maxHeight: number }>
> = {
  avif: { name: 'AVIF', maxWidth: 16384, maxHeight: 16384 },
  webp: { name: 'WebP', maxWidth: 16383, maxHeight: 16383 },
  jpeg: { name: 'JPEG', maxWidth: 65500, maxHeight: 65500 },
};

/** The reason recorded for a width × format pair left out because the variant would not fit the format. */
export const EXCEEDS_FORMAT_LIMIT = 'exceeds_format_limit';

/**
 * The reason recorded for a planned variant the job did not write because its encoded bytes
 * outnumber the original file's (a browser downloads one variant: the original would have been the
 * better one); see docs/api.md, "Variants larger than the original".
 */
export const LARGER_THAN_ORIGINAL = 'larger_than_original';

/**
 * Whether `variant` is the smallest planned width of its format in its frame (the whole image or
 * one aspect's crop): the `<img>` fallback and srcset floor, always written so that no format is
 * left without a variant, even when it encodes larger than the original.
 */
export function isFormatFloor(variant: VariantSpec, plan: readonly VariantSpec[]): boolean {
  return !plan.some(
    (other) => other.format === variant.format && other.aspect === variant.aspect && other.width < variant.width,
  );
}

/**
 * Whether a planned variant that encoded to `bytes` is left out for being larger than the original
 * file (`originalBytes`): deterministic in the bytes, so a re-delivered job decides the same.
 */
export function omitAsLarger(
  variant: VariantSpec,
  bytes: number,
  originalBytes: number,
  plan: readonly VariantSpec[],
): boolean {
  return bytes > originalBytes && !isFormatFloor(variant, plan);
}

/** Whether a `width`×`height` variant fits `format`'s limits. */
export function fitsFormat(format: OutputFormat, width: number, height: number): boolean {
  const limit = FORMAT_LIMITS[format];
  return width >= 1 && height >= 1 && width <= limit.maxWidth && height <= limit.maxHeight;
}

/**
 * The widest variant of `original` that fits `format` (at most the original's width), or 0 when
 * not even a 1 px wide one does (an image over 16383/16384/65500 times taller than wide).
 */
export function widestFitting(format: OutputFormat, original: ImageSize): number {
  const limit = FORMAT_LIMITS[format];
  let width = Math.min(original.width, limit.maxWidth);
  // heightForWidth grows with the width: start near the answer, then step to it exactly.
  if (heightForWidth(width, original) > limit.maxHeight)
    width = Math.floor(((limit.maxHeight + 0.5) * original.width) / original.height);
  while (width >= 1 && !fitsFormat(format, width, heightForWidth(width, original))) width--;
  while (
    width + 1 <= Math.min(original.width, limit.maxWidth) &&
    fitsFormat(format, width + 1, heightForWidth(width + 1, original))
  )
    width++;
  return Math.max(0, width);
}

/** An image's variants and the configured width × format pairs left out of them. */
export interface VariantPlan {
  /** Widths ascending, formats in configured order at each width. */
  variants: VariantSpec[];
  /** Pairs of {@link targetWidths} × formats that would exceed the format's limits, same order. */
  omitted: OmittedVariant[];
}

/**
 * Plans an image's variants within each format's limits ({@link FORMAT_LIMITS}). Per format, the
 * widths are {@link targetWidths} of the widest variant that fits the format rather than of the
 * original: every configured width below it, plus that width itself when a configured width was
 * cut, so a 1080×20000 screenshot gets WebP at 320, 640 and 884 px (16,370 px tall) instead of
 * 1024 and 1080 px WebPs that libwebp cannot write. The cut pairs are reported in `omitted`. An
 * image with no variant at all (e.g. 1×65501) is refused by the probe.
 */
export function planImage(
  info: PlanInput,
  config: Pick<Config, 'WIDTHS' | 'FORMATS'> & Partial<Pick<Config, 'ASPECTS' | 'ANIMATION'>>,
): VariantPlan {
  const frame = planFrame(info, config.WIDTHS, config.FORMATS);
  const whole = { ...frame, variants: markAnimated(frame.variants, info, config.ANIMATION) };
  // Aspects: the same plan over each crop rectangle, but never below the smallest configured width
  // (a crop narrower than that is too small to be worth art direction and gets no variants).
  const smallest = Math.min(...config.WIDTHS);
  const cropped = (config.ASPECTS ?? []).flatMap((aspect) => {
    const crop = info.crops?.[aspect];
    if (!crop) return [];
    const plan = planFrame(crop, config.WIDTHS, config.FORMATS);
    return [
      {
        variants: plan.variants.filter((v) => v.width >= smallest).map((v) => ({ ...v, aspect })),
        omitted: plan.omitted.filter((o) => o.width >= smallest).map((o) => ({ ...o, aspect })),
      },
    ];
  });
  return {
    variants: [...whole.variants, ...cropped.flatMap((plan) => plan.variants)],
    omitted: [...whole.omitted, ...cropped.flatMap((plan) => plan.omitted)],
  };
}

/** {@link planImage} for one frame (the original, or one crop). */
function planFrame(info: ImageSize, widths: readonly number[], formats: readonly OutputFormat[]): VariantPlan {
  const nominal = targetWidths(info.width, widths);
  const byFormat = new Map(
    formats.map((format) => [format, targetWidths(widestFitting(format, info), widths)] as const),
  );
  const planned = [...new Set([...byFormat.values()].flat())].filter((width) => width >= 1).sort((a, b) => a - b);
  const variants = planned.flatMap((width) =>
    [...byFormat].filter(([, fitting]) => fitting.includes(width)).map(([format]) => ({ width, format })),
  );
  const omitted = nominal.flatMap((width) =>
    formats
      .filter((format) => !fitsFormat(format, width, heightForWidth(width, info)))
      .map((format) => ({
        width,
        height: heightForWidth(width, info),
        format,
        reason: EXCEEDS_FORMAT_LIMIT,
      })),
  );
  return { variants, omitted };
}

/** Every variant of an image: each target width in each configured format that can hold it, widths ascending. */
export function planVariants(
  info: PlanInput,
  config: Pick<Config, 'WIDTHS' | 'FORMATS'> & Partial<Pick<Config, 'ASPECTS' | 'ANIMATION'>>,
): VariantSpec[] {
  return planImage(info, config).variants;
}

/**
 * Relative encode CPU per output pixel at the default settings, plain libjpeg-turbo JPEG = 1:
 * AVIF decides the packing. Only ratios matter; the measurements behind them are in
 * docs/performance.md ("Planner cost factors"), to be re-measured when encoder settings change.
 */
export const FORMAT_COST_FACTORS: Readonly<Record<OutputFormat, number>> = { jpeg: 1, webp: 8, avif: 50 };

/**
 * Cost of decoding one pixel of the original, in the same unit (docs/performance.md, "Planner cost
 * factors"). The planner does not know how the original is encoded, so it takes the dearer common
 * cases: overestimating the decode only errs toward fewer jobs. Every job pays it once for the
 * whole original, which is what makes splitting an image into many jobs wasteful.
 */
export const DECODE_COST_FACTOR = 3.5;

/**
 * Decode cost per input megapixel of the formats that cost far more than {@link DECODE_COST_FACTOR}:
 * HEIC (HEVC) decodes in WebAssembly, 7–10 units per megapixel on real phone files
 * (docs/performance.md, "Planner cost factors"), so each extra job's decode weighs more.
 */
export const DECODE_COST_FACTORS: Readonly<Partial<Record<string, number>>> = { heif: 8 };

/** Megapixels, the unit that costs are counted in (× a factor). */
const megapixels = (width: number, height: number): number => (width * height) / 1_000_000;

/**
 * Estimated encode cost of one variant: its output megapixels × {@link FORMAT_COST_FACTORS}. The
 * unit is "megapixels of plain JPEG" (≈ 15 ms of CPU on the reference machine).
 */
export function estimateVariantCost(variant: VariantSpec, info: PlanInput): number {
  const size = variantSize(variant, info);
  // An animated variant encodes every frame: frames × the still cost. For the 30-frame 640×360 GIF
  // of docs/performance.md ("Animation") that predicts 0.22 and 0.88 CPU s at 320 and 640 px for
  // 0.23 and 0.42 measured (libwebp codes only what changes between frames): it errs high.
  const frames = variant.animated ? (info.frames ?? 1) : 1;
  return frames * megapixels(size.width, size.height) * FORMAT_COST_FACTORS[variant.format];
}

/** Estimated cost of the decode that every job pays once, whatever its variants. */
export function estimateDecodeCost(info: ImageSize & { readonly format?: string | undefined }): number {
  const factor = (info.format !== undefined ? DECODE_COST_FACTORS[info.format] : undefined) ?? DECODE_COST_FACTOR;
  return megapixels(info.width, info.height) * factor;
}

/**
 * Estimated cost of one job: one decode of the original plus its variants' encodes. Resizes
 * between cascade levels are left out: they measured under 1% of encode time.
 */
export function estimateJobCost(variants: readonly VariantSpec[], info: PlanInput): number {
  return variants.reduce((sum, variant) => sum + estimateVariantCost(variant, info), estimateDecodeCost(info));
}

/** Most jobs the balanced strategy makes unless asked: past this, per-job decodes dominate. */
export const MAX_BALANCED_JOBS = 6;

/**
 * Most estimated CPU that the balanced strategy may add to an image by decoding it once more per
 * extra job, as a share of the image's work (one decode plus every encode): the 15% over the floor
 * that the bench's overhead target allows. With AVIF in the set the encodes dwarf the decode and a
 * large image still fans out into three jobs; a JPEG + WebP set, whose encodes cost at most ~5
 * decodes, always stays one job (the bench measured 2-job splits of them at +30–55% CPU).
 */
export const MAX_FANOUT_DECODE_OVERHEAD = 0.15;

/** Groups `items` by `key`, groups in order of first appearance. */
function groupBy<T, K>(items: readonly T[], key: (item: T) => K): Array<[T, ...T[]]> {
  const groups = new Map<K, [T, ...T[]]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return [...groups.values()];
}

/** Whether two variants are encoded from the same pixels (same width of the same frame). */
const sameResize = (a: VariantSpec, b: VariantSpec): boolean => a.width === b.width && a.aspect === b.aspect;

/**
 * Greedy longest-processing-time packing of variants into `jobCount` jobs, each starting with one
 * decode's cost. A variant goes to the least-loaded job, except that it joins a job already
 * holding its width (they share a resize) when that keeps the job within the ideal makespan.
 */
function packBalanced(variants: readonly VariantSpec[], info: PlanInput, jobCount: number): VariantSpec[][] {
  const items = variants.map((variant, index) => ({ variant, index, cost: estimateVariantCost(variant, info) }));
  const byCostDescending = [...items].sort((a, b) => b.cost - a.cost || a.index - b.index);
  const decode = estimateDecodeCost(info);
  const totalVariantCost = items.reduce((sum, item) => sum + item.cost, 0);
  const idealMakespan = decode + Math.max(byCostDescending[0]?.cost ?? 0, totalVariantCost / jobCount);
  type Job = { load: number; items: typeof items };
  const jobs: Job[] = Array.from({ length: jobCount }, () => ({ load: decode, items: [] }));
  // Ties go to the lower job index, which keeps the packing deterministic. Never called empty.
  const leastLoaded = (candidates: readonly Job[]): Job =>
    candidates.reduce((best, job) => (job.load < best.load ? job : best));

  for (const item of byCostDescending) {
    // An empty job always takes the next variant, so the job count asked for is the count made.
    const anyEmpty = jobs.some((job) => job.items.length === 0);
    const sharesResize = anyEmpty
      ? []
      : jobs.filter(
          (job) =>
            job.items.some((other) => sameResize(other.variant, item.variant)) &&
            job.load + item.cost <= idealMakespan + 1e-9,
        );
    const target = leastLoaded(sharesResize.length > 0 ? sharesResize : jobs);
    target.load += item.cost;
    target.items.push(item);
  }

  return jobs
    .filter((job) => job.items.length > 0)
    .map((job) => ({
      load: job.load,
      first: Math.min(...job.items.map((item) => item.index)),
      items: job.items.sort((a, b) => a.index - b.index),
    }))
    .sort((a, b) => b.load - a.load || a.first - b.first)
    .map((job) => job.items.map((item) => item.variant));
}

/**
 * Splits an image's variants into jobs, one Pub/Sub message each:
 *
 * - `per-image`: one job; one decode, no parallelism.
 * - `per-width`: one job per width with all its formats (they share a resize), widths ascending.
 * - `per-format`: one job per format with all widths (each job cascades), formats in plan order.
 * - `balanced`: variants packed into jobs of similar estimated cost, counting each job's decode
 *   ({@link estimateJobCost}). The job count is `targetJobs` if given, otherwise
 *   ceil(variant cost / biggest variant's cost), i.e. as many jobs as make the biggest variant
 *   the critical path, at most {@link MAX_BALANCED_JOBS}, and no more than the extra decodes
 *   allow within {@link MAX_FANOUT_DECODE_OVERHEAD} of the image's estimated work. Heaviest job
 *   first, so it is published (and likely started) first.
 *
 * Every variant lands in exactly one job, no job is empty, and the result is deterministic.
 * Within a job, variants keep their plan order; the renderer does its own largest-first cascade.
 *
 * @param targetJobs only for `balanced`: the number of jobs wanted (capped at the variant count).
 */
export function splitIntoJobs(
  variants: readonly VariantSpec[],
  info: PlanInput,
  strategy: FanoutStrategy,
  targetJobs?: number,
): VariantSpec[][] {
  if (variants.length === 0) return [];
  switch (strategy) {
    case 'per-image':
      return [[...variants]];
    case 'per-width':
      // One job per width of each frame: an aspect's variants at a width share their resize.
      return groupBy(variants, (variant) =>
        variant.aspect === undefined ? variant.width : `${variant.aspect}/${variant.width}`,
      ).sort((a, b) => a[0].width - b[0].width);
    case 'per-format':
      return groupBy(variants, (variant) => variant.format);
    case 'balanced': {
      const variantCosts = variants.map((variant) => estimateVariantCost(variant, info));
      const biggest = Math.max(...variantCosts);
      const total = variantCosts.reduce((sum, cost) => sum + cost, 0);
      // Every extra job pays one more decode: allow only as many as fit in the overhead budget.
      const decode = estimateDecodeCost(info);
      const affordable =
        decode > 0
          ? 1 + Math.floor((MAX_FANOUT_DECODE_OVERHEAD * (decode + total)) / decode + 1e-9)
          : MAX_BALANCED_JOBS;
      const wanted =
        targetJobs ?? (biggest > 0 ? Math.min(MAX_BALANCED_JOBS, affordable, Math.ceil(total / biggest - 1e-9)) : 1);
      const jobCount = Math.max(1, Math.min(variants.length, Math.floor(wanted)));
      return packBalanced(variants, info, jobCount);
    }
  }
}
