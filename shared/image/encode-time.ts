/**
 * Predicts how long an AVIF encode will take, so a job can refuse to start one that would run
 * past its time budget.
 *
 * Why a prediction instead of a timeout: sharp's `timeout()` is checked on libvips' progress
 * callbacks, and heifsave hands the whole image to libheif/aom in one call that reports no
 * progress, so an AVIF encode, once started, runs to completion whatever the deadline (a 12 MP
 * encode at effort 6 ran 133 s past a 1 s budget). JPEG and WebP encodes do report progress and
 * are stopped by sharp's timeout, so only AVIF needs this.
 *
 * The prediction is megapixels × a per-effort rate, measured once on the bench machine, times a
 * speed factor learned from this process's own AVIF encodes (slower CPUs, fewer libvips threads,
 * busy instances): the estimate converges on what this instance really does. It is an estimate:
 * an encode can still overrun by the estimate's error, and the function's timeout stays the hard
 * stop.
 */

/**
 * Wall milliseconds per output megapixel of sharp's AVIF encoder (quality 50, 4:2:0, two libvips
 * threads) for efforts 0–9, measured on a photo-like 1600×1067 image on the bench machine
 * (2 cores, Node 20, sharp 0.35). Quality moves these far less than effort does.
 */
export const AVIF_WALL_MS_PER_MEGAPIXEL: readonly number[] = [70, 100, 280, 410, 1900, 1900, 6300, 11900, 14300, 40100];

/**
 * How much longer a 10-bit AVIF encode (`AVIF_BITDEPTH=10`) takes than the 8-bit encodes the rates
 * were measured with: 1.5–1.7× wall at effort 3 on this machine (docs/performance.md).
 */
export const AVIF_TEN_BIT_FACTOR = 1.5;

/** Weight of the newest observation in the learned speed factor (exponential moving average). */
const LEARNING_WEIGHT = 0.5;

/** Bounds on the learned factor, so one odd encode (a flat image, a paused process) cannot blind it. */
const MIN_FACTOR = 0.1;
const MAX_FACTOR = 20;

/** Below this many output pixels an encode takes milliseconds and teaches nothing reliable. */
const MIN_OBSERVED_PIXELS = 100_000;

function baseRate(effort: number, bitdepth: 8 | 10): number {
  const index = Math.min(AVIF_WALL_MS_PER_MEGAPIXEL.length - 1, Math.max(0, Math.round(effort)));
  const rate = AVIF_WALL_MS_PER_MEGAPIXEL[index];
  if (rate === undefined) throw new RangeError(`No AVIF encode rate for effort ${effort}.`);
  return bitdepth === 10 ? rate * AVIF_TEN_BIT_FACTOR : rate;
}

/** Per-process model of AVIF encode time; see the module comment. */
export class AvifEncodeTimeModel {
  #factor = 1;

  /** The learned speed factor: 1 = as fast as the bench machine, 2 = twice as slow. */
  get factor(): number {
    return this.#factor;
  }

  /** Predicted wall milliseconds to encode `pixels` output pixels at `effort` and `bitdepth`. */
  predictMs(pixels: number, effort: number, bitdepth: 8 | 10 = 8): number {
    return (pixels / 1e6) * baseRate(effort, bitdepth) * this.#factor;
  }

  /** Learns from a finished encode of `pixels` pixels at `effort` and `bitdepth` that took `wallMs`. */
  observe(pixels: number, effort: number, wallMs: number, bitdepth: 8 | 10 = 8): void {
    if (pixels < MIN_OBSERVED_PIXELS || !(wallMs > 0)) return;
    const seen = wallMs / ((pixels / 1e6) * baseRate(effort, bitdepth));
    const next = (1 - LEARNING_WEIGHT) * this.#factor + LEARNING_WEIGHT * seen;
    this.#factor = Math.min(MAX_FACTOR, Math.max(MIN_FACTOR, next));
  }
}
