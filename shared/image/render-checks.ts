/**
 * The checks of a job's variants against its image that need only the header, made before the
 * decode so that a malformed job fails cheaply (render.ts): format limits, and each aspect
 * variant's crop grouped by the cascade level it is cut from.
 */
import type { OutputFormat } from '../core/domain.js';
import { type PipelineError, permanent } from '../core/errors.js';
import type { CropRect, VariantSpec } from '../core/schemas.js';
import { FORMAT_LIMITS, fitsFormat, heightForWidth } from './plan.js';

export function formatLimitError(width: number, height: number, format: OutputFormat): PipelineError {
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
export interface CroppedWidth {
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
export function planCroppedVariants(
  variants: readonly VariantSpec[],
  source: { width: number; height: number },
  options: { readonly crops?: Readonly<Record<string, CropRect>> | undefined },
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
