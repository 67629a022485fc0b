/**
 * shared/'s folders are layers, lowest first: core < image < cloud < auth < state < http < pipeline. A
 * module imports only from its own folder or a lower one; core/ and image/ import no
 * `@google-cloud/*` package (they run without a cloud client); nothing in shared/ imports
 * functions/, local/, bench/ or test/. And no module in shared/ grows past 400 lines.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** shared/'s folders, lowest layer first. */
const LAYERS = ['core', 'image', 'cloud', 'auth', 'state', 'http', 'pipeline'] as const;

/** Layers that must run without a Google Cloud client. */
const NO_CLOUD_CLIENT = new Set<string>(['core', 'image']);

const MAX_LINES = 400;

/** Modules allowed past MAX_LINES: none; a module that grows past it is split by concern. */
const OVER_MAX_LINES: string[] = [];

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)(['"])([^'"\n]+)\1/gm;

/** Module specifiers of a source file: static, re-exported, side-effect and literal dynamic imports. */
function importSpecifiers(source: string): string[] {
  return [...source.matchAll(SPECIFIER)].map((match) => match[2] ?? '');
}

/** The .ts files under `dir` (relative to the repository root), recursively, sorted. */
function sourcesUnder(dir: string): string[] {
  return readdirSync(`${REPO_ROOT}${dir}`, { recursive: true, encoding: 'utf8' })
    .filter((path) => path.endsWith('.ts'))
    .map((path) => posix.join(dir, path.split('\\').join('/')))
    .sort();
}

/** Lines as `wc -l` counts them. */
function lineCount(source: string): number {
  return source.match(/\n/g)?.length ?? 0;
}

/** What `file` (a path under shared/) may not import, one message per offending specifier. */
function layeringViolations(file: string, source: string): string[] {
  const [, folder] = file.split('/');
  const own = LAYERS.indexOf(folder as (typeof LAYERS)[number]);
  if (own < 0 || file.split('/').length !== 3) {
    return [`${file} is not in one of shared/'s layer folders (${LAYERS.join(', ')})`];
  }
  const violations: string[] = [];
  for (const specifier of importSpecifiers(source)) {
    if (specifier.startsWith('.')) {
      const target = posix.normalize(posix.join(posix.dirname(file), specifier));
      const [top, targetFolder] = target.split('/');
      const layer = LAYERS.indexOf(targetFolder as (typeof LAYERS)[number]);
      if (top !== 'shared') {
        violations.push(`${file} imports '${specifier}' (${target}), outside shared/`);
      } else if (layer < 0) {
        violations.push(`${file} imports '${specifier}' (${target}), which is in no layer`);
      } else if (layer > own) {
        violations.push(
          `${file} imports '${specifier}': ${folder}/ may not import ${targetFolder}/, a higher layer (${LAYERS.join(' < ')})`,
        );
      }
    } else if (specifier.startsWith('@google-cloud/') && NO_CLOUD_CLIENT.has(folder ?? '')) {
      violations.push(`${file} imports '${specifier}': ${folder}/ imports no @google-cloud/* package`);
    }
  }
  return violations;
}

describe('shared/ layering', () => {
  const files = sourcesUnder('shared');

  it('finds the modules of every layer', () => {
    const folders = new Set(files.map((file) => file.split('/')[1]));
    expect([...folders].sort()).to.deep.equal([...LAYERS].sort());
  });

  it(`imports only from a module's own layer or a lower one (${LAYERS.join(' < ')})`, () => {
    const violations = files.flatMap((file) => layeringViolations(file, readFileSync(`${REPO_ROOT}${file}`, 'utf8')));
    expect(violations, violations.join('\n')).to.deep.equal([]);
  });

  it(`keeps every module at ${MAX_LINES} lines or fewer, but for ${OVER_MAX_LINES.join(' and ')}`, () => {
    const tooLong = files
      .filter((file) => !OVER_MAX_LINES.includes(file))
      .map((file) => ({ file, lines: lineCount(readFileSync(`${REPO_ROOT}${file}`, 'utf8')) }))
      .filter(({ lines }) => lines > MAX_LINES)
      .map(({ file, lines }) => `${file} has ${lines} lines`);
    expect(tooLong, tooLong.join('\n')).to.deep.equal([]);
  });

  describe('the check itself', () => {
    const sample = [
      "import type { Config } from '../core/config.js';",
      "import {\n  renderVariants,\n} from '../image/render.js';",
      "export { x } from './sibling.js';",
      "import '../http/side-effect.js';",
      "const later = await import('../pipeline/run-job.js');",
      "import { Storage } from '@google-cloud/storage';",
      "import { stack } from '../../local/stack.js';",
    ].join('\n');

    it('reads static, multi-line, re-exported, side-effect and dynamic imports', () => {
      expect(importSpecifiers(sample)).to.deep.equal([
        '../core/config.js',
        '../image/render.js',
        './sibling.js',
        '../http/side-effect.js',
        '../pipeline/run-job.js',
        '@google-cloud/storage',
        '../../local/stack.js',
      ]);
    });

    it('names the file and what it imports for each upward, cloud-client or outside import', () => {
      expect(layeringViolations('shared/image/x.ts', sample)).to.deep.equal([
        "shared/image/x.ts imports '../http/side-effect.js': image/ may not import http/, a higher layer (core < image < cloud < auth < state < http < pipeline)",
        "shared/image/x.ts imports '../pipeline/run-job.js': image/ may not import pipeline/, a higher layer (core < image < cloud < auth < state < http < pipeline)",
        "shared/image/x.ts imports '@google-cloud/storage': image/ imports no @google-cloud/* package",
        "shared/image/x.ts imports '../../local/stack.js' (local/stack.js), outside shared/",
      ]);
      expect(layeringViolations('shared/pipeline/x.ts', sample)).to.deep.equal([
        "shared/pipeline/x.ts imports '../../local/stack.js' (local/stack.js), outside shared/",
      ]);
      expect(layeringViolations('shared/x.ts', '')).to.deep.equal([
        "shared/x.ts is not in one of shared/'s layer folders (core, image, cloud, auth, state, http, pipeline)",
      ]);
    });
  });
});
