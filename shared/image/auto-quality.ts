/**
 * Per-image auto-quality (`QUALITY_MODE=auto`): per format, the lowest quality whose luma SSIM
 * against the pixels it was encoded from meets a target, found with a few trial encodes at one
 * cheap search width and then used at every width. How the search works and how the targets were
 * chosen: docs/auto-quality.md. This module is the search itself, over any scoring function, so
 * it is testable without encoders; render.ts supplies the trial encodes.
 */
import sharp from 'sharp';
import type { Config } from '../core/config.js';
import type { OutputFormat } from '../core/domain.js';
import { luma, ssim } from './ssim.js';

/**
 * The qualities the search may choose, per format. Below the floor every encoder's artefacts
 * (banding, blocking, smeared texture) show on smooth images even when SSIM stays high, which is
 * where SSIM is least trustworthy; above the ceiling bytes grow steeply for no visible gain.
 */
export const QUALITY_BOUNDS: Readonly<Record<OutputFormat, { min: number; max: number }>> = {
  avif: { min: 30, max: 80 },
  webp: { min: 50, max: 95 },
  jpeg: { min: 50, max: 95 },
};

/** A trial that lands this close above the target is taken at once (SSIM units). */
export const SCORE_TOLERANCE = 0.002;

/** The search width is the configured width nearest this, so it is cheap and mid-sized. */
export const SEARCH_WIDTH_GOAL = 640;

/**
 * The width every job of an image searches at: the configured width nearest 640 px (the smaller
 * on a tie), or the image's own width when it is narrower. It depends on the configuration and the
 * original alone, never on which variants a job renders, so every job of an image searches the
 * same pixels and chooses the same qualities.
 */
export function searchWidth(widths: readonly number[], originalWidth: number): number {
  let best = widths[0] ?? SEARCH_WIDTH_GOAL;
  for (const width of widths) {
    const distance = Math.abs(width - SEARCH_WIDTH_GOAL);
    const bestDistance = Math.abs(best - SEARCH_WIDTH_GOAL);
    if (distance < bestDistance || (distance === bestDistance && width < best)) best = width;
  }
  return Math.max(1, Math.min(best, originalWidth));
}

/** One trial encode: its quality and score. */
export interface Trial {
  quality: number;
  score: number;
}

/** How {@link searchQuality} searches. */
export interface SearchOptions {
  /** The score to reach (luma SSIM, 0–1). */
  target: number;
  /** Lowest and highest quality the search may choose. */
  min: number;
  max: number;
  /** Where to start: the fixed quality, near which the target usually lies. Clamped to [min, max]. */
  start: number;
  /** At most this many trials (≥ 1). */
  maxTrials: number;
  /** Stop at a trial scoring in [target, target + tolerance]. */
  tolerance?: number;
}

/** What a search chose, and how. */
export interface SearchResult {
  quality: number;
  /** The trials in the order made. */
  trials: Trial[];
  /** `met`: the chosen quality's trial reached the target; `ceiling`: none did, the ceiling is used. */
  outcome: 'met' | 'ceiling';
}

/**
 * Typical rise of −log(1 − SSIM) per quality step near the fixed defaults, for the first step
 * before two trials measure the image's own: 0.05–0.06 for AVIF, 0.08 for JPEG and 0.1 for WebP
 * on the corpus (docs/auto-quality.md); the lowest is taken, so a first step tends to overshoot.
 */
const PRIOR_SLOPE = 0.05;
/** A measured slope below this is taken as this: a flat curve sends the next trial to the bound. */
const MIN_SLOPE = 0.005;

/** −log(1 − score): SSIM's approach to 1 as quality rises is roughly exponential, so this is roughly linear. */
function distortion(score: number): number {
  return -Math.log(Math.max(1e-6, 1 - score));
}

/**
 * The lowest quality in [min, max] whose score reaches `target`, assuming the score grows with
 * the quality, in at most `maxTrials` calls of `score`. It keeps a bracket (highest quality known
 * to miss, lowest known to meet) and probes inside it by linear interpolation of −log(1 − score)
 * (regula falsi on a scale where SSIM's saturating curve is close to a line); while only one side
 * is known it extrapolates through the last two trials (from the first, with a prior slope); it stops
 * when the bracket is closed (adjacent qualities), a trial lands within `tolerance` above the
 * target, or the trials run out. It returns the lowest quality seen to meet the target, or the
 * ceiling when none did (a hard image gets the most bytes allowed, never fewer than its needs
 * for lack of trials). Deterministic: the same scores give the same trials.
 */
export async function searchQuality(
  score: (quality: number) => Promise<number>,
  options: SearchOptions,
): Promise<SearchResult> {
  const { target, min, max } = options;
  const tolerance = options.tolerance ?? SCORE_TOLERANCE;
  const trials: Trial[] = [];
  let miss: Trial | undefined; // highest quality known to score below the target
  let meet: Trial | undefined; // lowest quality known to reach it
  // Aim a little above the target so that an interpolated trial tends to land inside the tolerance.
  const aim = distortion(Math.min(0.99999, target + tolerance / 2));
  let next = Math.min(max, Math.max(min, Math.round(options.start)));
  while (trials.length < Math.max(1, options.maxTrials)) {
    const trial = { quality: next, score: await score(next) };
    trials.push(trial);
    if (trial.score >= target) {
      if (!meet || trial.quality < meet.quality) meet = trial;
      if (trial.score - target <= tolerance) break;
    } else if (!miss || trial.quality > miss.quality) miss = trial;
    const low = miss ? miss.quality + 1 : min;
    const high = meet ? meet.quality - 1 : max;
    if (low > high) break; // closed: meet is the lowest passing quality, or max missed / min met
    let guess: number;
    if (miss && meet) {
      const slope = (distortion(meet.score) - distortion(miss.score)) / (meet.quality - miss.quality);
      guess = slope > 0 ? miss.quality + (aim - distortion(miss.score)) / slope : (low + high) / 2;
    } else {
      // One side known: extrapolate through the last two trials, or from the last with the prior slope.
      const previous = trials.at(-2);
      const measured = previous
        ? (distortion(trial.score) - distortion(previous.score)) / (trial.quality - previous.quality)
        : Number.NaN;
      const slope = measured > 0 ? Math.max(measured, MIN_SLOPE) : PRIOR_SLOPE;
      guess = trial.quality + (aim - distortion(trial.score)) / slope;
    }
    next = Math.min(high, Math.max(low, Math.round(guess)));
  }
  return meet ? { quality: meet.quality, trials, outcome: 'met' } : { quality: max, trials, outcome: 'ceiling' };
}

/** What render.ts needs to search (from config: QUALITY_MODE=auto and AUTO_QUALITY_*). */
export interface AutoQualityOptions {
  /** The score each format must reach. */
  targets: Readonly<Record<OutputFormat, number>>;
  /** Most trials per format. */
  maxTrials: number;
  /** The configured widths, from which {@link searchWidth} picks. */
  widths: readonly number[];
  /** Collects each format's search, in order (for the job's log line and the bench). */
  searches?: QualitySearch[];
}

/** One format's search, as made. */
export interface QualitySearch {
  format: OutputFormat;
  width: number;
  quality: number;
  trials: Trial[];
  outcome: SearchResult['outcome'];
}

/** The auto-quality options of a configuration, or undefined in `fixed` mode. */
export function autoQualityFromConfig(
  config: Pick<
    Config,
    | 'QUALITY_MODE'
    | 'WIDTHS'
    | 'AUTO_QUALITY_TARGET_AVIF'
    | 'AUTO_QUALITY_TARGET_WEBP'
    | 'AUTO_QUALITY_TARGET_JPEG'
    | 'AUTO_QUALITY_MAX_TRIALS'
  >,
  searches?: QualitySearch[],
): AutoQualityOptions | undefined {
  if (config.QUALITY_MODE !== 'auto') return undefined;
  return {
    targets: {
      avif: config.AUTO_QUALITY_TARGET_AVIF,
      webp: config.AUTO_QUALITY_TARGET_WEBP,
      jpeg: config.AUTO_QUALITY_TARGET_JPEG,
    },
    maxTrials: config.AUTO_QUALITY_MAX_TRIALS,
    widths: config.WIDTHS,
    ...(searches ? { searches } : {}),
  };
}

/** Raw pixels of one width, as render.ts's levels hold them. */
export interface RawPixels {
  data: Buffer;
  width: number;
  height: number;
  channels: number;
}

/** White: formats without alpha are flattened onto it, so scores compare what a page shows. */
const WHITE = { r: 255, g: 255, b: 255 } as const;

/** Luma of pixels flattened onto white (the reference a trial is scored against). */
export async function referenceLuma(pixels: RawPixels): Promise<Float32Array> {
  const { data, info } = await sharp(pixels.data, {
    raw: { width: pixels.width, height: pixels.height, channels: pixels.channels as 1 | 2 | 3 | 4 },
  })
    .flatten({ background: WHITE })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return luma(data, info.width, info.height, info.channels);
}

/**
 * The score of an encode: luma SSIM of the decoded encode (sRGB, flattened onto white) against
 * `reference` ({@link referenceLuma} of the pixels it was encoded from). The one score function
 * of the project: the benches use it too.
 */
export async function scoreEncode(
  reference: Float32Array,
  width: number,
  height: number,
  encoded: Buffer,
): Promise<number> {
  const { data, info } = await sharp(encoded)
    .toColourspace('srgb')
    .flatten({ background: WHITE })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.width !== width || info.height !== height)
    throw new Error(`scoreEncode: the encode is ${info.width}×${info.height}, the reference ${width}×${height}`);
  return ssim(reference, luma(data, info.width, info.height, info.channels), width, height);
}
