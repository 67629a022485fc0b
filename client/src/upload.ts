/**
 * {@link upload}: one image to the pipeline, by `POST /uploads` or, for large files (or when the
 * server answers 413), by a V4 signed URL straight to the uploads bucket (docs/signed-urls.md).
 */
import type { BackoffOptions } from './backoff.js';
import { sniffContentType } from './content-type.js';
import { ApiError, errorFromResponse } from './errors.js';
import { type ApiOptions, apiUrl, authHeaders, json, send } from './http.js';
import { pollUntil } from './status.js';
import { type TransferProgress, transfer } from './transfer.js';
import type { FinishedVariant, Manifest, ProcessingStatus, ReadyStatus, UploadStatus } from './types.js';

const MiB = 1024 * 1024;

/**
 * Above this many bytes {@link upload} uses a signed URL: a little under the server's default
 * `MAX_UPLOAD_BYTES` (25 MiB), so that multipart overhead never tips a direct upload into a 413.
 */
export const DEFAULT_SIGNED_URL_ABOVE = 20 * MiB;

/** What can be uploaded: a `File` (its name and type are used), any `Blob`, or bytes. */
export type UploadSource = Blob | ArrayBuffer | Uint8Array;

/** Options of {@link upload}. */
export interface UploadOptions extends ApiOptions, BackoffOptions {
  /** The file name the manifest records; default: the `File`'s name, else `upload`. */
  readonly filename?: string | undefined;
  /** Default: the `Blob`'s type, else sniffed from the first bytes (a signed URL is bound to it). */
  readonly contentType?: string | undefined;
  /** A focal point (0–1 each) that aspect crops centre on; direct uploads only (`?focus=x,y`). */
  readonly focus?: { readonly x: number; readonly y: number } | undefined;
  /**
   * Per-upload metadata, sent as the multipart field `metadata` (JSON text) or the signed-URL
   * body's `metadata`. Only when given, and only for a server with per-upload metadata (issue 22).
   */
  readonly metadata?: Readonly<Record<string, unknown>> | undefined;
  /** Bytes sent so far (XMLHttpRequest in browsers; in Node, once, when the body is sent). */
  readonly onProgress?: ((progress: TransferProgress) => void) | undefined;
  /** Files larger than this go by signed URL (default {@link DEFAULT_SIGNED_URL_ABOVE}). */
  readonly signedUrlAbove?: number | undefined;
  /** How long a signed upload waits for ingest to take the object (default 120 000 ms). */
  readonly ingestTimeoutMs?: number | undefined;
}

/** What {@link upload} resolves with: the upload's id, and the manifest when the image was already made. */
export interface UploadResult {
  /** The upload's id, for {@link waitUntilReady}, `deleteUpload` and `GET /uploads/{id}`. */
  readonly id: string;
  /** The image's content id (equal to `id` on servers without per-upload ids). */
  readonly imageId: string;
  readonly status: 'ready' | 'processing';
  /** Present when `status` is `ready` (the same bytes were already processed with this recipe). */
  readonly manifest?: Manifest | undefined;
  /** How the bytes went: `direct` (`POST /uploads`) or `signed-url`. */
  readonly via: 'direct' | 'signed-url';
  /** The image's first variant, already final, when the server made it before answering (PREVIEW=inline). */
  readonly preview?: FinishedVariant | undefined;
}

/**
 * Uploads one image and resolves once the pipeline has accepted it (for a signed URL: once ingest
 * has taken the object, so that the id is known). Errors are {@link ApiError}s: 415 `not_an_image`,
 * 422 `too_many_pixels`, 429 `quota_exceeded` (with `retryAfterMs`), 503 (retryable)…
 */
export async function upload(source: UploadSource, options: UploadOptions): Promise<UploadResult> {
  const blob = source instanceof Blob ? source : new Blob([source as BlobPart]);
  const filename = options.filename ?? fileNameOf(source) ?? 'upload';
  const contentType =
    options.contentType || blob.type || sniffContentType(new Uint8Array(await blob.slice(0, 32).arrayBuffer()));
  if (blob.size > (options.signedUrlAbove ?? DEFAULT_SIGNED_URL_ABOVE))
    return uploadBySignedUrl(blob, filename, contentType, options);
  try {
    return await uploadDirect(blob, filename, options);
  } catch (error) {
    // The server's MAX_UPLOAD_BYTES is lower than the threshold: the bucket takes larger files.
    if (error instanceof ApiError && error.code === 'payload_too_large' && !options.signal?.aborted)
      return uploadBySignedUrl(blob, filename, contentType, options);
    throw error;
  }
}

function fileNameOf(source: UploadSource): string | undefined {
  const name = (source as { name?: unknown }).name;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** An accepted upload's answer as the server sends it (`imageId` only with per-upload ids). */
type AcceptedBody = {
  id: string;
  imageId?: string;
  status: 'ready' | 'processing';
  manifest?: Manifest;
  preview?: FinishedVariant;
};

async function uploadDirect(blob: Blob, filename: string, options: UploadOptions): Promise<UploadResult> {
  const form = new FormData();
  form.append('file', blob, filename);
  if (options.metadata) form.append('metadata', JSON.stringify(options.metadata));
  const query = options.focus ? `?focus=${options.focus.x},${options.focus.y}` : '';
  const response = await transfer(
    {
      method: 'POST',
      url: apiUrl(options, query),
      headers: { Accept: 'application/json', ...authHeaders(options) },
      body: form,
      size: blob.size,
    },
    options,
    options.onProgress,
  );
  if (response.status !== 200 && response.status !== 202) throw await errorFromResponse(response);
  return accepted(await json<AcceptedBody>(response), 'direct');
}

function accepted(body: AcceptedBody, via: UploadResult['via']): UploadResult {
  return {
    id: body.id,
    imageId: body.imageId ?? body.id,
    status: body.status,
    ...(body.status === 'ready' ? { manifest: body.manifest } : {}),
    ...(body.preview ? { preview: body.preview } : {}),
    via,
  };
}

/** `POST /uploads/signed-url`'s 201. */
interface SignedUrl {
  readonly uploadUrl: string;
  readonly method: string;
  readonly headers: Record<string, string>;
  readonly statusUrl: string;
  readonly ticket: string;
}

async function uploadBySignedUrl(
  blob: Blob,
  filename: string,
  contentType: string | undefined,
  options: UploadOptions,
): Promise<UploadResult> {
  if (!contentType)
    throw new ApiError({
      status: 0,
      code: 'unknown_content_type',
      message: 'The file is not a recognised image type; pass contentType to upload it by signed URL.',
      retryable: false,
    });
  const signed = await json<SignedUrl>(
    await send(
      options,
      apiUrl(options, '/signed-url'),
      {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
          filename,
          contentType,
          size: blob.size,
          ...(options.metadata ? { metadata: options.metadata } : {}),
        }),
      },
      [201],
    ),
  );
  // Exactly the signed headers, and no Authorization: the URL is the credential.
  const put = await transfer(
    { method: signed.method, url: signed.uploadUrl, headers: signed.headers, body: blob, size: blob.size },
    options,
    options.onProgress,
  );
  if (!put.ok) {
    const text = await put.text().catch(() => '');
    throw new ApiError({
      status: put.status,
      code: 'upload_failed',
      message: `Cloud Storage refused the upload (${put.status}): ${text.slice(0, 300)}`,
      retryable: put.status === 429 || put.status >= 500,
    });
  }
  const status = await pollUntil(
    signed.statusUrl,
    { ...options, timeoutMs: options.ingestTimeoutMs ?? 120_000, onProgress: undefined },
    (s: UploadStatus): s is ReadyStatus | ProcessingStatus => s.status !== 'waiting',
  );
  return accepted(status, 'signed-url');
}
