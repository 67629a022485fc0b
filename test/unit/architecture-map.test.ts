/**
 * docs/architecture.md's source-tree map covers the whole tree: every folder has an entry, every
 * file of every folder is listed (except the folders the map names without their files: the test
 * tiers, the guides in docs/, each Terraform example module), and nothing it names is gone, so the
 * map stays a true index as files and folders come and go.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Folders the map names without listing their files: the test tiers (one line each says what the
 * tier tests), the guides (the README's table lists them) and each example module of terraform/
 * (the four files every module has).
 */
const NAMED_ONLY: readonly RegExp[] = [/^test(\/|$)/, /^docs$/, /^terraform\/examples\/[^/]+$/];

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

/** The file names the map lists directly in `folder/`. */
function mappedFiles(paths: readonly string[], folder: string): string[] {
  return paths
    .filter((path) => !path.endsWith('/') && posix.dirname(path) === folder)
    .map((path) => posix.basename(path))
    .sort();
}

/** Tracked files and new ones not ignored, so a folder is checked before its first commit. */
function treePaths(): string[] {
  const listed = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  return [...new Set(listed.split('\n').filter(Boolean))];
}

/** The files directly in `folder/`, by name. */
function filesIn(tree: readonly string[], folder: string): string[] {
  return tree
    .filter((path) => posix.dirname(path) === folder)
    .map((path) => posix.basename(path))
    .sort();
}

/** Every folder of the tree below the root, with the folders above each (`shared/core` → `shared`). */
function foldersOf(tree: readonly string[]): string[] {
  const folders = new Set<string>();
  for (const path of tree) {
    for (let dir = posix.dirname(path); dir !== '.'; dir = posix.dirname(dir)) folders.add(dir);
  }
  return [...folders].sort();
}

/** Folders with no entry in the map: neither `folder/` nor a file directly in it is listed. */
function unmappedFolders(paths: readonly string[], tree: readonly string[]): string[] {
  return foldersOf(tree).filter(
    (folder) => !paths.includes(`${folder}/`) && !paths.some((path) => posix.dirname(path) === folder),
  );
}

/** Entries that name no file or folder of the tree. */
function unknownEntries(paths: readonly string[], tree: readonly string[]): string[] {
  const folders = new Set(foldersOf(tree).map((folder) => `${folder}/`));
  const files = new Set(tree);
  return paths.filter((path) => (path.endsWith('/') ? !folders.has(path) : !files.has(path)));
}

describe('docs/architecture.md source map', () => {
  const paths = mappedPaths(readFileSync(`${REPO_ROOT}docs/architecture.md`, 'utf8'));
  const tree = treePaths();

  it('has an entry for every folder of the tree', () => {
    expect(unmappedFolders(paths, tree), 'folders the map does not name: add a line for each').to.deep.equal([]);
  });

  it('names no file or folder that does not exist', () => {
    expect(unknownEntries(paths, tree), 'entries for paths that are gone').to.deep.equal([]);
  });

  for (const folder of foldersOf(tree).filter((f) => !NAMED_ONLY.some((named) => named.test(f)))) {
    it(`lists exactly the files of ${folder}/`, () => {
      expect(mappedFiles(paths, folder), `${folder}/ in the map vs the tree`).to.deep.equal(filesIn(tree, folder));
    });
  }

  it('finds a new folder without an entry, a gone file, and a file missing from a listed folder', () => {
    const sampleTree = ['shared/core/a.ts', 'shared/core/b.ts', 'shared/new/c.ts', 'test/unit/x.test.ts', '.ci/run'];
    const sampleMap = ['shared/core/', 'shared/core/a.ts', 'shared/core/gone.ts', 'test/', 'test/unit/', '.ci/run'];
    expect(unmappedFolders(sampleMap, sampleTree)).to.deep.equal(['shared/new']);
    expect(unknownEntries(sampleMap, sampleTree)).to.deep.equal(['shared/core/gone.ts']);
    expect(mappedFiles(sampleMap, 'shared/core')).to.not.deep.equal(filesIn(sampleTree, 'shared/core'));
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
    expect(mappedFiles(parsed, 'shared/core')).to.deep.equal(['a.ts', 'b.json']);
    expect(mappedFiles(parsed, 'local')).to.deep.equal(['c.ts', 'f.ts']);
    expect(mappedFiles(parsed, 'bench')).to.deep.equal([]);
  });
});
