/**
 * `npm run bench:auto`: QUALITY_MODE=fixed vs QUALITY_MODE=auto over the corpus's still images.
 * Each (image, mode) runs in a fresh child process (one libvips thread) that plans the image,
 * splits it into jobs as the configuration does and renders every job with renderVariants, as
 * resize runs it; it reports CPU-seconds, bytes per format, mean luma SSIM per format at the mid
 * widths against the direct high-quality resize (as bench/defaults.ts measures), the qualities
 * used and the search's trials. `--scores` prints instead what the fixed qualities score at the
 * search width, per image, and their median: the auto targets' defaults (docs/auto-quality.md).
 * Results: docs/performance.md, "Auto-quality".
 */
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import {
  type AutoQualityOptions,
  autoQualityFromConfig,
  type QualitySearch,
  searchWidth,
} from '../shared/image/auto-quality.js';
import type { Config } from '../shared/core/config.js';
import type { OutputFormat, QualityMode } from '../shared/core/domain.js';
import { type ImageSize, planImage, splitIntoJobs } from '../shared/image/plan.js';
import { renderAll, type StageTiming } from '../shared/image/render.js';
import { configureSharp } from '../shared/image/encode.js';
import { luma, ssim } from '../shared/image/ssim.js';
import { parseCommandLine, resultsPath, writeResults } from './cli.js';
import { printChildResult, runInFreshProcess } from './fresh-process.js';
import { corpusImages, readImage } from './images.js';
import { benchConfig, decodeFlattened, directResize, fullDecode, measure, renderOptionsFrom } from './methods.js';

const SELF = fileURLToPath(import.meta.url);
const FORMATS: readonly OutputFormat[] = ['avif', 'webp', 'jpeg'];
const MODES: readonly QualityMode[] = ['fixed', 'auto'];
/** Widths the quality is measured at, as bench/defaults.ts (the smallest planned width otherwise). */
const QUALITY_WIDTHS = [640, 1600];

/** The issue's targets for auto against fixed. */
export const TARGETS = { bytesSavedPercent: 15, cpuExtraPercent: 30, scoreTolerance: 0.001 } as const;

/** What a child measures for one image in one mode. */
export interface ModeResult {
  mode: QualityMode;
  jobs: number;
  variants: number;
  cpuS: number;
  /** Wall seconds of the quality search (render's `quality` stages; one libvips thread, so ≈ its CPU). */
  searchS: number;
  bytes: Partial<Record<OutputFormat, number>>;
  /** Mean luma SSIM per format over the quality widths. */
  ssim: Partial<Record<OutputFormat, number>>;
  /** The quality each format's variants were made with (every job agreed, else the child fails). */
  qualities: Partial<Record<OutputFormat, number>>;
  /** Trial encodes per format, summed over the jobs that searched it (auto only). */
  trials: Partial<Record<OutputFormat, number>>;
}

/** One image's results, or why it was skipped. */
export interface ImageResult {
  name: string;
  skipped?: string;
  fixed?: ModeResult;
  auto?: ModeResult;
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The child: one image, one mode. */
async function child(path: string, mode: QualityMode): Promise<ModeResult> {
  configureSharp({ concurrency: 1, cache: false });
  const config: Config = benchConfig({ ...process.env, QUALITY_MODE: mode });
  const original = await readImage({ name: path, path });
  const { autoOrient } = await sharp(original).metadata();
  const info: ImageSize = { width: autoOrient.width, height: autoOrient.height };
  const plan = planImage(info, config).variants;
  const jobs = splitIntoJobs(plan, info, config.FANOUT_STRATEGY);
  const outputs: Array<{ width: number; format: OutputFormat; data: Buffer; quality: number }> = [];
  const searches: QualitySearch[] = [];
  const timings: StageTiming[] = [];
  const timing = await measure(async () => {
    for (const job of jobs) {
      const autoQuality: AutoQualityOptions | undefined = autoQualityFromConfig(config, searches);
      const options = { ...renderOptionsFrom(config), timings, ...(autoQuality ? { autoQuality } : {}) };
      for (const v of await renderAll(original, job, options)) outputs.push(v);
    }
  });
  const bytes: Partial<Record<OutputFormat, number>> = {};
  const qualities: Partial<Record<OutputFormat, number>> = {};
  for (const o of outputs) {
    bytes[o.format] = (bytes[o.format] ?? 0) + o.data.length;
    if (qualities[o.format] !== undefined && qualities[o.format] !== o.quality)
      throw new Error(`${path}: jobs chose different ${o.format} qualities (${qualities[o.format]}, ${o.quality})`);
    qualities[o.format] = o.quality;
  }
  const trials: Partial<Record<OutputFormat, number>> = {};
  for (const s of searches) trials[s.format] = (trials[s.format] ?? 0) + s.trials.length;
  const planned = [...new Set(plan.map((v) => v.width))];
  const widths = QUALITY_WIDTHS.filter((w) => planned.includes(w));
  if (widths.length === 0) widths.push(Math.min(...planned));
  const full = await fullDecode(original, config);
  const scores: Partial<Record<OutputFormat, number[]>> = {};
  for (const width of widths) {
    const reference = await directResize(original, info, width, config, { flatten: true, full });
    const refLuma = luma(reference.data, reference.width, reference.height, reference.channels);
    for (const o of outputs.filter((x) => x.width === width)) {
      const decoded = await decodeFlattened(o.data);
      const score = ssim(
        refLuma,
        luma(decoded.data, decoded.width, decoded.height, decoded.channels),
        reference.width,
        reference.height,
      );
      scores[o.format] = [...(scores[o.format] ?? []), score];
    }
  }
  return {
    mode,
    jobs: jobs.length,
    variants: outputs.length,
    cpuS: timing.cpuMs / 1000,
    searchS: timings.filter((t) => t.stage === 'quality').reduce((sum, t) => sum + t.ms, 0) / 1000,
    bytes,
    ssim: Object.fromEntries(Object.entries(scores).map(([f, xs]) => [f, mean(xs)])),
    qualities,
    trials,
  };
}

function runChild(path: string, mode: QualityMode): Promise<ModeResult> {
  return runInFreshProcess<ModeResult>(SELF, { path, mode }, `${path} (${mode})`);
}

/**
 * What the fixed qualities score at the search width, per format: the search's own first trial,
 * made at the configured quality with every target 0 and one trial, so it is the very score the
 * search computes (same pixels, encoder and SSIM).
 */
export async function fixedScores(original: Buffer, config: Config): Promise<Record<OutputFormat, number>> {
  const { autoOrient } = await sharp(original).metadata();
  const width = searchWidth(config.WIDTHS, autoOrient.width);
  const searches: QualitySearch[] = [];
  const autoQuality: AutoQualityOptions = {
    targets: { avif: 0, webp: 0, jpeg: 0 },
    maxTrials: 1,
    widths: config.WIDTHS,
    searches,
  };
  await renderAll(
    original,
    config.FORMATS.map((format) => ({ width, format })),
    { ...renderOptionsFrom(config), autoQuality },
  );
  return Object.fromEntries(searches.map((s) => [s.format, s.trials[0]?.score ?? Number.NaN])) as Record<
    OutputFormat,
    number
  >;
}

const median = (xs: readonly number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

/** Why an input is not a still image the pipeline renders (animated, multi-page, unreadable), or undefined. */
async function notStill(path: string): Promise<string | undefined> {
  try {
    const metadata = await sharp(path).metadata();
    if ((metadata.pages ?? 1) > 1) return `${metadata.pages} frames/pages: not a still image`;
    await sharp(path, { failOn: 'error' }).resize(8).raw().toBuffer();
    return undefined;
  } catch (error) {
    return `unreadable: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** Totals of one mode over the images both modes measured. */
export interface Overall {
  cpuS: number;
  searchS: number;
  bytes: Record<OutputFormat, number>;
  allBytes: number;
  /** Mean over images of each image's mean SSIM per format. */
  ssim: Record<OutputFormat, number>;
}

export function overallOf(results: readonly ModeResult[]): Overall {
  const bytes = Object.fromEntries(
    FORMATS.map((f) => [f, results.reduce((s, r) => s + (r.bytes[f] ?? 0), 0)]),
  ) as Record<OutputFormat, number>;
  const ssimMeans = Object.fromEntries(
    FORMATS.map((f) => {
      const xs = results.map((r) => r.ssim[f]).filter((x): x is number => x !== undefined);
      return [f, xs.length > 0 ? mean(xs) : Number.NaN];
    }),
  ) as Record<OutputFormat, number>;
  return {
    cpuS: results.reduce((s, r) => s + r.cpuS, 0),
    searchS: results.reduce((s, r) => s + (r.searchS ?? 0), 0),
    bytes,
    allBytes: Object.values(bytes).reduce((a, b) => a + b, 0),
    ssim: ssimMeans,
  };
}

/** The target checks: auto against fixed. */
export interface Verdict {
  bytesSavedPercent: number;
  cpuExtraPercent: number;
  /** Auto's mean SSIM minus fixed's, per format. */
  scoreDelta: Record<OutputFormat, number>;
  bytesMet: boolean;
  cpuMet: boolean;
  scoreMet: boolean;
  met: boolean;
}

/**
 * Auto meets the issue's target when it saves ≥ 15 % of all bytes, costs ≤ 30 % more CPU, and no
 * format's mean SSIM falls more than 0.001 below fixed's ("at the same mean score").
 */
export function verdictOf(fixed: Overall, auto: Overall): Verdict {
  const bytesSavedPercent = (1 - auto.allBytes / fixed.allBytes) * 100;
  const cpuExtraPercent = (auto.cpuS / fixed.cpuS - 1) * 100;
  const scoreDelta = Object.fromEntries(FORMATS.map((f) => [f, auto.ssim[f] - fixed.ssim[f]])) as Record<
    OutputFormat,
    number
  >;
  const bytesMet = bytesSavedPercent >= TARGETS.bytesSavedPercent;
  const cpuMet = cpuExtraPercent <= TARGETS.cpuExtraPercent;
  const scoreMet = FORMATS.every((f) => Number.isNaN(scoreDelta[f]) || scoreDelta[f] >= -TARGETS.scoreTolerance);
  return {
    bytesSavedPercent,
    cpuExtraPercent,
    scoreDelta,
    bytesMet,
    cpuMet,
    scoreMet,
    met: bytesMet && cpuMet && scoreMet,
  };
}

const f4 = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(4));
const kib = (n: number | undefined) => (n === undefined ? '–' : `${Math.round(n / 1024)}`);
const perFormat = (values: Partial<Record<OutputFormat, number>>, show: (n: number | undefined) => string) =>
  FORMATS.map((f) => show(values[f])).join(' / ');
const signed = (n: number, digits: number) => `${n >= 0 ? '+' : ''}${n.toFixed(digits)}`;

function row(name: string, r: ModeResult): string {
  return `| ${name} | ${r.mode} | ${r.jobs} | ${r.cpuS.toFixed(2)} | ${r.mode === 'auto' ? r.searchS.toFixed(2) : '–'} | ${perFormat(r.bytes, kib)} | ${perFormat(r.ssim, f4)} | ${perFormat(r.qualities, (q) => (q === undefined ? '–' : String(q)))} | ${r.mode === 'auto' ? perFormat(r.trials, (t) => String(t ?? 0)) : '–'} |`;
}

/** What `--help` prints. */
const USAGE = `usage: npm run bench:auto -- [options]

QUALITY_MODE=fixed vs QUALITY_MODE=auto over the still images of a corpus: one child process per
(image, mode), one libvips thread, jobs split as FANOUT_STRATEGY says. Per image and overall:
CPU-seconds, bytes per format, mean luma SSIM per format at 640 and 1600 px against a direct
high-quality resize, the qualities used and the search's trial encodes; then the issue's targets
(auto: ≥ ${TARGETS.bytesSavedPercent} % fewer bytes, ≤ ${TARGETS.cpuExtraPercent} % more CPU, mean SSIM per format within ${TARGETS.scoreTolerance}).
Settings come from the environment as the functions read them (e.g. AVIF_EFFORT=3,
AUTO_QUALITY_TARGET_AVIF=0.96). Prints Markdown; writes JSON.

Options:
  --corpus DIR   the images (default ../shared/corpus)
  --only NAMES   comma-separated file names to keep
  --json FILE    where to write the results (default bench/results/bench-auto-quality.json)
  --scores       print instead the score the fixed qualities reach at the search width per image,
                 and the median: the AUTO_QUALITY_TARGET_* defaults
  -h, --help     print this and exit
`;

interface Options {
  corpus: string;
  only: string[];
  json: string;
  scores: boolean;
}

/** The options of a command line; exits 0 after --help, 2 with the usage for a bad one. */
function optionsFrom(args: readonly string[]): Options {
  const values = parseCommandLine(
    args,
    {
      corpus: { type: 'string', default: '../shared/corpus' },
      only: { type: 'string', default: '' },
      json: { type: 'string', default: resultsPath('bench-auto-quality.json') },
      scores: { type: 'boolean', default: false },
    },
    USAGE,
  );
  return {
    corpus: String(values.corpus),
    only: String(values.only)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
    json: String(values.json),
    scores: values.scores === true,
  };
}

async function printScores(images: ReadonlyArray<{ name: string; path: string }>): Promise<void> {
  configureSharp({ concurrency: 1, cache: false });
  const config = benchConfig({ ...process.env, QUALITY_MODE: 'fixed' });
  const lines = [
    `## Fixed qualities at the search width (AVIF q${config.AVIF_QUALITY} e${config.AVIF_EFFORT}, WebP q${config.WEBP_QUALITY} e${config.WEBP_EFFORT}, JPEG q${config.JPEG_QUALITY}${config.JPEG_MOZJPEG ? ' mozjpeg' : ''})`,
    '',
    '| image | search width | SSIM AVIF / WebP / JPEG |',
    '|---|---|---|',
  ];
  const all: Record<OutputFormat, number[]> = { avif: [], webp: [], jpeg: [] };
  for (const image of images) {
    const skipped = await notStill(image.path);
    if (skipped) {
      lines.push(`| ${image.name} | – | skipped: ${skipped} |`);
      continue;
    }
    const original = await readImage(image);
    const { autoOrient } = await sharp(original).metadata();
    const scores = await fixedScores(original, config);
    for (const f of FORMATS) if (scores[f] !== undefined) all[f].push(scores[f]);
    lines.push(`| ${image.name} | ${searchWidth(config.WIDTHS, autoOrient.width)} | ${perFormat(scores, f4)} |`);
  }
  lines.push(`| **median** | | ${FORMATS.map((f) => f4(median(all[f]))).join(' / ')} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    const { path, mode } = JSON.parse(argv[1] ?? '{}') as { path: string; mode: QualityMode };
    printChildResult(await child(path, mode));
    return;
  }
  const options = optionsFrom(argv);
  const images = (await corpusImages(options.corpus)).filter(
    (image) => options.only.length === 0 || options.only.includes(image.name),
  );
  if (options.scores) return printScores(images);
  const config = benchConfig({ ...process.env, QUALITY_MODE: 'auto' });
  const results: ImageResult[] = [];
  const lines = [
    `## Auto-quality: QUALITY_MODE=fixed vs auto (${images.length} file(s), one libvips thread, FANOUT_STRATEGY=${config.FANOUT_STRATEGY})`,
    '',
    `Fixed: AVIF q${config.AVIF_QUALITY} e${config.AVIF_EFFORT}, WebP q${config.WEBP_QUALITY} e${config.WEBP_EFFORT}, JPEG q${config.JPEG_QUALITY}. ` +
      `Auto: targets AVIF ${config.AUTO_QUALITY_TARGET_AVIF} / WebP ${config.AUTO_QUALITY_TARGET_WEBP} / JPEG ${config.AUTO_QUALITY_TARGET_JPEG}, at most ${config.AUTO_QUALITY_MAX_TRIALS} trials per format and job.`,
    '',
    '| image | mode | jobs | CPU s | search s | KiB AVIF / WebP / JPEG | SSIM AVIF / WebP / JPEG | quality AVIF / WebP / JPEG | trials AVIF / WebP / JPEG |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const image of images) {
    const skipped = await notStill(image.path);
    if (skipped) {
      results.push({ name: image.name, skipped });
      lines.push(`| ${image.name} | skipped: ${skipped} | | | | | | | |`);
      continue;
    }
    const result: ImageResult = { name: image.name };
    for (const mode of MODES) {
      const measured = await runChild(image.path, mode);
      result[mode] = measured;
      lines.push(row(image.name, measured));
    }
    results.push(result);
  }
  const measured = results.filter((r) => r.fixed && r.auto);
  const fixed = overallOf(measured.map((r) => r.fixed as ModeResult));
  const auto = overallOf(measured.map((r) => r.auto as ModeResult));
  const verdict = verdictOf(fixed, auto);
  for (const [mode, o] of [
    ['fixed', fixed],
    ['auto', auto],
  ] as const) {
    lines.push(
      `| **all (${measured.length})** | ${mode} | | ${o.cpuS.toFixed(2)} | ${mode === 'auto' ? o.searchS.toFixed(2) : '–'} | ${perFormat(o.bytes, kib)} | ${perFormat(o.ssim, f4)} | | |`,
    );
  }
  lines.push(
    '',
    `- Bytes: auto ${signed(-verdict.bytesSavedPercent, 1)} % vs fixed (${FORMATS.map((f) => `${f} ${signed((auto.bytes[f] / fixed.bytes[f] - 1) * 100, 1)} %`).join(', ')}); target ≥ ${TARGETS.bytesSavedPercent} % fewer: ${verdict.bytesMet ? 'met' : 'not met'}.`,
    `- CPU: auto ${signed(verdict.cpuExtraPercent, 1)} % vs fixed (${auto.cpuS.toFixed(1)} s vs ${fixed.cpuS.toFixed(1)} s, of which the search ${auto.searchS.toFixed(1)} s wall; the rest is the variants' encodes at other qualities); target ≤ +${TARGETS.cpuExtraPercent} %: ${verdict.cpuMet ? 'met' : 'not met'}.`,
    `- Mean SSIM, auto − fixed: ${FORMATS.map((f) => `${f} ${signed(verdict.scoreDelta[f], 4)}`).join(', ')}; target ≥ −${TARGETS.scoreTolerance}: ${verdict.scoreMet ? 'met' : 'not met'}.`,
    '',
    `Verdict: ${verdict.met ? 'auto meets the target' : 'auto does not meet the target; keep QUALITY_MODE=fixed as the default'}.`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  await writeResults(options.json, { images: results, fixed, auto, verdict });
}

// Run only as a script, so tests can import the verdict.
if (process.argv[1] === SELF) await main();
