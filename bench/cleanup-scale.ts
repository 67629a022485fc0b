/**
 * `npm run cleanup-scale`: one cleanup pass over N image documents in Firestore (the emulator),
 * N metadata-only originals on the local storage server and the real Pub/Sub emulator. Seeded:
 * N ready images and, among them, `--stuck` images stuck in processing (dispatched long enough
 * ago that `staleAt` passed). The pass must re-dispatch every stuck one (counted as jobs on a pull
 * subscription of the jobs topic), and its time and operations (Cloud Storage Class A and B as
 * the storage server saw them, Firestore documents read and written as the state layer counted
 * them, Pub/Sub publishes) should not grow with N: the queries find what is due, and only the
 * orphan sweep walks objects, CLEANUP_MAX_OBJECTS a pass. Options: `--help` ({@link USAGE});
 * results: docs/performance.md ("State in Firestore"). The test suite runs the smallest version
 * (test/integration/cleanup-scale.test.ts).
 */
import { pathToFileURL } from 'node:url';
import type { Message, Subscription } from '@google-cloud/pubsub';
import type { Config } from '../shared/core/config.js';
import type { OriginalInfo } from '../shared/core/schemas.js';
import { createDeps, type PipelineDeps } from '../shared/cloud/deps.js';
import { runCleanup, type CleanupSummary } from '../shared/pipeline/cleanup.js';
import { firestoreOperations, type ImageDoc, resetFirestoreOperations } from '../shared/state/image-doc.js';
import { parseCommandLine, refuse } from './cli.js';
import { type OperationCounts, startCounting } from './operation-count.js';
import { withScaleStack } from './scale-stack.js';
import { bulkCreate, hexId, originalObjects, readyImageDoc, stuckImageDoc, writeImageDocs } from './seed-images.js';
import { markdownTable } from './stats.js';

export { bulkCreate } from './seed-images.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;

/** Original sizes cycled through: a small web image, 2 MP and a 12 MP photo. */
export const SIZES = [
  [640, 480],
  [1600, 1200],
  [4000, 3000],
] as const;

/** The info of the i-th seeded image. */
export function infoOf(i: number): OriginalInfo {
  const [width, height] = SIZES[i % SIZES.length] ?? SIZES[0];
  return { format: 'jpeg', width, height, bytes: 0, contentType: 'image/jpeg' };
}

/** What to seed and the pass's limits. */
export interface ScaleOptions {
  /** Image documents (and originals), the stuck ones included. */
  readonly images: number;
  /** Of those, stuck in processing. */
  readonly stuck: number;
  /** CLEANUP_MAX_OBJECTS. */
  readonly budget: number;
  /** CLEANUP_MAX_SECONDS. */
  readonly maxSeconds: number;
}

/** What was seeded, and how long it took. */
export interface Seeded {
  readonly stuck: string[];
  /** Jobs a re-dispatch of the stuck images publishes (their plans split by FANOUT_STRATEGY). */
  readonly stuckJobs: number;
  readonly seconds: number;
  readonly originalsSeconds: number;
  readonly documentsSeconds: number;
}

/** Seeds N originals and N documents (N − stuck ready, `stuck` stuck), spread evenly through the ids. */
export async function seedScale(deps: PipelineDeps, storageUrl: string, options: ScaleOptions): Promise<Seeded> {
  if (options.stuck > options.images) throw new Error(`--stuck ${options.stuck} exceeds --images ${options.images}`);
  const started = Date.now();
  const { config } = deps;
  const now = deps.now();
  const ids = Array.from({ length: options.images }, hexId).sort();
  const stuckAt = new Set(
    Array.from({ length: options.stuck }, (_, i) => Math.floor(((i + 0.5) * options.images) / options.stuck)),
  );
  await bulkCreate(storageUrl, config.UPLOADS_BUCKET, originalObjects(ids, new Date(now.getTime() - DAY)));
  const originalsSeconds = (Date.now() - started) / 1000;
  const documentsStarted = Date.now();
  const dispatchedAt = new Date(now.getTime() - 2 * config.REDISPATCH_AFTER_MINUTES * MIN);
  const stuck: string[] = [];
  let stuckJobs = 0;
  // Built and written in slices, so 100,000 documents never sit in memory at once.
  for (let start = 0; start < ids.length; start += 10_000) {
    const docs: ImageDoc[] = [];
    for (let i = start; i < Math.min(ids.length, start + 10_000); i++) {
      const id = ids[i] as string;
      if (stuckAt.has(i)) {
        const doc = stuckImageDoc(config, id, infoOf(i), dispatchedAt);
        stuck.push(id);
        stuckJobs += doc.jobCount;
        docs.push(doc);
      } else docs.push(readyImageDoc(config, config, id, infoOf(i), new Date(now.getTime() - DAY)));
    }
    await writeImageDocs(deps.firestore, docs);
  }
  const documentsSeconds = (Date.now() - documentsStarted) / 1000;
  return { stuck, stuckJobs, seconds: (Date.now() - started) / 1000, originalsSeconds, documentsSeconds };
}

/** Pulls what is on `subscription` until `quietMs` pass without a message (acking each). */
export async function pullAll(subscription: Subscription, quietMs = 3000, timeoutMs = 120_000): Promise<Message[]> {
  const received: Message[] = [];
  let last = Date.now();
  const deadline = Date.now() + timeoutMs;
  const onMessage = (message: Message) => {
    received.push(message);
    message.ack();
    last = Date.now();
  };
  subscription.on('message', onMessage);
  try {
    while (Date.now() < deadline && Date.now() - last < quietMs) await new Promise((r) => setTimeout(r, 100));
  } finally {
    subscription.removeListener('message', onMessage);
    await subscription.close();
  }
  return received;
}

/** The pass, as measured. */
export interface ScaleReport {
  readonly options: ScaleOptions;
  readonly seeded: Omit<Seeded, 'stuck'>;
  readonly summary: CleanupSummary;
  readonly seconds: number;
  readonly operations: OperationCounts;
  /** Messages published to the jobs and events topics during the pass. */
  readonly jobsPublished: number;
  readonly eventsPublished: number;
  /** Stuck images with a job of the new dispatch on the jobs topic. */
  readonly redispatchedImages: number;
}

/** Seeds, then runs one pass with real collaborators and counts what it did. */
export async function runScale(
  stack: {
    deps: PipelineDeps;
    config: Config;
    storage: Parameters<typeof startCounting>[0] & { url: string };
    jobs: Subscription;
    events: Subscription;
  },
  options: ScaleOptions,
): Promise<ScaleReport> {
  const { stuck, ...seeded } = await seedScale(stack.deps, stack.storage.url, options);
  const deps = createDeps(
    { ...stack.config, CLEANUP_MAX_OBJECTS: options.budget, CLEANUP_MAX_SECONDS: options.maxSeconds },
    { storage: stack.deps.storage, pubsub: stack.deps.pubsub, firestore: stack.deps.firestore, log: stack.deps.log },
  );
  const counting = startCounting(stack.storage, { operations: firestoreOperations, reset: resetFirestoreOperations });
  const started = Date.now();
  const summary = await runCleanup(deps);
  const seconds = (Date.now() - started) / 1000;
  const operations = counting.stop();
  const [jobs, events] = await Promise.all([pullAll(stack.jobs), pullAll(stack.events)]);
  const wanted = new Set(stuck);
  const redispatched = new Set<string>();
  for (const message of jobs) {
    const job = JSON.parse(message.data.toString()) as { imageId: string; dispatch: number };
    if (wanted.has(job.imageId) && job.dispatch === 2) redispatched.add(job.imageId);
  }
  return {
    options,
    seeded,
    summary,
    seconds,
    operations,
    jobsPublished: jobs.length,
    eventsPublished: events.length,
    redispatchedImages: redispatched.size,
  };
}

/** The report's row cells (docs/performance.md puts runs side by side). */
export function reportRow(report: ScaleReport): string[] {
  const o = report.operations;
  return [
    report.options.images.toLocaleString('en-US'),
    report.seeded.seconds.toFixed(1),
    `${report.redispatchedImages} / ${report.options.stuck}`,
    report.seconds.toFixed(1),
    String(o.classA),
    String(o.lists),
    String(o.classB),
    String(o.deletes),
    String(o.firestoreReads),
    String(o.firestoreWrites),
    String(report.jobsPublished + report.eventsPublished),
  ];
}

/** Column headings of {@link reportRow}. */
export const REPORT_COLUMNS = [
  'images',
  'seeding s',
  're-dispatched in the pass',
  'pass s',
  'Class A',
  'of which lists',
  'Class B',
  'deletes (free)',
  'Firestore reads',
  'Firestore writes',
  'Pub/Sub publishes',
];

/** The report as markdown. */
export function formatScaleReport(report: ScaleReport): string {
  const o = report.options;
  const steps = Object.entries(report.summary.steps)
    .map(([step, s]) => `${step} ${s.outcome} (${s.reviewed})`)
    .join(', ');
  return [
    `## Cleanup at scale: ${o.images} image documents, ${o.stuck} stuck; CLEANUP_MAX_OBJECTS ${o.budget}, CLEANUP_MAX_SECONDS ${o.maxSeconds}`,
    '',
    `Seeding ${report.seeded.seconds.toFixed(1)} s (originals ${report.seeded.originalsSeconds.toFixed(1)} s through the bulk endpoint, documents ${report.seeded.documentsSeconds.toFixed(1)} s in batched writes of 500).`,
    '',
    markdownTable(REPORT_COLUMNS, [reportRow(report)]),
    '',
    `Steps: ${steps}. Jobs published ${report.jobsPublished} (expected ${report.seeded.stuckJobs}), events ${report.eventsPublished}; errors ${report.summary.errors}.`,
  ].join('\n');
}

/** What `--help` prints. */
const USAGE = `usage: npm run cleanup-scale -- [options]

Seeds N image documents in Firestore (batched writes of 500) and N metadata-only originals on a
local storage server, of which --stuck are stuck in processing (their staleAt passed), then runs
ONE cleanup pass with real collaborators and reports its wall time and operations: Cloud Storage
Class A and Class B (as the storage server saw them), Firestore documents read and written (as
the state layer counted them), Pub/Sub publishes. Prints Markdown; exits 1 unless every stuck
image was re-dispatched in that pass within --max-seconds. Needs gcloud's Pub/Sub and Firestore
emulators unless PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST are set; each run uses a
Firestore database of its own.

Options (whole numbers):
  --images N        image documents and originals to seed (default 10000)
  --stuck N         of those, stuck in processing (default 50)
  --budget N        CLEANUP_MAX_OBJECTS: entries the orphan sweep lists, documents a query returns (default 5000)
  --max-seconds N   CLEANUP_MAX_SECONDS: the longest the pass may take (default 240)
  -h, --help        print this and exit
`;

/** The options of a command line; exits 0 after --help, 2 with the usage for a bad one. */
export function scaleOptionsFrom(args: readonly string[]): ScaleOptions {
  const values: Record<string, string | undefined> = parseCommandLine(
    args,
    {
      images: { type: 'string', default: '10000' },
      stuck: { type: 'string', default: '50' },
      budget: { type: 'string', default: '5000' },
      'max-seconds': { type: 'string', default: '240' },
    },
    USAGE,
  );
  const atLeastOne = new Set(['images', 'budget', 'max-seconds']);
  const whole = (name: string): number => {
    const raw = values[name];
    const minimum = atLeastOne.has(name) ? 1 : 0;
    if (typeof raw !== 'string' || !/^\d+$/.test(raw) || Number(raw) < minimum)
      refuse(`--${name} must be a whole number ≥ ${minimum}, got ${JSON.stringify(raw)}`, USAGE);
    return Number(raw);
  };
  const options = {
    images: whole('images'),
    stuck: whole('stuck'),
    budget: whole('budget'),
    maxSeconds: whole('max-seconds'),
  };
  if (options.stuck > options.images) refuse(`--stuck ${options.stuck} exceeds --images ${options.images}`, USAGE);
  return options;
}

async function main(): Promise<void> {
  const options = scaleOptionsFrom(process.argv.slice(2));
  process.exitCode = await withScaleStack(async (stack) => {
    const report = await runScale(stack, options);
    process.stdout.write(`${formatScaleReport(report)}\n`);
    return report.redispatchedImages === options.stuck && report.seconds <= options.maxSeconds ? 0 : 1;
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `cleanup-scale failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
