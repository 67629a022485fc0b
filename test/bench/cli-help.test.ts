/**
 * The bench's command lines answer `--help` with their usage on stdout and exit 0, and a bad
 * option with the message and the usage on stderr and exit 2, before measuring anything.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const SCRIPTS = {
  'npm run bench': fileURLToPath(new URL('../../bench/run.js', import.meta.url)),
  'npm run cleanup-scale': fileURLToPath(new URL('../../bench/cleanup-scale.js', import.meta.url)),
  'npm run reprocess-scale': fileURLToPath(new URL('../../bench/reprocess-scale.js', import.meta.url)),
  'npm run bench:operations': fileURLToPath(new URL('../../bench/operations.js', import.meta.url)),
  'npm run bench:defaults': fileURLToPath(new URL('../../bench/defaults.js', import.meta.url)),
  'npm run bench:auto': fileURLToPath(new URL('../../bench/auto-quality.js', import.meta.url)),
  'npm run bench:placeholder': fileURLToPath(new URL('../../bench/placeholder.js', import.meta.url)),
  'npm run bench:heic': fileURLToPath(new URL('../../bench/heic.js', import.meta.url)),
};

function runScript(script: string, args: string[]) {
  // PUBSUB_EMULATOR_HOST unset and no corpus: were the arguments not refused first, the run would start.
  return spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 30_000 });
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
