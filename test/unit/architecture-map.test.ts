/**
 * docs/architecture.md's source-tree map names every module of functions/, shared/ and bench/,
 * and names none that is gone, so the map stays a true index as files come and go.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const FOLDERS = ['functions', 'shared', 'bench'] as const;

/** The file names the map lists under `folder/`: indented entries up to the next top-level folder. */
function mappedFiles(map: string, folder: string): string[] {
  const lines = map.split('\n');
  const start = lines.findIndex((line) => line.startsWith(`${folder}/ `));
  if (start < 0) return [];
  const names: string[] = [];
  for (const line of lines.slice(start + 1)) {
    const entry = /^ {2}(\S+)\s/.exec(line);
    if (!entry?.[1]) break;
    names.push(entry[1]);
  }
  return names.sort();
}

/** The tracked modules directly in `folder/` (sources and JSON), by name. */
function trackedFiles(folder: string): string[] {
  return execFileSync('git', ['ls-files', `${folder}/`], { cwd: REPO_ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((path) => /^[^/]+\/[^/]+\.(ts|json)$/.test(path))
    .map((path) => path.slice(folder.length + 1))
    .sort();
}

describe('docs/architecture.md source map', () => {
  const map = readFileSync(`${REPO_ROOT}docs/architecture.md`, 'utf8');

  for (const folder of FOLDERS) {
    it(`lists exactly the modules of ${folder}/`, () => {
      expect(mappedFiles(map, folder)).to.deep.equal(trackedFiles(folder));
    });
  }

  it('reads entries up to the next folder, and nothing for a folder it does not map', () => {
    const sample = ['shared/   the modules', '  a.ts      first', '  b.json    second', 'local/    next', '  c.ts  x'];
    expect(mappedFiles(sample.join('\n'), 'shared')).to.deep.equal(['a.ts', 'b.json']);
    expect(mappedFiles(sample.join('\n'), 'bench')).to.deep.equal([]);
  });
});
