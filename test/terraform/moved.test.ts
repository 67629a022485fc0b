/**
 * The `moved` blocks of terraform/, run by Terraform itself. The google provider cannot be
 * downloaded here, so each google resource the blocks name is played by a built-in
 * `terraform_data` of a name that keeps its type and name (`google_x.y` → `terraform_data.google_x__y`):
 * a state made with the old, single resources is planned against the for_each resources, with the
 * for_each expressions as written and the moved blocks as written. The plan must only move
 * objects (what a deployed stack needs to re-apply with no destroy/create); without the blocks
 * the same plan destroys and creates, which shows that the check can fail.
 */
import { expect } from 'chai';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Body, expr, loadModule, type Module } from './hcl.js';
import { type ScratchModule, scratchModule, terraform } from './scratch.js';

interface Move {
  readonly from: string;
  readonly to: string;
}

/** `google_x.y["k"]` → `terraform_data.google_x__y["k"]`. */
function standIn(address: string): string {
  const match = /^([a-z0-9_]+)\.([a-z0-9_]+)(\[.*\])?$/.exec(address);
  if (!match) throw new Error(`not a resource address: ${address}`);
  return `terraform_data.${match[1]}__${match[2]}${match[3] ?? ''}`;
}

/** The resource part of an address: `google_x.y["k"]` → `google_x.y`. */
function resourceOf(address: string): string {
  return address.replace(/\[.*\]$/, '');
}

function movesOf(mod: Module): Move[] {
  return ((mod.other.moved ?? []).flat() as Body[]).map((m) => ({ from: expr(m.from)!, to: expr(m.to)! }));
}

describe('terraform: moved blocks, planned by Terraform on stand-in resources', function () {
  this.timeout(180_000);
  let mod: Module;
  let moves: Move[];
  let scratch: ScratchModule;
  let varFile: string;

  before(async function () {
    mod = await loadModule();
    moves = movesOf(mod);
    // The for_each expressions read locals of locals.tf and monitoring.tf that need no resource.
    const locals = mod.sources['locals.tf']!;
    const lines = ['function_names', 'push_subscriptions'].map((name) => {
      const line = new RegExp(`^ {2}${name} += .*$`, 'm').exec(locals)?.[0];
      expect(line, `${name} in locals.tf`).to.be.a('string');
      return line!;
    });
    const monitoringLocals = [...mod.sources['monitoring.tf']!.matchAll(/^locals \{\n[\s\S]*?^\}$/gm)].map((m) => m[0]);
    scratch = scratchModule('tf-moved', {
      'locals.tf': `locals {\n${lines.join('\n')}\n}\n${monitoringLocals.join('\n')}\n`,
      // The state of a stack deployed before the for_each: one object per old address.
      'old.tf': [...new Set(moves.map((m) => m.from))]
        .map((from) => `resource "terraform_data" "${standIn(from).slice('terraform_data.'.length)}" {}\n`)
        .join(''),
    });
    varFile = scratch.varFile({ project_id: 'my-project-123' });
    const apply = terraform(scratch.dir, [
      'apply',
      '-auto-approve',
      '-no-color',
      '-input=false',
      '-lock=false',
      varFile,
    ]);
    expect(apply.status, apply.output).to.equal(0);
    rmSync(join(scratch.dir, 'old.tf'));
    // Today's resources, with their for_each as written.
    const resources = [...new Set(moves.map((m) => resourceOf(m.to)))].map((address) => {
      const [type, name] = address.split('.') as [string, string];
      const forEach = mod.resources[type]?.[name]?.for_each;
      expect(forEach, `${address} has a for_each`).to.be.a('string');
      return `resource "terraform_data" "${type}__${name}" {\n  for_each = ${expr(forEach)}\n}\n`;
    });
    writeFileSync(join(scratch.dir, 'new.tf'), resources.join(''));
  });

  after(function () {
    scratch?.remove();
  });

  const plan = (withMoves: boolean): string => {
    const text = withMoves
      ? moves.map((m) => `moved {\n  from = ${standIn(m.from)}\n  to   = ${standIn(m.to)}\n}\n`).join('')
      : '';
    writeFileSync(join(scratch.dir, 'moved.tf'), text);
    const run = terraform(scratch.dir, ['plan', '-no-color', '-input=false', '-lock=false', varFile]);
    expect(run.status, run.output).to.equal(0);
    return run.stdout;
  };

  it('names the push subscriptions and the dead-letter alert policies of earlier versions', function () {
    expect(moves).to.deep.include.members([
      { from: 'google_pubsub_subscription.jobs_push', to: 'google_pubsub_subscription.push["jobsPush"]' },
      { from: 'google_pubsub_subscription.webhooks_push', to: 'google_pubsub_subscription.push["webhooksPush"]' },
      {
        from: 'google_monitoring_alert_policy.dead_letters',
        to: 'google_monitoring_alert_policy.dead_letters["jobs"]',
      },
      {
        from: 'google_monitoring_alert_policy.webhook_dead_letters',
        to: 'google_monitoring_alert_policy.dead_letters["webhooks"]',
      },
    ]);
  });

  it('moves every old object to an instance the for_each declares, and destroys or replaces nothing', function () {
    const out = plan(true);
    for (const m of moves) expect(out, m.from).to.include(`# ${standIn(m.from)} has moved to ${standIn(m.to)}`);
    expect(out).to.match(/Plan: \d+ to add, 0 to change, 0 to destroy\./);
    // Only instances no move fills are created: google_cloudfunctions2_function.this["webhooks"],
    // which came after that for_each (a stack deployed before this refactoring has it already).
    const created = [...out.matchAll(/# (\S+) will be created/g)].map((m) => m[1]);
    expect(created).to.deep.equal(['terraform_data.google_cloudfunctions2_function__this["webhooks"]']);
  });

  it('without the moved blocks, the same plan destroys every old object and creates it again', function () {
    const out = plan(false);
    for (const m of moves) {
      expect(out, m.from).to.include(`# ${standIn(m.from)} will be destroyed`);
      expect(out, m.to).to.include(`# ${standIn(m.to)} will be created`);
    }
  });
});
