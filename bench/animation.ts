/**
 * `npm run bench:animation -- [--files a.gif,b.gif]`: what ANIMATION=keep costs and saves. For each
 * animation (two generated GIFs, plus any files given): at each default width it gets, the bytes
 * and CPU-seconds of its animated WebP variant (animation.ts, as the resize job makes it; and of its
 * decode and resize alone, to raw pixels) against
 * the GIF itself and against the first-frame WebP that ANIMATION=first-frame makes; and whether
 * sharp writes an animated AVIF (it did not with sharp 0.35.5: one tall still). CPU =
 * `process.cpuUsage()` (all threads). Results: docs/performance.md, "Animation".
 */
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { encodeAnimated } from '../shared/image/animation.js';
import { encoderSettingsFromConfig } from '../shared/image/encode.js';
import { planImage } from '../shared/image/plan.js';
import { probeImage, probeLimitsFromConfig } from '../shared/image/probe.js';
import { parseCommandLine } from './cli.js';
import { benchConfig } from './methods.js';

const USAGE = `usage: npm run bench:animation -- [options]

Animated WebP variants (ANIMATION=keep) against the GIF and the first-frame WebP: bytes and
CPU-seconds per default width; a Markdown table on stdout.

  --files A,B,...   animated GIFs or WebPs to measure besides the two generated ones
  -h, --help        this text
`;

/**
 * A generated animation: `photo` pans over smooth gradients with noise (hard for GIF's 256
 * colours), `flat` moves flat shapes over a plain ground (what GIF is good at).
 */
async function generated(kind: 'photo' | 'flat', width: number, height: number, frames: number): Promise<Buffer> {
  const strip = Buffer.alloc(width * height * frames * 3);
  let seed = 7;
  const noise = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return (seed % 17) - 8;
  };
  for (let f = 0; f < frames; f++)
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++) {
        const i = ((f * height + y) * width + x) * 3;
        if (kind === 'photo') {
          const u = x + f * 6;
          strip[i] = Math.max(0, Math.min(255, 128 + 100 * Math.sin(u / 90) + noise()));
          strip[i + 1] = Math.max(0, Math.min(255, 110 + 90 * Math.cos((y + u) / 120) + noise()));
          strip[i + 2] = Math.max(0, Math.min(255, 140 + 80 * Math.sin(y / 70 - f / 8) + noise()));
        } else {
          const cx = (width * (f + 1)) / (frames + 2);
          const inside = (x - cx) ** 2 + (y - height / 2) ** 2 < (height / 5) ** 2;
          const bar = Math.abs(y - ((f * 17) % height)) < height / 20;
          const [r, g, b] = inside ? [230, 60, 40] : bar ? [30, 90, 200] : [245, 245, 235];
          strip[i] = r;
          strip[i + 1] = g;
          strip[i + 2] = b;
        }
      }
  return sharp(strip, { raw: { width, height: height * frames, channels: 3, pageHeight: height } })
    .gif({ delay: Array(frames).fill(80), loop: 0 })
    .toBuffer();
}

const cpuSeconds = (since: NodeJS.CpuUsage): number => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
};

async function measure(name: string, original: Buffer): Promise<void> {
  const config = { ...benchConfig(), ANIMATION: 'keep' as const };
  const probe = await probeImage(original, { ...probeLimitsFromConfig(config, 'ingest'), maxBytes: 2 ** 31 });
  const info = { ...probe, frames: probe.frames };
  const options = { encoders: encoderSettingsFromConfig(config), keepMetadata: false, limitInputPixels: 2 ** 31 };
  // Warm-up: the first decode of a process pays libvips' start-up, which no row should carry.
  await sharp(original, { animated: true }).resize(16).raw().toBuffer();
  for (const { width } of planImage(info, config).variants.filter((v) => v.animated)) {
    const height = Math.max(1, Math.round((width * probe.height) / probe.width));
    let since = process.cpuUsage();
    await sharp(original, { animated: true }).resize(width, height, { fit: 'fill' }).raw().toBuffer();
    const decodeCpu = cpuSeconds(since);
    since = process.cpuUsage();
    const animated = await encodeAnimated(original, width, height, options);
    const animatedCpu = cpuSeconds(since);
    since = process.cpuUsage();
    const { quality, effort } = options.encoders.webp;
    const still = await sharp(original).resize(width, height, { fit: 'fill' }).webp({ quality, effort }).toBuffer();
    const stillCpu = cpuSeconds(since);
    const pages = (await sharp(animated).metadata()).pages ?? 1;
    console.log(
      `| ${name} | ${probe.width}×${probe.height} × ${probe.frames} | ${original.length} | ${width} | ${animated.length} (${pages} frames) | ${((100 * animated.length) / original.length).toFixed(0)} % | ${animatedCpu.toFixed(2)} | ${decodeCpu.toFixed(2)} | ${still.length} | ${stillCpu.toFixed(3)} |`,
    );
  }
  // Animated AVIF: does sharp write one?
  const avif = await sharp(original, { animated: true })
    .resize(Math.min(320, probe.width))
    .avif({ quality: config.AVIF_QUALITY, effort: config.AVIF_EFFORT })
    .toBuffer();
  const avifMeta = await sharp(avif).metadata();
  console.log(
    `|   ${name}: AVIF from the animated input | | | | ${avifMeta.width}×${avifMeta.height}, ${avifMeta.pages ?? 1} frame(s) | | | | | |`,
  );
}

const { files } = parseCommandLine(process.argv.slice(2), { files: { type: 'string' } }, USAGE);
console.log(
  '| animation | size × frames | GIF bytes | width | animated WebP bytes | of the GIF | CPU s | of which decode + resize | first-frame WebP bytes | CPU s |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
await measure('generated photo-like', await generated('photo', 480, 270, 24));
await measure('generated flat shapes', await generated('flat', 640, 360, 30));
for (const file of (files ?? '').split(',').filter((f) => f !== '')) {
  await measure(file.split('/').pop() ?? file, await readFile(file));
}
