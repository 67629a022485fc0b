/**
 * `node dist/bench/aspects.js [--corpus DIR] [--only NAMES] [--aspects 1:1,16:9] [--json FILE]`
 *
 * What aspect-ratio variants cost: per image, the production path (plan → balanced fan-out →
 * renderVariants per job, each job decoding once, as resize does) without and with `ASPECTS`,
 * in process CPU and output bytes; plus the accept-time crop choice (chooseCrops, attention), which
 * runs once per image while every job reuses its rectangle from the job message (checked: every
 * aspect variant of every job reports the same rectangle). Sequential, one libvips thread, so
 * CPU is comparable on a shared machine. Markdown to stdout.
 */
import { basename } from 'node:path';
import { chooseCrops } from '../shared/image/crop.js';
import type { Config } from '../shared/core/config.js';
import { planImage, splitIntoJobs, type PlanInput } from '../shared/image/plan.js';
import { probeImage, probeLimitsFromConfig } from '../shared/image/probe.js';
import { renderAll, type RenderedVariant } from '../shared/image/render.js';
import { configureSharp } from '../shared/image/encode.js';
import { resultsPath, writeResults } from './cli.js';
import { corpusImages, readImage } from './images.js';
import { benchConfig, measure, renderOptionsFrom } from './methods.js';

interface Args {
  corpus: string;
  only: string[];
  aspects: string;
  json: string;
}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    corpus: '../shared/corpus',
    only: ['storm-1920x1280.jpg', 'ladybird-2560x1600.jpg', 'chelsea.png'],
    aspects: '1:1,16:9',
    json: resultsPath('bench-aspects.json'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [name, value] = [argv[i]!, argv[i + 1]];
    if (value === undefined) throw new Error(`${name} needs a value`);
    if (name === '--corpus') args.corpus = value;
    else if (name === '--only') args.only = value.split(',');
    else if (name === '--aspects') args.aspects = value;
    else if (name === '--json') args.json = value;
    else throw new Error(`unknown option ${name}`);
  }
  return args;
}

interface PathResult {
  jobs: number;
  variants: number;
  cpuMs: number;
  bytes: number;
  /** Of which aspect variants. */
  aspectVariants: number;
  aspectBytes: number;
  /** Distinct crop rectangles per aspect across all jobs' outputs (1 = every job agreed). */
  rectanglesPerAspect: Record<string, number>;
}

/** The resize path for one image: every balanced job rendered from its own decode, in turn. */
async function runPath(original: Buffer, info: PlanInput, config: Config): Promise<PathResult> {
  const plan = planImage(info, config).variants;
  const jobs = splitIntoJobs(plan, info, config.FANOUT_STRATEGY);
  const outputs: RenderedVariant[] = [];
  let cpuMs = 0;
  for (const variants of jobs) {
    const run = await measure(() => renderAll(original, variants, { ...renderOptionsFrom(config), crops: info.crops }));
    cpuMs += run.cpuMs;
    outputs.push(...run.value);
  }
  const aspectOutputs = outputs.filter((v) => v.aspect !== undefined);
  const rectanglesPerAspect: Record<string, number> = {};
  for (const aspect of config.ASPECTS) {
    rectanglesPerAspect[aspect] = new Set(
      aspectOutputs.filter((v) => v.aspect === aspect).map((v) => JSON.stringify(v.crop)),
    ).size;
  }
  return {
    jobs: jobs.length,
    variants: outputs.length,
    cpuMs,
    bytes: outputs.reduce((sum, v) => sum + v.data.length, 0),
    aspectVariants: aspectOutputs.length,
    aspectBytes: aspectOutputs.reduce((sum, v) => sum + v.data.length, 0),
    rectanglesPerAspect,
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  configureSharp({ concurrency: 1, cache: false });
  const without = benchConfig({ ...process.env, ASPECTS: '' });
  const withAspects = benchConfig({ ...process.env, ASPECTS: args.aspects });
  const images = (await corpusImages(args.corpus)).filter((image) => args.only.includes(basename(image.path)));
  const rows: Array<Record<string, unknown>> = [];
  for (const image of images) {
    const bytes = await readImage(image);
    const probe = await probeImage(bytes, probeLimitsFromConfig(withAspects));
    process.stderr.write(`${image.name}: ${probe.width}×${probe.height}\n`);
    const base = await runPath(bytes, probe, without);
    const choice = await measure(() =>
      chooseCrops(bytes, probe, {
        aspects: withAspects.ASPECTS,
        strategy: withAspects.CROP_STRATEGY,
        limitInputPixels: withAspects.MAX_INPUT_PIXELS,
      }),
    );
    const crops = choice.value!;
    const cropped = await runPath(bytes, { width: probe.width, height: probe.height, crops }, withAspects);
    rows.push({
      image: image.name,
      size: `${probe.width}×${probe.height}`,
      base,
      cropChoice: { cpuMs: choice.cpuMs, wallMs: choice.wallMs, calls: 1, crops },
      cropped,
    });
  }
  await writeResults(args.json, { aspects: args.aspects, strategy: withAspects.CROP_STRATEGY, rows });

  const out: string[] = [];
  out.push(
    `ASPECTS=${args.aspects}, CROP_STRATEGY=${withAspects.CROP_STRATEGY}, FANOUT_STRATEGY=${withAspects.FANOUT_STRATEGY}, WIDTHS=${withAspects.WIDTHS.join(',')}, FORMATS=${withAspects.FORMATS.join(',')}; one libvips thread, process CPU.`,
  );
  out.push('');
  out.push(
    '| Image | Jobs (without → with) | Variants | CPU without | CPU with | Added CPU | Bytes without | Bytes with | Added bytes | Crop choice (once, at accept) | Rectangles per aspect across jobs |',
  );
  out.push('| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const row of rows as Array<{
    image: string;
    size: string;
    base: PathResult;
    cropped: PathResult;
    cropChoice: { cpuMs: number };
  }>) {
    const { base, cropped, cropChoice } = row;
    const addedCpu = cropped.cpuMs + cropChoice.cpuMs - base.cpuMs;
    const addedBytes = cropped.bytes - base.bytes;
    out.push(
      `| ${row.image} (${row.size}) | ${base.jobs} → ${cropped.jobs} | ${base.variants} → ${cropped.variants} | ${(base.cpuMs / 1000).toFixed(1)} s | ${((cropped.cpuMs + cropChoice.cpuMs) / 1000).toFixed(1)} s | +${((100 * addedCpu) / base.cpuMs).toFixed(0)} % | ${(base.bytes / 1024).toFixed(0)} KiB | ${(cropped.bytes / 1024).toFixed(0)} KiB | +${((100 * addedBytes) / base.bytes).toFixed(0)} % | ${cropChoice.cpuMs.toFixed(0)} ms | ${Object.entries(
        cropped.rectanglesPerAspect,
      )
        .map(([a, n]) => `${a}: ${n}`)
        .join(', ')} |`,
    );
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
