/**
 * `npm run bench:operations`: the operations one image costs on its way through the pipeline,
 * counted, not derived from the code: a 12 MP photo-like JPEG (test/fixtures/images.ts
 * `makePhoto`, 4000×3000) is uploaded to `upload` (POST /uploads), its jobs are pulled from the
 * jobs topic and pushed to `resize` as the push subscription would, and its events are pulled.
 * Default WIDTHS and FORMATS. Per image: Cloud Storage Class A and Class B requests as the local
 * storage server saw them (deletes apart: free), Firestore documents read and written as the
 * state layer counts them, Pub/Sub publishes (jobs and events); priced per 1,000 images
 * ({@link OPS_PRICES}). Local storage server, Pub/Sub emulator, Firestore emulator (when the
 * design has one). It imports no state-layer module statically, so the same file runs on the
 * design before the Firestore move (docs/performance.md, "State in Firestore").
 */
import { pathToFileURL } from 'node:url';
import { parseCommandLine, refuse } from './cli.js';
import { type FirestoreCounter, NO_FIRESTORE, type OperationCounts, startCounting } from './operation-count.js';

/**
 * USD per operation. Cloud Storage Standard, regional (https://cloud.google.com/storage/pricing):
 * Class A $0.005 and Class B $0.0004 per 1,000. Firestore Native mode, regional (e.g.
 * europe-west1; https://cloud.google.com/firestore/pricing): $0.03 per 100,000 document reads and
 * $0.09 per 100,000 writes. Pub/Sub (https://cloud.google.com/pubsub/pricing): $40 per TiB, at
 * least 1,000 bytes per message, for the publish and again for each delivery.
 */
export const OPS_PRICES = {
  classA: 0.005 / 1000,
  classB: 0.0004 / 1000,
  firestoreRead: 0.03 / 100_000,
  firestoreWrite: 0.09 / 100_000,
  pubsubMessage: (1000 * 40) / 2 ** 40,
} as const;

/** One image's counts. */
export interface ImageOperations extends OperationCounts {
  readonly jobs: number;
  readonly events: number;
  readonly variants: number;
}

/** USD per 1,000 images: storage, Firestore, Pub/Sub (each job published and pushed, each event published). */
export function costPer1000(ops: ImageOperations): {
  storage: number;
  firestore: number;
  pubsub: number;
  total: number;
} {
  const storage = ops.classA * OPS_PRICES.classA + ops.classB * OPS_PRICES.classB;
  const firestore = ops.firestoreReads * OPS_PRICES.firestoreRead + ops.firestoreWrites * OPS_PRICES.firestoreWrite;
  const pubsub = (2 * ops.jobs + ops.events) * OPS_PRICES.pubsubMessage;
  return {
    storage: storage * 1000,
    firestore: firestore * 1000,
    pubsub: pubsub * 1000,
    total: (storage + firestore + pubsub) * 1000,
  };
}

/** The state layer's counter, when this design has one. */
async function firestoreCounter(): Promise<FirestoreCounter> {
  try {
    const module = (await import(`../shared/state/${'image-doc'}.js`)) as {
      firestoreOperations: { reads: number; writes: number };
      resetFirestoreOperations(): void;
    };
    return { operations: module.firestoreOperations, reset: module.resetFirestoreOperations };
  } catch {
    return NO_FIRESTORE;
  }
}

/** Uploads `count` 12 MP photos one after another and counts each one's operations. */
export async function measureOperations(
  count: number,
  size = { width: 4000, height: 3000 },
): Promise<ImageOperations[]> {
  const { getTestServer } = await import('@google-cloud/functions-framework/testing');
  const { default: request } = await import('supertest');
  await import('../functions/index.js');
  const { useDeps } = await import('../functions/runtime.js');
  const { makePhoto } = await import('../test/fixtures/images.js');
  const { pullEvents, pullJobs, pushBody, startTestPipeline, TEST_PROJECT } = await import(
    '../test/fixtures/pipeline.js'
  );
  const counter = await firestoreCounter();
  // Default WIDTHS, FORMATS and AVIF effort (the fixture's small test settings off).
  const pipeline = await startTestPipeline({ WIDTHS: '', FORMATS: '', AVIF_EFFORT: '', SHARP_CONCURRENCY: '' });
  useDeps(pipeline.deps);
  const results: ImageOperations[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const image = await makePhoto({ ...size, seed: 101 + i });
      const counting = startCounting(pipeline.storageServer as never, counter);
      const response = await request(getTestServer('upload'))
        .post('/uploads')
        .set('Content-Type', 'application/octet-stream')
        .send(image);
      if (response.status !== 202)
        throw new Error(`upload answered ${response.status}: ${JSON.stringify(response.body)}`);
      const id = response.body.imageId as string;
      const jobs = (await pullJobs(pipeline.jobs)).filter((j) => j.job.imageId === id);
      const path = `/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`;
      for (const { message } of jobs) {
        const pushed = await request(getTestServer('resize')).post(path).send(pushBody(message));
        if (pushed.status !== 204) throw new Error(`resize answered ${pushed.status} to job ${message.id}`);
      }
      const events = (await pullEvents(pipeline.events, { family: 'all' })).filter((e) => e.imageId === id);
      const counts = counting.stop();
      if (!events.some((e) => e.type === 'image.ready')) throw new Error(`no image.ready for ${id}`);
      results.push({ ...counts, jobs: jobs.length, events: events.length, variants: jobs[0]?.job.plan.length ?? 0 });
    }
  } finally {
    await pipeline.stop();
  }
  return results;
}

const USAGE = `usage: npm run bench:operations -- [options]

Uploads 12 MP photo-like JPEGs (4000×3000, generated) one at a time through upload → jobs →
resize → image.ready at the default WIDTHS and FORMATS, on the local storage server and the
Pub/Sub (and Firestore) emulators, and counts per image: Cloud Storage Class A and Class B
requests, Firestore documents read and written, Pub/Sub publishes; prices them per 1,000 images.
Prints Markdown (and the JSON with --json). Starts gcloud's Pub/Sub and Firestore emulators
unless PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST name running ones.

Options:
  --images N   photos to upload (default 3; each has its own seed)
  --label L    the design's name in the table (default "this checkout")
  --json       print the JSON of every image too
  -h, --help   print this and exit
`;

/** The table row of a run: mean counts per image and the cost per 1,000. */
export function operationsRow(label: string, results: readonly ImageOperations[]): string[] {
  const mean = (pick: (r: ImageOperations) => number) => results.reduce((s, r) => s + pick(r), 0) / results.length;
  const fmt = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(1));
  const m: ImageOperations = {
    classA: mean((r) => r.classA),
    classB: mean((r) => r.classB),
    deletes: mean((r) => r.deletes),
    lists: mean((r) => r.lists),
    firestoreReads: mean((r) => r.firestoreReads),
    firestoreWrites: mean((r) => r.firestoreWrites),
    jobs: mean((r) => r.jobs),
    events: mean((r) => r.events),
    variants: mean((r) => r.variants),
    byRoute: {},
  };
  const cost = costPer1000(m);
  return [
    label,
    fmt(m.variants),
    `${fmt(m.classA)} (${fmt(m.lists)} lists)`,
    fmt(m.classB),
    fmt(m.deletes),
    `${fmt(m.firestoreReads)} / ${fmt(m.firestoreWrites)}`,
    `${fmt(m.jobs)} + ${fmt(m.events)}`,
    `$${cost.storage.toFixed(4)}`,
    `$${cost.firestore.toFixed(4)}`,
    `$${cost.pubsub.toFixed(4)}`,
    `**$${cost.total.toFixed(4)}**`,
  ];
}

async function main(): Promise<void> {
  const values = parseCommandLine(
    process.argv.slice(2),
    {
      images: { type: 'string', default: '3' },
      label: { type: 'string', default: 'this checkout' },
      json: { type: 'boolean', default: false },
    },
    USAGE,
  );
  if (!/^\d+$/.test(values.images) || Number(values.images) < 1)
    refuse(`--images must be a whole number ≥ 1, got ${JSON.stringify(values.images)}`, USAGE);
  const results = await measureOperations(Number(values.images));
  const header = [
    'design',
    'variants',
    'Class A',
    'Class B',
    'deletes (free)',
    'Firestore reads / writes',
    'Pub/Sub jobs + events',
    'storage $/1,000',
    'Firestore $/1,000',
    'Pub/Sub $/1,000',
    'total $/1,000',
  ];
  const row = operationsRow(values.label, results);
  process.stdout.write(`| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|\n| ${row.join(' | ')} |\n`);
  if (values.json) process.stdout.write(`${JSON.stringify(results)}\n`);
  // Nothing else keeps the process alive once the pipeline stopped, but clients may hold sockets.
  process.exit(0);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `bench:operations failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
