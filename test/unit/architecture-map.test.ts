/**
 * docs/architecture.md's source-tree map names every module of every folder with TypeScript
 * sources (test/ aside: the map names its folders only) and every .tf file of terraform/, and
 * names none that is gone, so the map stays a true index as files come and go.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Modules: TypeScript sources and JSON. */
const MODULE = /\.(ts|json)$/;

/** The folders the map must list exactly, with the files that count as their modules. */
const FOLDERS: ReadonlyArray<{ folder: string; files: RegExp }> = [
  { folder: 'functions', files: MODULE },
  { folder: 'shared/core', files: MODULE },
  { folder: 'shared/image', files: MODULE },
  { folder: 'shared/cloud', files: MODULE },
  { folder: 'shared/state', files: MODULE },
  { folder: 'shared/http', files: MODULE },
  { folder: 'shared/pipeline', files: MODULE },
  { folder: 'bench', files: MODULE },
  { folder: 'local', files: MODULE },
  { folder: 'local/storage-server', files: MODULE },
  { folder: 'local/storage-server/routes', files: MODULE },
  { folder: 'local/web', files: MODULE },
  { folder: 'terraform', files: /\.tf$/ },
];

/**
 * Every path the map's ```text blocks name. An unindented entry is a path from the repository
 * root (`shared/core/`, `bench/`); an entry indented two spaces deeper than a folder's is inside
 * it. An entry is the first word of its line; folders end with `/`.
 */
function mappedPaths(markdown: string): string[] {
  const paths: string[] = [];
  let inBlock = false;
  let stack: string[] = [];
  for (const line of markdown.split('\n')) {
    if (line.startsWith('```')) {
      inBlock = !inBlock && line.trim() === '```text';
      stack = [];
      continue;
    }
    if (!inBlock) continue;
    const entry = /^( *)(\S+)/.exec(line);
    if (!entry?.[2]) continue;
    const depth = (entry[1] ?? '').length / 2;
    stack = [...stack.slice(0, depth), entry[2]];
    paths.push(stack.join(''));
  }
  return paths;
}

/** The file names the map lists directly in `folder/` that match `files`. */
function mappedFiles(paths: readonly string[], folder: string, files: RegExp): string[] {
  return paths
    .filter((path) => !path.endsWith('/') && posix.dirname(path) === folder && files.test(path))
    .map((path) => posix.basename(path))
    .sort();
}

function trackedPaths(): string[] {
  return execFileSync('git', ['ls-files'], { cwd: REPO_ROOT, encoding: 'utf8' }).split('\n').filter(Boolean);
}

/** The tracked files directly in `folder/` that match `files`, by name. */
function trackedFiles(tracked: readonly string[], folder: string, files: RegExp): string[] {
  return tracked
    .filter((path) => posix.dirname(path) === folder && files.test(path))
    .map((path) => posix.basename(path))
    .sort();
}

describe('docs/architecture.md source map', () => {
  const paths = mappedPaths(readFileSync(`${REPO_ROOT}docs/architecture.md`, 'utf8'));
  const tracked = trackedPaths();

  for (const { folder, files } of FOLDERS) {
    it(`lists exactly the ${files === MODULE ? 'modules' : '.tf files'} of ${folder}/`, () => {
      expect(mappedFiles(paths, folder, files)).to.deep.equal(trackedFiles(tracked, folder, files));
    });
  }

  it('checks every folder with TypeScript sources outside test/', () => {
    const withSources = [
      ...new Set(
        tracked.filter((path) => path.endsWith('.ts') && !path.startsWith('test/')).map((path) => posix.dirname(path)),
      ),
    ].sort();
    const checked = FOLDERS.filter(({ files }) => files === MODULE).map(({ folder }) => folder);
    expect(checked.sort()).to.deep.equal(withSources);
  });

  it('reads root-relative and nested entries, in ```text blocks only', () => {
    const sample = [
      'shared/core/   prose outside a block is not read',
      '```text',
      'shared/core/   the vocabulary',
      '  a.ts         first',
      '  b.json       second',
      'local/         next',
      '  c.ts         x',
      '  server/      nested',
      '    d.ts       y',
      '    routes/    deeper',
      '      e.ts     z',
      '  f.ts         back up',
      '.ci/run        a file at the root',
      '```',
      '```sh',
      'npm test',
      '```',
    ].join('\n');
    const parsed = mappedPaths(sample);
    expect(parsed).to.deep.equal([
      'shared/core/',
      'shared/core/a.ts',
      'shared/core/b.json',
      'local/',
      'local/c.ts',
      'local/server/',
      'local/server/d.ts',
      'local/server/routes/',
      'local/server/routes/e.ts',
      'local/f.ts',
      '.ci/run',
    ]);
    expect(mappedFiles(parsed, 'shared/core', MODULE)).to.deep.equal(['a.ts', 'b.json']);
    expect(mappedFiles(parsed, 'local', MODULE)).to.deep.equal(['c.ts', 'f.ts']);
    expect(mappedFiles(parsed, 'bench', MODULE)).to.deep.equal([]);
  });
});
