/**
 * Versioned schemas of everything the pipeline writes as JSON: jobs on the jobs topic, events on
 * the events topic, the manifest and the failure record, and the ids they carry. Every message is validated on receipt; a message that
 * does not parse is a permanent failure (acknowledged and logged, never retried).
 */
import { z } from 'zod';
import { UploadMetadata } from './metadata.js';
import { permanent } from './errors.js';
import { RecipeV1 } from './recipe.js';
import { OUTPUT_FORMATS } from './domain.js';

/** An image id: the first 32 hex digits of the SHA-256 of the original's bytes (and focal point, naming.ts imageIdOf). */
export const ImageId = z.string().regex(/^[0-9a-f]{32}$/, { message: 'must be 32 lowercase hex digits' });

/** An asset id: an owner's upload of an image (naming.ts assetIdOf), 32 lowercase hex digits. */
export const AssetId = z.string().regex(/^[0-9a-f]{32}$/, { message: 'must be 32 lowercase hex digits' });

/** An aspect ratio as configured in `ASPECTS`, e.g. `16:9`. */
export const Aspect = z.string().regex(/^[1-9]\d*:[1-9]\d*$/, { message: 'must be W:H, e.g. 16:9' });

/** One output: a width (px, after orientation) and a format; with `aspect`, of that aspect's crop. */
export const VariantSpec = z.object({
  width: z.number().int().min(1).max(65535),
  format: z.enum(OUTPUT_FORMATS),
  /** Absent for the uncropped image; otherwise the aspect whose crop ({@link OriginalInfo} `crops`) this is. */
  aspect: Aspect.optional(),
  /** An animated WebP of every frame (ANIMATION=keep, an animated original); absent: one frame. */
  animated: z.literal(true).optional(),
});
/** One output: a width and a format. */
export type VariantSpec = z.infer<typeof VariantSpec>;

/** Where the original is, pinned to the generation the job was planned from. */
export const OriginalRef = z.object({
  bucket: z.string().min(3),
  name: z.string().min(1),
  generation: z.string().regex(/^\d+$/, { message: 'must be a decimal generation number' }),
});
/** Where the original is, pinned to a generation. */
export type OriginalRef = z.infer<typeof OriginalRef>;

/** A rectangle of the upright original, in its pixels. */
export const CropRect = z.object({
  left: z.number().int().nonnegative(),
  top: z.number().int().nonnegative(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
});
/** A rectangle of the upright original. */
export type CropRect = z.infer<typeof CropRect>;

/** An aspect's crop, chosen once per image at accept time: the rectangle and what placed it. */
export const AspectCrop = CropRect.extend({
  /** `focus` when the uploader gave a focal point, otherwise the `CROP_STRATEGY` used. */
  by: z.enum(['attention', 'entropy', 'centre', 'focus']),
});
/** An aspect's crop and what placed it. */
export type AspectCrop = z.infer<typeof AspectCrop>;

/** Facts about the original, from the header probe (dimensions are after EXIF orientation). */
export const OriginalInfo = z.object({
  format: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  bytes: z.number().int().nonnegative(),
  contentType: z.string(),
  /** Frames of an animated GIF or WebP (more than 1); absent for still images and in older records. */
  frames: z.number().int().min(2).optional(),
  /** Per configured aspect, its crop (absent when `ASPECTS` was empty at accept time). */
  crops: z.record(Aspect, AspectCrop).optional(),
});
/** Facts about the original. */
export type OriginalInfo = z.infer<typeof OriginalInfo>;

/**
 * A configured width × format pair that was not made, with the size it would have had: it would
 * exceed the format's maximum dimensions (left out at plan time, docs/format-limits.md), or it
 * encoded larger than the original file (left out at render time, docs/api.md).
 */
export const OmittedVariant = z.object({
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  format: z.enum(OUTPUT_FORMATS),
  /** The aspect, for a pair of an aspect's crop. */
  aspect: Aspect.optional(),
  /** Why, machine-readable: `exceeds_format_limit` or `larger_than_original` (readers accept others). */
  reason: z.string(),
  /** For `larger_than_original`: the encoded size in bytes (more than `original.bytes`). */
  bytes: z.number().int().nonnegative().optional(),
});
/** A width × format pair left out of the plan, and why. */
export type OmittedVariant = z.infer<typeof OmittedVariant>;

/**
 * A resize job, version 1: some of an image's variants, plus the full plan so that any job can
 * decide the fan-in ("are all variants there?") without reading config that may have changed.
 */
export const JobMessageV1 = z.object({
  v: z.literal(1),
  kind: z.literal('resize'),
  imageId: ImageId,
  original: OriginalRef,
  info: OriginalInfo,
  /** Index of this job in the plan, 0-based, and the plan's job count. */
  job: z.object({ index: z.number().int().nonnegative(), count: z.number().int().positive() }),
  /** The variants this job makes. */
  variants: z.array(VariantSpec).min(1),
  /** Every variant of the image (all jobs), for the fan-in check and the manifest. */
  plan: z.array(VariantSpec).min(1),
  /** Configured pairs the plan left out for the format's limits, for the manifest (absent: none). */
  omitted: z.array(OmittedVariant).optional(),
  /** How many times cleanup has re-dispatched this image (0 for the first dispatch). */
  dispatch: z.number().int().nonnegative().default(0),
  /** The recipe the plan was made with (absent in jobs from before recipes: the deployed one). */
  recipe: RecipeV1.optional(),
  /**
   * Present on update jobs: the recipe hash of the ready manifest they bring up to date
   * (docs/state.md, "Updates").
   */
  replaces: z.string().optional(),
  createdAt: z.iso.datetime(),
  /** When the image was accepted (upload or ingest), for upload→ready; absent in older jobs. */
  acceptedAt: z.iso.datetime().optional(),
});
/** A resize job, version 1. */
export type JobMessage = z.infer<typeof JobMessageV1>;

/** A variant as the manifest lists it. */
export const ManifestVariant = z.object({
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  format: z.enum(OUTPUT_FORMATS),
  contentType: z.string(),
  bytes: z.number().int().nonnegative(),
  name: z.string(),
  url: z.string(),
  /**
   * `true` on an animated WebP (ANIMATION=keep): every frame of the original (`original.frames`),
   * its delays and loop count; absent: a still image (the first frame of an animation).
   */
  animated: z.literal(true).optional(),
});
/** A variant as the manifest lists it. */
export type ManifestVariant = z.infer<typeof ManifestVariant>;

/** A variant of an aspect's crop, with the crop rectangle (original pixels) its job rendered from. */
export const AspectVariant = ManifestVariant.extend({ crop: CropRect });
/** A variant of an aspect's crop. */
export type AspectVariant = z.infer<typeof AspectVariant>;

/**
 * Ready-made `srcset` values per format (`url 320w, url 640w`, widths ascending), one for each
 * format that has variants; absent in older manifests.
 */
export const SrcsetByFormat = z.partialRecord(z.enum(OUTPUT_FORMATS), z.string().min(1));
/** Ready-made `srcset` values per format. */
export type SrcsetByFormat = z.infer<typeof SrcsetByFormat>;

/** One aspect in the manifest: its crop, and its variants in the same order as `variants`. */
export const ManifestAspect = z.object({
  crop: AspectCrop,
  formats: z.array(z.enum(OUTPUT_FORMATS)),
  variants: z.array(AspectVariant),
  /** The crop's variants as `srcset` values per format; absent in older manifests. */
  srcset: SrcsetByFormat.optional(),
});
/** One aspect in the manifest. */
export type ManifestAspect = z.infer<typeof ManifestAspect>;

/** `{id}/manifest.json`, version 1: everything a page needs to build `<picture>`/`srcset`. */
export const ManifestV1 = z.object({
  v: z.literal(1),
  id: ImageId,
  original: OriginalInfo.extend({ name: z.string(), generation: z.string() }),
  /** Formats in preference order (best compression first), for `<source>` order. */
  formats: z.array(z.enum(OUTPUT_FORMATS)),
  variants: z.array(ManifestVariant),
  /** The uncropped variants as `srcset` values per format, for `<source srcset>`; absent in older manifests. */
  srcset: SrcsetByFormat.optional(),
  /** Configured pairs left out for the format's limits; absent when none were (and in older manifests). */
  omitted: z.array(OmittedVariant).optional(),
  /** What the variants were made with, and its hash; absent in manifests from before recipes. */
  recipe: RecipeV1.optional(),
  /** Cropped aspects (`ASPECTS`) with variants, keyed by aspect; absent when none. */
  aspects: z.record(Aspect, ManifestAspect).optional(),
  /**
   * The encoder quality each format's variants were made with (QUALITY_MODE fixed or auto;
   * docs/auto-quality.md); absent in older manifests.
   */
  qualities: z.partialRecord(z.enum(OUTPUT_FORMATS), z.number().int().min(1).max(100)).optional(),
  /** Dominant colour and ThumbHash to show while the `<picture>` loads (docs/api.md); absent in older manifests. */
  placeholder: z.object({ color: z.string().regex(/^#[0-9a-f]{6}$/), thumbhash: z.string().min(1) }).optional(),
  createdAt: z.iso.datetime(),
  /**
   * What making the image cost, as the fan-in saw it (docs/observability.md): upload→ready
   * milliseconds (absent for jobs without `acceptedAt`) and the jobs' CPU-seconds. Absent in older manifests.
   */
  processing: z
    .object({ uploadToReadyMs: z.number().nonnegative().optional(), cpuSeconds: z.number().nonnegative() })
    .optional(),
});
/** `{id}/manifest.json`. */
export type Manifest = z.infer<typeof ManifestV1>;

/** `{id}/error.json`, version 1: why an image failed for good. */
export const FailureRecordV1 = z.object({
  v: z.literal(1),
  id: ImageId,
  code: z.string(),
  message: z.string(),
  source: z.object({ bucket: z.string(), name: z.string() }).optional(),
  failedAt: z.iso.datetime(),
  /**
   * True when the cause is about the world (dead-lettered, gave up, out of memory, storage
   * refused...): re-submitting the same bytes clears the record. Absent in older records: false.
   */
  retryable: z.boolean().optional(),
  /** The dispatch number the failure happened in; a retry dispatches with a higher one. */
  dispatch: z.number().int().nonnegative().optional(),
});
/** `{id}/error.json`. */
export type FailureRecord = z.infer<typeof FailureRecordV1>;

/**
 * What every per-upload event carries: the upload (asset) id, its image, the owner's subject
 * (absent for the service's own uploads) and the app's metadata, so an app acts on its own record.
 */
const uploadFields = {
  v: z.literal(1),
  id: AssetId,
  imageId: ImageId,
  owner: z.string().optional(),
  metadata: UploadMetadata.optional(),
  at: z.iso.datetime(),
};

/** Events on the events topic, version 1; each type's description is when it is published (docs/api.md's table). */
export const EventMessageV1 = z.discriminatedUnion('type', [
  z
    .object({
      v: z.literal(1),
      type: z.literal('image.ready'),
      imageId: ImageId,
      manifest: z.object({ bucket: z.string(), name: z.string() }),
      variants: z.number().int().positive(),
      at: z.iso.datetime(),
    })
    .describe('the first manifest of an image'),
  z
    .object({
      v: z.literal(1),
      type: z.literal('image.failed'),
      imageId: ImageId,
      code: z.string(),
      message: z.string(),
      /** True when uploading the same bytes again retries the image (see FailureRecordV1). */
      retryable: z.boolean().optional(),
      at: z.iso.datetime(),
    })
    .describe('the image failed'),
  z
    .object({
      v: z.literal(1),
      type: z.literal('image.updated'),
      imageId: ImageId,
      manifest: z.object({ bucket: z.string(), name: z.string() }),
      variants: z.number().int().positive(),
      /** The recipe hash of the new manifest, and of the one it replaced (`none`: no recipe recorded). */
      recipe: z.string(),
      previousRecipe: z.string(),
      at: z.iso.datetime(),
    })
    .describe(
      'a new manifest replaced one made with another recipe (`previousRecipe` is `none` for manifests without a recipe)',
    ),
  z
    .object({
      v: z.literal(1),
      type: z.literal('image.preview'),
      imageId: ImageId,
      /** The first finished variant's public URL: final, its bytes never change. */
      url: z.string(),
      width: z.number().int().positive(),
      height: z.number().int().positive(),
      format: z.enum(OUTPUT_FORMATS),
      at: z.iso.datetime(),
    })
    .describe(
      'with `PREVIEW_EVENT=true`, once per image: its first variant exists (`url`, usually the smallest JPEG), before `image.ready`',
    ),
  z
    .object({
      v: z.literal(1),
      type: z.literal('image.deleted'),
      imageId: ImageId,
      at: z.iso.datetime(),
    })
    .describe("`DELETE /uploads/{id}` removed the image's last upload, and the image with it"),
  z
    .object({
      ...uploadFields,
      type: z.literal('upload.ready'),
      manifest: z.object({ bucket: z.string(), name: z.string() }),
      manifestUrl: z.url(),
      variants: z.number().int().positive(),
    })
    .describe(
      "the upload's image is ready (once per upload: when its first manifest lands, or at once for an upload of an image already made)",
    ),
  z
    .object({
      ...uploadFields,
      type: z.literal('upload.failed'),
      code: z.string(),
      message: z.string(),
      retryable: z.boolean().optional(),
    })
    .describe(
      "the upload's image failed (once per upload and failure; at once for an upload of an image that had failed for good)",
    ),
  z
    .object({
      ...uploadFields,
      type: z.literal('upload.updated'),
      manifest: z.object({ bucket: z.string(), name: z.string() }),
      manifestUrl: z.url(),
      variants: z.number().int().positive(),
      recipe: z.string(),
      previousRecipe: z.string(),
    })
    .describe("a new manifest replaced the upload's image's manifest made with another recipe"),
  z
    .object({ ...uploadFields, type: z.literal('upload.deleted') })
    .describe('`DELETE /uploads/{id}` removed the upload (its image goes with its last upload: `image.deleted`)'),
]);
/** An event on the events topic. */
export type EventMessage = z.infer<typeof EventMessageV1>;

/**
 * Parses a job from a Pub/Sub message body (bytes or string). Throws a permanent
 * `invalid_job` error that says which field was wrong.
 */
export function parseJob(data: Buffer | string | unknown): JobMessage {
  let json: unknown = data;
  if (Buffer.isBuffer(data) || typeof data === 'string') {
    try {
      json = JSON.parse(data.toString());
    } catch {
      throw permanent('invalid_job', 'Job message is not JSON.');
    }
  }
  const result = JobMessageV1.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw permanent(
      'invalid_job',
      `Job message is invalid: ${issue?.path.join('.') || '(root)'} ${issue?.message ?? 'does not match the schema'}.`,
    );
  }
  return result.data;
}

/** Serialises a message for publishing. */
export function encodeMessage(message: JobMessage | EventMessage): Buffer {
  return Buffer.from(JSON.stringify(message));
}
