/**
 * Typed failures. Every error the pipeline raises on purpose is a {@link PipelineError} with a
 * stable machine-readable `code`, an HTTP status, and a class:
 *
 * - **permanent**: retrying cannot help (bad image, malformed job, limits). HTTP handlers answer
 *   4xx; event handlers acknowledge the event (return normally) and record the failure.
 * - **transient**: retrying may help (storage 5xx/429, network, publish failures). HTTP handlers
 *   answer 503 with `retryable: true`; event handlers throw so Pub/Sub / Eventarc redeliver.
 *
 * Anything unknown is classified by {@link classifyError}: unknown errors are treated as
 * transient, because losing a message is worse than retrying it into the dead-letter topic.
 */

/** Whether a retry can help. */
export type ErrorClass = 'permanent' | 'transient';

/** Stable error codes, shared by the HTTP API, `error.json` records and `image.failed` events. */
export const ERROR_CODES = {
  bad_request: { status: 400, kind: 'permanent' },
  missing_file: { status: 400, kind: 'permanent' },
  too_many_files: { status: 400, kind: 'permanent' },
  bad_multipart: { status: 400, kind: 'permanent' },
  invalid_focus: { status: 400, kind: 'permanent' },
  unauthorized: { status: 401, kind: 'permanent' },
  forbidden_origin: { status: 403, kind: 'permanent' },
  not_found: { status: 404, kind: 'permanent' },
  method_not_allowed: { status: 405, kind: 'permanent' },
  payload_too_large: { status: 413, kind: 'permanent' },
  not_an_image: { status: 415, kind: 'permanent' },
  unsupported_encoding: { status: 415, kind: 'permanent' },
  format_not_allowed: { status: 415, kind: 'permanent' },
  too_many_pixels: { status: 422, kind: 'permanent' },
  too_many_frames: { status: 422, kind: 'permanent' },
  unsupported_dimensions: { status: 422, kind: 'permanent' },
  corrupt_image: { status: 422, kind: 'permanent' },
  image_failed: { status: 422, kind: 'permanent' },
  invalid_job: { status: 400, kind: 'permanent' },
  time_budget_exceeded: { status: 422, kind: 'permanent' },
  storage_unavailable: { status: 503, kind: 'transient' },
  // Causes about the world, not the image: retried while a retry is possible, and recorded as
  // retryable failures (re-submitting the same bytes clears the record) when it no longer is.
  storage_refused: { status: 503, kind: 'transient' },
  out_of_memory: { status: 503, kind: 'transient' },
  dead_lettered: { status: 503, kind: 'transient' },
  processing_gave_up: { status: 503, kind: 'transient' },
  original_missing: { status: 503, kind: 'transient' },
  publish_failed: { status: 503, kind: 'transient' },
  state_unavailable: { status: 503, kind: 'transient' },
  unavailable: { status: 503, kind: 'transient' },
  internal: { status: 500, kind: 'transient' },
} as const satisfies Record<string, { status: number; kind: ErrorClass }>;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** An error the pipeline raises on purpose, with a code, a status and a retry class. */
export class PipelineError extends Error {
  /** Stable code, e.g. `too_many_pixels`. */
  readonly code: ErrorCode;
  /** HTTP status that the upload API answers with. */
  readonly status: number;
  /** Whether retrying can help. */
  readonly kind: ErrorClass;
  /** Extra facts safe to show a client (limits, sizes); never paths or stack traces. */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PipelineError';
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.kind = ERROR_CODES[code].kind;
    this.details = options.details;
  }

  /** True when retrying can help. */
  get retryable(): boolean {
    return this.kind === 'transient';
  }
}

/** Shorthand for a permanent {@link PipelineError}. */
export function permanent(code: ErrorCode, message: string, details?: Record<string, unknown>): PipelineError {
  return new PipelineError(code, message, details ? { details } : {});
}

/** Shorthand for a transient {@link PipelineError} wrapping its cause. */
export function transient(code: ErrorCode, message: string, cause?: unknown): PipelineError {
  return new PipelineError(code, message, { cause });
}

/**
 * True when a recorded failure with this code is about the world, not the image: every transient
 * code, and `time_budget_exceeded` (a prediction or a deadline on one instance, which a less loaded
 * one may meet). Re-submitting the same bytes clears such a record and processes the image again.
 * Unknown codes (records from older versions) are not retryable.
 */
export function isRetryableCause(code: string): boolean {
  if (code === 'time_budget_exceeded') return true;
  return Object.hasOwn(ERROR_CODES, code) && ERROR_CODES[code as ErrorCode].kind === 'transient';
}

/** HTTP status of an error from a Google client library (ApiError `code`, gaxios `status`). */
export function httpStatusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const e = error as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const candidate of [e.code, e.status, e.response?.status]) {
    if (typeof candidate === 'number' && candidate >= 100 && candidate < 600) return candidate;
  }
  return undefined;
}

/**
 * Classifies any thrown value: a {@link PipelineError} keeps its class; a storage/API error is
 * transient on 408, 429 and 5xx, permanent on other 4xx; anything else is transient.
 */
export function classifyError(error: unknown): ErrorClass {
  if (error instanceof PipelineError) return error.kind;
  const status = httpStatusOf(error);
  if (status !== undefined && status >= 400 && status < 500 && status !== 408 && status !== 429) return 'permanent';
  return 'transient';
}

/** True when a Google API error means "precondition failed" (object already exists / changed). */
export function isPreconditionFailed(error: unknown): boolean {
  return httpStatusOf(error) === 412;
}

/** True when a Google API error means "not found". */
export function isNotFound(error: unknown): boolean {
  return httpStatusOf(error) === 404;
}

/** The JSON body every HTTP error response carries. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; retryable: boolean; details?: Record<string, unknown> };
}

/**
 * Turns any thrown value into an HTTP status and a safe JSON body. Unknown errors become a
 * generic 500/503 message: no stack traces, paths or library internals reach the client.
 */
export function toHttpError(error: unknown): { status: number; body: ErrorBody } {
  const pipelineError =
    error instanceof PipelineError
      ? error
      : classifyError(error) === 'transient'
        ? new PipelineError('unavailable', 'A backend service is temporarily unavailable; retry later.', {
            cause: error,
          })
        : new PipelineError('internal', 'Internal error.', { cause: error });
  const body: ErrorBody = {
    error: { code: pipelineError.code, message: pipelineError.message, retryable: pipelineError.retryable },
  };
  if (pipelineError.details) body.error.details = pipelineError.details;
  return { status: pipelineError.status, body };
}
