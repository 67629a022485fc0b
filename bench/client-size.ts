/**
 * `npm run bench:client-size`
 *
 * What the client package (client/dist, as `npm run build` bundles it) costs a page: minified by
 * esbuild and gzipped (zlib level 9), the whole package and what a bundler keeps of it for one
 * import at a time (the package is `sideEffects: false`, so the rest is tree-shaken away), and each
 * framework loader's subpath export. Markdown
 * to stdout; results: docs/performance.md ("Client package").
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { parseCommandLine } from './cli.js';

const USAGE = `usage: npm run bench:client-size -- [options]

The client package's size, minified + gzipped: whole, and per import.

  --help, -h   this text
`;

const BUNDLE = fileURLToPath(new URL('../../client/dist/index.js', import.meta.url));
/** The subpath exports' bundles (`@gcp-image-pipeline/client/next`…), each built on its own. */
const LOADERS = Object.fromEntries(
  ['next', 'astro', 'unpic'].map((name) => [
    `client-${name}`,
    fileURLToPath(new URL(`../../client/dist/loaders/${name}.js`, import.meta.url)),
  ]),
);

/** What a page imports, as the first line of its module. */
const IMPORTS: Record<string, string> = {
  'the whole package': 'export * from "client";',
  'upload + waitUntilReady': 'export { upload, waitUntilReady } from "client";',
  pictureSources: 'export { pictureSources } from "client";',
  placeholderDataURL: 'export { placeholderDataURL } from "client";',
  '`/next` (loader + loaderImage)': 'export { default, loaderImage } from "client-next";',
  '`/astro` (service + loaderImage)': 'export { default, loaderImage } from "client-astro";',
  '`/unpic` (transformer + loaderImage)': 'export { transformer, loaderImage } from "client-unpic";',
};

/** Minified and gzipped bytes of what a bundler keeps for `source`. */
async function sizeOf(source: string): Promise<{ minified: number; gzipped: number }> {
  const result = await build({
    stdin: { contents: source, resolveDir: process.cwd(), loader: 'js' },
    alias: { client: BUNDLE, ...LOADERS },
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
  });
  const code = result.outputFiles[0]?.contents ?? new Uint8Array();
  return { minified: code.length, gzipped: gzipSync(code, { level: 9 }).length };
}

async function main(): Promise<void> {
  parseCommandLine(process.argv.slice(2), {}, USAGE);
  const unminified = readFileSync(BUNDLE).length;
  const lines = [
    `client/dist/index.js: ${unminified} bytes as built (unminified, with thumbhash's decoder).`,
    '',
    '| import | minified | minified + gzip |',
    '| --- | ---: | ---: |',
  ];
  for (const [what, source] of Object.entries(IMPORTS)) {
    const { minified, gzipped } = await sizeOf(source);
    lines.push(`| ${what} | ${(minified / 1024).toFixed(1)} KiB | ${(gzipped / 1024).toFixed(1)} KiB (${gzipped} B) |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
