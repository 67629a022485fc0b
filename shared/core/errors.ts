/**
 * Typed failures. Every error the pipeline raises on purpose is a {@link PipelineError} with a
 * stable machine-readable `code`, an HTTP status, and a class:
 *
 * - **permanent**: retrying cannot help (bad image, malformed job, limits). HTTP handlers answer
 *   4xx (500 for `internal`, a dependency's unexpected refusal) with `retryable: false`; event
 *   handlers acknowledge the event (return normally) and record the failure.
 * - **transient**: retrying may help (storage 5xx/429, network, publish failures). HTTP handlers
 *   answer 503 with `retryable: true`; event handlers throw so Pub/Sub / Eventarc redeliver.
 *
 * Anything unknown is classified by {@link classifyError}: unknown errors are treated as
 * transient, because losing a message is worse than retrying it into the dead-letter topic.
 */

/** Whether a retry can help. */
export type ErrorClass = 'permanent' | 'transient';

/**
 * Stable error codes, shared by the HTTP API, `error.json` records and `image.failed` events:
 * the status an answer with the code carries, its class, and, for docs/api.md's generated table
 * (`npm run docs`), what it means and which function raises it.
 */
export const ERROR_CODES = {
  bad_request: {
    status: 400,
    kind: 'permanent',
    meaning:
      'A request the API cannot read: a path with a broken percent-encoding, a signed-URL request that is not JSON or lacks a valid field, or a list with a bad `limit` or `cursor`.',
    raisedBy: 'upload guard; upload (signed-URL request, GET /uploads)',
  },
  missing_file: {
    status: 400,
    kind: 'permanent',
    meaning: 'The form has no file in the field `file`.',
    raisedBy: 'upload',
  },
  too_many_files: { status: 400, kind: 'permanent', meaning: 'More than one file in the form.', raisedBy: 'upload' },
  bad_multipart: {
    status: 400,
    kind: 'permanent',
    meaning:
      'A `multipart/*` body that is not a valid `multipart/form-data` form: no or wrong boundary, cut off, a part header over the limit, `multipart/mixed`.',
    raisedBy: 'upload',
  },
  invalid_focus: {
    status: 400,
    kind: 'permanent',
    meaning: "`?focus=` or an `incoming/` object's `focus` metadata is not two numbers from 0 to 1 (`x,y`).",
    raisedBy: 'upload, ingest',
  },
  invalid_metadata: {
    status: 400,
    kind: 'permanent',
    meaning:
      'The per-upload metadata is not a JSON object of at most 32 keys (1–128 characters, not `__name__`) with string, number or boolean values and at most 4096 bytes as JSON, or it was given twice; `details.where` says where it came from.',
    raisedBy: 'upload (form field, header, query, signed-URL request); ingest (logged, the object removed)',
  },
  unauthorized: {
    status: 401,
    kind: 'permanent',
    meaning:
      'No valid credential: no `Authorization: Bearer`, a wrong shared token (`UPLOAD_AUTH=token`), or an ID token that fails verification (`UPLOAD_AUTH=jwt`). `details.reason` says which: `missing`, `malformed`, `expired`, `not_yet_valid`, `wrong_issuer`, `wrong_audience`, `unknown_key`, `bad_signature`, `algorithm_not_allowed`, `no_subject`, `wrong_token`.',
    raisedBy: 'upload guard, upload (every path but `/healthz`, `/openapi.json` and CORS preflights)',
  },
  owner_not_allowed: {
    status: 403,
    kind: 'permanent',
    meaning:
      "An end user's ID token together with `X-Upload-Owner`: only the shared token (a trusted backend) may act for a user.",
    raisedBy: 'upload guard, upload',
  },
  forbidden_origin: {
    status: 403,
    kind: 'permanent',
    meaning: "The request's `Origin` is not in `CORS_ORIGINS` (also on preflights).",
    raisedBy: 'upload',
  },
  not_found: {
    status: 404,
    kind: 'permanent',
    meaning: "Unknown path, or none of the caller's uploads has that id (another owner's upload is unknown too).",
    raisedBy: 'upload',
  },
  method_not_allowed: {
    status: 405,
    kind: 'permanent',
    meaning: 'Wrong method for the path (`Allow` says which).',
    raisedBy: 'upload',
  },
  quota_exceeded: {
    status: 429,
    kind: 'permanent',
    meaning:
      'The owner used up a quota (`QUOTA_UPLOADS_PER_DAY`, `QUOTA_BYTES_PER_DAY`, `QUOTA_OPEN_TICKETS`); `details` has `quota`, `limit`, `used` and `resetsAt`, `Retry-After` the seconds until then.',
    raisedBy: 'upload (uploads and signed-URL requests)',
  },
  payload_too_large: {
    status: 413,
    kind: 'permanent',
    meaning: 'Over `MAX_UPLOAD_BYTES` (upload), or over `MAX_INGEST_BYTES` (ingest, signed-URL requests).',
    raisedBy: 'upload (guard, handler, probe, signed-URL request); ingest (recorded)',
  },
  not_an_image: {
    status: 415,
    kind: 'permanent',
    meaning: 'Empty, or not a supported image format (text, HTML, PDF…).',
    raisedBy: 'upload; ingest (recorded)',
  },
  unsupported_encoding: {
    status: 415,
    kind: 'permanent',
    meaning: 'A `Content-Encoding` other than identity.',
    raisedBy: 'upload guard',
  },
  format_not_allowed: {
    status: 415,
    kind: 'permanent',
    meaning:
      'A recognised format that is not accepted: SVG (unless `ALLOW_SVG`), SVG with XML entities (always), a HEIF whose primary image is neither HEVC (HEIC) nor AV1 (AVIF).',
    raisedBy: 'upload; ingest (recorded); resize (recorded)',
  },
  too_many_pixels: {
    status: 422,
    kind: 'permanent',
    meaning:
      'Width × height over `MAX_INPUT_PIXELS`; for a HEIC also a decode that would not fit the decoder’s memory.',
    raisedBy: 'upload; ingest (recorded); resize (recorded)',
  },
  too_many_frames: {
    status: 422,
    kind: 'permanent',
    meaning: 'More frames or pages than `MAX_INPUT_FRAMES`; for a HEIC, more than 1024 items.',
    raisedBy: 'upload; ingest (recorded); resize (recorded)',
  },
  unsupported_dimensions: {
    status: 422,
    kind: 'permanent',
    meaning: 'No variant of this shape fits any configured output format (too tall for its width, e.g. 1×65501).',
    raisedBy: 'upload; ingest (recorded)',
  },
  corrupt_image: {
    status: 422,
    kind: 'permanent',
    meaning:
      'The image is damaged: an unreadable or inconsistent header (at upload/ingest), or damaged data behind an intact header (at resize).',
    raisedBy: 'upload; ingest (recorded); resize (recorded)',
  },
  image_failed: {
    status: 422,
    kind: 'permanent',
    meaning:
      'The image has a failure record (`GET /uploads/{id}`, or `POST` of the same bytes for a permanent one); `details.cause` is the recorded code, `retryable` says whether the same bytes again can help. As a recorded code itself: an encoder failed.',
    raisedBy: 'upload (answer); resize (recorded)',
  },
  invalid_job: {
    status: 400,
    kind: 'permanent',
    meaning:
      "A job message that is not a valid job (logged and acknowledged, never retried), or one asking for a width above the original's or a variant beyond its format's limits (recorded).",
    raisedBy: 'resize; cleanup (unreadable dead letters, dropped)',
  },
  time_budget_exceeded: {
    status: 422,
    kind: 'permanent',
    meaning: 'The job ran past `JOB_TIME_BUDGET_SECONDS`, or was predicted to.',
    raisedBy: 'resize (recorded)',
  },
  storage_unavailable: {
    status: 503,
    kind: 'transient',
    meaning: "Cloud Storage answered 5xx/429 or the network failed, after the client library's retries.",
    raisedBy: 'upload; ingest, resize, cleanup (retried)',
  },
  // Causes about the world, not the image: retried while a retry is possible, and recorded as
  // retryable failures (re-submitting the same bytes clears the record) when it no longer is.
  storage_refused: {
    status: 503,
    kind: 'transient',
    meaning: 'Cloud Storage answered 401/403 (permissions, e.g. after an IAM change).',
    raisedBy: 'upload; resize (retried); ingest (recorded, retryable)',
  },
  out_of_memory: {
    status: 503,
    kind: 'transient',
    meaning: 'sharp/libvips could not allocate memory.',
    raisedBy: 'resize (retried)',
  },
  dead_lettered: {
    status: 503,
    kind: 'transient',
    meaning: "The image's jobs failed every delivery attempt.",
    raisedBy: 'cleanup (recorded, retryable)',
  },
  processing_gave_up: {
    status: 503,
    kind: 'transient',
    meaning: 'Cleanup re-dispatched `MAX_REDISPATCHES` times without a result.',
    raisedBy: 'cleanup (recorded, retryable)',
  },
  original_missing: {
    status: 503,
    kind: 'transient',
    meaning: 'The original is gone or has no probe metadata.',
    raisedBy: 'resize, cleanup (recorded, retryable)',
  },
  publish_failed: {
    status: 503,
    kind: 'transient',
    meaning:
      'Pub/Sub did not accept the jobs (or an event) within 20 s. At upload the image is claimed and its original stored: the next identical upload dispatches it at once, or the next cleanup pass does.',
    raisedBy: 'upload; ingest, resize, cleanup (retried)',
  },
  state_unavailable: {
    status: 503,
    kind: 'transient',
    meaning:
      "Firestore (the image documents) answered an error or did not answer, after the client library's retries. Nothing is left half-way: upload again.",
    raisedBy: 'upload; ingest, resize, cleanup (retried)',
  },
  unavailable: {
    status: 503,
    kind: 'transient',
    meaning:
      "Any other transient failure (an unknown error counts as transient), or the same bytes uploaded while their image's deletion is still removing its objects (up to 2 minutes; [state](state.md#delete)).",
    raisedBy: 'upload; ingest, resize (retried)',
  },
  auth_unavailable: {
    status: 503,
    kind: 'transient',
    meaning:
      "`UPLOAD_AUTH=jwt` and the identity provider's discovery document or key set (JWKS) could not be fetched (error status, timeout, network, not JSON): the token was neither accepted nor refused.",
    raisedBy: 'upload guard, upload',
  },
  // toHttpError's answer to an error classifyError calls permanent but that is no PipelineError
  // (a 4xx from a Google API): a retry meets the same refusal, so the client is told not to.
  internal: {
    status: 500,
    kind: 'permanent',
    meaning:
      'An unexpected permanent failure of a dependency (a 4xx from a Google API that no module turned into a code of its own); retrying the same request cannot help.',
    raisedBy: 'upload',
  },
} as const satisfies Record<string, { status: number; kind: ErrorClass; meaning: string; raisedBy: string }>;

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
