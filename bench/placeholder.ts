/**
 * `npm run bench:placeholder -- [--corpus DIR] [--width W] [--runs N]`
 *
 * The placeholder's cost and fidelity per image: from the level the carrier variant is encoded
 * from (the image at the smallest planned width, raw, as render.ts holds it), the previous method
 * (sharp: resize to ≤100×100, `stats().dominant`, ThumbHash at 100 px) against shared/image/placeholder.ts
 * (one pass in JS). Per image: the first call's wall ms in a fresh process (what the first image of
 * a new instance pays, before V8 has optimised anything) and the median after a warm-up (every
 * later image), the dominant colours and how
 * many histogram bins apart they are (also against sharp's `stats()` of the whole level), and how
 * far the new ThumbHash decodes from the old one (average colour, and mean per-pixel difference of
 * the decoded pictures, in /255). One libvips thread. Markdown to stdout; results:
 * docs/performance.md ("Placeholders").
 */
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { rgbaToThumbHash, thumbHashToAverageRGBA, thumbHashToRGBA } from 'thumbhash';
import { heightForWidth } from '../shared/image/plan.js';
import { type Placeholder, placeholderOfPixels, type RawPixels } from '../shared/image/placeholder.js';
import { configureSharp } from '../shared/image/encode.js';
import { parseCommandLine, refuse } from './cli.js';
import { corpusImages, readImage } from './images.js';

const hex = (value: number) => Math.round(value).toString(16).padStart(2, '0');

/** The method before this one (shared/image/placeholder.ts until 2026-12), kept here as the baseline. */
async function previousPlaceholder(level: RawPixels): Promise<Placeholder> {
  const { data, info } = await sharp(level.data, {
    raw: { width: level.width, height: level.height, channels: level.channels as 1 | 2 | 3 | 4 },
  })
    .resize(100, 100, { fit: 'inside', withoutEnlargement: true })
    .ensureAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  const { dominant } = await sharp(data, { raw: { width: info.width, height: info.height, channels: 4 } }).stats();
  const hash = rgbaToThumbHash(info.width, info.height, data);
  return {
    color: `#${hex(dominant.r)}${hex(dominant.g)}${hex(dominant.b)}`,
    thumbhash: Buffer.from(hash).toString('base64'),
  };
}

/** The level render.ts would hold at `width`: oriented, sRGB, raw, an all-opaque alpha removed. */
async function levelOf(original: Buffer, width: number): Promise<RawPixels> {
  const { autoOrient } = await sharp(original).metadata();
  const w = Math.min(width, autoOrient.width);
  const h = heightForWidth(w, autoOrient);
  let pipeline = sharp(original, { animated: false, limitInputPixels: false })
    .rotate()
    .resize(w, h, { fit: 'fill', kernel: 'lanczos3' })
    .toColourspace('srgb');
  const probe = await pipeline.clone().stats();
  if (probe.isOpaque) pipeline = pipeline.removeAlpha();
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data };
}

async function medianMs(runs: number, work: () => unknown): Promise<number> {
  await work();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const started = performance.now();
    await work();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

const rgbOf = (color: string) => [1, 3, 5].map((i) => Number.parseInt(color.slice(i, i + 2), 16));
const binsApart = (a: readonly number[], b: readonly number[]) =>
  Math.max(...a.map((x, i) => Math.abs(Math.floor(x / 16) - Math.floor((b[i] ?? 0) / 16))));

/** How far two ThumbHashes decode apart: average colour (max channel) and mean per-pixel difference, /255. */
function hashDistance(a: string, b: string): { average: number; pixels: number } {
  const [ha, hb] = [Buffer.from(a, 'base64'), Buffer.from(b, 'base64')];
  const [avgA, avgB] = [thumbHashToAverageRGBA(ha), thumbHashToAverageRGBA(hb)];
  const average = Math.max(...(['r', 'g', 'b', 'a'] as const).map((c) => Math.abs(avgA[c] - avgB[c]) * 255));
  const [da, db] = [thumbHashToRGBA(ha), thumbHashToRGBA(hb)];
  if (da.w !== db.w || da.h !== db.h) return { average, pixels: Number.NaN };
  let sum = 0;
  for (let i = 0; i < da.rgba.length; i++) sum += Math.abs((da.rgba[i] ?? 0) - (db.rgba[i] ?? 0));
  return { average, pixels: sum / da.rgba.length };
}

/** The first call of one method on one image, in this (fresh) process: `--child METHOD PATH WIDTH`. */
async function child(method: string, path: string, width: number): Promise<void> {
  configureSharp({ concurrency: 1, cache: false });
  const level = await levelOf(await readImage({ name: path, path }), width);
  const started = performance.now();
  if (method === 'previous') await previousPlaceholder(level);
  else placeholderOfPixels(level);
  process.stdout.write(`${performance.now() - started}\n`);
}

function firstCallMs(method: string, path: string, width: number): number {
  const run = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', method, path, String(width)], {
    encoding: 'utf8',
  });
  return run.status === 0 ? Number(run.stdout.trim()) : Number.NaN;
}

const USAGE = `usage: npm run bench:placeholder -- [options]

The placeholder's cost and fidelity per image: the previous method (sharp) against
shared/image/placeholder.ts (JS), from the level the carrier variant is encoded from
(docs/performance.md, "Placeholders").

Options:
  --corpus DIR   images to measure (default ../shared/corpus)
  --width W      width of the level the placeholder is computed from (default 320)
  --runs N       runs per method and image after the first call, median reported (default 9)
  -h, --help     print this and exit
`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--child') return child(argv[1] ?? 'js', argv[2] ?? '', Number(argv[3]));
  const values = parseCommandLine(
    argv,
    {
      corpus: { type: 'string', default: '../shared/corpus' },
      width: { type: 'string', default: '320' },
      runs: { type: 'string', default: '9' },
    },
    USAGE,
  );
  const args = { corpus: values.corpus, width: Number(values.width), runs: Number(values.runs) };
  if (!(args.width >= 1 && args.runs >= 1)) refuse('--width and --runs need positive numbers', USAGE);
  configureSharp({ concurrency: 1, cache: false });
  const lines = [
    `## Placeholders: previous (sharp) vs JS, from the ${args.width} px level (median of ${args.runs} runs)`,
    '',
    '| image | level | first call ms, previous / JS | median ms, previous / JS | colour previous / JS / sharp stats of level | bins apart (prev, stats) | ThumbHash Δ average / Δ pixels (/255) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const image of await corpusImages(args.corpus)) {
    let level: RawPixels;
    try {
      level = await levelOf(await readImage(image), args.width);
    } catch (error) {
      lines.push(`| ${image.name} | not decodable: ${(error as Error).message.split('\n')[0]} | | | | | |`);
      continue;
    }
    const before = await previousPlaceholder(level);
    const after = placeholderOfPixels(level);
    const { dominant } = await sharp(level.data, {
      raw: { width: level.width, height: level.height, channels: level.channels as 1 | 2 | 3 | 4 },
    }).stats();
    const statsRgb = [dominant.r, dominant.g, dominant.b];
    const previousMs = await medianMs(args.runs, () => previousPlaceholder(level));
    const jsMs = await medianMs(args.runs, () => placeholderOfPixels(level));
    const distance = hashDistance(before.thumbhash, after.thumbhash);
    const [previousFirst, jsFirst] = ['previous', 'js'].map((m) => firstCallMs(m, image.path, args.width));
    lines.push(
      `| ${image.name} | ${level.width}×${level.height}×${level.channels} | ${previousFirst?.toFixed(1)} / ${jsFirst?.toFixed(1)} | ${previousMs.toFixed(2)} / ${jsMs.toFixed(2)} | ${before.color} / ${after.color} / #${statsRgb.map(hex).join('')} | ${binsApart(rgbOf(before.color), rgbOf(after.color))}, ${binsApart(statsRgb, rgbOf(after.color))} | ${distance.average.toFixed(1)} / ${distance.pixels.toFixed(1)} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
