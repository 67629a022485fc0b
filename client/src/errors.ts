/** The API's error answers as one typed error, and the header that says when to try again. */

/** What the API answers on failure: `{error: {code, message, retryable, details?}}`. */
export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly retryable?: boolean;
    readonly details?: Record<string, unknown>;
  };
}

/**
 * A failed request. `code` is the API's (`payload_too_large`, `quota_exceeded`, `image_failed`…),
 * or one of the client's own: `network_error` (no answer), `bad_response` (an answer that is not
 * the API's), `timeout` ({@link waitUntilReady}'s `timeoutMs`), `upload_failed` (the signed-URL PUT).
 */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** HTTP status, 0 when there was no answer. */
  readonly status: number;
  readonly code: string;
  /** Whether sending the same request again may succeed (the API says so; 429, 5xx and network errors are). */
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;
  /** Milliseconds the server asked to wait (`Retry-After`), if it did. */
  readonly retryAfterMs: number | undefined;

  constructor(init: {
    status: number;
    code: string;
    message: string;
    retryable: boolean;
    details?: Record<string, unknown> | undefined;
    retryAfterMs?: number | undefined;
    cause?: unknown;
  }) {
    super(init.message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status;
    this.code = init.code;
    this.retryable = init.retryable;
    this.details = init.details;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** `Retry-After` in milliseconds: delta-seconds or an HTTP date; `undefined` when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Whether a status is worth retrying when the body does not say (gateways and overloaded front ends). */
function retryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** The {@link ApiError} for a non-2xx answer, from the API's JSON body when it has one. */
export function errorFromAnswer(status: number, body: unknown, retryAfter: string | null): ApiError {
  const retryAfterMs = parseRetryAfter(retryAfter);
  const error = (body as Partial<ErrorBody> | undefined)?.error;
  if (error && typeof error.code === 'string' && typeof error.message === 'string')
    return new ApiError({
      status,
      code: error.code,
      message: error.message,
      retryable: typeof error.retryable === 'boolean' ? error.retryable : retryableStatus(status),
      details: error.details,
      retryAfterMs,
    });
  return new ApiError({
    status,
    code: 'bad_response',
    message: `The server answered ${status} without an API error body.`,
    retryable: retryableStatus(status),
    retryAfterMs,
  });
}

/** The {@link ApiError} of a response; reads its body. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return errorFromAnswer(response.status, body, response.headers.get('Retry-After'));
}

/** A request that got no answer (offline, DNS, CORS refusal, connection reset): retryable. */
export function networkError(cause: unknown): ApiError {
  return new ApiError({
    status: 0,
    code: 'network_error',
    message: `The request got no answer: ${cause instanceof Error ? cause.message : String(cause)}`,
    retryable: true,
    cause,
  });
}
