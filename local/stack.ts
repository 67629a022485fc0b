/**
 * The whole pipeline on one machine, as a function: {@link startLocalStack} starts the local
 * storage server, the Pub/Sub emulator and the Firestore emulator (or uses running ones), creates the buckets, topics
 * and subscriptions from shared/core/topology.json, serves each function with functions-framework on
 * its own port, wires the uploads bucket's finalize notifications to `ingest`, and publishes
 * cleanup ticks on an interval. `npm start` (local/start.ts) and the end-to-end tests use it.
 *
 * One stack per process at a time: the functions share one set of collaborators (`useDeps`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { clearTimeout, setInterval, setTimeout } from 'node:timers';
import { PubSub } from '@google-cloud/pubsub';
import type { Storage } from '@google-cloud/storage';
import { guardUploadListener } from '../functions/upload-guard.js';
import { admissionFromEnv, admitAtMost, REFUSAL_HOLD_MS, type AdmissionStats } from './admission.js';
import { loadConfig, type Config } from '../shared/core/config.js';
import type { Firestore } from '@google-cloud/firestore';
import { createDeps, createFirestoreClient, createStorageClient } from '../shared/cloud/deps.js';
import { createLogger, type Logger } from '../shared/cloud/log.js';
import {
  admissionLimit,
  bucketName,
  topology,
  type BucketKey,
  type FunctionKey,
  type SubscriptionKey,
  type TopicKey,
} from '../shared/core/topology.js';
import { startFirestoreEmulator, type FirestoreEmulator } from './firestore-emulator.js';
import { assertPortsFree, DEFAULT_PORTS, freePort, PORT_NAMES, PortInUseError, type PortName } from './ports.js';
import { pausePushSubscriptions, provisionPubsub, triggerSubscriptionName } from './provision.js';
import { startPubsubEmulator, type PubsubEmulator } from './pubsub-emulator.js';
import { generateSigningKey } from './signing-key.js';
import { type StackAuth, startStackAuth } from './stack-auth.js';
import { startStorageServer, type StorageServer } from './storage-server/index.js';
import { IMAGES_PATH, listen, startWebServer } from './web-server.js';
import { recentWebhookDeliveries } from './webhook-deliveries.js';

/** Where a log line comes from: a function, or a part of the stack. */
export type LogSource = FunctionKey | 'stack' | 'storage' | 'pubsub' | 'firestore';

/** Receives every log line: the functions' structured JSON lines, and the servers' text lines. */
export type StackLogSink = (line: string, source: LogSource) => void;

/** Options of {@link startLocalStack}; everything has a default fit for `npm start`. */
export interface LocalStackOptions {
  /** Interface to listen on; default 127.0.0.1. */
  readonly host?: string;
  /** Ports (0: any free port); defaults: {@link DEFAULT_PORTS}. */
  readonly ports?: Partial<Record<PortName, number>>;
  /** `host:port` of a running emulator to use instead of starting one (PUBSUB_EMULATOR_HOST). */
  readonly pubsubEmulatorHost?: string;
  /** `host:port` of a running Firestore emulator to use instead of starting one (FIRESTORE_EMULATOR_HOST). */
  readonly firestoreEmulatorHost?: string;
  /**
   * Directory for the storage server's data, the Firestore emulator's exports (`firestore/`,
   * written on stop, imported on start) and the emulators' logs; absent: in memory.
   */
  readonly dataDir?: string;
  /** GOOGLE_CLOUD_PROJECT; default `local-project`. */
  readonly projectId?: string;
  /** Bucket name prefix; default `local` (buckets `local-uploads`, `local-images`). */
  readonly bucketPrefix?: string;
  /** Seconds between cleanup ticks; default 60; 0 disables the schedule ({@link LocalStack.tick} still works). */
  readonly cleanupIntervalSeconds?: number;
  /**
   * Pipeline settings (WIDTHS, FORMATS, UPLOAD_TOKEN, ...), e.g. `process.env`. The stack sets
   * the ones that say where things are (buckets, topics, endpoints, PUBLIC_BASE_URL) itself.
   */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Log sink; default: each line on stdout. */
  readonly log?: StackLogSink;
  /** Also log every storage request and the emulator's own output. */
  readonly verbose?: boolean;
  /** How long stop() waits for function invocations in progress; default 5000 ms. */
  readonly drainMs?: number;
  /**
   * Requests each event function runs at once; beyond, it answers 429 as Cloud Run does when
   * every instance is busy. Default: the topology's `maxInstances × concurrency`, or
   * `LOCAL_ADMIT_{FUNCTION}` in `env` (e.g. `LOCAL_ADMIT_RESIZE=2`); 0 = no limit.
   */
  readonly admission?: Partial<Record<EventFunction, number>>;
  /** Aborts a start in progress (Ctrl-C during start-up): what has started is stopped, and the start rejects. */
  readonly signal?: AbortSignal;
}

/** The functions with an event trigger, served on their own ports. */
export type EventFunction = Exclude<FunctionKey, 'upload'>;

/** The stack's addresses. */
export interface StackUrls {
  /** The try-it page. */
  readonly web: string;
  /** The upload API: `POST {api}` (same origin as the page). */
  readonly api: string;
  /** Where variants are served (PUBLIC_BASE_URL). */
  readonly images: string;
  /** The local storage server (STORAGE_API_ENDPOINT, CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE). */
  readonly storage: string;
  /** `host:port` of the Pub/Sub emulator (PUBSUB_EMULATOR_HOST). */
  readonly pubsub: string;
  /** `host:port` of the Firestore emulator (FIRESTORE_EMULATOR_HOST). */
  readonly firestore: string;
  readonly ingest: string;
  readonly resize: string;
  readonly cleanup: string;
  readonly webhooks: string;
}

/** A running stack. */
export interface LocalStack {
  readonly urls: StackUrls;
  readonly ports: Readonly<Record<PortName, number>>;
  readonly projectId: string;
  readonly buckets: Readonly<Record<BucketKey, string>>;
  /** Topic ids (short names). */
  readonly topics: Readonly<Record<TopicKey, string>>;
  /** Subscription ids (short names): the topology's, and `cleanupTrigger`. */
  readonly subscriptions: Readonly<Record<SubscriptionKey | 'cleanupTrigger', string>>;
  /** The validated configuration the functions run with. */
  readonly config: Config;
  /** How the upload API authenticates, and the stack's own issuer's dev sign-in if it started one. */
  readonly auth: StackAuth;
  /** Each event function's admission gate: its limit and what it admitted and refused (429). */
  readonly admission: Readonly<Record<EventFunction, AdmissionStats>>;
  /** Seconds between cleanup ticks (0: none). */
  readonly cleanupIntervalSeconds: number;
  /** Whether the stack started the emulator (and stops it) or uses one that was running. */
  readonly emulator: 'started' | 'external';
  /** The same for the Firestore emulator. */
  readonly firestoreEmulator: 'started' | 'external';
  /** The Firestore database the functions use (FIRESTORE_DATABASE). */
  readonly firestoreDatabase: string;
  /** Where data is kept; undefined when in memory. */
  readonly dataDir: string | undefined;
  /** Publishes a cleanup tick now, as Cloud Scheduler would; resolves to the message id. */
  tick(): Promise<string>;
  /**
   * Holds requests to the stack's storage server (its `holdRequests`), so that a test in the
   * same process can stop the pipeline at a chosen write and look at what a page sees meanwhile.
   */
  holdStorageRequests: StorageServer['holdRequests'];
  /**
   * A Firestore outage for drills: stops the Firestore emulator the stack started, keeping its
   * data (an export); {@link resumeFirestore} brings it back on the same port with that data.
   * Rejects for an external emulator (FIRESTORE_EMULATOR_HOST), which the stack does not own.
   */
  pauseFirestore(): Promise<void>;
  resumeFirestore(): Promise<void>;
  /** Stops every server and the emulators it started (exporting Firestore's data to dataDir). Idempotent. */
  stop(): Promise<void>;
}

let running = false;

/** The functions-framework names under which the stack registers its wrapped functions. */
function localName(fn: FunctionKey): string {
  return `local-${topology.functions[fn].entryPoint}`;
}

const FUNCTIONS = Object.keys(topology.functions) as FunctionKey[];

/**
 * The local stack's REDISPATCH_AFTER_MINUTES (production: 30). The Pub/Sub emulator stops pushing
 * a message it has seen refused many times quickly (an outage of the resize path), where Pub/Sub
 * keeps redelivering with backoff up to 600 s: a 5-minute window, with cleanup every minute,
 * brings such images back within about as long after recovery.
 */
export const LOCAL_REDISPATCH_AFTER_MINUTES = '5';

/**
 * Starts the stack. Rejects (with nothing left running) on a port in use ({@link PortInUseError}),
 * a missing emulator (`EmulatorUnavailableError`), or a bad setting (`ConfigError`).
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  if (running)
    throw new Error(
      'A local stack is already running in this process; stop it first (the functions share one set of collaborators).',
    );
  running = true;

  const host = options.host ?? '127.0.0.1';
  const displayHost = host === '0.0.0.0' ? '127.0.0.1' : host;
  const projectId = options.projectId ?? 'local-project';
  const prefix = options.bucketPrefix ?? 'local';
  const interval = options.cleanupIntervalSeconds ?? 60;
  const sink: StackLogSink = options.log ?? ((line) => process.stdout.write(`${line}\n`));
  const verbose = options.verbose ?? false;
  const requested: Record<PortName, number> = { ...DEFAULT_PORTS, ...options.ports };
  const externalEmulator = options.pubsubEmulatorHost?.trim() || undefined;
  const externalFirestore = options.firestoreEmulatorHost?.trim() || undefined;

  // Function invocations run inside this context, so that their log lines say which function wrote them.
  const context = new AsyncLocalStorage<FunctionKey>();
  const stackLog: Logger = createLogger({ component: 'local-stack' }, (line) => sink(line, 'stack'));
  const functionsLog: Logger = createLogger({}, (line) => sink(line, context.getStore() ?? 'stack'));

  // Everything started is registered here and undone in reverse order, on failure or stop().
  const undo: Array<() => Promise<void> | void> = [];
  const unwind = async () => {
    for (let step = undo.pop(); step; step = undo.pop()) {
      try {
        await step();
      } catch (error) {
        stackLog.warn('stopping a part of the stack failed', { event: 'local.stop', error });
      }
    }
  };

  let emulatorStarting: Promise<PubsubEmulator | undefined> | undefined;
  let emulatorOwned = false;
  let firestoreStarting: Promise<FirestoreEmulator | undefined> | undefined;
  let firestoreOwned = false;
  const checkpoint = () => options.signal?.throwIfAborted();
  try {
    checkpoint();
    const fixed = Object.fromEntries(
      PORT_NAMES.filter((n) => !(n === 'pubsub' && externalEmulator) && !(n === 'firestore' && externalFirestore)).map(
        (n) => [n, requested[n]],
      ),
    );
    await assertPortsFree(fixed, host);

    let emulatorLog: WriteStream | undefined;
    let firestoreLog: WriteStream | undefined;
    const openLog = (name: string): WriteStream => {
      const log = createWriteStream(join(options.dataDir as string, name), { flags: 'a' });
      undo.push(() => new Promise<void>((resolve) => log.end(resolve)));
      return log;
    };
    if (options.dataDir) {
      mkdirSync(options.dataDir, { recursive: true });
      if (!externalEmulator) emulatorLog = openLog('pubsub-emulator.log');
      if (!externalFirestore) firestoreLog = openLog('firestore-emulator.log');
    }
    // The database the functions will use, for the Firestore emulator's exports.
    // (A bad value is reported by loadConfig below; the emulator starts before it runs.)
    const firestoreDatabase = options.env?.FIRESTORE_DATABASE?.trim() || topology.firestore.database.name;

    // The emulator's JVM takes seconds to start: start it while the servers come up.
    emulatorStarting = externalEmulator
      ? Promise.resolve(undefined)
      : (async () => {
          const port = requested.pubsub || (await freePort(host));
          return startPubsubEmulator({
            port,
            host,
            log: (text) => {
              emulatorLog?.write(text);
              if (verbose) for (const line of text.split('\n')) if (line.trim()) sink(line, 'pubsub');
            },
          });
        })();
    // If something else fails first, the catch below still waits for it and stops it.
    emulatorStarting.catch(() => undefined);
    // The Firestore emulator's JVM too, at the same time.
    firestoreStarting = externalFirestore
      ? Promise.resolve(undefined)
      : (async () => {
          const port = requested.firestore || (await freePort(host));
          return startFirestoreEmulator({
            port,
            host,
            projectId,
            database: firestoreDatabase,
            ...(options.dataDir ? { dataDir: join(options.dataDir, 'firestore') } : {}),
            log: (text) => {
              firestoreLog?.write(text);
              if (verbose || text.startsWith('firestore-emulator:'))
                for (const line of text.split('\n')) if (line.trim()) sink(line, 'firestore');
            },
          });
        })();
    firestoreStarting.catch(() => undefined);

    const buckets = Object.fromEntries(
      (Object.keys(topology.buckets) as BucketKey[]).map((key) => [key, bucketName(prefix, key)]),
    ) as Record<BucketKey, string>;
    let storageServer: StorageServer;
    try {
      storageServer = await startStorageServer({
        port: requested.storage,
        host,
        ...(options.dataDir ? { dir: join(options.dataDir, 'storage') } : {}),
        buckets: Object.values(buckets),
        log: (line) => {
          if (verbose || line.startsWith('storage-server:')) sink(line, 'storage');
        },
      });
    } catch (error) {
      throw asPortError(error, 'storage', requested.storage);
    }
    undo.push(() => storageServer.stop());
    checkpoint();

    // The functions, registered under local names wrapped to run in their log context, each
    // served by functions-framework's own server (body parsing, CloudEvent and Pub/Sub push
    // unwrapping exactly as deployed). Until the collaborators are in place they answer 503.
    const ff = await import('@google-cloud/functions-framework');
    const testing = await import('@google-cloud/functions-framework/testing');
    await import('../functions/index.js');
    let ready = false;
    let currentConfig: Config | undefined;
    const inFlight = new Set<Promise<unknown>>();
    const apps = {} as Record<FunctionKey, RequestListener>;
    for (const fn of FUNCTIONS) {
      const spec = topology.functions[fn];
      const original = testing.getFunction(spec.entryPoint) as ((...args: unknown[]) => unknown) | undefined;
      if (!original) throw new Error(`functions/index.ts does not register ${spec.entryPoint}`);
      const wrapped = (...args: unknown[]) =>
        context.run(fn, () => {
          const result = original(...args);
          if (result instanceof Promise) {
            const tracked = result.finally(() => inFlight.delete(tracked));
            tracked.catch(() => undefined);
            inFlight.add(tracked);
          }
          return result;
        });
      if (spec.trigger === 'http') ff.http(localName(fn), wrapped as never);
      else ff.cloudEvent(localName(fn), wrapped as never);
      let app = testing.getTestServer(localName(fn)).listeners('request')[0] as RequestListener;
      // As deployed: upload's requests are screened before functions-framework parses bodies.
      if (fn === 'upload')
        app = guardUploadListener(app, () => requireStarted(currentConfig, 'the upload configuration'));
      apps[fn] = (req, res) => {
        if (ready) return app(req, res);
        res.writeHead(503, { 'Content-Type': 'application/json', 'Retry-After': '1' });
        res.end(
          JSON.stringify({
            error: { code: 'unavailable', message: 'The local stack is starting; retry in a moment.', retryable: true },
          }),
        );
      };
    }

    // UPLOAD_AUTH: by default jwt against an issuer the stack starts (docs/local-stack.md).
    const started = await startStackAuth(options.env ?? {});
    const ownIssuer = started.issuer;
    if (ownIssuer) undo.push(() => ownIssuer.stop());
    checkpoint();

    let storage: Storage | undefined;
    let imagesBucket = buckets.images;
    let stateClient: Firestore | undefined;
    const web = await startWebServer({
      host,
      port: requested.web,
      storage: () => requireStarted(storage, 'the storage client'),
      imagesBucket: () => imagesBucket,
      api: apps.upload,
      connectSources: [storageServer.url, ...(ownIssuer ? [ownIssuer.url] : [])],
      pageConfig: {
        auth: started.auth.mode,
        ...(started.auth.signInUrl ? { signInUrl: started.auth.signInUrl, users: started.auth.users } : {}),
      },
      webhookDeliveries: () => recentWebhookDeliveries(stateClient, currentConfig),
      onError: (message) => stackLog.error(message, { event: 'local.web' }),
    }).catch((error: unknown) => {
      throw asPortError(error, 'web', requested.web);
    });
    undo.push(() => closeServer(web.server));

    const functionServers = {} as Record<EventFunction, Server>;
    const admission = {} as Record<EventFunction, AdmissionStats>;
    for (const fn of ['ingest', 'resize', 'cleanup', 'webhooks'] as const) {
      // As on Cloud Run: at most maxInstances × concurrency requests at once, 429 beyond.
      const limit = options.admission?.[fn] ?? admissionFromEnv(options.env ?? {}, fn) ?? admissionLimit(fn);
      const gated = admitAtMost(
        apps[fn],
        limit,
        () =>
          stackLog.debug('request refused: every instance busy', {
            event: 'local.admission',
            function: fn,
            status: 429,
            limit,
          }),
        REFUSAL_HOLD_MS,
      );
      admission[fn] = gated.admission;
      const server = createServer(gated);
      // Jobs may run for minutes; the push subscription's ack deadline is the real limit.
      server.requestTimeout = 0;
      await listen(server, requested[fn], host).catch((error: unknown) => {
        throw asPortError(error, fn, requested[fn]);
      });
      undo.push(() => closeServer(server));
      functionServers[fn] = server;
    }

    // Both emulators are waited for (and owned) before either failure is thrown, so that the
    // unwinding stops both.
    const [emulatorResult, firestoreResult] = await Promise.allSettled([emulatorStarting, firestoreStarting]);
    const emulator = emulatorResult.status === 'fulfilled' ? emulatorResult.value : undefined;
    if (emulator) {
      emulatorOwned = true;
      undo.push(() => emulator.stop());
    }
    const firestoreEmulator = firestoreResult.status === 'fulfilled' ? firestoreResult.value : undefined;
    if (firestoreEmulator) {
      firestoreOwned = true;
      // Exports the data (with dataDir) before the JVM ends, once no function runs any more.
      undo.push(() => firestoreEmulator.stop());
    }
    if (emulatorResult.status === 'rejected') throw emulatorResult.reason;
    if (firestoreResult.status === 'rejected') throw firestoreResult.reason;
    checkpoint();
    const emulatorHost = externalEmulator ?? emulator?.host;
    if (!emulatorHost) throw new Error('The Pub/Sub emulator did not start.');
    const firestoreHost = externalFirestore ?? firestoreEmulator?.host;
    if (!firestoreHost) throw new Error('The Firestore emulator did not start.');

    const ports: Record<PortName, number> = {
      web: web.port,
      storage: storageServer.port,
      pubsub: Number(emulatorHost.split(':').pop()),
      firestore: Number(firestoreHost.split(':').pop()),
      ingest: (functionServers.ingest.address() as AddressInfo).port,
      resize: (functionServers.resize.address() as AddressInfo).port,
      cleanup: (functionServers.cleanup.address() as AddressInfo).port,
      webhooks: (functionServers.webhooks.address() as AddressInfo).port,
    };
    const base = (port: number) => `http://${displayHost}:${port}`;
    const webUrl = base(ports.web);
    const urls: StackUrls = {
      web: `${webUrl}/`,
      api: `${webUrl}/uploads`,
      images: `${webUrl}${IMAGES_PATH}`,
      storage: storageServer.url,
      pubsub: emulatorHost,
      firestore: firestoreHost,
      ingest: base(ports.ingest),
      resize: base(ports.resize),
      cleanup: base(ports.cleanup),
      webhooks: base(ports.webhooks),
    };

    // The configuration: the user's pipeline settings, with where-things-are set by the stack.
    const userEnv = options.env ?? {};
    const origins = new Set(
      [...(userEnv.CORS_ORIGINS ?? '').split(','), webUrl, `http://localhost:${ports.web}`]
        .map((o) => o.trim())
        .filter(Boolean),
    );
    ownIssuer?.setCorsOrigins([...origins]);
    const config = loadConfig({
      // jwt against the stack's own issuer, unless the environment asks for another mode or issuer.
      ...started.settings.defaults,
      // The emulator stops pushing messages it saw refused many times (docs/local-stack.md):
      // cleanup's re-dispatch, every minute here, stands in for Pub/Sub's backoff.
      REDISPATCH_AFTER_MINUTES: LOCAL_REDISPATCH_AFTER_MINUTES,
      ...userEnv,
      ...started.settings.overrides,
      GOOGLE_CLOUD_PROJECT: projectId,
      UPLOADS_BUCKET: buckets.uploads,
      IMAGES_BUCKET: buckets.images,
      JOBS_TOPIC: topology.topics.jobs.name,
      EVENTS_TOPIC: topology.topics.events.name,
      JOBS_DEAD_LETTER_SUBSCRIPTION: topology.subscriptions.jobsDeadLetterCleanup.name,
      STORAGE_API_ENDPOINT: storageServer.url,
      PUBLIC_BASE_URL: urls.images,
      CORS_ORIGINS: [...origins].join(','),
    });
    imagesBucket = config.IMAGES_BUCKET;
    currentConfig = config;
    // Signed upload URLs: a throwaway key for the functions, its public half for the storage
    // server, and the page's origins allowed to PUT (the uploads bucket's CORS in production).
    const signingKey = generateSigningKey(projectId);
    storageServer.addSigningKey(signingKey.clientEmail, signingKey.publicKey);
    storageServer.setCorsOrigins(config.CORS_ORIGINS);

    // The universe domain is given so that the client does not probe for a GCE metadata server
    // (and warn about it) when it has no credentials, which the emulator does not need.
    const pubsub = new PubSub({
      projectId,
      apiEndpoint: emulatorHost,
      emulatorMode: true,
      clientOptions: { universeDomain: 'googleapis.com' },
    });
    undo.push(() => pubsub.close());
    storage = createStorageClient(config, signingKey);
    // The functions' Firestore clients (this one, and any made in this process while the stack
    // runs) find the emulator through FIRESTORE_EMULATOR_HOST, as they would in a child process.
    const previousFirestoreHost = process.env.FIRESTORE_EMULATOR_HOST;
    process.env.FIRESTORE_EMULATOR_HOST = firestoreHost;
    undo.push(() => {
      if (previousFirestoreHost === undefined) delete process.env.FIRESTORE_EMULATOR_HOST;
      else process.env.FIRESTORE_EMULATOR_HOST = previousFirestoreHost;
    });
    const firestore = createFirestoreClient(config);
    stateClient = firestore;
    undo.push(() => withTimeout(firestore.terminate(), 5_000));
    const { useDeps } = await import('../functions/runtime.js');
    useDeps(createDeps(config, { pubsub, storage, firestore, log: functionsLog }));
    ready = true;

    const provisioned = await provisionPubsub(pubsub, {
      project: projectId,
      endpoints: { resize: urls.resize, cleanup: urls.cleanup, webhooks: urls.webhooks },
      log: stackLog,
    });
    checkpoint();
    const pushNames = provisioned.subscriptions.filter((s) => s.pushEndpoint).map((s) => s.name);
    if (externalEmulator) {
      // An emulator that outlives the stack keeps the push subscriptions' messages for the next start.
      undo.push(() => withTimeout(pausePushSubscriptions(pubsub, pushNames), 5_000));
    }

    // Eventarc's storage trigger: finalize events of the uploads bucket go to ingest.
    const ingestBucket = buckets[topology.functions.ingest.bucket ?? 'uploads'];
    storageServer.addNotification(ingestBucket, `${urls.ingest}/`, { events: ['finalize'] });
    undo.push(() => storageServer.removeNotifications(ingestBucket));

    // Cloud Scheduler's job: a tick on the cleanup topic, like terraform/scheduler.tf publishes.
    const cleanupTopic = topology.topics[topology.functions.cleanup.topic ?? 'cleanup'].name;
    const tick = async (): Promise<string> => {
      const id = await pubsub.topic(cleanupTopic).publishMessage({
        json: { source: 'local-stack', job: topology.functions.cleanup.entryPoint },
        attributes: { origin: 'local-stack' },
      });
      stackLog.info('cleanup tick published', { event: 'local.tick', topic: cleanupTopic, messageId: id });
      return id;
    };
    if (interval > 0) {
      const timer = setInterval(() => {
        tick().catch((error: unknown) => stackLog.warn('cleanup tick not published', { event: 'local.tick', error }));
      }, interval * 1000);
      timer.unref();
      undo.push(() => clearInterval(timer));
    }

    // On stop: no new work, then a grace period for invocations in progress, then the rest.
    undo.push(async () => {
      ready = false;
      if (inFlight.size > 0) await withTimeout(Promise.allSettled([...inFlight]), options.drainMs ?? 5_000);
    });

    stackLog.debug('local stack started', {
      event: 'local.start',
      urls,
      emulator: externalEmulator ? 'external' : 'started',
      firestoreEmulator: externalFirestore ? 'external' : 'started',
    });

    let stopping: Promise<void> | undefined;
    const subscriptions = {
      ...Object.fromEntries(
        (Object.keys(topology.subscriptions) as SubscriptionKey[]).map((k) => [k, topology.subscriptions[k].name]),
      ),
      cleanupTrigger: triggerSubscriptionName('cleanup'),
    } as Record<SubscriptionKey | 'cleanupTrigger', string>;
    return {
      urls,
      ports,
      projectId,
      buckets,
      topics: Object.fromEntries(
        (Object.keys(topology.topics) as TopicKey[]).map((k) => [k, topology.topics[k].name]),
      ) as Record<TopicKey, string>,
      subscriptions,
      config,
      auth: started.auth,
      admission,
      cleanupIntervalSeconds: interval,
      emulator: externalEmulator ? 'external' : 'started',
      firestoreEmulator: externalFirestore ? 'external' : 'started',
      firestoreDatabase: config.FIRESTORE_DATABASE,
      dataDir: options.dataDir,
      tick,
      holdStorageRequests: (match, times) => storageServer.holdRequests(match, times),
      pauseFirestore: async () => {
        if (!firestoreEmulator)
          throw new Error('The Firestore emulator is external (FIRESTORE_EMULATOR_HOST): the stack cannot pause it.');
        await firestoreEmulator.pause();
        stackLog.info('Firestore emulator paused (outage)', { event: 'local.firestore', host: firestoreHost });
      },
      resumeFirestore: async () => {
        if (!firestoreEmulator)
          throw new Error('The Firestore emulator is external (FIRESTORE_EMULATOR_HOST): the stack cannot resume it.');
        await firestoreEmulator.resume();
        stackLog.info('Firestore emulator resumed', { event: 'local.firestore', host: firestoreHost });
      },
      stop: () =>
        (stopping ??= (async () => {
          await unwind();
          running = false;
          stackLog.info('local stack stopped', { event: 'local.stop' });
        })()),
    };
  } catch (error) {
    await unwind();
    // Wait for a half-started emulator too, so that nothing is left running.
    if (emulatorStarting && !emulatorOwned) await (await emulatorStarting.catch(() => undefined))?.stop();
    if (firestoreStarting && !firestoreOwned) await (await firestoreStarting.catch(() => undefined))?.stop();
    running = false;
    throw error;
  }
}

/** A part set up later in start(); the servers answer 503 until then, so reaching this unset is a bug. */
function requireStarted<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`${what} is used before the stack has started.`);
  return value;
}

function asPortError(error: unknown, name: PortName, port: number): unknown {
  return (error as { code?: string } | null)?.code === 'EADDRINUSE' ? new PortInUseError([{ name, port }]) : error;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

function withTimeout<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  const timeout = new AbortController();
  const expired = new Promise<undefined>((resolve) => {
    const timer = setTimeout(resolve, ms);
    timeout.signal.addEventListener('abort', () => clearTimeout(timer));
  });
  return Promise.race([work, expired]).finally(() => timeout.abort());
}
