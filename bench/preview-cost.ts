/**
 * `npm run bench:preview-cost -- [options]`: what preview-first scheduling costs in CPU, in process
 * (no stack): every job of an image rendered one after another as resize renders it, for three
 * schedules of the same plan:
 *
 * - today: the fan-out strategy's jobs, each job's cascade largest width first;
 * - own job: the preview (preview.ts) as a tiny job of its own, published first (one more decode);
 * - first in job: the job holding the preview first, the preview written right after its decode.
 *
 * Reports total process CPU (all threads) and, in the same runs, the time to the preview's output
 * (wall, from the start of the image's first job, jobs in series: a lower bound on neither side's
 * parallel stack). Medians of `--runs`; photos from test/fixtures/images.ts `makePhoto`.
 *
 * Totals of several seconds move by a few percent on a shared machine, more than either schedule
 * adds, so each schedule's own addition is also measured alone, `--repeat` times: the tiny job
 * (download aside: a decode, a resize and the preview's encode), and the one resize that writing
 * the preview first adds (the first level to the preview's width).
 */
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { VariantSpec } from '../shared/core/schemas.js';
import { configureSharp } from '../shared/image/encode.js';
import { planImage, splitIntoJobs } from '../shared/image/plan.js';
import { previewFirst, previewVariantOf } from '../shared/image/preview.js';
import { renderVariants } from '../shared/image/render.js';
import { decodeLevel, decodeOriginal, inspectOriginal, resizeLevel } from '../shared/image/decode.js';
import { heightForWidth } from '../shared/image/plan.js';
import { makePhoto, type PhotoFormat } from '../test/fixtures/images.js';
import { parseCommandLine, refuse, resultsPath, writeResults } from './cli.js';
import { benchConfig, renderOptionsFrom } from './methods.js';
import { markdownTable, median } from './stats.js';

/** The photos measured: name, size, format. */
export const PREVIEW_PHOTOS: ReadonlyArray<{ name: string; width: number; height: number; format: PhotoFormat }> = [
  { name: '2 MP JPEG', width: 1732, height: 1155, format: 'jpeg' },
  { name: '12 MP JPEG', width: 4000, height: 3000, format: 'jpeg' },
  { name: '24 MP JPEG', width: 6000, height: 4000, format: 'jpeg' },
  { name: '48 MP JPEG', width: 8000, height: 6000, format: 'jpeg' },
  { name: '12 MP PNG', width: 4000, height: 3000, format: 'png' },
];

type Schedule = 'today' | 'own job' | 'first in job';
const SCHEDULES: readonly Schedule[] = ['today', 'own job', 'first in job'];

const isSame = (a: VariantSpec, b: { width: number; format: string }) =>
  a.aspect === undefined && a.width === b.width && a.format === b.format;

/** One image's jobs under `schedule`, and whether the renderer is told the preview. */
function jobsOf(schedule: Schedule, plan: VariantSpec[], split: VariantSpec[][]): VariantSpec[][] {
  const preview = previewVariantOf(plan);
  if (schedule === 'today' || !preview) return split;
  if (schedule === 'first in job') return previewFirst(split, plan);
  const rest = split.map((job) => job.filter((spec) => !isSame(spec, preview))).filter((job) => job.length > 0);
  return [plan.filter((spec) => isSame(spec, preview)), ...rest];
}

/** Mean CPU ms of `work`, run `repeat` times. */
async function cpuOf(repeat: number, work: () => Promise<unknown>): Promise<number> {
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < repeat; i++) await work();
  const cpu = process.cpuUsage(cpu0);
  return (cpu.user + cpu.system) / 1000 / repeat;
}

/** CPU each schedule adds to today's: the tiny job's render, or one resize of the first level. */
async function additions(
  original: Buffer,
  plan: VariantSpec[],
  split: VariantSpec[][],
  preview: { width: number; format: VariantSpec['format'] },
  repeat: number,
): Promise<{ ownJobMs: number; firstInJobMs: number }> {
  const options = renderOptionsFrom(benchConfig());
  const tiny = plan.filter((spec) => isSame(spec, preview));
  const ownJobMs = await cpuOf(repeat, () => renderVariants(original, tiny, options));
  const [first] = previewFirst(split, plan);
  const widest = Math.max(...(first ?? []).map((spec) => spec.width));
  const header = await inspectOriginal(original, options);
  const level = await decodeLevel(
    await decodeOriginal(original, header, options),
    widest,
    heightForWidth(widest, header),
    header,
    options,
  );
  const firstInJobMs = await cpuOf(repeat, () =>
    resizeLevel(level, preview.width, heightForWidth(preview.width, header), options),
  );
  return { ownJobMs, firstInJobMs };
}

async function main(argv: readonly string[]): Promise<void> {
  const usage = `usage: npm run bench:preview-cost -- [options]

Total CPU of every job of 2, 12, 24 and 48 MP JPEGs and a 12 MP PNG, in process, for today's jobs, the
preview as a job of its own, and the preview first in its job; and what each adds, measured alone.

  --runs N          interleaved runs per schedule; medians [3]
  --repeat N        repetitions of each addition measured alone; means [10]
  --out FILE        results file [bench/results/preview-cost.json]
  -h, --help        this text
`;
  const values = parseCommandLine(
    argv,
    {
      runs: { type: 'string', default: '3' },
      repeat: { type: 'string', default: '10' },
      out: { type: 'string', default: resultsPath('preview-cost.json') },
    },
    usage,
  );
  const runs = Number(values.runs);
  const repeat = Number(values.repeat);
  if (!Number.isInteger(runs) || runs < 1) refuse('--runs must be a positive whole number', usage);
  if (!Number.isInteger(repeat) || repeat < 1) refuse('--repeat must be a positive whole number', usage);
  const config = benchConfig();
  configureSharp({ concurrency: config.SHARP_CONCURRENCY, cache: false });
  const rows: string[][] = [];
  const marginal: string[][] = [];
  const results: unknown[] = [];
  for (const photo of PREVIEW_PHOTOS) {
    const original = await makePhoto({ ...photo, seed: 7 });
    const info = { width: photo.width, height: photo.height };
    const plan = planImage(info, config).variants;
    const split = splitIntoJobs(plan, info, config.FANOUT_STRATEGY);
    const preview = previewVariantOf(plan);
    const measured: Record<string, { cpuMs: number[]; previewMs: number[]; jobs: number }> = {};
    for (let run = 0; run < runs; run++) {
      // Interleaved, so that a slow spell of the shared machine falls on every schedule alike.
      for (const schedule of SCHEDULES) {
        const jobs = jobsOf(schedule, plan, split);
        const options = { ...renderOptionsFrom(config), ...(schedule === 'first in job' ? { preview } : {}) };
        const cpu0 = process.cpuUsage();
        const start = performance.now();
        let previewMs = Number.NaN;
        for (const job of jobs)
          await renderVariants(original, job, options, async (variant) => {
            if (Number.isNaN(previewMs) && preview && isSame(variant, preview)) previewMs = performance.now() - start;
          });
        const cpu = process.cpuUsage(cpu0);
        const entry = measured[schedule] ?? { cpuMs: [], previewMs: [], jobs: jobs.length };
        entry.cpuMs.push((cpu.user + cpu.system) / 1000);
        entry.previewMs.push(previewMs);
        measured[schedule] = entry;
      }
    }
    const alone = preview ? await additions(original, plan, split, preview, repeat) : undefined;
    if (alone)
      marginal.push([
        photo.name,
        (alone.ownJobMs / 1000).toFixed(3),
        (alone.firstInJobMs / 1000).toFixed(3),
        `${((alone.ownJobMs / median(measured.today?.cpuMs ?? [])) * 100).toFixed(1)} %`,
        `${((alone.firstInJobMs / median(measured.today?.cpuMs ?? [])) * 100).toFixed(1)} %`,
      ]);
    const today = median(measured.today?.cpuMs ?? []);
    for (const schedule of SCHEDULES) {
      const entry = measured[schedule];
      if (!entry) continue;
      const cpu = median(entry.cpuMs);
      rows.push([
        photo.name,
        schedule,
        String(entry.jobs),
        (cpu / 1000).toFixed(2),
        `${(((cpu - today) / today) * 100).toFixed(1)} %`,
        (median(entry.previewMs) / 1000).toFixed(2),
      ]);
    }
    results.push({ photo, bytes: original.length, preview, measured, alone });
    process.stderr.write(`${photo.name} (${original.length} bytes) done\n`);
  }
  console.log(`preview-first CPU, medians of ${runs} runs, jobs in series in one process\n`);
  console.log(
    markdownTable(['photo', 'schedule', 'jobs', 'CPU s', 'vs today', 'preview out after s (in series)'], rows),
  );
  console.log(`\nwhat each schedule adds, CPU s, mean of ${repeat}, and as a share of today's total\n`);
  console.log(
    markdownTable(
      ['photo', 'own job: the tiny job', 'first in job: one resize', 'own job %', 'first in job %'],
      marginal,
    ),
  );
  await writeResults(values.out, { runs, repeat, results });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main(process.argv.slice(2));
