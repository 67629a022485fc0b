/**
 * The three ways of producing an image's variants that the bench compares, timed the same way
 * (wall clock and `process.cpuUsage()`, libvips' threads included): ours ({@link runOurs}), the
 * anchor's method ({@link runAnchor}) and the floor ({@link runFloor}); defined in
 * docs/performance.md, "How it is measured". {@link checkEncoderParity} proves in every run that
 * these encoder calls write the same bytes as render.ts's, so the comparison stays fair.
 */
import sharp, { type Sharp, type SharpOptions } from 'sharp';
import { loadConfig, type Config } from '../shared/core/config.js';
import type { VariantSpec } from '../shared/core/schemas.js';
import { heightForWidth, planVariants, splitIntoJobs, type ImageSize } from '../shared/image/plan.js';
import { renderAll, type RenderOptions } from '../shared/image/render.js';
import { encoderSettingsFromConfig, progressiveJpeg, type EncoderSettings } from '../shared/image/encode.js';
import type { FanoutStrategy, OutputFormat } from '../shared/core/domain.js';

/** Bucket names the config schema requires; the bench touches no bucket. */
const BENCH_BUCKETS = { UPLOADS_BUCKET: 'bench-uploads', IMAGES_BUCKET: 'bench-images' } as const;

/**
 * The configuration the functions would load from this environment (defaults from
 * shared/core/config.ts, overridable by the same variables, e.g. `AVIF_EFFORT=2 npm run bench`).
 */
export function benchConfig(env: Record<string, string | undefined> = process.env): Config {
  return loadConfig({ ...BENCH_BUCKETS, ...env });
}

/** renderVariants' options as run-job.ts builds them, without a deadline (the bench has none). */
export function renderOptionsFrom(config: Config): RenderOptions {
  return {
    encoders: encoderSettingsFromConfig(config),
    keepMetadata: config.KEEP_METADATA,
    limitInputPixels: config.MAX_INPUT_PIXELS,
    maxFrames: config.MAX_INPUT_FRAMES,
  };
}

/** sharp's input options, as decode.ts decodes originals. */
export function inputOptions(config: Pick<Config, 'MAX_INPUT_PIXELS'>): SharpOptions {
  return { limitInputPixels: config.MAX_INPUT_PIXELS, failOn: 'error', animated: false };
}

/** The resize kernel decode.ts uses for every step. */
export const KERNEL = 'lanczos3' as const;

/** encode.ts encodes AVIF with halved chroma resolution, like its JPEG and lossy WebP. */
export const AVIF_CHROMA_SUBSAMPLING = '4:2:0' as const;

/** Transparent pixels are flattened onto white for JPEG, as in encode.ts. */
const WHITE = { r: 255, g: 255, b: 255 } as const;

/** Wall and CPU time of one piece of work. */
export interface Timing {
  wallMs: number;
  /** User + system CPU of the whole process (all threads) while the work ran. */
  cpuMs: number;
}

/** Runs `work` and measures it. */
export async function measure<T>(work: () => Promise<T>): Promise<{ value: T } & Timing> {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  const value = await work();
  const wallMs = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  return { value, wallMs, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Decoded pixels of one width. */
export interface Pixels {
  data: Buffer;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

async function toPixels(pipeline: Sharp): Promise<Pixels> {
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height, channels: info.channels as Pixels['channels'] };
}

/** A pipeline reading raw pixels. */
export function readPixels(pixels: Pixels): Sharp {
  return sharp(pixels.data, { raw: { width: pixels.width, height: pixels.height, channels: pixels.channels } });
}

/** Adds the encoder for `format` to a pipeline, with encode.ts's options. */
export function withEncoder(pipeline: Sharp, format: OutputFormat, encoders: EncoderSettings): Sharp {
  switch (format) {
    case 'jpeg':
      return pipeline.flatten({ background: WHITE }).jpeg({
        quality: encoders.jpeg.quality,
        mozjpeg: encoders.jpeg.mozjpeg,
        ...progressiveJpeg(encoders.jpeg.progressive),
      });
    case 'webp':
      return pipeline.webp({ quality: encoders.webp.quality, effort: encoders.webp.effort });
    case 'avif':
      return pipeline.avif({
        quality: encoders.avif.quality,
        effort: encoders.avif.effort,
        chromaSubsampling: AVIF_CHROMA_SUBSAMPLING,
        bitdepth: encoders.avif.bitdepth ?? 8,
      });
  }
}

/** Encodes raw pixels into `format`. */
export function encodePixels(pixels: Pixels, format: OutputFormat, encoders: EncoderSettings): Promise<Buffer> {
  return withEncoder(readPixels(pixels), format, encoders).toBuffer();
}

/** True when `pixels` have an alpha channel in which every pixel is opaque. */
export async function alphaIsOpaque(pixels: Pixels): Promise<boolean> {
  if (pixels.channels !== 4) return false;
  // stats() describes the input, whatever operations are queued, so no extractChannel here.
  return (await readPixels(pixels).stats()).isOpaque;
}

/** The same pixels without their alpha channel. */
export async function removeAlpha(pixels: Pixels): Promise<Pixels> {
  return toPixels(readPixels(pixels).removeAlpha());
}

/** One encoded output of a method. */
export interface Output {
  width: number;
  height: number;
  format: OutputFormat;
  data: Buffer;
}

/** One job of {@link runOurs}: its variants, times and outputs. */
export interface JobRun extends Timing {
  variants: VariantSpec[];
}

/** The jobs a strategy makes for an image. */
export function jobsFor(info: ImageSize, config: Config, strategy: FanoutStrategy): VariantSpec[][] {
  return splitIntoJobs(planVariants(info, config), info, strategy);
}

/**
 * Ours: each job through renderVariants, one after another (as separate function invocations
 * would run them), each timed on its own.
 */
export async function runOurs(
  original: Buffer,
  jobs: readonly VariantSpec[][],
  config: Config,
): Promise<{ jobs: JobRun[]; outputs: Output[] }> {
  const options = renderOptionsFrom(config);
  const runs: JobRun[] = [];
  const outputs: Output[] = [];
  for (const variants of jobs) {
    const { value, wallMs, cpuMs } = await measure(() => renderAll(original, variants, options));
    runs.push({ variants, wallMs, cpuMs });
    for (const variant of value)
      outputs.push({ width: variant.width, height: variant.height, format: variant.format, data: variant.data });
  }
  return { jobs: runs, outputs };
}

/** One variant of the anchor's method. */
export interface AnchorVariantRun extends Timing {
  width: number;
  format: OutputFormat;
  bytes: number;
}

/**
 * The anchor's method: per variant, a fresh pipeline from the original bytes — decode (with
 * sharp's default shrink-on-load), rotate, resize to the same size as ours, encode with the same
 * settings — sequentially. Each variant pays a decode; that is the method's cost.
 */
export async function runAnchor(
  original: Buffer,
  info: ImageSize,
  variants: readonly VariantSpec[],
  config: Config,
): Promise<{ variants: AnchorVariantRun[]; outputs: Output[] }> {
  const encoders = encoderSettingsFromConfig(config);
  const runs: AnchorVariantRun[] = [];
  const outputs: Output[] = [];
  for (const { width, format } of variants) {
    const height = heightForWidth(width, info);
    const { value, wallMs, cpuMs } = await measure(() =>
      withEncoder(
        sharp(original, inputOptions(config))
          .rotate()
          .resize(width, height, { fit: 'fill', kernel: KERNEL })
          .toColourspace('srgb'),
        format,
        encoders,
      ).toBuffer(),
    );
    runs.push({ width, format, bytes: value.length, wallMs, cpuMs });
    outputs.push({ width, height, format, data: value });
  }
  return { variants: runs, outputs };
}

/** One encode of the floor. */
export interface FloorEncodeRun extends Timing {
  width: number;
  format: OutputFormat;
  bytes: number;
}

/** What {@link runFloor} measured. */
export interface FloorRun {
  /** Full decode to raw sRGB pixels (oriented). */
  decodeFull: Timing;
  /**
   * Decode straight to the largest width in one pipeline (JPEG/WebP shrink-on-load applies), or
   * undefined when the largest width is the original's (then it is the full decode).
   */
  decodeToLargest?: Timing;
  /** The decode the floor counts: the cheaper of the two, by CPU. */
  decode: Timing;
  /** Every width resized from the full decode (lanczos3), timed but not counted in the floor. */
  resizes: Timing;
  encodes: FloorEncodeRun[];
  /** decode + Σ encodes. */
  total: Timing;
}

function addTimings(timings: readonly Timing[]): Timing {
  return { wallMs: timings.reduce((s, t) => s + t.wallMs, 0), cpuMs: timings.reduce((s, t) => s + t.cpuMs, 0) };
}

/**
 * The floor. Counted: one decode, and each encode from pixels already at its size. Not counted:
 * resizing. Resizing is real work, but how much of it a pipeline must do is a design choice (the
 * cascade, shrink-on-load and the encoders' own cost all move it), so the floor leaves it out
 * and is a lower bound no pipeline can beat; the resize time is still reported. The decode
 * counted is the cheaper of a full decode and a decode straight to the largest width (JPEG
 * shrink-on-load), so the floor does not charge for a full decode that ours avoids.
 * Fully opaque alpha channels are dropped before the encodes, as render.ts does (untimed).
 */
export async function runFloor(
  original: Buffer,
  info: ImageSize,
  variants: readonly VariantSpec[],
  config: Config,
): Promise<{ run: FloorRun; outputs: Output[] }> {
  const encoders = encoderSettingsFromConfig(config);
  const widths = [...new Set(variants.map((v) => v.width))].sort((a, b) => b - a);
  const formatsOf = (width: number): OutputFormat[] => [
    ...new Set(variants.filter((v) => v.width === width).map((v) => v.format)),
  ];

  const full = await measure(() => toPixels(sharp(original, inputOptions(config)).rotate().toColourspace('srgb')));
  let decodeToLargest: Timing | undefined;
  const largest = widths[0];
  if (largest !== undefined && largest < full.value.width) {
    const measured = await measure(() =>
      toPixels(
        sharp(original, inputOptions(config))
          .rotate()
          .resize(largest, heightForWidth(largest, info), { fit: 'fill', kernel: KERNEL })
          .toColourspace('srgb'),
      ),
    );
    decodeToLargest = { wallMs: measured.wallMs, cpuMs: measured.cpuMs };
  }
  const decodeFull = { wallMs: full.wallMs, cpuMs: full.cpuMs };
  const decode = decodeToLargest && decodeToLargest.cpuMs < decodeFull.cpuMs ? decodeToLargest : decodeFull;

  const levels: Pixels[] = [];
  const resizeTimings: Timing[] = [];
  for (const width of widths) {
    if (width === full.value.width) {
      levels.push(full.value);
      continue;
    }
    const resized = await measure(() =>
      toPixels(readPixels(full.value).resize(width, heightForWidth(width, info), { fit: 'fill', kernel: KERNEL })),
    );
    resizeTimings.push(resized);
    levels.push(resized.value);
  }
  const opaque = await alphaIsOpaque(full.value);
  const ready = opaque ? await Promise.all(levels.map(removeAlpha)) : levels;

  const encodes: FloorEncodeRun[] = [];
  const outputs: Output[] = [];
  for (const level of ready) {
    for (const format of formatsOf(level.width)) {
      const { value, wallMs, cpuMs } = await measure(() => encodePixels(level, format, encoders));
      encodes.push({ width: level.width, format, bytes: value.length, wallMs, cpuMs });
      outputs.push({ width: level.width, height: level.height, format, data: value });
    }
  }
  const total = addTimings([decode, ...encodes]);
  return {
    run: {
      decodeFull,
      ...(decodeToLargest ? { decodeToLargest } : {}),
      decode,
      resizes: addTimings(resizeTimings),
      encodes,
      total,
    },
    outputs,
  };
}

/**
 * A direct high-quality resize of the original to `width`: a full decode (no shrink-on-load at
 * all), then one lanczos3 resize of those pixels, sRGB; with `flatten`, flattened onto white (the
 * SSIM reference). `full` can be passed to reuse a full decode across widths.
 */
export async function directResize(
  original: Buffer,
  info: ImageSize,
  width: number,
  config: Config,
  options: { flatten: boolean; full?: Pixels },
): Promise<Pixels> {
  const full = options.full ?? (await fullDecode(original, config));
  let pipeline = readPixels(full);
  if (width !== full.width)
    pipeline = pipeline.resize(width, heightForWidth(width, info), { fit: 'fill', kernel: KERNEL });
  if (options.flatten) pipeline = pipeline.flatten({ background: WHITE });
  return toPixels(pipeline);
}

/** The original fully decoded to oriented sRGB pixels. */
export function fullDecode(original: Buffer, config: Config): Promise<Pixels> {
  return toPixels(sharp(original, inputOptions(config)).rotate().toColourspace('srgb'));
}

/** Decodes an encoded output to sRGB pixels flattened onto white, for SSIM. */
export async function decodeFlattened(encoded: Buffer): Promise<Pixels> {
  return toPixels(sharp(encoded).toColourspace('srgb').flatten({ background: WHITE }));
}

/** The variants of a configuration for an image (every target width × every format). */
export function variantsFor(info: ImageSize, config: Config): VariantSpec[] {
  return planVariants(info, config);
}

/** Result of {@link checkEncoderParity}. */
export interface ParityResult {
  identical: boolean;
  checked: number;
  mismatches: string[];
}

/**
 * Proves that the bench's encoders are render.ts's: for each original and format, renderVariants
 * on one variant must write the same bytes as the bench's decode-to-width pipeline followed by
 * {@link encodePixels}, which is what the anchor and floor use.
 */
export async function checkEncoderParity(
  originals: ReadonlyArray<{ name: string; data: Buffer }>,
  config: Config,
): Promise<ParityResult> {
  const encoders = encoderSettingsFromConfig(config);
  const mismatches: string[] = [];
  let checked = 0;
  for (const { name, data } of originals) {
    const metadata = await sharp(data).metadata();
    const info = metadata.autoOrient;
    const width = Math.max(1, Math.floor(info.width * 0.75));
    let pixels = await toPixels(
      sharp(data, inputOptions(config))
        .rotate()
        .resize(width, heightForWidth(width, info), { fit: 'fill', kernel: KERNEL })
        .toColourspace('srgb'),
    );
    if (await alphaIsOpaque(pixels)) pixels = await removeAlpha(pixels);
    for (const format of config.FORMATS) {
      const [ours] = await renderAll(data, [{ width, format }], renderOptionsFrom(config));
      const bench = await encodePixels(pixels, format, encoders);
      checked++;
      if (!ours?.data.equals(bench))
        mismatches.push(`${name} ${format} ${width}px: ours ${ours?.data.length ?? 0} B, bench ${bench.length} B`);
    }
  }
  return { identical: mismatches.length === 0, checked, mismatches };
}
