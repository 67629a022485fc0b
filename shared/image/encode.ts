/**
 * The encoders: settings per output format (from configuration), sharp's process-wide knobs, and
 * encoding one variant from a level, AVIF within the time budget (encode-time.ts).
 */
import sharp, { type Sharp } from 'sharp';
import type { Config } from '../core/config.js';
import type { OutputFormat } from '../core/domain.js';
import { permanent } from '../core/errors.js';
import { type Level, readLevel, sharpTimeoutSeconds } from './decode.js';
import { AvifEncodeTimeModel } from './encode-time.js';

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

/** How a variant is encoded. */
export interface EncodeOptions {
  encoders: EncoderSettings;
  /** Keep EXIF/XMP/IPTC (with an sRGB ICC profile); otherwise every output is stripped. */
  keepMetadata: boolean;
  /** Epoch milliseconds: an AVIF encode predicted to end past it is not started (it cannot be interrupted). */
  deadline?: number;
  /** The AVIF encode-time model to consult and teach; this process's own by default. */
  avifEncodeTimes?: AvifEncodeTimeModel;
}

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

/** What this process has learned about its own AVIF encode speed (see encode-time.ts). */
const processAvifEncodeTimes = new AvifEncodeTimeModel();

/**
 * Encodes AVIF unless the encode is predicted to end past the deadline: once started it cannot be
 * stopped (encode-time.ts), so an encode that would overrun is refused before it starts.
 */
async function encodeAvifWithinDeadline(level: Level, pipeline: Sharp, options: EncodeOptions): Promise<Buffer> {
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
export async function encode(level: Level, format: OutputFormat, options: EncodeOptions): Promise<Buffer> {
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

/** `encoders` with one format's quality replaced. */
export function withQuality(encoders: EncoderSettings, format: OutputFormat, quality: number): EncoderSettings {
  return { ...encoders, [format]: { ...encoders[format], quality } };
}
