/** `GET /uploads/{id}` once, and {@link waitUntilReady}: polling it with backoff until the manifest. */
import { type BackoffOptions, backoffDelay, sleep } from './backoff.js';
import { ApiError, parseRetryAfter } from './errors.js';
import { type ApiOptions, apiUrl, json, send } from './http.js';
import type { Manifest, ProcessingStatus, ReadyStatus, UploadStatus } from './types.js';

/** A status answer as the server sends it: `imageId` only on servers with per-upload ids. */
type StatusBody = UploadStatus | (Omit<ProcessingStatus, 'imageId'> & { imageId?: string });

/** Fills `imageId` from `id` for servers that answer only the image id. */
export function normalizeStatus(body: StatusBody): UploadStatus {
  if (body.status === 'waiting') return body;
  return { ...body, imageId: body.imageId ?? body.id } as UploadStatus;
}

/** Reads a status URL: 200 ready or 202 processing/waiting; anything else is an {@link ApiError}. */
export async function statusAt(
  url: string,
  options: ApiOptions,
): Promise<{ status: UploadStatus; retryAfterMs: number | undefined }> {
  const response = await send(options, url, { method: 'GET' }, [200, 202]);
  return {
    status: normalizeStatus(await json<StatusBody>(response)),
    retryAfterMs: parseRetryAfter(response.headers.get('Retry-After')),
  };
}

/** The upload's status now: ready with its manifest, or processing with progress. 404 and 422 throw. */
export async function getStatus(id: string, options: ApiOptions): Promise<UploadStatus> {
  return (await statusAt(apiUrl(options, `/${encodeURIComponent(id)}`), options)).status;
}

/** Options of {@link waitUntilReady}. */
export interface WaitOptions extends ApiOptions, BackoffOptions {
  /** Gives up after this many ms with an `ApiError` coded `timeout` (default 300 000). */
  readonly timeoutMs?: number;
  /** Called with each processing (or waiting) answer: `done`/`total`, the variants already `finished`. */
  readonly onProgress?: ((status: Exclude<UploadStatus, { status: 'ready' }>) => void) | undefined;
  /**
   * Called when a retryable failure (503, 429, no answer) is about to be waited out, with the
   * error and the wait in ms, so that a page can say it is reconnecting instead of looking stuck.
   */
  readonly onRetry?: ((error: ApiError, delayMs: number) => void) | undefined;
}

/**
 * Polls until the image is ready and returns its manifest. The delay doubles from
 * `initialDelayMs` to `maxDelayMs` with jitter, and starts over whenever the server reports more
 * variants done (work is moving, so the end is near); a `Retry-After` is never undercut. Retryable
 * errors (503, 429, no answer) are waited out within `timeoutMs`; the rest throw at once: 404
 * `not_found`, and 422 `image_failed` (polling again cannot help; upload again when `retryable`).
 */
export async function waitUntilReady(id: string, options: WaitOptions): Promise<Manifest> {
  return (await waitUntilReadyStatus(id, options)).manifest;
}

/**
 * {@link waitUntilReady}, resolving with the whole ready answer: the manifest and what belongs to
 * the upload rather than the image (`filename`, `createdAt`, `metadata`).
 */
export async function waitUntilReadyStatus(id: string, options: WaitOptions): Promise<ReadyStatus> {
  return pollUntil(apiUrl(options, `/${encodeURIComponent(id)}`), options, isReady);
}

function isReady(status: UploadStatus): status is ReadyStatus {
  return status.status === 'ready';
}

/** {@link waitUntilReady} on any status URL (an upload's `statusUrl`, a signed upload's ticket). */
export async function pollUntilReady(url: string, options: WaitOptions): Promise<Manifest> {
  return (await pollUntil(url, options, isReady)).manifest;
}

/** Polls `url` until `enough` accepts an answer, with {@link waitUntilReady}'s backoff and error rules. */
export async function pollUntil<S extends UploadStatus>(
  url: string,
  options: WaitOptions,
  enough: (status: UploadStatus) => status is S,
): Promise<S> {
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  let attempt = 0;
  let lastDone = -1;
  for (;;) {
    let retryAfterMs: number | undefined;
    let retrying: ApiError | undefined;
    try {
      const answer = await statusAt(url, options);
      if (enough(answer.status)) return answer.status;
      if (answer.status.status !== 'ready') options.onProgress?.(answer.status);
      const done = answer.status.status === 'processing' ? (answer.status.done ?? 0) : 0;
      if (done > lastDone) {
        attempt = 0;
        lastDone = done;
      }
      retryAfterMs = answer.retryAfterMs;
    } catch (error) {
      if (!(error instanceof ApiError) || !error.retryable || error.code === 'image_failed') throw error;
      retrying = error;
      retryAfterMs = error.retryAfterMs;
    }
    const delay = backoffDelay(attempt++, options, retryAfterMs);
    if (Date.now() + delay > deadline)
      throw new ApiError({
        status: 0,
        code: 'timeout',
        message: `Not ready after ${options.timeoutMs ?? 300_000} ms.`,
        retryable: true,
      });
    if (retrying) options.onRetry?.(retrying, delay);
    await sleep(delay, options.signal);
  }
}
