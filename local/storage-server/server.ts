/**
 * {@link startStorageServer}: the HTTP server that ties the store, routes, notifications and
 * faults together. Every request runs inside one error boundary: a {@link StorageApiError}
 * becomes its status and Google's error JSON, anything else a logged 500, and the server keeps
 * serving either way.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { StorageApiError, reasonForStatus } from './api-errors.js';
import { FaultInjector, type FaultSpec } from './faults.js';
import { baseUrlOf, type RequestContext } from './http.js';
import { Notifier, type NotificationEvent, type RetryPolicy } from './notifications.js';
import { newBucketRecord, validateBucketName } from './object-operations.js';
import {
  RequestObserver,
  type ArrivedRequest,
  type HeldRequests,
  type RecordedRequests,
  type RequestMatch,
} from './observer.js';
import { sendError } from './responses.js';
import { route } from './router.js';
import { SignedUrlPolicy } from './signatures.js';
import { Store } from './store.js';
import { UploadSessions } from './upload-sessions.js';

/** How to start a server. */
export interface StorageServerOptions {
  /** 0 or absent: a free port chosen by the OS. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Where to persist buckets and objects; absent: in memory only. */
  dir?: string;
  /** Create a bucket on first use instead of answering 404. */
  autoCreateBuckets?: boolean;
  /** Buckets to create at start (kept if they already exist in `dir`). */
  buckets?: string[];
  /** Receives one line per request and every warning; silent when absent. */
  log?: (line: string) => void;
  /** Notification retry timing; tests shorten it. Not part of the documented API. */
  notificationRetry?: RetryPolicy;
}

/** A running server. */
export interface StorageServer {
  /** Base URL, e.g. `http://127.0.0.1:4443`: the client's `apiEndpoint`. */
  url: string;
  port: number;
  /** Stops accepting requests, closes connections, waits for writes in progress, ends notifications. */
  stop(): Promise<void>;
  /** Delivers the bucket's object events to `url` as CloudEvents (default events: finalize). */
  addNotification(bucket: string, url: string, options?: { events?: NotificationEvent[] }): void;
  /** Removes every notification of the bucket. */
  removeNotifications(bucket: string): void;
  /** Makes the next `times` (default 1) matching requests fail with `status` and/or wait `latencyMs`. */
  injectFault(fault: FaultSpec): void;
  /** Removes every injected fault (and releases held requests). */
  clearFaults(): void;
  /** Resolves when a request matching `match` arrives (tests order races with it; see observer.ts). */
  waitForRequest(match: RequestMatch, timeoutMs?: number): Promise<ArrivedRequest>;
  /** Holds the next `times` (default 1) matching requests at arrival until released. */
  holdRequests(match: RequestMatch, times?: number): HeldRequests;
  /** Records every matching request (default: all but admin ones) until `stop()`; benches count operations with it. */
  recordRequests(match?: RequestMatch): RecordedRequests;
  /** Trusts V4 signed URLs signed by `clientEmail` with the private half of this key (PEM). */
  addSigningKey(clientEmail: string, publicKeyPem: string): void;
  /** Origins whose browsers may PUT signed URLs (the uploads bucket's CORS policy in production). */
  setCorsOrigins(origins: readonly string[]): void;
}

function timeSince(start: bigint): string {
  return `${Number((process.hrtime.bigint() - start) / 1000n) / 1000} ms`;
}

/** Starts a local Cloud Storage server; resolves once it listens. */
export async function startStorageServer(options: StorageServerOptions = {}): Promise<StorageServer> {
  const log = options.log ?? (() => undefined);
  const host = options.host ?? '127.0.0.1';
  const store = await Store.open({ ...(options.dir ? { dir: options.dir } : {}), log });
  for (const name of options.buckets ?? []) {
    validateBucketName(name);
    if (!store.getBucket(name)) await store.createBucket(newBucketRecord(name));
  }
  const notifier = new Notifier(log, options.notificationRetry);
  const faults = new FaultInjector();
  const observer = new RequestObserver();
  const sessions = new UploadSessions();
  const signedUrls = new SignedUrlPolicy();
  const inFlight = new Set<Promise<void>>();
  let fallbackUrl = '';

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = process.hrtime.bigint();
    const target = req.url ?? '/';
    try {
      await observer.arrived(req.method ?? 'GET', target);
      const fault = faults.take(req.method ?? 'GET', target);
      if (fault) {
        if (fault.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.latencyMs));
        if (fault.status !== undefined) {
          // Discard the body so the connection stays usable for the client's retry.
          req.resume();
          log(`storage-server: injected ${fault.status} for ${req.method} ${target}`);
          throw new StorageApiError(fault.status, `Injected fault: ${fault.status}`, reasonForStatus(fault.status));
        }
      }
      const ctx: RequestContext = {
        req,
        res,
        url: new URL(target, 'http://localhost'),
        baseUrl: baseUrlOf(req, fallbackUrl),
        store,
        notifier,
        sessions,
        faults,
        signedUrls,
        autoCreateBuckets: options.autoCreateBuckets ?? false,
        log,
      };
      await route(ctx);
    } catch (error) {
      if (!(error instanceof StorageApiError)) {
        log(
          `storage-server: ERROR ${req.method} ${target}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
        );
      }
      const apiError =
        error instanceof StorageApiError
          ? error
          : new StorageApiError(500, 'Internal error in the local storage server; see its log', 'backendError');
      if (res.headersSent) {
        res.destroy();
      } else {
        // The request body may be unread (errors raised before reading it).
        req.resume();
        sendError(res, apiError);
      }
    } finally {
      log(`${req.method} ${target} ${res.statusCode} ${timeSince(started)}`);
    }
  };

  const server = createServer((req, res) => {
    const task = handle(req, res);
    inFlight.add(task);
    void task.finally(() => inFlight.delete(task));
  });
  // A malformed request line or header never reaches the handler; answer it like Google does.
  server.on('clientError', (error, socket) => {
    if (socket.writable) {
      const body = JSON.stringify(new StorageApiError(400, `Bad request: ${error.message}`, 'badRequest').toBody());
      socket.end(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    } else socket.destroy();
  });
  // Uploads of large objects can take a while on slow machines.
  server.requestTimeout = 0;
  // Idle keep-alive connections outlive the clients' own idle timeouts (Node's agent: 5 s), so
  // the client always closes first and never reuses a socket the server is closing.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const displayHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `http://${displayHost}:${port}`;
  fallbackUrl = url;

  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    stop: () =>
      (stopping ??= (async () => {
        observer.clear();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Dropping connections aborts requests still sending bodies; requests already past
        // that finish their writes below, so a stop never leaves half a commit behind.
        server.closeAllConnections();
        await Promise.allSettled([...inFlight]);
        await closed;
        await notifier.stop();
      })()),
    addNotification: (bucket, notificationUrl, notificationOptions) =>
      notifier.add(bucket, notificationUrl, notificationOptions?.events),
    removeNotifications: (bucket) => notifier.remove(bucket),
    injectFault: (fault) => faults.add(fault),
    clearFaults: () => faults.clear(),
    waitForRequest: (match, timeoutMs) => observer.waitForRequest(match, timeoutMs),
    holdRequests: (match, times) => observer.hold(match, times),
    recordRequests: (match) => observer.record(match),
    addSigningKey: (clientEmail, publicKeyPem) => signedUrls.addKey(clientEmail, publicKeyPem),
    setCorsOrigins: (origins) => signedUrls.setCorsOrigins(origins),
  };
}
