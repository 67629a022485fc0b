/** Exponential backoff with jitter, and a sleep that an AbortSignal ends. */

/** How polls and retries are spaced. */
export interface BackoffOptions {
  /** The first delay, in ms (default 250). */
  readonly initialDelayMs?: number;
  /** The longest delay, in ms (default 5000). */
  readonly maxDelayMs?: number;
  /** A number in [0, 1), for tests; default Math.random. */
  readonly random?: () => number;
}

/**
 * The delay before attempt `attempt` (0-based): `initial × 2^attempt`, capped, with "equal
 * jitter" (a random point in the upper half), so that many clients polling after one outage do not
 * come back in step, yet none polls sooner than half the nominal delay. A server's `Retry-After`
 * is a floor: never sooner than asked.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, retryAfterMs?: number): number {
  const initial = options.initialDelayMs ?? 250;
  const max = options.maxDelayMs ?? 5000;
  const nominal = Math.min(max, initial * 2 ** Math.max(0, attempt));
  const jittered = nominal / 2 + (options.random ?? Math.random)() * (nominal / 2);
  return Math.round(Math.max(jittered, retryAfterMs ?? 0));
}

/** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
