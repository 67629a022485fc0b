/**
 * Request observation for tests: wait until a request matching a method and path has arrived,
 * or hold such requests until the test releases them. A test orders a race with these (the
 * event itself) instead of guessing with a sleep. Admin requests (`/_admin/…`) never match.
 */

/** Which requests to observe; matched like a fault (see {@link FaultSpec}). */
export interface RequestMatch {
  /** HTTP method (any when absent); case-insensitive. */
  method?: string;
  /** Tested against the raw request target (a RegExp), or must occur in it (a string). */
  path?: RegExp | string;
}

/** A request as it arrived. */
export interface ArrivedRequest {
  method: string;
  target: string;
}

/** Requests held at arrival until {@link HeldRequests.release}. */
export interface HeldRequests {
  /** Resolves when the first held request has arrived. */
  arrived: Promise<ArrivedRequest>;
  /** Resolves when all `times` requests the hold catches have arrived (all are held then). */
  all: Promise<ArrivedRequest[]>;
  /** Lets every held request (and any later one this hold would catch) proceed. */
  release(): void;
}

/** Requests recorded since {@link RequestObserver.record}, in arrival order. */
export interface RecordedRequests {
  readonly requests: ArrivedRequest[];
  /** Stops recording (what was recorded stays). */
  stop(): void;
}

interface Watch {
  match: RequestMatch;
  /** Requests this watch still catches. */
  remaining: number;
  onArrival(request: ArrivedRequest): void;
  /** Present for holds: resolves when released. */
  released?: Promise<void>;
  /** Stops the watch's timer, if any. */
  cancel?(): void;
}

function matches(match: RequestMatch, method: string, target: string): boolean {
  if (match.method !== undefined && match.method.toUpperCase() !== method.toUpperCase()) return false;
  if (match.path === undefined) return true;
  if (typeof match.path === 'string') return target.includes(match.path);
  match.path.lastIndex = 0;
  return match.path.test(target);
}

/** The request watchers of one server. */
export class RequestObserver {
  private watches: Watch[] = [];
  private releases = new Set<() => void>();

  /**
   * Called by the server for each request before anything else; resolves when the request may
   * proceed (at once unless a hold caught it).
   */
  async arrived(method: string, target: string): Promise<void> {
    if (target.startsWith('/_admin/') || this.watches.length === 0) return;
    const request = { method, target };
    const caught = this.watches.filter((w) => matches(w.match, method, target));
    for (const watch of caught) {
      watch.remaining--;
      watch.onArrival(request);
    }
    this.watches = this.watches.filter((w) => w.remaining > 0);
    await Promise.all(caught.map((w) => w.released));
  }

  /** Resolves with the next request matching `match`; fails after `timeoutMs`. */
  waitForRequest(match: RequestMatch, timeoutMs = 60_000): Promise<ArrivedRequest> {
    return new Promise((resolve, reject) => {
      const watch: Watch = {
        match,
        remaining: 1,
        onArrival: (request) => {
          clearTimeout(timer);
          resolve(request);
        },
        cancel: () => clearTimeout(timer),
      };
      const timer = setTimeout(() => {
        this.watches = this.watches.filter((w) => w !== watch);
        reject(
          new Error(
            `no ${match.method ?? ''} request matching ${String(match.path ?? 'any path')} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      this.watches.push(watch);
    });
  }

  /** Holds the next `times` requests matching `match` at arrival until `release()` is called. */
  hold(match: RequestMatch, times = 1): HeldRequests {
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrivedFirst!: (request: ArrivedRequest) => void;
    const arrived = new Promise<ArrivedRequest>((resolve) => (arrivedFirst = resolve));
    let arrivedAll!: (requests: ArrivedRequest[]) => void;
    const all = new Promise<ArrivedRequest[]>((resolve) => (arrivedAll = resolve));
    const caught: ArrivedRequest[] = [];
    const onArrival = (request: ArrivedRequest) => {
      caught.push(request);
      arrivedFirst(request);
      if (caught.length === times) arrivedAll(caught);
    };
    const watch: Watch = { match, remaining: times, onArrival, released };
    this.watches.push(watch);
    const releaseAll = () => {
      this.watches = this.watches.filter((w) => w !== watch);
      this.releases.delete(releaseAll);
      release();
    };
    this.releases.add(releaseAll);
    return { arrived, all, release: releaseAll };
  }

  /**
   * Records every request matching `match` (all, by default) from now until `stop()`, without
   * holding it: the benches count operations with it (bench/operations.ts, bench/cleanup-scale.ts).
   */
  record(match: RequestMatch = {}): RecordedRequests {
    const requests: ArrivedRequest[] = [];
    const watch: Watch = { match, remaining: Number.POSITIVE_INFINITY, onArrival: (request) => requests.push(request) };
    this.watches.push(watch);
    return {
      requests,
      stop: () => {
        this.watches = this.watches.filter((w) => w !== watch);
      },
    };
  }

  /** Releases every hold and forgets every watch (a stopping server must not wait on a test). */
  clear(): void {
    for (const release of [...this.releases]) release();
    for (const watch of this.watches) watch.cancel?.();
    this.watches = [];
  }
}
