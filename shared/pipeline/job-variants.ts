/**
 * What a job records of its variants and how the fan-in turns those records into the manifest:
 * the variants still to make, a variant's facts read back from its object, and the manifest of a
 * finished dispatch (built from the image document's records, with no object listing).
 */
import { buildManifest, type VariantObject } from '../image/manifest.js';
import { parseCropMetadata } from '../image/crop.js';
import { parsePlaceholderMetadata } from '../image/placeholder.js';
import type { JobMessage, Manifest, OmittedVariant, VariantSpec } from '../core/schemas.js';
import { VARIANT_METADATA, omittedVariantName, variantName } from '../core/naming.js';
import type { metadataOrUndefined } from '../cloud/objects.js';
import type { ImageDoc, VariantFacts } from '../state/image-doc.js';

/** A planned variant's object name. */
export const nameOf = (id: string, spec: Pick<VariantSpec, 'width' | 'format' | 'aspect' | 'animated'>) =>
  variantName(id, spec.width, spec.format, spec.aspect, spec.animated);
/** The name a planned variant is recorded under when it is left out. */
export const omittedNameOf = (id: string, spec: Pick<VariantSpec, 'width' | 'format' | 'aspect' | 'animated'>) =>
  omittedVariantName(id, spec.width, spec.format, spec.aspect, spec.animated);

/** The job's variants its image's document does not record yet (written or left out). */
export function variantsToMake(job: JobMessage, doc: Pick<ImageDoc, 'variants'>): VariantSpec[] {
  const recorded = new Set(doc.variants.map((v) => v.name));
  return job.variants.filter(
    (spec) => !recorded.has(nameOf(job.imageId, spec)) && !recorded.has(omittedNameOf(job.imageId, spec)),
  );
}

/** A variant's facts from its object's metadata (an object another delivery wrote first). */
export function factsOfObject(
  name: string,
  metadata: NonNullable<Awaited<ReturnType<typeof metadataOrUndefined>>>,
): VariantFacts | undefined {
  const custom = metadata.metadata ?? {};
  const width = Number(custom[VARIANT_METADATA.width]);
  const height = Number(custom[VARIANT_METADATA.height]);
  if (!Number.isInteger(width) || !Number.isInteger(height)) return undefined;
  const crop = parseCropMetadata(custom[VARIANT_METADATA.crop]);
  const placeholder = parsePlaceholderMetadata(custom[VARIANT_METADATA.placeholder]);
  const quality = Number(custom[VARIANT_METADATA.quality]);
  return {
    name,
    width,
    height,
    bytes: Number(metadata.size ?? 0),
    cpuMs: Number(custom[VARIANT_METADATA.cpuMs]) || 0,
    ...(crop ? { crop } : {}),
    ...(placeholder ? { placeholder } : {}),
    ...(Number.isInteger(quality) && quality >= 1 && quality <= 100 ? { quality } : {}),
  };
}

/**
 * The manifest of a finished dispatch, from the variants its document records: the plan's
 * variants where they were written, and `omitted` for the rest (format limits, or larger than
 * the original).
 */
export function manifestFor(job: JobMessage, baseUrl: string) {
  return (doc: ImageDoc, variants: readonly VariantFacts[], now: Date): Manifest => {
    const byName = new Map(variants.map((v) => [v.name, v]));
    const written = job.plan.filter((spec) => byName.has(nameOf(job.imageId, spec)));
    const leftOut: OmittedVariant[] = job.plan.flatMap((spec) => {
      const facts = byName.get(omittedNameOf(job.imageId, spec));
      if (!facts?.omitted || byName.has(nameOf(job.imageId, spec))) return [];
      const { width, format, aspect } = spec;
      return [
        {
          width,
          height: facts.height,
          format,
          ...(aspect ? { aspect } : {}),
          reason: facts.omitted,
          bytes: facts.bytes,
        },
      ];
    });
    const objects = new Map<string, VariantObject>(
      variants
        .filter((v) => !v.omitted)
        .map((v) => [
          v.name,
          {
            name: v.name,
            bytes: v.bytes,
            width: v.width,
            height: v.height,
            ...(v.crop ? { crop: v.crop } : {}),
            ...(v.placeholder ? { placeholder: v.placeholder } : {}),
            ...(v.quality !== undefined ? { quality: v.quality } : {}),
          },
        ]),
    );
    const omitted = [...(job.omitted ?? []), ...leftOut];
    const built = buildManifest({
      id: job.imageId,
      original: { ...job.info, name: job.original.name, generation: job.original.generation },
      plan: written,
      ...(omitted.length > 0 ? { omitted } : {}),
      objects,
      baseUrl,
      now,
      ...(job.recipe ? { recipe: job.recipe } : {}),
    });
    const planned = new Set(job.plan.flatMap((spec) => [nameOf(job.imageId, spec), omittedNameOf(job.imageId, spec)]));
    const cpuMs = variants.filter((v) => planned.has(v.name)).reduce((sum, v) => sum + v.cpuMs, 0);
    const acceptedAt = job.acceptedAt ? new Date(job.acceptedAt) : doc.acceptedAt;
    return {
      ...built,
      processing: {
        uploadToReadyMs: Math.max(0, now.getTime() - acceptedAt.getTime()),
        cpuSeconds: Math.round(cpuMs) / 1000,
      },
    };
  };
}
