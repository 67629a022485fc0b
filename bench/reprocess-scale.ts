/**
 * The reprocess backfill at scale: seeds N metadata-only originals with ready outcome markers made
 * with an older recipe (no recipe recorded, WIDTHS without 2048) through the local storage
 * server's bulk endpoint, prices the backlog with a dry run, then runs backfill passes on a fake
 * clock (one every 15 minutes) with a per-pass cap and a daily CPU budget until every image was
 * dispatched once. Reports the dry run, every pass and how many passes and days it took.
 *
 *   npm run reprocess-scale -- [--images 1200] [--max 100] [--budget 20000]
 *
 * The test suite runs it at 1,000 images (test/integration/reprocess-scale.test.ts).
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { publicBaseUrl, type Config } from '../shared/core/config.js';
import { createDeps, type PipelineDeps } from '../shared/cloud/deps.js';
import { buildManifest } from '../shared/image/manifest.js';
import {
  ORIGINAL_METADATA,
  originalName,
  OUTCOME_MARKER,
  outcomeMarkerName,
  variantName,
} from '../shared/core/naming.js';
import { planImage } from '../shared/image/plan.js';
import { runReprocess, type ReprocessSummary } from '../shared/pipeline/reprocess.js';
import { bulkCreate } from './cleanup-scale.js';
import { withScaleStack } from './scale-stack.js';
import { markdownTable } from './stats.js';

const TICK_MS = 15 * 60_000;
/** Original sizes cycled through: a small web image, 2 MP and a 12 MP photo. */
const SIZES = [
  [640, 480],
  [1600, 1200],
  [4000, 3000],
] as const;
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
}

/** Seeds N ready images made with the old recipe: originals (metadata only) and their markers. */
export async function seedOutdated(storageUrl: string, config: Config, images: number): Promise<string[]> {
  const ids = Array.from({ length: images }, () => randomBytes(16).toString('hex')).sort();
  const created = new Date(Date.now() - 86_400_000).toISOString();
  const originals = [];
  const markers = [];
  for (const [i, id] of ids.entries()) {
    const [width, height] = SIZES[i % SIZES.length]!;
    originals.push({
      name: originalName(id),
      contentType: 'image/jpeg',
      timeCreated: created,
      metadata: {
        [ORIGINAL_METADATA.imageId]: id,
        [ORIGINAL_METADATA.format]: 'jpeg',
        [ORIGINAL_METADATA.width]: String(width),
        [ORIGINAL_METADATA.height]: String(height),
        [ORIGINAL_METADATA.dispatchedAt]: created,
        [ORIGINAL_METADATA.redispatches]: '0',
      },
    });
    const info = { format: 'jpeg', width, height, bytes: 0, contentType: 'image/jpeg' };
    const plan = planImage(info, { WIDTHS: OLD_WIDTHS, FORMATS: config.FORMATS }).variants;
    const objects = new Map(
      plan.map((v) => [
        variantName(id, v.width, v.format),
        { name: variantName(id, v.width, v.format), bytes: 1, width: v.width, height: v.width },
      ]),
    );
    const manifest = buildManifest({
      id,
      original: { ...info, name: originalName(id), generation: '1' },
      plan,
      objects,
      baseUrl: publicBaseUrl(config),
      now: new Date(created),
    });
    markers.push({
      name: outcomeMarkerName(id),
      contentType: 'application/json',
      timeCreated: created,
      data: JSON.stringify({ v: 1, outcome: 'ready', bucket: config.IMAGES_BUCKET, manifest }),
      metadata: {
        [OUTCOME_MARKER.keys.outcome]: 'ready',
        [OUTCOME_MARKER.keys.eventState]: 'published',
        [OUTCOME_MARKER.keys.writer]: 'job:seeded',
      },
    });
  }
  await bulkCreate(storageUrl, config.UPLOADS_BUCKET, [...originals, ...markers]);
  return ids;
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
  const dry = await runReprocess(createDeps(config, { log: base.log, now: () => at(0) }), { dryRun: true });
  const passes: Array<ReprocessSummary & { pass: number; at: string }> = [];
  let dispatched = 0;
  for (let pass = 1; pass <= maxPasses && dispatched < dry.outdated - dry.noOriginal; pass++) {
    const summary = await runReprocess(createDeps(config, { log: base.log, now: () => at(pass) }), { dryRun: false });
    dispatched += summary.dispatched;
    passes.push({ ...summary, pass, at: at(pass).toISOString() });
  }
  const [files] = await base.storage.bucket(config.UPLOADS_BUCKET).getFiles({ prefix: 'originals/' });
  const stamped = files.filter((f) => f.metadata.metadata?.[ORIGINAL_METADATA.updateRecipe]);
  return {
    options,
    dry,
    passes,
    dispatchedImages: stamped.length,
    dispatchedTwice: stamped.filter((f) => Number(f.metadata.metadata?.[ORIGINAL_METADATA.redispatches]) > 1).length,
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
    `Dry run (${dry.seconds.toFixed(1)} s): ${dry.reviewed} markers, ${dry.ready} ready, ${dry.outdated} outdated (recipe \`${'none'}\` → \`${dry.recipe}\`), ${dry.noOriginal} without an original; ` +
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

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      images: { type: 'string', default: '1200' },
      max: { type: 'string', default: '100' },
      budget: { type: 'string', default: '20000' },
    },
  });
  const options: BackfillOptions = {
    images: Number(values.images),
    maxPerPass: Number(values.max),
    cpuSecondsPerDay: Number(values.budget),
  };
  process.exitCode = await withScaleStack(async (deps, storageUrl, config) => {
    await seedOutdated(storageUrl, config, options.images);
    const report = await runBackfill(deps, options, 400);
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
