/**
 * Terraform run on a scratch module made of variables.tf and settings.tf (the locals the
 * validations read) with shared/core/topology.json beside it, as in the repository: it needs no provider,
 * so `init` downloads nothing and `plan`/`apply` run here. Used by the variables and serving tests.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, TERRAFORM_DIR } from './hcl.js';

const TF_ENV = { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1', TF_INPUT: '0' };

export interface TerraformRun {
  readonly status: number | null;
  readonly output: string;
  readonly stdout: string;
}

/** Runs terraform; fails the test (never skips it) when terraform is not installed. */
export function terraform(cwd: string, args: string[]): TerraformRun {
  const result = spawnSync('terraform', args, { cwd, encoding: 'utf8', env: TF_ENV, timeout: 120_000 });
  if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
    expect.fail(
      'terraform is not installed or not on PATH: the terraform tests need it and are not skipped without it',
    );
  }
  if (result.error) throw result.error;
  return { status: result.status, output: `${result.stdout}${result.stderr}`, stdout: result.stdout };
}

export interface ScratchModule {
  /** The module directory (…/terraform). */
  readonly dir: string;
  /** Writes the variables of the next run to case.tfvars.json and returns its -var-file flag. */
  varFile(vars: Record<string, unknown>): string;
  /** Applies with these variables (project_id defaults to my-project-123) and returns the outputs' values. */
  evaluate(vars?: Record<string, unknown>): Record<string, unknown>;
  remove(): void;
}

/** variables.tf + settings.tf (+ `extra` files), initialised. */
export function scratchModule(prefix: string, extra: Record<string, string> = {}): ScratchModule {
  const root = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const dir = join(root, 'terraform');
  mkdirSync(dir);
  mkdirSync(join(root, 'shared', 'core'), { recursive: true });
  copyFileSync(join(TERRAFORM_DIR, 'variables.tf'), join(dir, 'variables.tf'));
  copyFileSync(join(TERRAFORM_DIR, 'settings.tf'), join(dir, 'settings.tf'));
  copyFileSync(join(REPO_ROOT, 'shared', 'core', 'topology.json'), join(root, 'shared', 'core', 'topology.json'));
  for (const [name, text] of Object.entries(extra)) writeFileSync(join(dir, name), text);
  const init = terraform(dir, ['init', '-backend=false', '-no-color', '-input=false']);
  expect(init.status, init.output).to.equal(0);
  return {
    dir,
    varFile(vars) {
      writeFileSync(join(dir, 'case.tfvars.json'), JSON.stringify(vars));
      return '-var-file=case.tfvars.json';
    },
    evaluate(vars = {}) {
      const varFile = this.varFile({ project_id: 'my-project-123', ...vars });
      const apply = terraform(dir, ['apply', '-auto-approve', '-no-color', '-input=false', '-lock=false', varFile]);
      expect(apply.status, apply.output).to.equal(0);
      const out = terraform(dir, ['output', '-json', '-no-color']);
      expect(out.status, out.output).to.equal(0);
      const json = JSON.parse(out.stdout) as Record<string, { value: unknown }>;
      return Object.fromEntries(Object.entries(json).map(([k, v]) => [k, v.value]));
    },
    remove() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}
