/**
 * The upload API's answer bodies as zod schemas: the one place that says what each answer holds.
 * The handlers build their answers typed by these (`satisfies`, so a field added in one place and
 * not the other is a compile error) without parsing them at run time; shared/http/openapi.ts
 * publishes them as the OpenAPI document's components, and the e2e tests validate real answers
 * against that document.
 */
import { UploadMetadata } from '../core/metadata.js';
import { z } from 'zod';
import { OUTPUT_FORMATS } from '../core/domain.js';
import { ERROR_CODES, type ErrorBody, type ErrorCode } from '../core/errors.js';
import { Aspect, AssetId, ImageId, ManifestV1 } from '../core/schemas.js';
import { MAX_LIST_LIMIT } from '../state/assets.js';
import { IMAGE_STATUSES } from '../state/image-doc.js';

/** Every error code of {@link ERROR_CODES}. */
export const ErrorCodeSchema = z.enum(Object.keys(ERROR_CODES) as [ErrorCode, ...ErrorCode[]]);

/** `{error: {code, message, retryable, details?}}`: every error answer. */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: ErrorCodeSchema,
    message: z.string(),
    /** True when the same request may succeed later (503); false when only a different one can. */
    retryable: z.boolean(),
    /** Facts safe to show a client: limits, sizes, `reason`, `retryAfterSeconds`, `cause`... */
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});

/** A ticket id of a signed-URL upload (naming.ts TICKET_PATTERN). */
export const TicketId = z.string().regex(/^\d{10}-[0-9a-f]{24}$/);

/** The colour and ThumbHash to show while an image loads (the manifest's `placeholder`). */
export const PlaceholderSchema = ManifestV1.shape.placeholder.unwrap();

/** A variant `POST /uploads` queued: `name` is its object, final once written. */
export const QueuedVariantSchema = z.object({
  width: z.number().int().positive(),
  format: z.enum(OUTPUT_FORMATS),
  aspect: Aspect.optional(),
  animated: z.literal(true).optional(),
  name: z.string(),
});

/** A written variant of an image still processing: its object is final (immutable URL). */
export const FinishedVariantSchema = z.object({
  url: z.string(),
  width: z.number().int().positive(),
  height: z.number().int().positive(),
  format: z.enum(OUTPUT_FORMATS),
  aspect: Aspect.optional(),
  /** An animated WebP (ANIMATION=keep). */
  animated: z.literal(true).optional(),
});

/**
 * `POST /uploads` 202: the upload is the caller's, its image is being made; `preview`, when the
 * upload made the image's first variant before answering (PREVIEW=inline), is final already.
 */
export const UploadProcessingSchema = z.object({
  id: AssetId,
  imageId: ImageId,
  status: z.literal('processing'),
  statusUrl: z.string(),
  variants: z.array(QueuedVariantSchema),
  preview: FinishedVariantSchema.optional(),
});

/** `POST /uploads` 200: the same image was already done with the deployed recipe. */
export const UploadReadySchema = z.object({
  id: AssetId,
  imageId: ImageId,
  status: z.literal('ready'),
  manifest: ManifestV1,
});

/** What `GET /uploads/{id}` adds about the upload itself. */
const assetFacts = {
  filename: z.string().optional(),
  metadata: UploadMetadata.optional(),
  createdAt: z.iso.datetime(),
};

/** `GET /uploads/{id}` 200. */
export const StatusReadySchema = UploadReadySchema.extend(assetFacts);

/** `GET /uploads/{id}` 202: `done` of `total` variants written, the `finished` ones a page can show. */
export const StatusProcessingSchema = z.object({
  id: AssetId,
  imageId: ImageId,
  status: z.literal('processing'),
  done: z.number().int().nonnegative(),
  total: z.number().int().nonnegative(),
  finished: z.array(FinishedVariantSchema),
  placeholder: PlaceholderSchema.optional(),
  statusUrl: z.string(),
  ...assetFacts,
});

/** One upload as `GET /uploads` lists it. */
export const ListedAssetSchema = z.object({
  id: AssetId,
  imageId: ImageId,
  /** The image's status (`deleted` while its deletion finishes); `unknown` when it has no document. */
  status: z.enum([...IMAGE_STATUSES, 'unknown']),
  filename: z.string().optional(),
  metadata: UploadMetadata.optional(),
  createdAt: z.iso.datetime(),
  /** The public manifest of a ready image. */
  manifestUrl: z.string().optional(),
});

/** `GET /uploads` 200: a page of the caller's uploads, newest first; `nextCursor` when there are more. */
export const ListPageSchema = z.object({
  items: z.array(ListedAssetSchema).max(MAX_LIST_LIMIT),
  nextCursor: z.string().optional(),
});

/** `POST /uploads/signed-url` 201: `PUT uploadUrl` with exactly `headers`, before `expiresAt`. */
export const SignedUploadSchema = z.object({
  uploadUrl: z.string(),
  method: z.literal('PUT'),
  headers: z.record(z.string(), z.string()),
  expiresAt: z.iso.datetime(),
  statusUrl: z.string(),
  ticket: TicketId,
  maxBytes: z.number().int().positive(),
});

/** `GET /uploads/signed-url/{ticket}` 202 until ingest has taken the object. */
export const TicketWaitingSchema = z.object({ ticket: TicketId, status: z.literal('waiting') });

/** `GET /healthz` 200. */
export const HealthSchema = z.object({ status: z.literal('ok') });

/** The answer types the handlers build. */
export type UploadProcessingBody = z.infer<typeof UploadProcessingSchema>;
export type UploadReadyBody = z.infer<typeof UploadReadySchema>;
export type StatusReadyBody = z.infer<typeof StatusReadySchema>;
export type StatusProcessingBody = z.infer<typeof StatusProcessingSchema>;
export type FinishedVariant = z.infer<typeof FinishedVariantSchema>;
export type ListedAsset = z.infer<typeof ListedAssetSchema>;
export type ListPageBody = z.infer<typeof ListPageSchema>;
export type SignedUploadBody = z.infer<typeof SignedUploadSchema>;
export type TicketWaitingBody = z.infer<typeof TicketWaitingSchema>;
export type HealthBody = z.infer<typeof HealthSchema>;
export type ErrorBodyShape = z.infer<typeof ErrorBodySchema>;

/**
 * core/errors.ts builds every error body as its {@link ErrorBody} (core cannot import this layer);
 * this is that body checked against the schema: it fails to compile when the two drift apart.
 */
export function errorAnswer(body: ErrorBody): ErrorBodyShape {
  return body;
}
