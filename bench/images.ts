/**
 * The bench's inputs: a directory of real images (`--corpus`), or photo-like images generated
 * with the test fixtures' {@link makePhoto} (gradients, shapes, fine texture and per-pixel noise,
 * so encoders and resizers do real work). Generated files are cached on disk, keyed by their
 * parameters, because drawing 24 MP in JavaScript takes seconds.
 */
import type { Dirent } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { makePhoto, type PhotoOptions } from '../test/fixtures/images.js';

/** One input image, on disk. */
export interface BenchImage {
  name: string;
  path: string;
  /** How it was made, for generated images. */
  generated?: PhotoOptions;
}

/** A photo-like image to generate. */
export interface GeneratedSpec extends PhotoOptions {
  name: string;
}

/** The generated set used when no corpus is given: several sizes up to 24 MP. */
export const GENERATED_SET: readonly GeneratedSpec[] = [
  { name: 'photo-6000x4000-baseline.jpg', width: 6000, height: 4000, format: 'jpeg', seed: 11 },
  { name: 'photo-4240x2832-progressive.jpg', width: 4240, height: 2832, format: 'jpeg', progressive: true, seed: 12 },
  { name: 'photo-3000x2000-alpha.png', width: 3000, height: 2000, format: 'png', alpha: true, seed: 13 },
  { name: 'photo-1920x1280-baseline.jpg', width: 1920, height: 1280, format: 'jpeg', seed: 14 },
  { name: 'photo-1200x800-progressive.jpg', width: 1200, height: 800, format: 'jpeg', progressive: true, seed: 15 },
  { name: 'photo-640x427-alpha.png', width: 640, height: 427, format: 'png', alpha: true, seed: 16 },
];

/** `--quick`: one small image. */
export const QUICK_SET: readonly GeneratedSpec[] = [
  { name: 'photo-360x240-baseline.jpg', width: 360, height: 240, format: 'jpeg', seed: 21 },
];

/** Images for the runtime-settings section: the memory targets are about 20 MP and 50 MP JPEGs. */
export const RUNTIME_SET = {
  /** 5472×3648 = 19.96 MP, a 20 MP camera's size. */
  image20: { name: 'photo-5472x3648-baseline.jpg', width: 5472, height: 3648, format: 'jpeg', seed: 31 },
  /** 8640×5760 = 49.8 MP, just under the default pixel cap (MAX_INPUT_PIXELS = 50,000,000). */
  image50: { name: 'photo-8640x5760-baseline.jpg', width: 8640, height: 5760, format: 'jpeg', seed: 32 },
  /** The same as a progressive JPEG: libjpeg keeps every coefficient in memory, the worst case measured. */
  image50p: {
    name: 'photo-8640x5760-progressive.jpg',
    width: 8640,
    height: 5760,
    format: 'jpeg',
    progressive: true,
    seed: 32,
  },
} as const satisfies Record<string, GeneratedSpec>;

/** `--quick` stand-ins for {@link RUNTIME_SET}, so the smoke run exercises the same code fast. */
export const QUICK_RUNTIME_SET = {
  image20: { name: 'photo-240x160-baseline.jpg', width: 240, height: 160, format: 'jpeg', seed: 22 },
  image50: { name: 'photo-240x160-baseline.jpg', width: 240, height: 160, format: 'jpeg', seed: 22 },
  image50p: {
    name: 'photo-240x160-progressive.jpg',
    width: 240,
    height: 160,
    format: 'jpeg',
    progressive: true,
    seed: 22,
  },
} as const satisfies Record<string, GeneratedSpec>;

/** Default cache of generated images. */
export const DEFAULT_CACHE_DIR = join(tmpdir(), 'gcp-image-pipeline-bench-images');

const exists = (path: string): Promise<boolean> =>
  stat(path).then(
    () => true,
    () => false,
  );

/** Generates (or reuses from `cacheDir`) one image. */
export async function generated(
  spec: GeneratedSpec,
  cacheDir: string,
  log: (line: string) => void = () => {},
): Promise<BenchImage> {
  const { name, ...options } = spec;
  const key = JSON.stringify(options)
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '');
  const dir = join(cacheDir, key);
  const path = join(dir, name);
  if (!(await exists(path))) {
    log(`generating ${name} (${((spec.width * spec.height) / 1e6).toFixed(1)} MP)…`);
    await mkdir(dir, { recursive: true });
    const data = await makePhoto({ quality: 90, ...options });
    await writeFile(`${path}.tmp`, data);
    const { rename } = await import('node:fs/promises');
    await rename(`${path}.tmp`, path);
  }
  return { name, path, generated: options };
}

/** Generates (or reuses) a set. */
export async function generatedSet(
  specs: readonly GeneratedSpec[],
  cacheDir: string,
  log?: (line: string) => void,
): Promise<BenchImage[]> {
  const images: BenchImage[] = [];
  for (const spec of specs) images.push(await generated(spec, cacheDir, log));
  return images;
}

/** Every file of a corpus directory (not README/licence files or dotfiles), by name. */
export async function corpusImages(dir: string): Promise<BenchImage[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    // The default corpus (../shared/corpus) lives beside the checkout, not in it.
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    throw new Error(`No images at ${resolve(dir)}: pass --corpus DIR, a folder of images (JPEG, PNG, WebP, AVIF...).`);
  }
  return entries
    .filter(
      (entry) =>
        entry.isFile() &&
        !entry.name.startsWith('.') &&
        !/^(readme|license|licence|copying)/i.test(entry.name) &&
        !/\.(md|txt)$/i.test(entry.name),
    )
    .map((entry) => ({ name: entry.name, path: join(dir, entry.name) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Reads an image's bytes. */
export function readImage(image: BenchImage): Promise<Buffer> {
  return readFile(image.path);
}
