/**
 * `npm run bench:first-pixels -- [options]`: how soon a page has something to show. On the local
 * stack (local/stack.ts, started here with its emulators, data in a temporary directory), one
 * upload at a time of distinct photo-like JPEGs (test/fixtures/images.ts `makePhoto`), each
 * followed by polling `GET /uploads/{id}` every `--poll` ms from the upload's 202:
 *
 * - first: the first answer that lists a finished variant (`finished`, docs/api.md "While
 *   processing"), i.e. the first job's early record (docs/state.md, "Progressive status");
 * - first job: the first answer listing two or more, or ready: when the first job's fan-in
 *   recorded its variants, which is when a status recorded per job only would list the first;
 * - ready: the first 200.
 *
 * Times are from the 202 (the upload itself is reported apart), to the poll that saw it, so they
 * are late by up to `--poll` ms. Prints a Markdown table (median, min, max) and writes the runs as
 * JSON under bench/results/.
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
import { markdownTable, median } from './stats.js';

/** One upload's times, ms. */
export interface FirstPixelsRun {
  readonly uploadMs: number;
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

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Uploads `photo` and follows its status until ready; throws on any other outcome. */
async function measureOne(api: string, photo: Buffer, pollMs: number, timeoutMs: number): Promise<FirstPixelsRun> {
  const start = performance.now();
  const response = await fetch(api, {
    method: 'POST',
    headers: { 'Content-Type': 'image/jpeg' },
    body: photo as unknown as BodyInit,
  });
  const accepted = (await response.json()) as { id?: string; status?: string };
  if (response.status !== 202 || !accepted.id) throw new Error(`upload answered ${response.status}`);
  const t0 = performance.now();
  let firstMs: number | undefined;
  let firstJobMs: number | undefined;
  let first: string | undefined;
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
-> ready, one upload at a time on the local stack (started here). Markdown on stdout, the runs
as JSON in bench/results/first-pixels.json.

  --uploads N       distinct photos, uploaded one after another [5]
  --size WxH        photo size [4000x3000] (12 MP)
  --poll MS         status poll interval [25]
  --out FILE        results file [bench/results/first-pixels.json]
  -h, --help        this text
`;

async function main(argv: readonly string[]): Promise<void> {
  const values = parseCommandLine(
    argv,
    {
      uploads: { type: 'string', default: '5' },
      size: { type: 'string', default: '4000x3000' },
      poll: { type: 'string', default: '25' },
      out: { type: 'string', default: resultsPath('first-pixels.json') },
    },
    USAGE,
  );
  const uploads = Number(values.uploads);
  const pollMs = Number(values.poll);
  const size = /^(\d+)x(\d+)$/.exec(values.size);
  if (!Number.isInteger(uploads) || uploads < 1) refuse(`--uploads must be a positive whole number`, USAGE);
  if (!Number.isFinite(pollMs) || pollMs < 1) refuse(`--poll must be a positive number of ms`, USAGE);
  if (!size) refuse(`--size must look like 4000x3000`, USAGE);
  const [width, height] = [Number(size[1]), Number(size[2])];

  process.env.METADATA_SERVER_DETECTION ??= 'none';
  const dataDir = await mkdtemp(join(tmpdir(), 'pipeline-first-pixels-'));
  const log = createWriteStream(join(dataDir, 'stack.log'));
  process.stderr.write(`starting the local stack (logs in ${dataDir}/stack.log)\n`);
  const stack = await startLocalStack({
    ports: { web: 0, storage: 0, pubsub: 0, firestore: 0, ingest: 0, resize: 0, cleanup: 0, webhooks: 0 },
    dataDir,
    projectId: `first-pixels-${process.pid}`,
    cleanupIntervalSeconds: 0,
    // First pixels measure the pipeline, not sign-in.
    env: { UPLOAD_AUTH: 'none' },
    log: (line) => log.write(`${line}\n`),
  });
  const runs: FirstPixelsRun[] = [];
  try {
    for (let i = 0; i < uploads; i++) {
      const photo = await makePhoto({ width, height, seed: 9000 + i });
      const run = await measureOne(stack.urls.api, photo, pollMs, 120_000);
      process.stderr.write(`upload ${i + 1}/${uploads}: ${JSON.stringify(run)}\n`);
      runs.push(run);
    }
  } finally {
    await stack.stop();
    log.end();
    await rm(dataDir, { recursive: true, force: true });
  }
  const row = (what: string, values: number[]) => [
    what,
    (median(values) / 1000).toFixed(2),
    (Math.min(...values) / 1000).toFixed(2),
    (Math.max(...values) / 1000).toFixed(2),
  ];
  const defined = (key: 'firstMs' | 'firstJobMs') => runs.flatMap((r) => (r[key] === undefined ? [] : [r[key]]));
  console.log(`${uploads} uploads of ${width}×${height} JPEG, one at a time, polled every ${pollMs} ms\n`);
  console.log(
    markdownTable(
      ['from the 202 to', 'median s', 'min s', 'max s'],
      [
        row(
          'the upload itself (request → 202)',
          runs.map((r) => r.uploadMs),
        ),
        row('first variant listed', defined('firstMs')),
        row("the first job's variants listed", defined('firstJobMs')),
        row(
          'ready',
          runs.map((r) => r.readyMs),
        ),
      ],
    ),
  );
  console.log(`\nfirst variants listed: ${runs.map((r) => r.first).join(', ')}`);
  await writeResults(values.out, { width, height, pollMs, runs });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main(process.argv.slice(2));
