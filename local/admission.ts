/**
 * Cloud Run's admission, for the local stack: a service runs at most `maxInstances × concurrency`
 * requests at once and answers 429 beyond, which Pub/Sub and Eventarc treat as a failed delivery
 * and retry with backoff. Without it every push would be taken at once locally, and load or
 * outage runs would never show production's back-pressure (docs/delivery.md).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

/** Counters of one admission gate. */
export interface AdmissionStats {
  /** Requests allowed at once; 0 = no limit. */
  readonly limit: number;
  inFlight: number;
  /** Most requests in flight at once so far. */
  peak: number;
  admitted: number;
  refused: number;
}

/**
 * How long a refused request is held before its 429, as Cloud Run holds a request it cannot place
 * for a while before refusing it. The Pub/Sub emulator, unlike Pub/Sub, retries a refused push at
 * once, and after some hundreds of immediate refusals it stops delivering the subscription; the
 * hold keeps it to about one refusal per second per pending push (docs/delivery.md).
 */
export const REFUSAL_HOLD_MS = 1_000;

/** A request listener behind a gate, with its counters. */
export type AdmittingListener = RequestListener & { readonly admission: AdmissionStats };

/**
 * Wraps a listener so that at most `limit` requests run in it at once; beyond, the request is
 * answered 429 with a JSON error body (after `refusalHoldMs`), as Cloud Run answers when every
 * instance is busy. A request counts until its response is finished or its connection closes.
 */
export function admitAtMost(
  listener: RequestListener,
  limit: number,
  onRefuse?: (req: IncomingMessage) => void,
  refusalHoldMs = 0,
): AdmittingListener {
  if (!Number.isInteger(limit) || limit < 0)
    throw new RangeError(`An admission limit must be a whole number >= 0, got ${limit}`);
  const stats: AdmissionStats = { limit, inFlight: 0, peak: 0, admitted: 0, refused: 0 };
  const gate = (req: IncomingMessage, res: ServerResponse) => {
    if (limit > 0 && stats.inFlight >= limit) {
      stats.refused++;
      onRefuse?.(req);
      // Answer once the (small) push body is read: a push client answered mid-body may count
      // the delivery as outstanding until its ack deadline instead of as refused.
      req.resume();
      req.once('end', () => setTimeout(refuse, refusalHoldMs));
      const refuse = () => {
        res.writeHead(429, { 'Content-Type': 'application/json; charset=utf-8', 'Retry-After': '1' });
        res.end(
          JSON.stringify({
            error: {
              code: 'too_many_requests',
              message: `Every instance is busy (${limit} requests at once); retry later.`,
              retryable: true,
            },
          }),
        );
      };
      return;
    }
    stats.admitted++;
    stats.inFlight++;
    stats.peak = Math.max(stats.peak, stats.inFlight);
    res.once('close', () => stats.inFlight--);
    listener(req, res);
  };
  return Object.assign(gate, { admission: stats });
}

/**
 * The admission limit of each event function from the environment: `LOCAL_ADMIT_{FUNCTION}`
 * (e.g. `LOCAL_ADMIT_RESIZE=2`; 0 = no limit). Undefined when unset; throws on a bad value.
 */
export function admissionFromEnv(env: Readonly<Record<string, string | undefined>>, fn: string): number | undefined {
  const name = `LOCAL_ADMIT_${fn.toUpperCase()}`;
  const raw = env[name]?.trim();
  if (!raw) return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new RangeError(`${name} must be a whole number of requests (0 = no limit), got ${JSON.stringify(raw)}`);
  return value;
}
