/**
 * Sending a body with upload progress: XMLHttpRequest where there is one (browsers: `fetch` reports
 * no upload progress), `fetch` elsewhere (Node), which reports the whole body once it is sent.
 */
import { networkError } from './errors.js';
import type { ApiOptions } from './http.js';

/** Bytes sent so far of the request body. */
export interface TransferProgress {
  readonly loaded: number;
  readonly total: number;
}

/** One request whose body's progress the caller follows; resolves with the answer, whatever its status. */
export async function transfer(
  request: { method: string; url: string; headers: Record<string, string>; body: Blob | FormData; size: number },
  options: Pick<ApiOptions, 'fetch' | 'signal'>,
  onProgress: ((progress: TransferProgress) => void) | undefined,
): Promise<Response> {
  if (onProgress && !options.fetch && typeof XMLHttpRequest !== 'undefined')
    return transferWithXhr(request, options.signal, onProgress);
  let response: Response;
  try {
    response = await (options.fetch ?? fetch)(request.url, {
      method: request.method,
      headers: request.headers,
      body: request.body,
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } catch (error) {
    if (options.signal?.aborted) throw options.signal.reason;
    throw networkError(error);
  }
  onProgress?.({ loaded: request.size, total: request.size });
  return response;
}

function transferWithXhr(
  request: { method: string; url: string; headers: Record<string, string>; body: Blob | FormData },
  signal: AbortSignal | undefined,
  onProgress: (progress: TransferProgress) => void,
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(request.method, request.url);
    for (const [name, value] of Object.entries(request.headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress({ loaded: event.loaded, total: event.total });
    const onAbort = () => xhr.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = () => signal?.removeEventListener('abort', onAbort);
    xhr.onload = () => {
      settle();
      const headers = new Headers();
      for (const line of xhr
        .getAllResponseHeaders()
        .trim()
        .split(/[\r\n]+/)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      // A Response cannot carry a body with 204/205/304.
      const empty = xhr.status === 204 || xhr.status === 205 || xhr.status === 304;
      resolve(new Response(empty ? null : xhr.responseText, { status: xhr.status, headers }));
    };
    xhr.onerror = () => {
      settle();
      reject(networkError(new Error(`${request.method} ${new URL(request.url).origin} failed`)));
    };
    xhr.onabort = () => {
      settle();
      reject(signal?.reason ?? new DOMException('The upload was aborted.', 'AbortError'));
    };
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    xhr.send(request.body);
  });
}
