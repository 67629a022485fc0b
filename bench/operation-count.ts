/**
 * Operation counts for the benches: Cloud Storage requests as the local storage server saw them
 * (its `recordRequests`), sorted into the price list's classes, and the state layer's Firestore
 * counter (shared/state/image-doc.ts `firestoreOperations`). Cloud Storage classes, per
 * https://cloud.google.com/storage/pricing: Class A are inserts, patches, lists, composes and
 * copies; Class B are object and bucket reads (metadata or media); deletes are free operations
 * (counted apart); CORS preflights are not API operations. Nothing here imports the state layer,
 * so bench/operations.ts also runs on the design before it (docs/performance.md, "State in Firestore").
 */

/** A Firestore operation counter (shared/state/image-doc.ts `firestoreOperations` and its reset). */
export interface FirestoreCounter {
  readonly operations: { readonly reads: number; readonly writes: number };
  reset(): void;
}

/** For a design without Firestore. */
export const NO_FIRESTORE: FirestoreCounter = { operations: { reads: 0, writes: 0 }, reset: () => undefined };
import type { ArrivedRequest } from '../local/storage-server/index.js';

/** One request's operation class. */
export type OperationClass = 'A' | 'B' | 'delete' | 'none';

/** Sorts one request of the local storage server (JSON API, upload API, XML API) into its class. */
export function classOf(request: ArrivedRequest): OperationClass {
  const method = request.method.toUpperCase();
  const path = request.target.split('?')[0] ?? '';
  if (method === 'OPTIONS') return 'none';
  if (method === 'DELETE') return 'delete';
  if (method === 'GET' || method === 'HEAD') {
    // objects.list and buckets.list are Class A; every other read is Class B.
    if (/^\/storage\/v1\/b\/[^/]+\/o\/?$/.test(path) || /^\/storage\/v1\/b\/?$/.test(path)) return 'A';
    return 'B';
  }
  return 'A';
}

/** Counts of one measured stretch. */
export interface OperationCounts {
  classA: number;
  classB: number;
  /** Cloud Storage deletes: free. */
  deletes: number;
  /** Class A split: lists, and writes (inserts, patches, copies, composes). */
  lists: number;
  firestoreReads: number;
  firestoreWrites: number;
  /** Requests by class, method and route shape (object names left out), e.g. `B GET /download/…/o/{object}`. */
  byRoute: Record<string, number>;
}

/** A request's route with the bucket and object names left out. */
export function routeOf(request: ArrivedRequest): string {
  const [path = '', query = ''] = request.target.split('?');
  const shape = path
    .replace(/^(\/(?:resumable\/)?(?:upload|download)?\/?storage\/v1\/b\/)[^/]+/, '$1{bucket}')
    .replace(/\/o\/[^/]+.*$/, '/o/{object}');
  const media = /(?:^|&)alt=media(?:&|$)/.test(query) ? '?alt=media' : '';
  return `${request.method.toUpperCase()} ${shape.startsWith('/storage') || shape.startsWith('/upload') || shape.startsWith('/download') || shape.startsWith('/resumable') ? shape : '/{bucket}/{object} (XML)'}${media}`;
}

/** Counts the recorded requests, and reads the Firestore counter. */
export function countOperations(requests: readonly ArrivedRequest[], firestore: FirestoreCounter): OperationCounts {
  const counts: OperationCounts = {
    classA: 0,
    classB: 0,
    deletes: 0,
    lists: 0,
    firestoreReads: firestore.operations.reads,
    firestoreWrites: firestore.operations.writes,
    byRoute: {},
  };
  for (const request of requests) {
    const kind = classOf(request);
    const route = `${kind} ${routeOf(request)}`;
    counts.byRoute[route] = (counts.byRoute[route] ?? 0) + 1;
    if (kind === 'A') {
      counts.classA++;
      if (request.method.toUpperCase() === 'GET') counts.lists++;
    } else if (kind === 'B') counts.classB++;
    else if (kind === 'delete') counts.deletes++;
  }
  return counts;
}

/** Starts a measured stretch: the Firestore counter from zero, storage requests recorded until `stop()`. */
export function startCounting(
  server: { recordRequests(): { requests: ArrivedRequest[]; stop(): void } },
  firestore: FirestoreCounter,
): { stop(): OperationCounts } {
  firestore.reset();
  const recording = server.recordRequests();
  return {
    stop() {
      recording.stop();
      return countOperations(recording.requests, firestore);
    },
  };
}
