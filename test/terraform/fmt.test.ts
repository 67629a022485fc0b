/**
 * `terraform fmt -check -recursive` over terraform/ (the module and its examples). Terraform is
 * part of the toolchain on developer machines and in CI (.ci/run checks for it): when it is
 * missing this test fails with a message saying so, it is never skipped.
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from './hcl.js';

describe('terraform fmt', function () {
  it('finds every file under terraform/ formatted (terraform fmt -check -recursive)', function () {
    const result = spawnSync('terraform', ['fmt', '-check', '-recursive', '-diff', '-no-color', 'terraform/'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, TF_IN_AUTOMATION: '1', CHECKPOINT_DISABLE: '1' },
      timeout: 60_000,
    });
    if (result.error && (result.error as NodeJS.ErrnoException).code === 'ENOENT') {
      expect.fail(
        'terraform is not installed or not on PATH: install Terraform >= 1.5 (https://developer.hashicorp.com/terraform/install); the terraform tests need it and are not skipped without it',
      );
    }
    if (result.error) throw result.error;
    expect(
      result.status,
      `terraform fmt -check found unformatted files (run \`terraform fmt -recursive terraform/\`):\n${result.stdout}${result.stderr}`,
    ).to.equal(0);
  });
});
