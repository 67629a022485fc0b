/**
 * `npm run bench:heic -- --files a.heic,a.jpg`: what a HEIC costs against the same photo in another format. For
 * each file, in fresh processes (so peak RSS is the file's own): the decode alone (a HEIC through
 * libheif-js, anything else through sharp, both to upright sRGB pixels), then every default
 * variant rendered job by job as the resize function would (FANOUT_STRATEGY's jobs; a HEIC is
 * decoded once per job). CPU = `process.cpuUsage()` (all threads), peak RSS = `maxRSS`.
 * Results: docs/performance.md.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeHeif } from '../shared/image/heif-decode.js';
import { summariseHeif } from '../shared/image/heif-summary.js';
import { probeImage, probeLimitsFromConfig } from '../shared/image/probe.js';
import { parseCommandLine, refuse } from './cli.js';
import { printChildResult, runInFreshProcess } from './fresh-process.js';
import { benchConfig, jobsFor, runOurs } from './methods.js';

interface Measured {
  file: string;
  mode: 'decode' | 'render';
  format: string;
  megapixels: number;
  bytes: number;
  jobs: number;
  variants: number;
  cpuSeconds: number;
  wallSeconds: number;
  peakRssMiB: number;
}

async function child(file: string, mode: Measured['mode']): Promise<Measured> {
  const config = benchConfig();
  const original = await readFile(file);
  const probe = await probeImage(original, {
    ...probeLimitsFromConfig(config, 'ingest'),
    maxBytes: Number.MAX_SAFE_INTEGER,
  });
  const jobs = jobsFor(probe, config, config.FANOUT_STRATEGY);
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  if (mode === 'decode') {
    if (probe.format === 'heif') {
      const limits = { maxPixels: config.MAX_INPUT_PIXELS, maxFrames: config.MAX_INPUT_FRAMES };
      await decodeHeif(original, summariseHeif(original, limits));
    } else {
      await sharp(original).rotate().toColourspace('srgb').raw().toBuffer();
    }
  } else {
    await runOurs(original, jobs, config);
  }
  const cpu = process.cpuUsage(cpu0);
  return {
    file,
    mode,
    format: probe.format,
    megapixels: (probe.width * probe.height) / 1e6,
    bytes: original.length,
    jobs: jobs.length,
    variants: jobs.flat().length,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    wallSeconds: (performance.now() - wall0) / 1000,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

const USAGE = `usage: npm run bench:heic -- [options]

Decode alone, then every default variant (FANOUT_STRATEGY's jobs), each in a fresh process:
CPU seconds, wall seconds and peak RSS per file; a Markdown table on stdout.

  --files A,B,...   the images to measure, comma-separated (e.g. one photo as HEIC and as JPEG)
  -h, --help        this text
`;

const script = fileURLToPath(import.meta.url);
const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  const { file, mode } = JSON.parse(argv[1] ?? '{}') as { file: string; mode: Measured['mode'] };
  printChildResult(await child(file, mode));
} else {
  const { files } = parseCommandLine(argv, { files: { type: 'string' } }, USAGE);
  const list = (files ?? '').split(',').filter((file) => file !== '');
  if (list.length === 0) refuse('--files names no file', USAGE);
  console.log('| file | format | MP | bytes | mode | jobs (variants) | CPU s | wall s | peak RSS MiB |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const file of list) {
    for (const mode of ['decode', 'render'] as const) {
      const r = await runInFreshProcess<Measured>(script, { file, mode }, `${file} ${mode}`);
      console.log(
        `| ${file.split('/').pop()} | ${r.format} | ${r.megapixels.toFixed(1)} | ${r.bytes} | ${mode} | ${r.jobs} (${r.variants}) | ${r.cpuSeconds.toFixed(2)} | ${r.wallSeconds.toFixed(2)} | ${r.peakRssMiB.toFixed(0)} |`,
      );
    }
  }
}
