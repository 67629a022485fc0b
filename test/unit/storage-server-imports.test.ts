/**
 * The local storage server's modules import each other without a cycle (type-only imports
 * count: they tie the modules together just the same). Reads the TypeScript sources, so it checks
 * what is written, not what tsc emits.
 */
import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SERVER_DIR = fileURLToPath(new URL('../../../local/storage-server/', import.meta.url));

type Graph = Map<string, string[]>;

/** Relative `.ts` paths of every module under `dir`. */
function modulesUnder(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return modulesUnder(path, base);
    return entry.name.endsWith('.ts') ? [relative(base, path).split('\\').join('/')] : [];
  });
}

/** The relative specifiers a module imports or re-exports, as `.ts` paths from the server's root. */
function localImports(module: string, source: string): string[] {
  const specifiers = [...source.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]/gm)].map(
    (m) => m[1] ?? '',
  );
  return specifiers.map((specifier) =>
    posix.normalize(posix.join(posix.dirname(module), specifier)).replace(/\.js$/, '.ts'),
  );
}

/** The import graph of the modules under `dir`, edges limited to modules under `dir`. */
function importGraph(dir: string): Graph {
  const modules = modulesUnder(dir);
  const known = new Set(modules);
  return new Map(
    modules.map((module) => [
      module,
      localImports(module, readFileSync(join(dir, module), 'utf8')).filter((m) => known.has(m)),
    ]),
  );
}

/** Every elementary cycle found by depth-first search, each as a path from a module back to itself. */
function findCycles(graph: Graph): string[][] {
  const cycles = new Map<string, string[]>();
  const visit = (node: string, path: string[]): void => {
    for (const next of graph.get(node) ?? []) {
      const at = path.indexOf(next);
      if (at >= 0) {
        const cycle = path.slice(at);
        // One entry per cycle, whichever module the search entered it by.
        const key = [...cycle].sort().join(' ');
        if (!cycles.has(key)) cycles.set(key, [...cycle, next]);
      } else {
        visit(next, [...path, next]);
      }
    }
  };
  for (const node of graph.keys()) visit(node, [node]);
  return [...cycles.values()];
}

describe('storage server import graph', () => {
  it('finds the cycles of a graph that has them (so the check below can fail)', () => {
    const graph: Graph = new Map([
      ['http.ts', ['uploads.ts']],
      ['uploads.ts', ['http.ts', 'objects.ts']],
      ['objects.ts', ['http.ts']],
      ['leaf.ts', []],
    ]);
    expect(findCycles(graph).map((cycle) => cycle.join(' → '))).to.have.members([
      'http.ts → uploads.ts → http.ts',
      'http.ts → uploads.ts → objects.ts → http.ts',
    ]);
    expect(
      findCycles(
        new Map([
          ['a.ts', ['b.ts']],
          ['b.ts', []],
        ]),
      ),
    ).to.deep.equal([]);
  });

  it('reads type-only imports, re-exports and parent-directory specifiers', () => {
    const source = [
      "import type { A } from './a.js';",
      "import { b, type B } from '../b.js';",
      "export { c } from './c.js';",
      "import { readFile } from 'node:fs/promises';",
    ].join('\n');
    expect(localImports('routes/x.ts', source)).to.deep.equal(['routes/a.ts', 'b.ts', 'routes/c.ts']);
  });

  it('has no import cycle in local/storage-server', () => {
    const graph = importGraph(SERVER_DIR);
    expect(graph.size, `modules under ${dirname(SERVER_DIR)}`).to.be.greaterThan(10);
    expect(findCycles(graph).map((cycle) => cycle.join(' → '))).to.deep.equal([]);
  });
});
