/**
 * `npm run bench:defaults -- [--corpus DIR] [--split NAME] [--per-kind N] [--only NAMES] [--candidates LIST] [--megapixels N] [--json FILE]`
 *
 * "At defaults": the anchor's method at sharp's own defaults (JPEG q80, WebP q80 effort 4, AVIF
 * q50 effort 4 at 4:4:4; one pipeline per variant, as the Firebase extension and most hand-written
 * functions do) against ours (plan → default fan-out → renderVariants per job, as resize runs it)
 * at each candidate setting (pipeline variables). Per image and overall: CPU-seconds, wall, peak RSS, bytes per
 * format, luma SSIM per format (mid widths vs the direct high-quality resize), butteraugli at
 * 640 px where the Debian `butteraugli` CLI is installed, and the cost per 1,000 images at Cloud
 * Run's published prices ({@link PRICES}). Each (image, method) runs in a fresh child process so
 * its peak RSS is its own; one libvips thread, sequential, so CPU compares on a shared machine.
 * The candidate chosen minimises CPU with bytes ≤ the anchor's and mean SSIM ≥ the anchor's in
 * every format ({@link chooseCandidate}). A corpus with kinds (a manifest or kind subfolders, bench/kinds.ts)
 * also gets a table per kind and its weakest kind. Markdown to stdout; results: docs/performance.md
 * ("At defaults", "Any photo").
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp, { type Sharp } from 'sharp';
import type { Config } from '../shared/core/config.js';
import type { OutputFormat } from '../shared/core/domain.js';
import type { VariantSpec } from '../shared/core/schemas.js';
import { heightForWidth, omitAsLarger, planImage, type ImageSize } from '../shared/image/plan.js';
import { jobGroups } from '../shared/image/preview.js';
import { sniffFormat } from '../shared/image/probe.js';
import { renderAll } from '../shared/image/render.js';
import { configureSharp } from '../shared/image/encode.js';
import { parseCommandLine, refuse, resultsPath, writeResults } from './cli.js';
import { printChildResult, runInFreshProcess } from './fresh-process.js';
import { corpusImages, readImage } from './images.js';
import { type KindedImage, kindedImages, kindTable, stratifiedSample, summariseKind } from './kinds.js';
import {
  benchConfig,
  decodeFlattened,
  directResize,
  fullDecode,
  KERNEL,
  measure,
  type Pixels,
  renderOptionsFrom,
} from './methods.js';
import { luma, ssim } from '../shared/image/ssim.js';

const run = promisify(execFile);
const SELF = fileURLToPath(import.meta.url);
const FORMATS: readonly OutputFormat[] = ['avif', 'webp', 'jpeg'];

/**
 * Cloud Run, Tier 1 regions, services with CPU allocated only during request processing
 * (Cloud Run functions / Cloud Functions gen2 bill this way), USD. Source: https://cloud.google.com/run/pricing
 * ("Pricing for regions in Tier 1"), read 2026-12-02; Pub/Sub: https://cloud.google.com/pubsub/pricing
 * ($40/TiB throughput, at least 1,000 bytes per publish/push request); Cloud Storage:
 * https://cloud.google.com/storage/pricing-examples (Standard, regional: Class A $0.005 and
 * Class B $0.0004 per 1,000 operations). Free tiers left out: the figure is the marginal cost.
 */
export const PRICES = {
  source: 'cloud.google.com/run/pricing, /pubsub/pricing, /storage/pricing-examples; read 2026-12-02',
  vcpuSecond: 0.000024,
  gibSecond: 0.0000025,
  request: 0.4 / 1e6,
  pubsubPerByte: 40 / 2 ** 40,
  pubsubMinBytes: 1000,
  classA: 0.005 / 1000,
  classB: 0.0004 / 1000,
  /** Firestore Native mode, regional: bench/operations.ts OPS_PRICES (docs/performance.md, "State in Firestore"). */
  firestoreRead: 0.03 / 100_000,
  firestoreWrite: 0.09 / 100_000,
} as const;

/**
 * One candidate setting of ours: pipeline variables over config's defaults (e.g. AVIF_QUALITY=52,
 * AVIF_EFFORT=3, JPEG_MOZJPEG=true), and SHRINK_ON_LOAD_MARGIN (decode.ts; `Infinity`: never
 * shrink on load beyond sharp's own 2× rule). `qNNeN` on the command line is short for the AVIF pair.
 */
export type Candidate = Readonly<Record<string, string>>;

/** `q52e3` or `AVIF_QUALITY=52+AVIF_EFFORT=3+JPEG_MOZJPEG=true`. */
export function parseCandidate(text: string): Candidate {
  if (text === 'defaults') return {};
  const short = /^q(\d+)e(\d)$/.exec(text);
  if (short) return { AVIF_QUALITY: String(short[1]), AVIF_EFFORT: String(short[2]) };
  const entries = text.split('+').map((pair) => {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (!match?.[1] || match[2] === undefined) throw new Error(`--candidates: ${pair} is neither qNNeN nor NAME=value`);
    return [match[1], match[2]] as const;
  });
  return Object.fromEntries(entries);
}

/** A candidate's label: its variables, shortest form. */
export function candidateName(candidate: Candidate): string {
  const entries = Object.entries(candidate);
  return entries.length === 0 ? 'config defaults' : entries.map(([k, v]) => `${k}=${v}`).join(' ');
}

type Method = { kind: 'anchor' } | { kind: 'ours'; candidate: Candidate };

/** What a child measures for one image and method. */
export interface MethodResult {
  method: string;
  variants: number;
  /** Jobs (ours) or pipelines (anchor): invocations of the resize function. */
  invocations: number;
  cpuS: number;
  wallS: number;
  peakRssMiB: number;
  bytes: Record<string, number>;
  /** Variants larger than the original file that the method writes (ours: only formats' smallest widths). */
  larger?: number;
  /** Ours: variants left out for being larger than the original (as resize does; not in `variants`/`bytes`). */
  leftOut?: number;
  /** Mean luma SSIM per format over the quality widths. */
  ssim: Record<string, number>;
  /** Butteraugli distance per format at the first quality width; absent when not installed. */
  butteraugli?: Record<string, number>;
}

/** Widths the quality is measured at (those the plan has; the smallest planned width otherwise). */
const QUALITY_WIDTHS = [640, 1600];

function methodName(method: Method): string {
  return method.kind === 'anchor' ? 'anchor (sharp defaults)' : `ours ${candidateName(method.candidate)}`;
}

/** sharp's defaults: what `.jpeg()`, `.webp()`, `.avif()` do with no options (JPEG flattened onto white). */
export function anchorEncode(pipeline: Sharp, format: OutputFormat): Sharp {
  if (format === 'jpeg') return pipeline.flatten({ background: { r: 255, g: 255, b: 255 } }).jpeg();
  return format === 'webp' ? pipeline.webp() : pipeline.avif();
}

async function butteraugliOf(reference: Pixels, distorted: Pixels, dir: string): Promise<number | undefined> {
  const png = (p: Pixels, name: string) =>
    sharp(p.data, { raw: { width: p.width, height: p.height, channels: p.channels } })
      .removeAlpha()
      .png()
      .toFile(join(dir, name));
  await png(reference, 'ref.png');
  await png(distorted, 'dist.png');
  try {
    const { stdout } = await run('butteraugli', [join(dir, 'ref.png'), join(dir, 'dist.png')]);
    const value = Number.parseFloat(stdout.trim());
    return Number.isFinite(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The child: measure one method on one image. */
async function child(path: string, method: Method, butteraugli: boolean): Promise<MethodResult> {
  configureSharp({ concurrency: 1, cache: false });
  // SHRINK_ON_LOAD_MARGIN is no pipeline variable: decode.ts' constant, overridden here to compare.
  const { SHRINK_ON_LOAD_MARGIN: margin, ...variables } = method.kind === 'ours' ? method.candidate : {};
  const config: Config = benchConfig(variables);
  const renderOptions = {
    ...renderOptionsFrom(config),
    ...(margin === undefined ? {} : { shrinkOnLoadMargin: Number(margin) }),
  };
  const original = await readImage({ name: path, path });
  const { autoOrient } = await sharp(original).metadata();
  const info: ImageSize = { width: autoOrient.width, height: autoOrient.height };
  const format = sniffFormat(original) ?? 'unknown';
  const plan: VariantSpec[] = planImage(info, config).variants;
  const outputs: Array<{ width: number; format: OutputFormat; data: Buffer }> = [];
  let invocations = 0;
  const timing = await measure(async () => {
    if (method.kind === 'anchor') {
      for (const { width, format } of plan) {
        const data = await anchorEncode(
          sharp(original, { limitInputPixels: config.MAX_INPUT_PIXELS })
            .rotate()
            .resize(width, heightForWidth(width, info), { fit: 'fill', kernel: KERNEL })
            .toColourspace('srgb'),
          format,
        ).toBuffer();
        outputs.push({ width, format, data });
        invocations++;
      }
    } else {
      // The jobs as a dispatch makes them, PREVIEW=inline's job 0 (a decode of its own) included.
      for (const job of jobGroups(plan, { ...info, format }, config, false)) {
        for (const v of await renderAll(original, job, renderOptions))
          outputs.push({ width: v.width, format: v.format, data: v.data });
        invocations++;
      }
    }
  });
  const peakRssMiB = process.resourceUsage().maxRSS / 1024;
  // Ours leaves out, as resize does, what encodes larger than the original (but each format's floor).
  const leftOut =
    method.kind === 'ours' ? outputs.filter((o) => omitAsLarger(o, o.data.length, original.length, plan)) : [];
  const written = outputs.filter((o) => !leftOut.includes(o));
  const larger = written.filter((o) => o.data.length > original.length).length;
  const bytes: Record<string, number> = {};
  for (const o of written) bytes[o.format] = (bytes[o.format] ?? 0) + o.data.length;
  const planned = [...new Set(plan.map((v) => v.width))];
  const widths = QUALITY_WIDTHS.filter((w) => planned.includes(w));
  if (widths.length === 0) widths.push(Math.min(...planned));
  const full = await fullDecode(original, config);
  const scores: Record<string, number[]> = {};
  const distances: Record<string, number> = {};
  const dir = await mkdtemp(join(tmpdir(), 'bench-defaults-'));
  try {
    for (const [i, width] of widths.entries()) {
      const reference = await directResize(original, info, width, config, { flatten: true, full });
      const refLuma = luma(reference.data, reference.width, reference.height, reference.channels);
      for (const o of outputs.filter((x) => x.width === width)) {
        const decoded = await decodeFlattened(o.data);
        const formatScores = scores[o.format] ?? [];
        scores[o.format] = formatScores;
        formatScores.push(
          ssim(
            refLuma,
            luma(decoded.data, decoded.width, decoded.height, decoded.channels),
            reference.width,
            reference.height,
          ),
        );
        if (butteraugli && i === 0) {
          const d = await butteraugliOf(reference, decoded, dir);
          if (d !== undefined) distances[o.format] = d;
        }
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    method: methodName(method),
    variants: written.length,
    larger,
    leftOut: leftOut.length,
    invocations,
    cpuS: timing.cpuMs / 1000,
    wallS: timing.wallMs / 1000,
    peakRssMiB,
    bytes,
    ssim: Object.fromEntries(Object.entries(scores).map(([f, xs]) => [f, mean(xs)])),
    ...(butteraugli ? { butteraugli: distances } : {}),
  };
}

function runChild(path: string, method: Method, butteraugli: boolean): Promise<MethodResult> {
  return runInFreshProcess<MethodResult>(SELF, { path, method, butteraugli }, `${path} (${methodName(method)})`);
}

/**
 * Operations per image besides compute, as `npm run bench:operations` counted them for the state in
 * Firestore (docs/performance.md, "State in Firestore"): ours publishes one job message per job
 * (publish + push = 2 billed requests of ≥1,000 bytes) and one `image.ready`; writes the original,
 * each variant and the manifest (Class A); each job reads the original's metadata and bytes
 * (Class B); upload reads the image document and runs three transactions, each job a read and a
 * transaction, the first job one more (its first variant, for the progressive status), and the
 * fan-in's holder one more (marking its event published). The anchor: one storage-triggered invocation
 * that reads the original once and writes each variant.
 */
export function operationsPerImage(
  kind: 'anchor' | 'ours',
  invocations: number,
  variants: number,
): {
  pubsubRequests: number;
  classA: number;
  classB: number;
  requests: number;
  firestoreReads: number;
  firestoreWrites: number;
} {
  if (kind === 'anchor')
    return { pubsubRequests: 0, classA: 1 + variants, classB: 1, requests: 1, firestoreReads: 0, firestoreWrites: 0 };
  return {
    pubsubRequests: 2 * invocations + 1,
    classA: 1 + variants + 1,
    classB: 2 * invocations,
    requests: 2 + invocations,
    firestoreReads: 6 + 2 * invocations,
    firestoreWrites: 5 + invocations,
  };
}

/** USD per 1,000 images of this result. */
export function costPer1000(
  result: MethodResult,
  kind: 'anchor' | 'ours',
): { compute: number; other: number; total: number } {
  const ops = operationsPerImage(kind, result.invocations, result.variants);
  const compute = result.cpuS * PRICES.vcpuSecond + (result.peakRssMiB / 1024) * result.wallS * PRICES.gibSecond;
  const other =
    ops.requests * PRICES.request +
    ops.pubsubRequests * PRICES.pubsubMinBytes * PRICES.pubsubPerByte +
    ops.classA * PRICES.classA +
    ops.classB * PRICES.classB +
    ops.firestoreReads * PRICES.firestoreRead +
    ops.firestoreWrites * PRICES.firestoreWrite;
  return { compute: compute * 1000, other: other * 1000, total: (compute + other) * 1000 };
}

/** Sums results over images. */
function total(results: readonly MethodResult[]): MethodResult & { ssimAll: Record<string, number> } {
  const bytes: Record<string, number> = {};
  const ssimSum: Record<string, number[]> = {};
  const butter: Record<string, number[]> = {};
  for (const r of results) {
    for (const [f, b] of Object.entries(r.bytes)) bytes[f] = (bytes[f] ?? 0) + b;
    for (const [f, s] of Object.entries(r.ssim)) {
      const list = ssimSum[f] ?? [];
      ssimSum[f] = list;
      list.push(s);
    }
    for (const [f, s] of Object.entries(r.butteraugli ?? {})) {
      const list = butter[f] ?? [];
      butter[f] = list;
      list.push(s);
    }
  }
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const ssimAll = Object.fromEntries(Object.entries(ssimSum).map(([f, xs]) => [f, mean(xs)]));
  return {
    method: results[0]?.method ?? '',
    variants: results.reduce((s, r) => s + r.variants, 0),
    invocations: results.reduce((s, r) => s + r.invocations, 0),
    cpuS: results.reduce((s, r) => s + r.cpuS, 0),
    wallS: results.reduce((s, r) => s + r.wallS, 0),
    peakRssMiB: Math.max(...results.map((r) => r.peakRssMiB)),
    bytes,
    larger: results.reduce((s, r) => s + (r.larger ?? 0), 0),
    leftOut: results.reduce((s, r) => s + (r.leftOut ?? 0), 0),
    ssim: ssimAll,
    ssimAll,
    ...(Object.keys(butter).length > 0
      ? { butteraugli: Object.fromEntries(Object.entries(butter).map(([f, xs]) => [f, mean(xs)])) }
      : {}),
  };
}

/** Per format: ours' bytes ≤ the anchor's and ours' mean SSIM ≥ the anchor's. */
export function meetsAnchor(anchor: MethodResult, ours: MethodResult): Record<string, boolean> {
  return Object.fromEntries(
    Object.keys(anchor.bytes).map((f) => [
      f,
      (ours.bytes[f] ?? 0) <= (anchor.bytes[f] ?? 0) && (ours.ssim[f] ?? 0) >= (anchor.ssim[f] ?? 0),
    ]),
  );
}

/** The cheapest candidate (CPU) that {@link meetsAnchor} in every format, if any. */
export function chooseCandidate(
  anchor: MethodResult,
  candidates: ReadonlyArray<{ candidate: Candidate; overall: MethodResult }>,
): Candidate | undefined {
  const ok = candidates.filter(({ overall }) => Object.values(meetsAnchor(anchor, overall)).every(Boolean));
  return [...ok].sort((a, b) => a.overall.cpuS - b.overall.cpuS)[0]?.candidate;
}

async function butteraugliInstalled(): Promise<boolean> {
  try {
    await run('butteraugli', []);
    return true;
  } catch (error) {
    // Present but called without files: it prints usage and exits non-zero.
    return (error as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}

const f3 = (n: number | undefined) => (n === undefined ? '–' : n.toFixed(4));
const kb = (n: number | undefined) => (n === undefined ? '–' : `${Math.round(n / 1024)}`);

function row(image: string, r: MethodResult, kind: 'anchor' | 'ours', butteraugli: boolean): string {
  const cost = costPer1000(r, kind);
  return `| ${image} | ${r.method} | ${r.invocations} | ${r.cpuS.toFixed(2)} | ${r.wallS.toFixed(2)} | ${Math.round(r.peakRssMiB)} | ${FORMATS.map((f) => kb(r.bytes[f])).join(' / ')} | ${r.larger ?? 0}${kind === 'ours' ? ` (+${r.leftOut ?? 0} left out)` : ''} | ${FORMATS.map((f) => f3(r.ssim[f])).join(' / ')} | ${
    butteraugli
      ? FORMATS.map((f) => (r.butteraugli?.[f] === undefined ? '–' : r.butteraugli[f]!.toFixed(2))).join(' / ')
      : 'not installed'
  } | ${cost.compute.toFixed(3)} + ${cost.other.toFixed(3)} = ${cost.total.toFixed(3)} |`;
}

const USAGE = `usage: npm run bench:defaults -- [options]

The anchor at sharp's defaults against ours at each candidate setting (docs/performance.md, "At defaults").

Options:
  --corpus DIR          images to measure (default ../shared/corpus); with a manifest.json
                        ([{file, kind, split}]) or kind subfolders, results per kind too
  --split NAME          only the corpus manifest's images of this split (e.g. tuning, heldout)
  --per-kind N          at most N images of each kind, the same ones every run (default: all)
  --only NAMES          comma-separated image names to keep (default: all)
  --candidates LIST     comma-separated settings of ours: "defaults" (shared/core/config.ts), qNNeN (AVIF
                        quality and effort) or NAME=value+NAME=value (any pipeline variables)
                        (default: defaults)
  --megapixels N        measure each image larger than N MP scaled down to N MP (JPEG q92), and
                        leave out smaller ones: the cost of a typical N MP photo
  --json FILE           where to write every measurement (default bench/results/bench-defaults.json)
  -h, --help            print this and exit
`;

/** Copies of the images larger than `megapixels`, scaled down to it; smaller ones are left out. */
async function scaledTo(images: readonly KindedImage[], megapixels: number, dir: string): Promise<KindedImage[]> {
  const scaled: KindedImage[] = [];
  for (const image of images) {
    const metadata = await sharp(image.path)
      .metadata()
      .catch(() => undefined);
    const { width, height } = metadata?.autoOrient ?? { width: 0, height: 0 };
    if (width * height <= megapixels * 1e6) continue;
    const factor = Math.sqrt((megapixels * 1e6) / (width * height));
    const path = join(dir, `${basename(image.name).replace(/\.[^.]+$/, '')}-${megapixels}mp.jpg`);
    await sharp(image.path)
      .rotate()
      .resize(Math.round(width * factor), Math.round(height * factor), { kernel: KERNEL })
      .jpeg({ quality: 92 })
      .toFile(path);
    scaled.push({ ...image, name: basename(path), path });
  }
  return scaled;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') {
    const { path, method, butteraugli } = JSON.parse(argv[1]!) as {
      path: string;
      method: Method;
      butteraugli: boolean;
    };
    printChildResult(await child(path, method, butteraugli));
    return;
  }
  const values = parseCommandLine(
    argv,
    {
      corpus: { type: 'string', default: '../shared/corpus' },
      only: { type: 'string', default: '' },
      candidates: { type: 'string', default: 'defaults' },
      split: { type: 'string', default: '' },
      'per-kind': { type: 'string', default: '0' },
      megapixels: { type: 'string', default: '0' },
      json: { type: 'string', default: resultsPath('bench-defaults.json') },
    },
    USAGE,
  );
  const args = {
    ...values,
    only: values.only.split(',').filter((n) => n !== ''),
    megapixels: Number(values.megapixels),
  };
  if (!(args.megapixels >= 0)) refuse('--megapixels needs a number of megapixels', USAGE);
  const candidates: Candidate[] = args.candidates.split(',').map(parseCandidate);
  const kinded = await kindedImages(args.corpus);
  const perKind = Number(values['per-kind']);
  if (!(perKind >= 0)) refuse('--per-kind needs a number of images', USAGE);
  const all: KindedImage[] = kinded ?? (await corpusImages(args.corpus));
  let listed = all.filter(
    (image) =>
      (args.only.length === 0 || args.only.includes(image.name)) && (args.split === '' || image.split === args.split),
  );
  if (perKind > 0) listed = stratifiedSample(listed, perKind);
  const scaledDir = args.megapixels > 0 ? await mkdtemp(join(tmpdir(), 'bench-defaults-mp-')) : undefined;
  const images: KindedImage[] = scaledDir ? await scaledTo(listed, args.megapixels, scaledDir) : listed;
  const butteraugli = await butteraugliInstalled();
  const lines: string[] = [
    `## At defaults: anchor at sharp's defaults vs ours (${images.length} image(s)${args.megapixels > 0 ? ` scaled to ${args.megapixels} MP` : ''}, 1 run each, one libvips thread)`,
    '',
    `butteraugli: ${butteraugli ? 'installed (distance at 640 px, lower is better)' : 'not installed'}. Prices: ${PRICES.source}.`,
    '',
    '| image | method | invocations | CPU s | wall s | peak RSS MiB | KiB AVIF / WebP / JPEG | variants larger than the original | SSIM AVIF / WebP / JPEG | butteraugli AVIF / WebP / JPEG | USD per 1,000 (compute + requests, Pub/Sub, storage ops) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const anchorResults: MethodResult[] = [];
  const kinds: Array<string | undefined> = [];
  const oursResults = candidates.map(() => [] as MethodResult[]);
  for (const image of images) {
    // An image libvips rejects (the corpus has one) is a row of its own, not the end of the run.
    const anchor = await runChild(image.path, { kind: 'anchor' }, butteraugli).catch((error: unknown) => {
      lines.push(`| ${image.name} | error: ${error instanceof Error ? error.message : String(error)} |`);
      return undefined;
    });
    if (!anchor) continue;
    anchorResults.push(anchor);
    kinds.push(image.kind);
    lines.push(row(image.name, anchor, 'anchor', butteraugli));
    for (const [i, candidate] of candidates.entries()) {
      const ours = await runChild(image.path, { kind: 'ours', candidate }, butteraugli);
      oursResults[i]!.push(ours);
      lines.push(row(image.name, ours, 'ours', butteraugli));
    }
  }
  const anchorAll = total(anchorResults);
  const overall = candidates.map((candidate, i) => ({ candidate, overall: total(oursResults[i]!) }));
  lines.push(row('**all**', anchorAll, 'anchor', butteraugli));
  for (const { overall: o } of overall) lines.push(row('**all**', o, 'ours', butteraugli));
  lines.push('');
  for (const { candidate, overall: o } of overall) {
    lines.push(
      `- ours ${candidateName(candidate)}: anchor CPU ÷ ours = ${(anchorAll.cpuS / o.cpuS).toFixed(2)}×; bytes vs anchor ${FORMATS.map((f) => `${f} ${(((o.bytes[f] ?? 0) / (anchorAll.bytes[f] ?? 1) - 1) * 100).toFixed(1)} %`).join(', ')}; mean SSIM − anchor's ${FORMATS.map((f) => `${f} ${((o.ssim[f] ?? 0) - (anchorAll.ssim[f] ?? 0)).toFixed(4)}`).join(', ')}; meets the anchor in ${Object.entries(
        meetsAnchor(anchorAll, o),
      )
        .map(([f, ok]) => `${f} ${ok ? 'yes' : 'no'}`)
        .join(', ')}`,
    );
  }
  const kindNames = [...new Set(kinds.filter((k) => k !== undefined))].sort();
  if (kindNames.length > 0) {
    lines.push('');
    for (const [i, { candidate, overall: o }] of overall.entries()) {
      const of = (results: readonly MethodResult[], kind: string) => results.filter((_, j) => kinds[j] === kind);
      const summaries = kindNames.map((kind) =>
        summariseKind(
          kind,
          of(anchorResults, kind).length,
          total(of(anchorResults, kind)),
          total(of(oursResults[i]!, kind)),
          FORMATS,
        ),
      );
      summaries.push(summariseKind('**all**', anchorResults.length, anchorAll, o, FORMATS));
      lines.push(...kindTable(`ours ${candidateName(candidate)}`, summaries, FORMATS));
    }
  }
  const chosen = chooseCandidate(anchorAll, overall);
  lines.push(
    '',
    chosen
      ? `Chosen: ${candidateName(chosen)} (least CPU with bytes ≤ the anchor's and mean SSIM ≥ the anchor's in every format).`
      : "Chosen: none of the candidates has bytes ≤ the anchor's and mean SSIM ≥ the anchor's in every format.",
  );
  process.stdout.write(`${lines.join('\n')}\n`);
  await writeResults(args.json, {
    prices: PRICES,
    butteraugli,
    anchor: anchorResults,
    candidates: overall.map((o, i) => ({ ...o, images: oursResults[i] })),
    chosen,
  });
  if (scaledDir) await rm(scaledDir, { recursive: true, force: true });
}

// Run only as a script, so tests can import the pricing and the choice.
if (process.argv[1] === SELF) await main();
