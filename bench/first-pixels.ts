/**
 * `npm run bench:first-pixels -- [options]`: how soon a page has something to show. On the local
 * stack (local/stack.ts, started here with its emulators, data in a temporary directory), one
 * upload at a time of distinct photo-like JPEGs and PNGs (test/fixtures/images.ts `makePhoto`),
 * each followed by polling `GET /uploads/{id}` every `--poll` ms from the upload's 202:
 *
 * - first: the first answer that lists a finished variant (`finished`, docs/api.md "While
 *   processing"), i.e. the first job's early record (docs/state.md, "Progressive status");
 * - first job: the first answer listing two or more, or ready: when the first job's fan-in
 *   recorded its variants, which is when a status recorded per job only would list the first;
 * - ready: the first 200.
 *
 * Times are from the 202 (the upload itself is reported apart), to the poll that saw it, so they
 * are late by up to `--poll` ms. Each side (`--sides`: PREVIEW=off, first-in-job or
 * inline) gets a stack of its own, one after the other in each round, and the same photos
 * (the same seeds): the sides are compared in the same run. Prints a Markdown table (median, min,
 * max per photo and side) and writes the runs as JSON under bench/results/.
 *
 * Unless `--no-anchor`, each photo's bare compute is measured too, with no stack running: the
 * usual function's (sharp's defaults, its threads included; and at one thread per core) and
 * ours' CPU, whose spread over the cores bounds what any stack here can reach (docs/performance.md).
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { startLocalStack } from '../local/stack.js';
import { makePhoto } from '../test/fixtures/images.js';
import { parseCommandLine, refuse, resultsPath, writeResults } from './cli.js';
import { geomean, markdownTable, median } from './stats.js';
import { availableParallelism } from 'node:os';
import { anchorEncode } from './defaults.js';
import { benchConfig, measure, renderOptionsFrom } from './methods.js';
import { heightForWidth, planImage } from '../shared/image/plan.js';
import { jobGroups } from '../shared/image/preview.js';
import { renderAll } from '../shared/image/render.js';
import sharp from 'sharp';

/** One upload's times, ms. */
export interface FirstPixelsRun {
  readonly side: Side;
  readonly photo: string;
  readonly uploadMs: number;
  /** 0 when the 202 itself carried the preview (PREVIEW=inline). */
  readonly firstMs: number | undefined;
  readonly firstJobMs: number | undefined;
  readonly readyMs: number;
  /** Width and format of the first variant listed. */
  readonly first: string | undefined;
}

interface StatusBody {
  status?: string;
  finished?: Array<{ width: number; format: string }>;
}

/** The PREVIEW modes compared (preview.ts): `first-in-job` is what main did before `inline`. */
const SIDES = { off: 'off', 'first-in-job': 'first-in-job', inline: 'inline' } as const;
type Side = keyof typeof SIDES;

/** A photo to upload: its size and encoding. */
interface Photo {
  readonly name: string;
  readonly width: number;
  readonly height: number;
  readonly format: 'jpeg' | 'png';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Uploads `photo` and follows its status until ready; throws on any other outcome. */
async function measureOne(
  api: string,
  photo: Buffer,
  contentType: string,
  pollMs: number,
  timeoutMs: number,
): Promise<Omit<FirstPixelsRun, 'side' | 'photo'>> {
  const start = performance.now();
  const response = await fetch(api, {
    method: 'POST',
    headers: { 'Content-Type': contentType },
    body: photo as unknown as BodyInit,
  });
  const accepted = (await response.json()) as {
    id?: string;
    status?: string;
    preview?: { width: number; format: string };
  };
  if (response.status !== 202 || !accepted.id) throw new Error(`upload answered ${response.status}`);
  const t0 = performance.now();
  let firstMs: number | undefined = accepted.preview ? 0 : undefined;
  let firstJobMs: number | undefined;
  let first: string | undefined = accepted.preview
    ? `${accepted.preview.width} ${accepted.preview.format} (in the 202)`
    : undefined;
  for (;;) {
    const status = await fetch(`${api}/${accepted.id}`, { headers: { Accept: 'application/json' } });
    const body = (await status.json()) as StatusBody;
    const at = performance.now() - t0;
    const finished = body.finished ?? [];
    if (firstMs === undefined && (finished.length > 0 || status.status === 200)) {
      firstMs = at;
      first = finished[0] ? `${finished[0].width} ${finished[0].format}` : 'ready';
    }
    if (firstJobMs === undefined && (finished.length > 1 || status.status === 200)) firstJobMs = at;
    if (status.status === 200) return { uploadMs: t0 - start, firstMs, firstJobMs, readyMs: at, first };
    if (status.status !== 202) throw new Error(`status answered ${status.status}: ${JSON.stringify(body)}`);
    if (at > timeoutMs) throw new Error(`not ready after ${timeoutMs} ms`);
    await sleep(pollMs);
  }
}

const USAGE = `usage: npm run bench:first-pixels -- [options]

Upload 202 -> first finished variant listed by GET /uploads/{id}, -> the first job's variants,
-> ready, one upload at a time on the local stack (started here, one per side and round), for
today's planner and preview-first on the same photos. Markdown on stdout, the runs as JSON in
bench/results/first-pixels.json.

  --uploads N       rounds: uploads of each photo per side, each a distinct photo [3]
  --size LIST       photos, comma-separated WxH, with :png for a PNG
                    [1732x1155,4000x3000,6000x4000,8000x6000,4000x3000:png] (2, 12, 24, 48 MP JPEG; 12 MP PNG)
  --sides LIST      PREVIEW modes: off, first-in-job, inline [first-in-job,inline]
  --no-anchor       skip the bare compute of each photo, in process: the usual function's at
                    sharp's default threads and at one per core, and ours' CPU (the ceiling)
  --poll MS         status poll interval [25]
  --out FILE        results file [bench/results/first-pixels.json]
  -h, --help        this text
`;

/** Parses `--size`: `WxH` or `WxH:png`, comma-separated. */
function parsePhotos(list: string): Photo[] | undefined {
  const photos = list.split(',').map((item) => {
    const match = /^(\d+)x(\d+)(:png|:jpeg)?$/.exec(item.trim());
    if (!match) return undefined;
    const [width, height] = [Number(match[1]), Number(match[2])];
    const format = match[3] === ':png' ? 'png' : 'jpeg';
    const mp = (width * height) / 1e6;
    return { name: `${mp < 10 ? mp.toFixed(1) : mp.toFixed(0)} MP ${format.toUpperCase()}`, width, height, format };
  });
  return photos.every((photo) => photo !== undefined) && photos.length > 0 ? (photos as Photo[]) : undefined;
}

/** The `q` quantile (nearest rank) of `values`. */
function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

/**
 * sharp's own default threads per image here, read before a stack sets SHARP_CONCURRENCY in this
 * process: 1 on glibc Linux without jemalloc (as on Cloud Run), else one per core.
 */
const SHARP_DEFAULT_CONCURRENCY = sharp.concurrency();

/** Runs `work` with sharp at `threads` threads per image, then puts the previous value back. */
async function withThreads<T>(threads: number, work: () => Promise<T>): Promise<T> {
  const before = sharp.concurrency();
  sharp.concurrency(threads);
  try {
    return await work();
  } finally {
    sharp.concurrency(before);
  }
}

/**
 * The usual function's bare compute: per variant of our plan, one sharp pipeline from the
 * original's bytes at sharp's default encoder settings (defaults.ts anchorEncode), in series,
 * with `threads` libvips threads.
 */
async function anchorRun(bytes: Buffer, photo: Photo, threads: number): Promise<{ wallMs: number; cpuMs: number }> {
  const config = benchConfig();
  const info = { width: photo.width, height: photo.height };
  return withThreads(threads, () =>
    measure(async () => {
      for (const { width, format } of planImage(info, config).variants)
        await anchorEncode(
          sharp(bytes, { limitInputPixels: config.MAX_INPUT_PIXELS })
            .rotate()
            .resize(width, heightForWidth(width, info), { fit: 'fill', kernel: 'lanczos3' })
            .toColourspace('srgb'),
          format,
        ).toBuffer();
    }),
  );
}

/**
 * Ours' bare compute, CPU ms: the jobs the upload would dispatch (with PREVIEW=inline's job 0),
 * rendered in series in process. No stack can make the image ready in less wall time than this
 * CPU time spread over every core, which bounds anchor ÷ ready on this machine.
 */
async function oursCpuMs(bytes: Buffer, photo: Photo): Promise<number> {
  const config = benchConfig();
  const info = { width: photo.width, height: photo.height };
  const plan = planImage(info, config).variants;
  const jobs = jobGroups(plan, { ...info, format: photo.format }, { ...config, PREVIEW: 'inline' }, false);
  const options = renderOptionsFrom(config);
  const { cpuMs } = await withThreads(config.SHARP_CONCURRENCY, () =>
    measure(async () => {
      for (const variants of jobs) await renderAll(bytes, variants, options);
    }),
  );
  return cpuMs;
}

/** Starts a stack for `side`, uploads each photo once, stops it. */
async function runSide(side: Side, photos: ReadonlyArray<{ photo: Photo; bytes: Buffer }>, pollMs: number) {
  const dataDir = await mkdtemp(join(tmpdir(), 'pipeline-first-pixels-'));
  const log = createWriteStream(join(dataDir, 'stack.log'));
  process.stderr.write(`starting the local stack for ${side} (logs in ${dataDir}/stack.log)\n`);
  const stack = await startLocalStack({
    ports: { web: 0, storage: 0, pubsub: 0, firestore: 0, ingest: 0, resize: 0, cleanup: 0, webhooks: 0 },
    dataDir,
    projectId: `first-pixels-${process.pid}`,
    cleanupIntervalSeconds: 0,
    // First pixels measure the pipeline, not sign-in; a 12 MP PNG of noise is ~30 MB (the cap is 32 MiB).
    env: { UPLOAD_AUTH: 'none', MAX_UPLOAD_BYTES: String(32 * 1024 * 1024), PREVIEW: SIDES[side] },
    log: (line) => log.write(`${line}\n`),
  });
  const runs: FirstPixelsRun[] = [];
  try {
    // A small upload first, not counted: the first request of a new stack pays its cold start.
    await measureOne(
      stack.urls.api,
      await makePhoto({ width: 400, height: 300, seed: 1 }),
      'image/jpeg',
      pollMs,
      60_000,
    );
    for (const { photo, bytes } of photos) {
      const run = await measureOne(stack.urls.api, bytes, `image/${photo.format}`, pollMs, 180_000);
      process.stderr.write(`${side}, ${photo.name}: ${JSON.stringify(run)}\n`);
      runs.push({ side, photo: photo.name, ...run });
    }
  } finally {
    await stack.stop();
    log.end();
    await rm(dataDir, { recursive: true, force: true });
  }
  return runs;
}

async function main(argv: readonly string[]): Promise<void> {
  const values = parseCommandLine(
    argv,
    {
      uploads: { type: 'string', default: '3' },
      size: { type: 'string', default: '1732x1155,4000x3000,6000x4000,8000x6000,4000x3000:png' },
      sides: { type: 'string', default: 'first-in-job,inline' },
      'no-anchor': { type: 'boolean', default: false },
      poll: { type: 'string', default: '25' },
      out: { type: 'string', default: resultsPath('first-pixels.json') },
    },
    USAGE,
  );
  const rounds = Number(values.uploads);
  const pollMs = Number(values.poll);
  const photos = parsePhotos(values.size);
  const sides = values.sides.split(',').map((side) => side.trim());
  if (!Number.isInteger(rounds) || rounds < 1) refuse(`--uploads must be a positive whole number`, USAGE);
  if (!Number.isFinite(pollMs) || pollMs < 1) refuse(`--poll must be a positive number of ms`, USAGE);
  if (!photos) refuse(`--size must list sizes such as 4000x3000 or 4000x3000:png`, USAGE);
  if (sides.length === 0 || !sides.every((side): side is Side => side in SIDES))
    refuse(`--sides must list off, first-in-job and/or inline`, USAGE);

  process.env.METADATA_SERVER_DETECTION ??= 'none';
  const runs: FirstPixelsRun[] = [];
  const anchors: Array<{
    photo: string;
    anchorMs: number;
    anchorCpuMs: number;
    /** The anchor with one libvips thread per core: a usual function that set sharp.concurrency. */
    anchorPerCoreMs: number;
    oursCpuMs: number;
  }> = [];
  const cores = availableParallelism();
  for (let round = 0; round < rounds; round++) {
    // The same photos for every side of a round; new ones each round (an identical upload is not processed again).
    const made = [];
    for (const [i, photo] of photos.entries())
      made.push({ photo, bytes: await makePhoto({ ...photo, seed: 9000 + round * 100 + i }) });
    // The usual function's bare compute of each photo, alone on the machine (no stack running).
    if (!values['no-anchor'])
      for (const { photo, bytes } of made) {
        const { wallMs: anchorMs, cpuMs: anchorCpuMs } = await anchorRun(bytes, photo, SHARP_DEFAULT_CONCURRENCY);
        const { wallMs: anchorPerCoreMs } = await anchorRun(bytes, photo, cores);
        const oursCpu = await oursCpuMs(bytes, photo);
        process.stderr.write(
          `anchor, ${photo.name}: ${Math.round(anchorMs)} ms (CPU ${Math.round(anchorCpuMs)} ms), ${Math.round(anchorPerCoreMs)} ms at ${cores} threads; ours' compute CPU ${Math.round(oursCpu)} ms\n`,
        );
        anchors.push({ photo: photo.name, anchorMs, anchorCpuMs, anchorPerCoreMs, oursCpuMs: oursCpu });
      }
    // Which side goes first alternates, so that a slow spell of the shared machine falls on both.
    const order = round % 2 === 0 ? sides : [...sides].reverse();
    for (const side of order as Side[]) runs.push(...(await runSide(side, made, pollMs)));
  }
  const p = (values: number[], q: number) => (values.length === 0 ? '–' : (quantile(values, q) / 1000).toFixed(2));
  const both = (values: number[]) => `${p(values, 0.5)} / ${p(values, 0.9)}`;
  const rows = photos.flatMap((photo) =>
    (sides as Side[]).map((side) => {
      const mine = runs.filter((r) => r.photo === photo.name && r.side === side);
      const defined = (key: 'firstMs' | 'firstJobMs') => mine.flatMap((r) => (r[key] === undefined ? [] : [r[key]]));
      const fromRequest = mine.flatMap((r) => (r.firstMs === undefined ? [] : [r.uploadMs + r.firstMs]));
      return [
        photo.name,
        side,
        both(mine.map((r) => r.uploadMs)),
        both(defined('firstMs')),
        both(fromRequest),
        p(defined('firstJobMs'), 0.5),
        both(mine.map((r) => r.readyMs)),
        [...new Set(mine.map((r) => r.first))].join(', '),
      ];
    }),
  );
  console.log(`${rounds} upload(s) of each photo per side, one at a time, polled every ${pollMs} ms; p50 / p90 s\n`);
  console.log(
    markdownTable(
      [
        'photo',
        'PREVIEW',
        'request → 202',
        '202 → first variant',
        'request → first variant',
        "202 → the first job's variants, p50",
        '202 → ready',
        'first variant listed',
      ],
      rows,
    ),
  );
  if (anchors.length > 0) {
    // Upload → ready against the usual function's bare compute on the same photos (issue 25's second figure).
    const ratios: Record<string, number[]> = {};
    const ceilings: number[] = [];
    const ceilingsPerCore: number[] = [];
    const perCore: Record<string, number[]> = {};
    const fromRequestRatios: Record<string, number[]> = {};
    const anchorRows = photos.flatMap((photo) => {
      const mineAnchors = anchors.filter((a) => a.photo === photo.name);
      const anchor = median(mineAnchors.map((a) => a.anchorMs));
      const anchorCpu = median(mineAnchors.map((a) => a.anchorCpuMs));
      const anchorPerCore = median(mineAnchors.map((a) => a.anchorPerCoreMs));
      const oursCpu = median(mineAnchors.map((a) => a.oursCpuMs));
      const ceiling = anchor / (oursCpu / cores);
      const ceilingPerCore = anchorPerCore / (oursCpu / cores);
      if (photo.width * photo.height >= 12e6) {
        ceilings.push(ceiling);
        ceilingsPerCore.push(ceilingPerCore);
      }
      return (sides as Side[]).map((side) => {
        const mine = runs.filter((r) => r.photo === photo.name && r.side === side);
        const ready = median(mine.map((r) => r.readyMs));
        const fromRequest = median(mine.map((r) => r.uploadMs + r.readyMs));
        if (photo.width * photo.height >= 12e6) {
          ratios[side] = [...(ratios[side] ?? []), anchor / ready];
          perCore[side] = [...(perCore[side] ?? []), anchorPerCore / ready];
          fromRequestRatios[side] = [...(fromRequestRatios[side] ?? []), anchor / fromRequest];
        }
        return [
          photo.name,
          side,
          (anchor / 1000).toFixed(2),
          (anchorCpu / 1000).toFixed(2),
          (anchorPerCore / 1000).toFixed(2),
          (oursCpu / 1000).toFixed(2),
          `${(anchorCpu / oursCpu).toFixed(2)}×`,
          `${ceiling.toFixed(2)}× / ${ceilingPerCore.toFixed(2)}×`,
          (ready / 1000).toFixed(2),
          (fromRequest / 1000).toFixed(2),
          `${(anchor / ready).toFixed(2)}×`,
          `${(anchor / fromRequest).toFixed(2)}×`,
          `${(anchorPerCore / ready).toFixed(2)}×`,
        ];
      });
    });
    console.log(
      `\nthe usual function's bare compute (one sharp pipeline per variant at sharp's defaults, in process, in series, at sharp's default of ${SHARP_DEFAULT_CONCURRENCY} libvips thread(s) per image here; and at ${cores}, one per core) and ours' (the same variants in our jobs, in process, in series), medians; ceiling = anchor wall ÷ (ours' CPU ÷ ${cores} cores): the ratio a stack with no overhead would reach on this machine\n`,
    );
    console.log(
      markdownTable(
        [
          'photo',
          'PREVIEW',
          'anchor s',
          'anchor CPU s',
          `anchor at ${cores} threads s`,
          "ours' compute CPU s",
          'CPU ratio',
          `ceiling: anchor / at ${cores} threads`,
          '202 → ready s',
          'request → ready s',
          'anchor ÷ 202→ready',
          'anchor ÷ request→ready',
          `anchor at ${cores} threads ÷ 202→ready`,
        ],
        anchorRows,
      ),
    );
    if (ceilings.length > 0)
      console.log(
        `\nceiling, geometric mean over the ≥ 12 MP photos: ${geomean(ceilings).toFixed(2)}× against the anchor, ${geomean(ceilingsPerCore).toFixed(2)}× against the anchor at ${cores} threads`,
      );
    for (const side of sides as Side[])
      if (ratios[side]?.length)
        console.log(
          `\n${side}: geometric mean over the ≥ 12 MP photos of anchor ÷ 202→ready: ${geomean(ratios[side]).toFixed(2)}×; of anchor ÷ request→ready: ${geomean(fromRequestRatios[side] ?? []).toFixed(2)}×; of the anchor at ${cores} threads ÷ 202→ready: ${geomean(perCore[side] ?? []).toFixed(2)}×`,
        );
  }
  await writeResults(values.out, { photos, pollMs, runs, anchors });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main(process.argv.slice(2));
