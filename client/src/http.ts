/** Where the API is and who is calling: the options every operation takes, and one JSON request. */
import { errorFromResponse, networkError } from './errors.js';

/** Options every operation accepts. */
export interface ApiOptions {
  /**
   * The upload function's origin (and path prefix, if any), without `/uploads`: e.g.
   * `https://upload-abc-ew.a.run.app`, or `http://127.0.0.1:8080` for `npm start`.
   */
  readonly baseUrl: string;
  /** Sent as `Authorization: Bearer …`: a Firebase/OIDC ID token (`UPLOAD_AUTH=jwt`) or the shared `UPLOAD_TOKEN`. */
  readonly idToken?: string | undefined;
  /** A `fetch` to use instead of the global one (tests, instrumented fetches). */
  readonly fetch?: typeof fetch | undefined;
  /** Aborts the operation; it then rejects with the signal's reason. */
  readonly signal?: AbortSignal | undefined;
}

/** `{baseUrl}/uploads{path}`, the base's trailing slashes ignored. */
export function apiUrl(options: ApiOptions, path: string): string {
  return `${options.baseUrl.replace(/\/+$/, '')}/uploads${path}`;
}

/** The `Authorization` header for the options' token, if any. */
export function authHeaders(options: ApiOptions): Record<string, string> {
  return options.idToken ? { Authorization: `Bearer ${options.idToken}` } : {};
}

/**
 * One request to the API: the response when its status is in `expected`, an {@link ApiError}
 * otherwise (also for no answer at all). Aborts reject with the signal's reason, untouched.
 */
export async function send(
  options: ApiOptions,
  url: string,
  init: RequestInit,
  expected: readonly number[],
): Promise<Response> {
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(url, {
      ...init,
      headers: { Accept: 'application/json', ...authHeaders(options), ...(init.headers as Record<string, string>) },
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw networkError(error);
  }
  if (!expected.includes(response.status)) throw await errorFromResponse(response);
  return response;
}

/** The JSON body of an answer the caller expected. */
export async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}
