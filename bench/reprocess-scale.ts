/**
 * The reprocess backfill at scale: seeds N ready image documents made with an older recipe
 * (WIDTHS without 2048) in Firestore (the emulator; batched writes) and their metadata-only
 * originals on the local storage server, prices the backlog with a dry run, then runs backfill
 * passes on a fake clock (one every 15 minutes) with a per-pass cap and a daily CPU budget until
 * every image was dispatched once. Reports the dry run, every pass and how many passes and days
 * it took. Options: `--help` ({@link USAGE}).
 *
 * The test suite runs it at 150 images (test/integration/reprocess-scale.test.ts).
 */
import { pathToFileURL } from 'node:url';
import type { Config } from '../shared/core/config.js';
import { recipeOf } from '../shared/core/recipe.js';
import { createDeps, type PipelineDeps } from '../shared/cloud/deps.js';
import { runReprocess, type ReprocessSummary } from '../shared/pipeline/reprocess.js';
import { IMAGES_COLLECTION, type ImageDoc, imageDocFrom } from '../shared/state/image-doc.js';
import { parseCommandLine, refuse } from './cli.js';
import { infoOf } from './cleanup-scale.js';
import { withScaleStack } from './scale-stack.js';
import { bulkCreate, hexId, originalObjects, readyImageDoc, writeImageDocs } from './seed-images.js';
import { markdownTable } from './stats.js';

const TICK_MS = 15 * 60_000;
/** The recipe the seeded manifests were made with (before recipes were recorded). */
const OLD_WIDTHS = [320, 640, 1024, 1600];

export interface BackfillOptions {
  readonly images: number;
  readonly maxPerPass: number;
  readonly cpuSecondsPerDay: number;
}

export interface BackfillReport {
  readonly options: BackfillOptions;
  readonly dry: ReprocessSummary;
  readonly passes: ReadonlyArray<ReprocessSummary & { pass: number; at: string }>;
  /** Originals stamped with an update dispatch, and any dispatched more than once. */
  readonly dispatchedImages: number;
  readonly dispatchedTwice: number;
  /** The seeded images' recipe hash. */
  readonly oldRecipe?: string;
}

/** The recipe the seeded images were made with: the deployed one but {@link OLD_WIDTHS}. */
export function oldRecipe(config: Config): Config {
  return { ...config, WIDTHS: OLD_WIDTHS };
}

/** Seeds N ready images made with the old recipe: documents and their (metadata-only) originals. */
export async function seedOutdated(deps: PipelineDeps, storageUrl: string, images: number): Promise<string[]> {
  const { config } = deps;
  const ids = Array.from({ length: images }, hexId).sort();
  const created = new Date(Date.now() - 86_400_000);
  await bulkCreate(storageUrl, config.UPLOADS_BUCKET, originalObjects(ids, created));
  const old = oldRecipe(config);
  for (let start = 0; start < ids.length; start += 10_000)
    await writeImageDocs(
      deps.firestore,
      ids.slice(start, start + 10_000).map((id, i) => readyImageDoc(config, old, id, infoOf(start + i), created)),
    );
  return ids;
}

/** Every image document (the bench's collection is small enough to read whole). */
async function allDocs(deps: PipelineDeps): Promise<ImageDoc[]> {
  const snapshot = await deps.firestore.collection(IMAGES_COLLECTION).get();
  return snapshot.docs.flatMap((d) => imageDocFrom(d) ?? []);
}

/** Dry run, then passes every 15 fake minutes until every outdated image was dispatched (or maxPasses). */
export async function runBackfill(
  base: PipelineDeps,
  options: BackfillOptions,
  maxPasses: number,
): Promise<BackfillReport> {
  const config = {
    ...base.config,
    REPROCESS: 'on' as const,
    REPROCESS_MAX_PER_PASS: options.maxPerPass,
    REPROCESS_CPU_SECONDS_PER_DAY: options.cpuSecondsPerDay,
  };
  const t0 = Date.parse('2026-12-01T00:00:00Z');
  const at = (pass: number) => new Date(t0 + pass * TICK_MS);
  const shared = { storage: base.storage, pubsub: base.pubsub, firestore: base.firestore, log: base.log };
  const dry = await runReprocess(createDeps(config, { ...shared, now: () => at(0) }), { dryRun: true });
  const passes: Array<ReprocessSummary & { pass: number; at: string }> = [];
  let dispatched = 0;
  for (let pass = 1; pass <= maxPasses && dispatched < dry.outdated - dry.noOriginal; pass++) {
    const summary = await runReprocess(createDeps(config, { ...shared, now: () => at(pass) }), { dryRun: false });
    dispatched += summary.dispatched;
    passes.push({ ...summary, pass, at: at(pass).toISOString() });
  }
  // A dispatched update leaves `update` on the document (its jobs are never run here) and a new dispatch number.
  const docs = await allDocs(base);
  const stamped = docs.filter((d) => d.update?.recipe === dry.recipe);
  return {
    options,
    dry,
    passes,
    dispatchedImages: stamped.length,
    dispatchedTwice: stamped.filter((d) => d.dispatch > 2).length,
  };
}

function perDay(report: BackfillReport): Array<[string, number, number]> {
  const days = new Map<string, [number, number]>();
  for (const p of report.passes) {
    const day = p.at.slice(0, 10);
    const [n, cpu] = days.get(day) ?? [0, 0];
    days.set(day, [n + p.dispatched, Math.max(cpu, p.budget.spentAfter)]);
  }
  return [...days].map(([day, [n, cpu]]) => [day, n, cpu]);
}

/** The report as markdown (docs/performance.md). */
export function formatBackfillReport(report: BackfillReport): string {
  const { dry, options } = report;
  const rows = report.passes.map((p) => [
    String(p.pass),
    p.at.slice(0, 16).replace('T', ' '),
    String(p.dispatched),
    p.budget.spentAfter.toFixed(0),
    p.stoppedBy,
    p.seconds.toFixed(1),
  ]);
  const shown = rows.length > 14 ? [...rows.slice(0, 10), ['…', '', '', '', '', ''], ...rows.slice(-3)] : rows;
  return [
    `## Reprocess backfill: ${options.images} images, REPROCESS_MAX_PER_PASS ${options.maxPerPass}, REPROCESS_CPU_SECONDS_PER_DAY ${options.cpuSecondsPerDay}`,
    '',
    `Dry run (${dry.seconds.toFixed(1)} s): ${dry.reviewed} documents, ${dry.ready} ready, ${dry.outdated} outdated (recipe \`${report.oldRecipe}\` → \`${dry.recipe}\`), ${dry.noOriginal} without an original; ` +
      `estimated ${dry.estimatedCpuSeconds.toFixed(0)} CPU-seconds, $${dry.estimatedCostUsd.toFixed(2)}.`,
    '',
    markdownTable(['pass', 'fake time (UTC)', 'dispatched', 'CPU-s spent today', 'stopped by', 'seconds'], shown),
    '',
    `${report.dispatchedImages} images dispatched in ${report.passes.length} passes; ${report.dispatchedTwice} dispatched twice. Per day: ${perDay(
      report,
    )
      .map(([day, n, cpu]) => `${day} ${n} images, ${cpu.toFixed(0)} CPU-s`)
      .join('; ')}.`,
  ].join('\n');
}

/** What `--help` prints. */
const USAGE = `usage: npm run reprocess-scale -- [options]

Seeds ready image documents made with an older recipe (WIDTHS without 2048) in Firestore and their
metadata-only originals on a local storage server, prices the backlog with a reprocess dry run,
then runs reprocess passes on a fake clock (one per 15 minutes) until every outdated image was
dispatched once; the jobs are published, not run. Prints Markdown; exits 1 unless every image was
dispatched exactly once. Needs gcloud's Pub/Sub and Firestore emulators unless
PUBSUB_EMULATOR_HOST and FIRESTORE_EMULATOR_HOST are set.

Options (whole numbers):
  --images N   ready images with the old recipe (default 1200)
  --max N      REPROCESS_MAX_PER_PASS (default 100)
  --budget N   REPROCESS_CPU_SECONDS_PER_DAY (default 20000)
  -h, --help   print this and exit
`;

async function main(): Promise<void> {
  const values = parseCommandLine(
    process.argv.slice(2),
    {
      images: { type: 'string', default: '1200' },
      max: { type: 'string', default: '100' },
      budget: { type: 'string', default: '20000' },
    },
    USAGE,
  );
  const whole = (name: 'images' | 'max' | 'budget'): number => {
    const raw = values[name];
    if (!/^\d+$/.test(raw) || Number(raw) < 1)
      refuse(`--${name} must be a whole number ≥ 1, got ${JSON.stringify(raw)}`, USAGE);
    return Number(raw);
  };
  const options: BackfillOptions = {
    images: whole('images'),
    maxPerPass: whole('max'),
    cpuSecondsPerDay: whole('budget'),
  };
  process.exitCode = await withScaleStack(async ({ deps, storage }) => {
    const seeding = Date.now();
    await seedOutdated(deps, storage.url, options.images);
    process.stderr.write(`seeded ${options.images} images in ${((Date.now() - seeding) / 1000).toFixed(1)} s\n`);
    const report = { ...(await runBackfill(deps, options, 400)), oldRecipe: recipeOf(oldRecipe(deps.config)).hash };
    process.stdout.write(`${formatBackfillReport(report)}\n`);
    return report.dispatchedImages === report.dry.outdated - report.dry.noOriginal && report.dispatchedTwice === 0
      ? 0
      : 1;
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(
      `reprocess-scale failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  });
}
