/**
 * Errors in Google's JSON API shape. The official clients read `error.code`, `error.message` and
 * `error.errors[].reason` (for example `conditionNotMet` or `notFound`) to decide between
 * retrying, treating a 404 as "does not exist", and giving up, so every failure the server
 * answers goes through {@link StorageApiError}.
 */

/** One entry of `error.errors` in Google's error body. */
export interface ErrorDetail {
  message: string;
  domain: string;
  reason: string;
  locationType?: string;
  location?: string;
}

/** The body Cloud Storage answers a failed JSON API request with. */
export interface ErrorBody {
  error: { code: number; message: string; errors: ErrorDetail[] };
}

/** A failure to answer with `status` and Google's error JSON. */
export class StorageApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
    readonly location?: { type: string; name: string },
  ) {
    super(message);
    this.name = 'StorageApiError';
  }

  /** The JSON body, exactly as Cloud Storage shapes it. */
  toBody(): ErrorBody {
    const detail: ErrorDetail = { message: this.message, domain: 'global', reason: this.reason };
    if (this.location) {
      detail.locationType = this.location.type;
      detail.location = this.location.name;
    }
    return { error: { code: this.status, message: this.message, errors: [detail] } };
  }
}

/** 400 for a request the server understands but rejects (bad value, bad body). */
export function badRequest(message: string, reason = 'invalid'): StorageApiError {
  return new StorageApiError(400, message, reason);
}

/** 400 for a malformed query parameter, naming it the way Cloud Storage does. */
export function invalidParameter(name: string, value: string): StorageApiError {
  return new StorageApiError(
    400,
    `Invalid argument for parameter ${name}: ${JSON.stringify(value)}`,
    'invalidParameter',
    {
      type: 'parameter',
      name,
    },
  );
}

/** 404 for a bucket that does not exist. */
export function noSuchBucket(bucket: string): StorageApiError {
  return new StorageApiError(404, `The specified bucket does not exist: ${bucket}`, 'notFound');
}

/** 404 for an object (or one generation of it) that does not exist. */
export function noSuchObject(bucket: string, name: string): StorageApiError {
  return new StorageApiError(404, `No such object: ${bucket}/${name}`, 'notFound');
}

/** 412, the answer to every failed `if*Match` precondition except reads' "not match" ones. */
export function preconditionFailed(detail: string): StorageApiError {
  return new StorageApiError(
    412,
    `At least one of the pre-conditions you specified did not hold. (${detail})`,
    'conditionNotMet',
    {
      type: 'header',
      name: 'If-Match',
    },
  );
}

/** 304, what Cloud Storage answers a GET whose `ifGenerationNotMatch`/`ifMetagenerationNotMatch` fails. */
export function notModified(): StorageApiError {
  return new StorageApiError(304, 'Not Modified', 'notModified');
}

/** 409, for creating what exists or deleting a bucket that still holds objects. */
export function conflict(message: string): StorageApiError {
  return new StorageApiError(409, message, 'conflict');
}

/** The reason Cloud Storage gives for an injected or real status, so clients classify it right. */
export function reasonForStatus(status: number): string {
  if (status === 429) return 'rateLimitExceeded';
  if (status === 404) return 'notFound';
  if (status === 412) return 'conditionNotMet';
  if (status === 401) return 'required';
  if (status === 403) return 'forbidden';
  if (status >= 500) return 'backendError';
  return 'invalid';
}
