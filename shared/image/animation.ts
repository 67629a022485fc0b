/**
 * Animated input kept animated (ANIMATION=keep): which variants are animated, the bound on an
 * animation's pixels, and rendering them. Only WebP variants are: sharp 0.35.5 writes an animated
 * input as AVIF by stacking every frame into one tall still image (measured: a 12-frame 160×120
 * GIF came out as one 160×1440 AVIF), so AVIF and JPEG variants stay the first frame, cut by the
 * ordinary cascade (render.ts). Numbers: docs/performance.md, "Animation".
 */
import sharp from 'sharp';
import type { AnimationMode, OutputFormat } from '../core/domain.js';
import { permanent } from '../core/errors.js';
import { CONTENT_TYPES } from '../core/naming.js';
import type { VariantSpec } from '../core/schemas.js';
import { assertBeforeDeadline, type DecodeOptions, KERNEL, sharpTimeoutSeconds, toPipelineError } from './decode.js';
import type { EncodeOptions } from './encode.js';
import { heightForWidth } from './plan.js';
import { type Placeholder, placeholderOf } from './placeholder.js';
import type { RenderedVariant, RenderOptions, StageTiming } from './render.js';

/** Input formats whose frames are an animation (a multi-page TIFF is a document, not one). */
const ANIMATED_INPUTS: ReadonlySet<string> = new Set(['gif', 'webp']);

/** Output formats that carry an animation here; see the module comment for AVIF. */
export const ANIMATED_OUTPUTS: ReadonlySet<OutputFormat> = new Set(['webp']);

/** Whether an original (as the probe described it) is an animation that ANIMATION=keep animates. */
export function isAnimation(info: { format: string; frames?: number | undefined }): boolean {
  return ANIMATED_INPUTS.has(info.format) && (info.frames ?? 1) > 1;
}

/**
 * The frames an accepted original records (OriginalInfo `frames`), which is what lets the plan
 * animate it: an animation's frame count, unless its EXIF orientation is not 1. sharp turns
 * multi-page images by 180° only, and a flip of the page strip would reverse the frames, so an
 * animated WebP that EXIF turns or mirrors (GIF has no EXIF) stays a still, upright.
 */
export function animationFrames(probe: { format: string; frames: number; orientation: number }): number | undefined {
  return isAnimation(probe) && probe.orientation === 1 ? probe.frames : undefined;
}

/**
 * The plan's variants with the animated ones marked: with `keep`, an animation's uncropped
 * variants in a format that carries animation. Aspect crops stay the first frame: a crop is art
 * direction for a still layout, and it keeps one decode's cascade for them.
 */
export function markAnimated<T extends VariantSpec>(
  variants: readonly T[],
  info: { format?: string; frames?: number | undefined },
  mode: AnimationMode | undefined,
): T[] {
  if (mode !== 'keep' || info.format === undefined || !isAnimation({ format: info.format, frames: info.frames }))
    return [...variants];
  return variants.map((v) => (v.aspect === undefined && ANIMATED_OUTPUTS.has(v.format) ? { ...v, animated: true } : v));
}

/**
 * Refuses an animation whose frames together exceed `maxPixels` (MAX_INPUT_PIXELS), before any
 * decode: animated variants are decoded with every frame, so an animation is bounded like one
 * still image of that many pixels (the same memory), not per frame.
 */
export function assertAnimationFits(
  header: { width: number; height: number; frames: number },
  maxPixels: number,
): void {
  const { width, height, frames } = header;
  if (width * height * frames <= maxPixels) return;
  throw permanent(
    'too_many_pixels',
    `The animation is ${frames} frames of ${width}×${height} pixels, more than the limit of ${maxPixels.toLocaleString('en-US')} pixels for all its frames together.`,
    { width, height, frames, maxPixels },
  );
}

/**
 * One animated variant, decoded from the original with every frame and encoded as animated WebP
 * (sharp keeps each frame's delay and the loop count). Each width decodes the original again: a
 * cascade of animated levels has no cheap form in sharp (a raw page strip loses its pages), and
 * the decode is 0.03–0.04 s of a 0.4 s full-width variant (docs/performance.md, "Animation").
 */
export async function encodeAnimated(
  original: Buffer,
  width: number,
  height: number,
  options: Pick<DecodeOptions, 'limitInputPixels' | 'deadline'> & EncodeOptions,
): Promise<Buffer> {
  let pipeline = sharp(original, { animated: true, limitInputPixels: options.limitInputPixels, failOn: 'error' })
    .timeout({ seconds: sharpTimeoutSeconds(options.deadline) })
    .resize(width, height, { fit: 'fill', kernel: KERNEL });
  if (options.keepMetadata) pipeline = pipeline.withMetadata();
  const { quality, effort } = options.encoders.webp;
  return pipeline.webp({ quality, effort }).toBuffer();
}

/** The placeholder of an animated variant: its first frame's. */
export function firstFramePlaceholder(original: Buffer, width: number, height: number): Promise<Placeholder> {
  return placeholderOf(sharp(original, { animated: false }).resize(width, height, { fit: 'fill', kernel: KERNEL }));
}

/**
 * Renders a job's animated variants (render.ts hands them over after its cascade), each handed to
 * `emit` as soon as it is encoded; `time` records its encode in the job's stage timings.
 */
export async function renderAnimated(
  original: Buffer,
  specs: readonly VariantSpec[],
  source: { width: number; height: number },
  options: RenderOptions,
  emit: (variant: RenderedVariant) => Promise<void>,
  time: <T>(stage: Omit<StageTiming, 'ms'>, work: () => Promise<T>) => Promise<T>,
): Promise<number> {
  const fail = (error: unknown): never => {
    throw toPipelineError(error, 'image_failed');
  };
  for (const { width, format } of specs) {
    assertBeforeDeadline(options.deadline);
    const height = heightForWidth(width, source);
    const data = await time({ stage: 'encode', width, format }, () =>
      encodeAnimated(original, width, height, options),
    ).catch(fail);
    const wanted = options.placeholderFor;
    const placeholder =
      wanted?.width === width && wanted.format === format
        ? await firstFramePlaceholder(original, width, height).catch(fail)
        : undefined;
    await emit({
      width,
      height,
      format,
      contentType: CONTENT_TYPES[format],
      data,
      quality: options.encoders[format].quality,
      animated: true,
      ...(placeholder ? { placeholder } : {}),
    });
  }
  return specs.length;
}
