/**
 * The benches' and the operator commands' command lines answer `--help` with their usage on
 * stdout and exit 0, and a bad option with the message and the usage on stderr and exit 2, before
 * measuring or touching anything. Given no deployment and no running local stack, an operator
 * command says what to do; the benches' results go where git and Biome ignore them.
 */
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { RESULTS_DIR, resultsPath } from '../../bench/cli.js';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

const SCRIPTS = {
  'npm run bench': fileURLToPath(new URL('../../bench/run.js', import.meta.url)),
  'npm run cleanup-scale': fileURLToPath(new URL('../../bench/cleanup-scale.js', import.meta.url)),
  'npm run reprocess-scale': fileURLToPath(new URL('../../bench/reprocess-scale.js', import.meta.url)),
  'npm run bench:operations': fileURLToPath(new URL('../../bench/operations.js', import.meta.url)),
  'npm run bench:defaults': fileURLToPath(new URL('../../bench/defaults.js', import.meta.url)),
  'npm run bench:auto': fileURLToPath(new URL('../../bench/auto-quality.js', import.meta.url)),
  'npm run bench:placeholder': fileURLToPath(new URL('../../bench/placeholder.js', import.meta.url)),
  'npm run bench:heic': fileURLToPath(new URL('../../bench/heic.js', import.meta.url)),
  'npm run bench:animation': fileURLToPath(new URL('../../bench/animation.js', import.meta.url)),
  'npm run bench:first-pixels': fileURLToPath(new URL('../../bench/first-pixels.js', import.meta.url)),
  'npm run bench:preview-cost': fileURLToPath(new URL('../../bench/preview-cost.js', import.meta.url)),
  'npm run bench:client-size': fileURLToPath(new URL('../../bench/client-size.js', import.meta.url)),
  'npm run load': fileURLToPath(new URL('../../bench/load.js', import.meta.url)),
  'npm run reprocess': fileURLToPath(new URL('../../local/reprocess.js', import.meta.url)),
  'npm run smoke': fileURLToPath(new URL('../../local/smoke.js', import.meta.url)),
};

/** No deployment (UPLOADS_BUCKET unset) and no local stack (a data directory with no stack.json). */
const NOWHERE: NodeJS.ProcessEnv = (() => {
  const env: NodeJS.ProcessEnv = { ...process.env, LOCAL_DATA_DIR: join(tmpdir(), `no-stack-here-${process.pid}`) };
  delete env.UPLOADS_BUCKET;
  return env;
})();

function runScript(script: string, args: string[]) {
  // Nowhere to run and no corpus: were the arguments not refused first, the run would start.
  return spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 30_000, env: NOWHERE });
}

describe('bench command lines', () => {
  for (const [command, script] of Object.entries(SCRIPTS)) {
    describe(command, () => {
      for (const flag of ['--help', '-h']) {
        it(`${flag} prints the usage and exits 0`, () => {
          const result = runScript(script, [flag]);
          expect(result.status, result.stderr).to.equal(0);
          expect(result.stdout).to.match(new RegExp(`^usage: ${command} -- \\[options\\]`));
          expect(result.stdout).to.contain('--help');
        });
      }

      it('refuses an unknown option with the usage on stderr and exit code 2', () => {
        const result = runScript(script, ['--no-such-option']);
        expect(result.status).to.equal(2);
        expect(result.stderr).to.match(/unknown option.*--no-such-option/i);
        expect(result.stderr).to.contain(`usage: ${command}`);
        expect(result.stdout).to.equal('');
      });
    });
  }
});

describe('operator commands with no deployment and no local stack', () => {
  it('npm run reprocess says to start the local stack or name a deployment, and exits 1', () => {
    const result = runScript(SCRIPTS['npm run reprocess'], ['--dry-run']);
    expect(result.status, result.stderr).to.equal(1);
    expect(result.stderr).to.match(/UPLOADS_BUCKET is unset.*no local stack running/);
    expect(result.stderr).to.contain('npm start');
    expect(result.stderr).to.contain('npm run reprocess -- --help');
  });

  it('npm run smoke asks for --url, naming npm start, and exits 2', () => {
    const result = runScript(SCRIPTS['npm run smoke'], []);
    expect(result.status, result.stderr).to.equal(2);
    expect(result.stderr).to.match(/--url is required: no local stack is running.*npm start/);
  });

  it('their help says how to point them at a deployment', () => {
    const reprocess = runScript(SCRIPTS['npm run reprocess'], ['--help']).stdout;
    for (const words of [
      'UPLOADS_BUCKET',
      'IMAGES_BUCKET',
      'GOOGLE_CLOUD_PROJECT',
      'gcloud auth application-default login',
    ])
      expect(reprocess).to.contain(words);
    const smoke = runScript(SCRIPTS['npm run smoke'], ['--help']).stdout;
    for (const words of ['terraform output -raw upload_url', 'gcloud auth print-identity-token', '--token'])
      expect(smoke).to.contain(words);
  });
});

describe('benches given a corpus that is not there', () => {
  for (const command of ['npm run bench:defaults', 'npm run bench:auto', 'npm run bench:placeholder'] as const) {
    it(`${command} says to pass --corpus, naming the folder`, () => {
      const missing = join(tmpdir(), `no-corpus-here-${process.pid}`);
      const result = runScript(SCRIPTS[command], ['--corpus', missing]);
      expect(result.status).to.not.equal(0);
      expect(result.stderr).to.contain(`No images at ${missing}: pass --corpus DIR`);
    });
  }
});

describe('bench results', () => {
  it('go to bench/results/ by default, which git ignores (and so Biome, which reads .gitignore)', () => {
    expect(relative(REPO_ROOT, RESULTS_DIR)).to.equal(join('bench', 'results'));
    const path = relative(REPO_ROOT, resultsPath('bench-results.json'));
    const ignored = spawnSync('git', ['check-ignore', '--no-index', '-q', path], { cwd: REPO_ROOT });
    expect(ignored.status, `git check-ignore ${path}`).to.equal(0);
  });
});
