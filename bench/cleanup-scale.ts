/**
 * `npm run cleanup-scale`: cleanup over many originals on the local storage server, on a fake
 * clock one schedule tick per pass, against the bound ⌈N ÷ CLEANUP_MAX_OBJECTS⌉ + 1 and
 * CLEANUP_MAX_SECONDS. Options: `--help` ({@link USAGE}); results: docs/performance.md. The test
 * suite runs a smaller version (test/integration/cleanup-scale.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { runCleanup, type CleanupSummary } from '../shared/pipeline/cleanup.js';
import { createDeps, type PipelineDeps } from '../shared/cloud/deps.js';
import {
  errorRecordName,
  manifestName,
  ORIGINAL_METADATA,
  originalName,
  OUTCOME_MARKER,
  outcomeMarkerName,
} from '../shared/core/naming.js';
import { parseCommandLine, refuse } from './cli.js';
import { withScaleStack } from './scale-stack.js';
import { markdownTable } from './stats.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
/** The deployed schedule: one pass every 15 minutes. */
const TICK_MS = 15 * MIN;

/** What to plant. */
export interface ScaleOptions {
  readonly originals: number;
  /** CLEANUP_MAX_OBJECTS. */
  readonly budget: number;
  /** Stuck images (dispatched, no output, no record), placed at or beyond `beyond` in listing order. */
  readonly stuck: number;
  /** Images whose failure record's announcement is pending (writer died), also beyond `beyond`. */
  readonly pending: number;
  /** Output folders whose original is gone, old enough to delete. */
  readonly orphans: number;
  /** Stale `incoming/` objects. */
  readonly incoming: number;
  /** Position in listing order from which the stuck and pending images are placed. */
  readonly beyond: number;
  /** CLEANUP_MAX_SECONDS. */
  readonly maxSeconds: number;
}

/** One pass, as measured. */
export interface PassRow {
  readonly pass: number;
  readonly seconds: number;
  readonly summary: CleanupSummary;
}

/** The figure. */
export interface ScaleReport {
  readonly options: ScaleOptions;
  readonly seedSeconds: number;
  /** ⌈N ÷ budget⌉ + 1. */
  readonly bound: number;
  readonly passes: PassRow[];
  /** The pass in which each planted problem was handled (undefined: never). */
  readonly reachedAt: {
    stuck: Array<number | undefined>;
    pending: Array<number | undefined>;
    orphans: Array<number | undefined>;
  };
  /** Passes until every planted problem was handled, or undefined. */
  readonly passesNeeded: number | undefined;
  readonly slowestPassSeconds: number;
}

function hexId(): string {
  return randomBytes(16).toString('hex');
}

/** Creates objects (metadata-only unless `data` is given) through the local storage server's `POST /_admin/bulk`. */
export async function bulkCreate(storageUrl: string, bucket: string, objects: readonly unknown[]): Promise<void> {
  for (let start = 0; start < objects.length; start += 10_000) {
    const response = await fetch(`${storageUrl}/_admin/bulk`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bucket, objects: objects.slice(start, start + 10_000) }),
    });
    if (response.status !== 201)
      throw new Error(`bulk create in ${bucket}: ${response.status} ${await response.text()}`);
  }
}

/** What was planted. */
export interface Planted {
  readonly stuck: string[];
  readonly pending: string[];
  readonly orphans: string[];
  /** Fake time of the seeding: originals were dispatched then. */
  readonly t0: number;
}

/**
 * Seeds the buckets: N originals in sorted id order, finished (a published outcome marker and its
 * manifest) except the stuck and pending ones, which are spread evenly from position `beyond` on.
 */
export async function seedScale(
  storageUrl: string,
  buckets: { uploads: string; images: string },
  options: ScaleOptions,
): Promise<Planted> {
  const t0 = Date.now();
  const ids = Array.from({ length: options.originals }, hexId).sort();
  const special = options.stuck + options.pending;
  const span = options.originals - options.beyond;
  if (span < special) throw new Error(`not enough originals beyond ${options.beyond} for ${special} planted images`);
  const positions = Array.from(
    { length: special },
    (_, i) => options.beyond + Math.floor(((i + 0.5) * span) / special),
  );
  const stuck = new Set<string>();
  const pending = new Set<string>();
  for (const [i, position] of positions.entries()) {
    const id = ids[position];
    if (id === undefined) throw new Error(`position ${position} is past the ${ids.length} seeded originals`);
    if ((i % 2 === 0 && stuck.size < options.stuck) || pending.size >= options.pending) stuck.add(id);
    else pending.add(id);
  }
  const created = new Date(t0 - 10 * MIN).toISOString();
  const dispatched = new Date(t0 - 5 * MIN).toISOString();
  const originals = ids.map((id) => ({
    name: originalName(id),
    contentType: 'image/jpeg',
    timeCreated: created,
    metadata: {
      [ORIGINAL_METADATA.imageId]: id,
      [ORIGINAL_METADATA.format]: 'jpeg',
      [ORIGINAL_METADATA.width]: '640',
      [ORIGINAL_METADATA.height]: '480',
      [ORIGINAL_METADATA.dispatchedAt]: dispatched,
      [ORIGINAL_METADATA.redispatches]: '0',
    },
  }));
  // Every finished image has its outcome marker (the arbiter) and the derived record beside its
  // variants; a pending one's holder died 10 minutes ago (docs/record-protocol.md).
  const markers = ids
    .filter((id) => !stuck.has(id))
    .map((id) => {
      const failed = pending.has(id);
      const record = { v: 1, id, code: 'image_failed', message: 'planted', failedAt: created, retryable: false };
      return {
        name: outcomeMarkerName(id),
        contentType: 'application/json',
        timeCreated: created,
        ...(failed ? { data: JSON.stringify({ v: 1, outcome: 'failed', record }) } : {}),
        metadata: {
          [OUTCOME_MARKER.keys.outcome]: failed ? 'failed' : 'ready',
          [OUTCOME_MARKER.keys.eventState]: failed ? OUTCOME_MARKER.states.pending : OUTCOME_MARKER.states.published,
          [OUTCOME_MARKER.keys.writer]: failed ? 'job:crashed' : 'job:done',
          ...(failed ? { [OUTCOME_MARKER.keys.retryable]: 'false' } : {}),
        },
      };
    });
  const records = ids
    .filter((id) => !stuck.has(id))
    .map((id) =>
      pending.has(id)
        ? { name: errorRecordName(id), contentType: 'application/json', timeCreated: created }
        : { name: manifestName(id), contentType: 'application/json', timeCreated: created },
    );
  const orphans = Array.from({ length: options.orphans }, hexId);
  const old = new Date(t0 - 30 * DAY).toISOString();
  const orphanObjects = orphans.map((id) => ({
    name: `${id}/96w.jpg`,
    contentType: 'image/jpeg',
    timeCreated: old,
    metadata: { width: '96', height: '72' },
  }));
  const incoming = Array.from({ length: options.incoming }, (_, i) => ({
    name: `incoming/forgotten-${i}.jpg`,
    timeCreated: old,
  }));
  await bulkCreate(storageUrl, buckets.uploads, [...originals, ...markers, ...incoming]);
  await bulkCreate(storageUrl, buckets.images, [...records, ...orphanObjects]);
  return { stuck: [...stuck], pending: [...pending], orphans, t0 };
}

/**
 * Runs passes (pass k at t0 + 31 min + k ticks) until every planted problem is handled or
 * `maxPasses` ran. Handled: a stuck image was dispatched again (`redispatches` ≥ 1) or recorded;
 * a pending announcement is published; an orphan folder is gone.
 */
export async function runScalePasses(
  base: PipelineDeps,
  planted: Planted,
  options: ScaleOptions,
  maxPasses: number,
): Promise<Omit<ScaleReport, 'seedSeconds'>> {
  const uploads = base.storage.bucket(base.config.UPLOADS_BUCKET);
  const images = base.storage.bucket(base.config.IMAGES_BUCKET);
  const reachedAt = {
    stuck: planted.stuck.map((): number | undefined => undefined),
    pending: planted.pending.map((): number | undefined => undefined),
    orphans: planted.orphans.map((): number | undefined => undefined),
  };
  const passes: PassRow[] = [];
  const config = { ...base.config, CLEANUP_MAX_OBJECTS: options.budget, CLEANUP_MAX_SECONDS: options.maxSeconds };
  for (let pass = 1; pass <= maxPasses; pass++) {
    const offset = planted.t0 + 31 * MIN + (pass - 1) * TICK_MS - Date.now();
    const deps = createDeps(config, {
      storage: base.storage,
      pubsub: base.pubsub,
      log: base.log,
      now: () => new Date(Date.now() + offset),
    });
    const started = Date.now();
    const summary = await runCleanup(deps);
    passes.push({ pass, seconds: (Date.now() - started) / 1000, summary });
    await Promise.all([
      ...planted.stuck.map(async (id, i) => {
        if (reachedAt.stuck[i] !== undefined) return;
        const [metadata] = await uploads.file(originalName(id)).getMetadata();
        if (Number(metadata.metadata?.[ORIGINAL_METADATA.redispatches] ?? 0) >= 1) reachedAt.stuck[i] = pass;
      }),
      ...planted.pending.map(async (id, i) => {
        if (reachedAt.pending[i] !== undefined) return;
        const [metadata] = await uploads.file(outcomeMarkerName(id)).getMetadata();
        if (metadata.metadata?.[OUTCOME_MARKER.keys.eventState] === OUTCOME_MARKER.states.published)
          reachedAt.pending[i] = pass;
      }),
      ...planted.orphans.map(async (id, i) => {
        if (reachedAt.orphans[i] !== undefined) return;
        const [exists] = await images.file(`${id}/96w.jpg`).exists();
        if (!exists) reachedAt.orphans[i] = pass;
      }),
    ]);
    const all = [...reachedAt.stuck, ...reachedAt.pending, ...reachedAt.orphans];
    if (all.every((p) => p !== undefined)) break;
  }
  const all = [...reachedAt.stuck, ...reachedAt.pending, ...reachedAt.orphans];
  return {
    options,
    bound: Math.ceil(options.originals / options.budget) + 1,
    passes,
    reachedAt,
    passesNeeded: all.every((p) => p !== undefined) ? Math.max(0, ...(all as number[])) : undefined,
    slowestPassSeconds: Math.max(...passes.map((p) => p.seconds)),
  };
}

/** The report as markdown (docs/performance.md). */
export function formatScaleReport(report: ScaleReport): string {
  const o = report.options;
  const rows = report.passes.map((p) => [
    String(p.pass),
    p.seconds.toFixed(1),
    String(p.summary.steps.originals.reviewed),
    String(p.summary.steps.records.reviewed),
    String(p.summary.steps.orphans.reviewed),
    String(p.summary.steps.incoming.reviewed),
    String(p.summary.redispatched),
    String(p.summary.announcementsSettled),
    String(p.summary.orphansDeleted),
    String(p.summary.incomingDeleted),
  ]);
  return [
    `## Cleanup at scale: ${o.originals} originals, CLEANUP_MAX_OBJECTS ${o.budget}, CLEANUP_MAX_SECONDS ${o.maxSeconds}`,
    '',
    `Planted beyond position ${o.beyond}: ${o.stuck} stuck images and ${o.pending} pending announcements; also ${o.orphans} orphan folders and ${o.incoming} stale incoming/ objects. Seeding: ${report.seedSeconds.toFixed(1)} s.`,
    '',
    markdownTable(
      [
        'pass',
        'seconds',
        'originals',
        'records',
        'folders',
        'incoming',
        're-dispatched',
        'settled',
        'orphans deleted',
        'incoming deleted',
      ],
      rows,
    ),
    '',
    `Every planted problem handled by pass ${report.passesNeeded ?? 'never'} (bound ⌈N ÷ budget⌉ + 1 = ${report.bound}); slowest pass ${report.slowestPassSeconds.toFixed(1)} s of ${o.maxSeconds} s.`,
  ].join('\n');
}

/** What `--help` prints. */
const USAGE = `usage: npm run cleanup-scale -- [options]

Seeds metadata-only originals (with their records) on a local storage server through its bulk
endpoint, plants stuck images, pending announcements and orphans beyond a position in listing
order, then runs cleanup passes on a fake clock, one 15-minute schedule tick per pass, until every
planted problem is handled. Prints a Markdown table; exits 1 when a problem took more passes than
⌈originals ÷ budget⌉ + 1 or a pass took longer than --max-seconds. Needs gcloud's Pub/Sub emulator
unless PUBSUB_EMULATOR_HOST is set.

Options (whole numbers):
  --originals N     originals to seed (default 20000)
  --budget N        CLEANUP_MAX_OBJECTS: objects each cleanup step examines per pass (default 5000)
  --stuck N         stuck images: dispatched, no output, no record (default 20)
  --pending N       images whose failure announcement is pending (default 10)
  --orphans N       output folders whose original is gone (default 10)
  --incoming N      stale incoming/ objects (default 10)
  --beyond N        listing position from which stuck and pending images are placed (default 15000)
  --max-seconds N   CLEANUP_MAX_SECONDS: the longest a pass may take (default 240)
  -h, --help        print this and exit
`;

/** The options of a command line; exits 0 after --help, 2 with the usage for a bad one. */
function scaleOptionsFrom(args: readonly string[]): ScaleOptions {
  const values: Record<string, string | undefined> = parseCommandLine(
    args,
    {
      originals: { type: 'string', default: '20000' },
      budget: { type: 'string', default: '5000' },
      stuck: { type: 'string', default: '20' },
      pending: { type: 'string', default: '10' },
      orphans: { type: 'string', default: '10' },
      incoming: { type: 'string', default: '10' },
      beyond: { type: 'string', default: '15000' },
      'max-seconds': { type: 'string', default: '240' },
    },
    USAGE,
  );
  // Counts of planted problems may be 0; sizes, budgets and time limits may not.
  const atLeastOne = new Set(['originals', 'budget', 'max-seconds']);
  const whole = (name: string): number => {
    const raw = values[name];
    const minimum = atLeastOne.has(name) ? 1 : 0;
    if (typeof raw !== 'string' || !/^\d+$/.test(raw) || Number(raw) < minimum)
      refuse(`--${name} must be a whole number ≥ ${minimum}, got ${JSON.stringify(raw)}`, USAGE);
    return Number(raw);
  };
  return {
    originals: whole('originals'),
    budget: whole('budget'),
    stuck: whole('stuck'),
    pending: whole('pending'),
    orphans: whole('orphans'),
    incoming: whole('incoming'),
    beyond: whole('beyond'),
    maxSeconds: whole('max-seconds'),
  };
}

async function main(): Promise<void> {
  const options = scaleOptionsFrom(process.argv.slice(2));
  process.exitCode = await withScaleStack(async (deps, storageUrl, config) => {
    const seeding = Date.now();
    const planted = await seedScale(
      storageUrl,
      { uploads: config.UPLOADS_BUCKET, images: config.IMAGES_BUCKET },
      options,
    );
    const seedSeconds = (Date.now() - seeding) / 1000;
    const bound = Math.ceil(options.originals / options.budget) + 1;
    const report = { ...(await runScalePasses(deps, planted, options, bound + 2)), seedSeconds };
    process.stdout.write(`${formatScaleReport(report)}\n`);
    return report.passesNeeded !== undefined &&
      report.passesNeeded <= bound &&
      report.slowestPassSeconds <= options.maxSeconds
      ? 0
      : 1;
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
