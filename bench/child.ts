/**
 * A measuring child process: `node dist/bench/child.js '<task JSON>'`. Loads the configuration
 * from its environment exactly as the functions do, applies the runtime settings with encode.ts's
 * `configureSharp`, warms the codecs up (so no measurement pays a library's first-use setup), runs
 * one task and prints one answer line ({@link ANSWER_MARKER} + JSON) with its peak RSS.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { PipelineError } from '../shared/core/errors.js';
import { renderAll } from '../shared/image/render.js';
import { configureSharp, encoderSettingsFromConfig, type EncoderSettings } from '../shared/image/encode.js';
import {
  alphaIsOpaque,
  benchConfig,
  checkEncoderParity,
  decodeFlattened,
  directResize,
  encodePixels,
  fullDecode,
  measure,
  removeAlpha,
  renderOptionsFrom,
  runAnchor,
  runFloor,
  runOurs,
  type Output,
  type Pixels,
} from './methods.js';
import { luma, ssim } from '../shared/image/ssim.js';
import {
  ANSWER_MARKER,
  type ChildAnswer,
  type EncoderCase,
  type EncoderRow,
  type ProcessFacts,
  type QualityRow,
  type Task,
} from './tasks.js';
import type { Config } from '../shared/core/config.js';
import { planVariants } from '../shared/image/plan.js';

/** Encodes and decodes a tiny image in every format, so that codec set-up is not measured. */
async function warmUp(): Promise<void> {
  const tiny = sharp({
    create: { width: 64, height: 48, channels: 4, background: { r: 200, g: 120, b: 40, alpha: 0.5 } },
  });
  const encoded = await Promise.all([
    tiny.clone().jpeg().toBuffer(),
    tiny.clone().png().toBuffer(),
    tiny.clone().webp().toBuffer(),
    tiny.clone().avif({ effort: 0 }).toBuffer(),
  ]);
  for (const data of encoded) await sharp(data).resize(32).raw().toBuffer();
}

async function saveOutputs(dir: string | undefined, outputs: readonly Output[]): Promise<void> {
  if (!dir) return;
  await mkdir(dir, { recursive: true });
  for (const output of outputs) await writeFile(join(dir, `${output.width}.${output.format}`), output.data);
}

function lumaOf(pixels: Pixels): Float32Array {
  return luma(pixels.data, pixels.width, pixels.height, pixels.channels);
}

async function ssimAgainst(reference: Float32Array, encoded: Buffer, width: number, height: number): Promise<number> {
  const decoded = await decodeFlattened(encoded);
  if (decoded.width !== width || decoded.height !== height)
    throw new Error(`output is ${decoded.width}×${decoded.height}, expected ${width}×${height}`);
  return ssim(reference, lumaOf(decoded), width, height);
}

function encodersFor(base: EncoderSettings, setting: EncoderCase): EncoderSettings {
  switch (setting.format) {
    case 'jpeg':
      return { ...base, jpeg: { quality: setting.quality, mozjpeg: setting.mozjpeg ?? base.jpeg.mozjpeg } };
    case 'webp':
      return { ...base, webp: { quality: setting.quality, effort: setting.effort ?? base.webp.effort } };
    case 'avif':
      return { ...base, avif: { quality: setting.quality, effort: setting.effort ?? base.avif.effort } };
  }
}

async function runTask(task: Task, config: Config): Promise<unknown> {
  switch (task.kind) {
    case 'ours': {
      const original = await readFile(task.image);
      const { jobs, outputs } = await runOurs(original, task.jobs, config);
      await saveOutputs(task.saveDir, outputs);
      return { jobs, outputs: outputs.map(({ width, format, data }) => ({ width, format, bytes: data.length })) };
    }
    case 'anchor': {
      const original = await readFile(task.image);
      const { variants, outputs } = await runAnchor(original, task.info, task.variants, config);
      await saveOutputs(task.saveDir, outputs);
      return {
        variants,
        wallMs: variants.reduce((s, v) => s + v.wallMs, 0),
        cpuMs: variants.reduce((s, v) => s + v.cpuMs, 0),
      };
    }
    case 'floor': {
      const original = await readFile(task.image);
      const { run, outputs } = await runFloor(original, task.info, task.variants, config);
      await saveOutputs(task.saveDir, outputs);
      return run;
    }
    case 'quality': {
      const original = await readFile(task.image);
      const rows: QualityRow[] = [];
      const widths = [...new Set(task.variants.map((v) => v.width))];
      const full = await fullDecode(original, config);
      for (const width of widths) {
        const reference = await directResize(original, task.info, width, config, { flatten: true, full });
        const referenceLuma = lumaOf(reference);
        for (const format of new Set(task.variants.filter((v) => v.width === width).map((v) => v.format))) {
          for (const [method, dir] of Object.entries(task.dirs)) {
            let encoded: Buffer;
            try {
              encoded = await readFile(join(dir, `${width}.${format}`));
            } catch {
              continue;
            }
            rows.push({
              method,
              width,
              format,
              bytes: encoded.length,
              ssim: await ssimAgainst(referenceLuma, encoded, reference.width, reference.height),
            });
          }
        }
      }
      return { rows };
    }
    case 'encoders': {
      const base = encoderSettingsFromConfig(config);
      const rows: EncoderRow[] = [];
      for (const image of task.images) {
        const original = await readFile(image.path);
        const width = Math.min(task.width, image.info.width);
        const full = await fullDecode(original, config);
        const reference = await directResize(original, image.info, width, config, { flatten: true, full });
        const referenceLuma = lumaOf(reference);
        let pixels = await directResize(original, image.info, width, config, { flatten: false, full });
        if (await alphaIsOpaque(pixels)) pixels = await removeAlpha(pixels);
        for (const setting of task.cases) {
          const { value, wallMs, cpuMs } = await measure(() =>
            encodePixels(pixels, setting.format, encodersFor(base, setting)),
          );
          rows.push({
            ...setting,
            image: image.name,
            width: pixels.width,
            height: pixels.height,
            cpuMs,
            wallMs,
            bytes: value.length,
            ssim: await ssimAgainst(referenceLuma, value, reference.width, reference.height),
          });
        }
      }
      return { rows };
    }
    case 'runtime': {
      const original = await readFile(task.image);
      const variants = planVariants(task.info, config);
      const options = renderOptionsFrom(config);
      // Separate copies of the original, as separate requests would each have downloaded one.
      const copies = Array.from({ length: task.instances }, () => Buffer.from(original));
      const measured = await measure(() => Promise.all(copies.map((copy) => renderAll(copy, variants, options))));
      return {
        instances: task.instances,
        variants: variants.length * task.instances,
        wallMs: measured.wallMs,
        cpuMs: measured.cpuMs,
      };
    }
    case 'parity': {
      const originals = await Promise.all(
        task.images.map(async (image) => ({ name: image.name, data: await readFile(image.path) })),
      );
      return checkEncoderParity(originals, config);
    }
  }
}

function facts(baselineRssKiB: number): ProcessFacts {
  const env: ProcessFacts['env'] = {};
  for (const name of ['SHARP_CONCURRENCY', 'SHARP_CACHE', 'MALLOC_ARENA_MAX'] as const) {
    if (process.env[name] !== undefined) env[name] = process.env[name];
  }
  return { maxRssKiB: process.resourceUsage().maxRSS, baselineRssKiB, sharpConcurrency: sharp.concurrency(), env };
}

async function main(): Promise<void> {
  const task = JSON.parse(process.argv[2] ?? '{}') as Task;
  let answer: ChildAnswer;
  let baseline = 0;
  try {
    const config = benchConfig(process.env);
    configureSharp({ concurrency: config.SHARP_CONCURRENCY, cache: config.SHARP_CACHE });
    await warmUp();
    baseline = process.resourceUsage().maxRSS;
    const result = await runTask(task, config);
    answer = { ok: true, result: result as never, ...facts(baseline) };
  } catch (error) {
    const code = error instanceof PipelineError ? error.code : 'bench_error';
    const message = error instanceof Error ? error.message : String(error);
    answer = { ok: false, error: { code, message }, ...facts(baseline) };
  }
  process.stdout.write(`${ANSWER_MARKER}${JSON.stringify(answer)}\n`);
}

await main();
