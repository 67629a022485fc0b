/**
 * Kinds of photo for `bench:defaults` (docs/performance.md, "Any photo"): which kind each corpus
 * image is, a stratified sample of them, and the per-kind summary. A corpus says an image's kind
 * in a `manifest.json` beside it (`[{ file, kind, split? }]`, files relative to the corpus), or by
 * the subfolder the image is in; images straight in the corpus folder have no kind.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { BenchImage } from './images.js';

/** A corpus image and, where the corpus says, its kind and split. */
export interface KindedImage extends BenchImage {
  kind?: string;
  split?: string;
}

interface ManifestEntry {
  file: string;
  kind: string;
  split?: string;
}

/** Images of a corpus with a manifest or kind subfolders; undefined when it has neither. */
export async function kindedImages(dir: string): Promise<KindedImage[] | undefined> {
  const manifest = await readFile(join(dir, 'manifest.json'), 'utf8').catch(() => undefined);
  if (manifest !== undefined) {
    return (JSON.parse(manifest) as ManifestEntry[])
      .map((e) => ({ name: e.file, path: join(dir, e.file), kind: e.kind, ...(e.split ? { split: e.split } : {}) }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }
  // A missing folder is corpusImages' to report.
  const entries: Dirent[] = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const folders = entries.filter((e) => e.isDirectory() && !e.name.startsWith('.'));
  if (folders.length === 0) return undefined;
  const images: KindedImage[] = [];
  for (const folder of folders) {
    for (const file of await readdir(join(dir, folder.name), { withFileTypes: true })) {
      if (!file.isFile() || file.name.startsWith('.')) continue;
      images.push({ name: `${folder.name}/${file.name}`, path: join(dir, folder.name, file.name), kind: folder.name });
    }
  }
  return images.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * At most `perKind` images of each kind, the same ones every run: ordered by a hash of the name
 * (not by name, which groups by source), so a sample spreads over the sources of a kind.
 */
export function stratifiedSample<T extends KindedImage>(images: readonly T[], perKind: number): T[] {
  const hash = (name: string) => createHash('sha256').update(name).digest('hex');
  const byKind = new Map<string, T[]>();
  for (const image of images) {
    const list = byKind.get(image.kind ?? '') ?? [];
    byKind.set(image.kind ?? '', list);
    list.push(image);
  }
  return [...byKind.values()]
    .flatMap((list) => [...list].sort((a, b) => hash(a.name).localeCompare(hash(b.name))).slice(0, perKind))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** What the per-kind summary needs of a method's total over some images. */
export interface KindTotal {
  cpuS: number;
  bytes: Record<string, number>;
  ssim: Record<string, number>;
  butteraugli?: Record<string, number>;
}

/** One kind's line: anchor CPU ÷ ours, and ours against the anchor per format. */
export interface KindSummary {
  kind: string;
  images: number;
  ratio: number;
  /** Ours' bytes ÷ the anchor's − 1, per format. */
  bytes: Record<string, number>;
  /** Ours' mean SSIM − the anchor's, per format (positive: ours better). */
  ssim: Record<string, number>;
  /** The anchor's mean butteraugli − ours', per format (positive: ours better). */
  butteraugli: Record<string, number>;
}

export function summariseKind(
  kind: string,
  images: number,
  anchor: KindTotal,
  ours: KindTotal,
  formats: readonly string[],
): KindSummary {
  const per = (f: (format: string) => number | undefined) =>
    Object.fromEntries(formats.flatMap((format) => (f(format) === undefined ? [] : [[format, f(format) as number]])));
  const diff = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined ? undefined : a - b;
  return {
    kind,
    images,
    ratio: anchor.cpuS / ours.cpuS,
    bytes: per((f) => (anchor.bytes[f] ? (ours.bytes[f] ?? 0) / anchor.bytes[f] - 1 : undefined)),
    ssim: per((f) => diff(ours.ssim[f], anchor.ssim[f])),
    butteraugli: per((f) => diff(anchor.butteraugli?.[f], ours.butteraugli?.[f])),
  };
}

/** The kind with the lowest anchor ÷ ours. */
export function weakestKind(summaries: readonly KindSummary[]): KindSummary | undefined {
  return [...summaries].sort((a, b) => a.ratio - b.ratio)[0];
}

const pct = (x: number | undefined) => (x === undefined ? '–' : `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`);
const signed = (x: number | undefined, digits: number) =>
  x === undefined ? '–' : `${x >= 0 ? '+' : ''}${x.toFixed(digits)}`;

/** The per-kind table of one candidate, markdown. */
export function kindTable(title: string, summaries: readonly KindSummary[], formats: readonly string[]): string[] {
  const weakest = weakestKind(summaries);
  return [
    `### Per kind: ${title}`,
    '',
    `| kind | images | anchor CPU ÷ ours | bytes vs anchor ${formats.join(' / ')} | SSIM − anchor's ${formats.join(' / ')} | butteraugli, anchor − ours ${formats.join(' / ')} |`,
    '|---|---|---|---|---|---|',
    ...summaries.map(
      (s) =>
        `| ${s.kind} | ${s.images} | ${s.ratio.toFixed(2)}× | ${formats.map((f) => pct(s.bytes[f])).join(' / ')} | ${formats.map((f) => signed(s.ssim[f], 4)).join(' / ')} | ${formats.map((f) => signed(s.butteraugli[f], 2)).join(' / ')} |`,
    ),
    '',
    weakest ? `Weakest kind: ${weakest.kind} (${weakest.ratio.toFixed(2)}×).` : 'No kinds.',
    '',
  ];
}
