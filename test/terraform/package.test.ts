/**
 * local/package-functions.ts: the deployable function source that Terraform zips. Unit tests on a
 * synthetic repository, then the real one: the package must hold what the Node.js buildpack needs
 * and nothing else, keep shared/core/topology.json where dist/shared/core/topology.js looks for it, and load
 * with the runtime dependencies alone.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import {
  importSpecifiers,
  isPackagedCode,
  MAIN,
  packageFunctions,
  PackagingError,
  packageNameOf,
  runtimeLockfile,
  runtimePackageJson,
  sourceOf,
} from '../../local/package-functions.js';
import { REPO_ROOT } from './hcl.js';

function write(root: string, rel: string, content: string): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), content);
}

const ROOT_PKG = {
  name: 'demo',
  version: '1.2.3',
  license: 'Apache-2.0',
  type: 'module',
  scripts: { build: 'tsc -p tsconfig.json && node dist/local/package-functions.js', test: 'mocha' },
  dependencies: { zod: '^4.0.0', '@google-cloud/storage': '^7.0.0' },
  devDependencies: { mocha: '^12.0.0', typescript: '~5.9.0' },
};

const ROOT_LOCK = {
  name: 'demo',
  version: '1.2.3',
  lockfileVersion: 3,
  requires: true,
  packages: {
    '': {
      name: 'demo',
      version: '1.2.3',
      dependencies: ROOT_PKG.dependencies,
      devDependencies: ROOT_PKG.devDependencies,
    },
    'node_modules/zod': { version: '4.1.0' },
    'node_modules/@google-cloud/storage': { version: '7.1.0', dependencies: { gaxios: '^6.0.0' } },
    'node_modules/gaxios': { version: '6.1.0' },
    'node_modules/@img/sharp-linux-x64': { version: '0.35.0', optional: true, os: ['linux'], cpu: ['x64'] },
    'node_modules/mocha': { version: '12.0.0', dev: true },
    'node_modules/typescript': { version: '5.9.3', dev: true },
    'node_modules/mocha/node_modules/ms': { version: '2.1.3', dev: true },
    'packages/local-link': { version: '0.0.0', link: true },
  },
};

describe('package-functions', function () {
  describe('package.json of the deployed source', function () {
    const pkg = runtimePackageJson(ROOT_PKG);

    it('is an ES module package whose main is dist/functions/index.js, on Node 22', function () {
      expect(pkg).to.include({ type: 'module', main: 'dist/functions/index.js', private: true, version: '1.2.3' });
      expect(pkg.engines).to.deep.equal({ node: '22.x' });
    });

    it("has the runtime dependencies only, with the root's versions", function () {
      expect(pkg.dependencies).to.deep.equal(ROOT_PKG.dependencies);
      expect(pkg).not.to.have.property('devDependencies');
    });

    it('has no build script, and an empty gcp-build so that the buildpack runs no build step', function () {
      const scripts = pkg.scripts as Record<string, string>;
      expect(scripts).not.to.have.property('build');
      expect(scripts['gcp-build']).to.equal('');
      expect(Object.values(scripts).join(' ')).not.to.include('tsc');
    });
  });

  describe('package-lock.json of the deployed source', function () {
    const pkg = runtimePackageJson(ROOT_PKG);
    const lock = runtimeLockfile(ROOT_LOCK, pkg);

    it('keeps the runtime packages (optional platform packages included) with their locked versions', function () {
      expect(Object.keys(lock.packages!).sort()).to.deep.equal(
        [
          '',
          'node_modules/@google-cloud/storage',
          'node_modules/@img/sharp-linux-x64',
          'node_modules/gaxios',
          'node_modules/zod',
        ].sort(),
      );
      expect(lock.packages!['node_modules/zod']).to.deep.equal({ version: '4.1.0' });
      expect(lock.lockfileVersion).to.equal(3);
    });

    it('has a root entry that matches the package.json, as npm ci requires', function () {
      expect(lock.packages!['']).to.deep.include({
        name: pkg.name,
        version: pkg.version,
        dependencies: pkg.dependencies,
        engines: pkg.engines,
      });
      expect(lock.name).to.equal(pkg.name);
    });

    it('refuses a lockfile that lacks a runtime dependency, or predates npm 7', function () {
      const { 'node_modules/zod': _zod, ...rest } = ROOT_LOCK.packages;
      expect(() => runtimeLockfile({ ...ROOT_LOCK, packages: rest }, pkg)).to.throw(PackagingError, /zod/);
      expect(() => runtimeLockfile({ lockfileVersion: 1, packages: {} }, pkg)).to.throw(
        PackagingError,
        /lockfileVersion/,
      );
    });
  });

  describe('helpers', function () {
    const packaged: Array<[string, boolean]> = [
      ['dist/functions/index.js', true],
      ['dist/shared/core/config.js', true],
      ['dist/shared/core/config.js.map', false],
      ['dist/shared/config.d.ts', false],
      ['dist/shared/config.test.js', false],
      ['dist/shared/__tests__/x.js', false],
    ];
    for (const [path, expected] of packaged) {
      it(`${expected ? 'packages' : 'leaves out'} ${path}`, function () {
        expect(isPackagedCode(path)).to.equal(expected);
      });
    }

    it('finds static, re-export, side-effect and dynamic imports', function () {
      const source = [
        "import { a } from './a.js';",
        "export * from '../shared/b.js';",
        "import './side-effect.js';",
        "const c = await import('./c.js');",
        "import { Storage } from '@google-cloud/storage';",
        "import fs from 'node:fs';",
      ].join('\n');
      expect(importSpecifiers(source).sort()).to.deep.equal(
        ['../shared/b.js', './a.js', './c.js', './side-effect.js', '@google-cloud/storage', 'node:fs'].sort(),
      );
    });

    const names: Array<[string, string]> = [
      ['zod', 'zod'],
      ['zod/v4', 'zod'],
      ['@google-cloud/storage', '@google-cloud/storage'],
      ['@google-cloud/functions-framework/testing', '@google-cloud/functions-framework'],
    ];
    for (const [specifier, name] of names) {
      it(`maps ${specifier} to the package ${name}`, function () {
        expect(packageNameOf(specifier)).to.equal(name);
      });
    }

    it('maps compiled files to their sources', function () {
      expect(sourceOf('dist/shared/core/topology.js')).to.equal('shared/core/topology.ts');
    });
  });

  describe('on a synthetic repository', function () {
    let root: string;
    let out: string;

    beforeEach(function () {
      root = mkdtempSync(join(tmpdir(), 'pkg-root-'));
      out = join(root, 'terraform', 'build', 'function-source');
      write(root, 'package.json', JSON.stringify(ROOT_PKG));
      write(root, 'package-lock.json', JSON.stringify(ROOT_LOCK));
      write(root, 'shared/core/topology.json', '{"topics":{}}');
      write(root, 'functions/index.ts', '');
      write(root, 'shared/core/config.ts', '');
      write(root, 'local/tool.ts', '');
      write(
        root,
        'dist/functions/index.js',
        "import { z } from 'zod';\nimport { config } from '../shared/core/config.js';\nexport const upload = () => config;\n",
      );
      write(root, 'dist/functions/index.js.map', '{}');
      write(root, 'dist/shared/core/config.js', "import { readFileSync } from 'node:fs';\nexport const config = {};\n");
      write(root, 'dist/shared/config.test.js', "import 'chai';\n");
      write(root, 'dist/shared/removed.js', 'export {};\n'); // its source is gone
      write(root, 'dist/local/tool.js', 'export {};\n');
      write(root, 'dist/test/unit/x.test.js', 'export {};\n');
    });

    afterEach(function () {
      rmSync(root, { recursive: true, force: true });
    });

    it('writes exactly the compiled code, the topology, package.json and package-lock.json', function () {
      const result = packageFunctions(root, out);
      expect(result.files).to.deep.equal([
        'dist/functions/index.js',
        'dist/shared/core/config.js',
        'package-lock.json',
        'package.json',
        'shared/core/topology.json',
      ]);
      expect(result.mainPresent).to.equal(true);
      expect(result.skippedStale).to.deep.equal(['dist/shared/removed.js']);
    });

    it('empties the output first, so that deleted code leaves the package', function () {
      write(out, 'dist/functions/old.js', '');
      packageFunctions(root, out);
      expect(existsSync(join(out, 'dist/functions/old.js'))).to.equal(false);
    });

    it('refuses code that imports outside the package', function () {
      write(root, 'dist/functions/index.js', "import '../local/tool.js';\nexport const upload = 1;\n");
      expect(() => packageFunctions(root, out)).to.throw(PackagingError, /local\/tool\.js/);
    });

    it('refuses code that imports a package that is not a runtime dependency', function () {
      write(root, 'dist/shared/core/config.js', "import chai from 'chai';\nexport const config = chai;\n");
      expect(() => packageFunctions(root, out)).to.throw(PackagingError, /chai/);
    });

    it('refuses to package without shared/core/topology.json', function () {
      rmSync(join(root, 'shared/core/topology.json'));
      expect(() => packageFunctions(root, out)).to.throw(PackagingError, /topology\.json/);
    });

    it('reports a missing main (functions not compiled yet)', function () {
      rmSync(join(root, 'dist/functions'), { recursive: true });
      expect(packageFunctions(root, out).mainPresent).to.equal(false);
    });
  });

  describe('on this repository', function () {
    let out: string;
    let result: ReturnType<typeof packageFunctions>;

    before(function () {
      this.timeout(60_000);
      out = join(mkdtempSync(join(tmpdir(), 'pkg-real-')), 'function-source');
      result = packageFunctions(REPO_ROOT, out);
    });

    after(function () {
      rmSync(dirname(out), { recursive: true, force: true });
    });

    it('contains the entry module and the shared code, no tests, bench or local tools', function () {
      expect(result.files).to.include(MAIN);
      expect(result.files).to.include('dist/shared/core/config.js');
      for (const file of result.files) {
        expect(file, file).to.match(
          /^(dist\/(functions|shared)\/.+\.js|shared\/core\/topology\.json|package(-lock)?\.json)$/,
        );
      }
    });

    it('keeps shared/core/topology.json where dist/shared/core/topology.js reads it', function () {
      const topologyModule = pathToFileURL(join(out, 'dist', 'shared', 'core', 'topology.js'));
      const expected = fileURLToPath(new URL('../../../shared/core/topology.json', topologyModule));
      expect(existsSync(expected), expected).to.equal(true);
      expect(readFileSync(join(REPO_ROOT, 'dist', 'shared', 'core', 'topology.js'), 'utf8')).to.include(
        "'../../../shared/core/topology.json'",
      );
    });

    it('locks every runtime dependency and no development one', function () {
      const rootPkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
        devDependencies: Record<string, string>;
      };
      const rootLock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { dev?: boolean }>;
      };
      const lock = JSON.parse(readFileSync(join(out, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { dev?: boolean }>;
      };
      for (const name of Object.keys(rootPkg.dependencies))
        expect(lock.packages, name).to.have.property(`node_modules/${name}`);
      // A devDependency stays only when a runtime package needs it too (e.g. @types/node).
      const devOnly = Object.keys(rootPkg.devDependencies).filter(
        (name) => rootLock.packages[`node_modules/${name}`]?.dev === true,
      );
      expect(devOnly).to.include.members(['mocha', 'typescript']);
      for (const name of devOnly) expect(lock.packages, name).not.to.have.property(`node_modules/${name}`);
      expect(Object.values(lock.packages).filter((p) => p.dev)).to.deep.equal([]);
    });

    it('loads with the runtime dependencies alone and exports the four entry points', function () {
      this.timeout(60_000);
      // node_modules of the repository stands in for `npm ci` of the package (same locked versions);
      // every import of the package was checked against its own dependencies while packaging.
      symlinkSync(join(REPO_ROOT, 'node_modules'), join(out, 'node_modules'), 'dir');
      const topology = JSON.parse(readFileSync(join(REPO_ROOT, 'shared', 'core', 'topology.json'), 'utf8')) as {
        functions: Record<string, { entryPoint: string }>;
      };
      const child = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          "const m = await import('./dist/functions/index.js'); console.log(JSON.stringify(Object.keys(m)));",
        ],
        {
          cwd: out,
          encoding: 'utf8',
          timeout: 50_000,
          env: { PATH: process.env.PATH ?? '', UPLOADS_BUCKET: 'demo-uploads', IMAGES_BUCKET: 'demo-images' },
        },
      );
      expect(child.status, child.stderr).to.equal(0);
      const exported = JSON.parse(child.stdout.trim().split('\n').pop()!) as string[];
      for (const fn of Object.values(topology.functions)) expect(exported).to.include(fn.entryPoint);
    });
  });
});
