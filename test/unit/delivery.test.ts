/**
 * The jobs push subscription's delivery settings (shared/core/topology.json, read by Terraform and the
 * local stack) against what they must survive: back-pressure is not failure. The reasoning and
 * the numbers are in docs/delivery.md.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import {
  admissionLimit,
  redeliveryWaitsSeconds,
  saturationWindowSeconds,
  topology,
  type FunctionKey,
} from '../../shared/core/topology.js';

const jobsPush = topology.subscriptions.jobsPush;

/** The resize function's default timeout, as terraform/variables.tf declares it. */
function resizeTimeoutDefault(): number {
  // terraform/settings.tf holds the per-function defaults (function_sizes); var.functions overrides them.
  const tf = readFileSync(new URL('../../../terraform/settings.tf', import.meta.url), 'utf8');
  const timeout = /^\s*resize\s*=\s*\{[^}]*timeout_seconds\s*=\s*(\d+)/m.exec(tf)?.[1];
  if (!timeout) throw new Error('terraform/settings.tf: no resize timeout_seconds default found');
  return Number(timeout);
}

describe('jobs delivery settings (shared/core/topology.json)', () => {
  it("stay within Pub/Sub's limits (attempts 5–100, backoff 0–600 s, ack deadline 10–600 s)", () => {
    expect(jobsPush.maxDeliveryAttempts).to.be.within(5, 100);
    expect(jobsPush.minimumBackoffSeconds).to.be.within(0, 600);
    expect(jobsPush.maximumBackoffSeconds).to.be.within(jobsPush.minimumBackoffSeconds!, 600);
    expect(jobsPush.ackDeadlineSeconds).to.be.within(10, 600);
  });

  it('model the waits as doubling from the minimum backoff up to the maximum', () => {
    expect(
      redeliveryWaitsSeconds({
        ...jobsPush,
        minimumBackoffSeconds: 10,
        maximumBackoffSeconds: 600,
        maxDeliveryAttempts: 9,
      }),
    ).to.deep.equal([10, 20, 40, 80, 160, 320, 600, 600]);
    // Today's settings before this change: 5 attempts, 10–600 s: 150 s of refusals dead-letter a job.
    expect(
      saturationWindowSeconds({
        ...jobsPush,
        minimumBackoffSeconds: 10,
        maximumBackoffSeconds: 600,
        maxDeliveryAttempts: 5,
      }),
    ).to.equal(150);
  });

  it('let a 30-minute saturation (every push answered 429) dead-letter nothing', () => {
    const window = saturationWindowSeconds(jobsPush);
    expect(window, `${jobsPush.maxDeliveryAttempts} attempts cover ${window} s of refusals`).to.be.at.least(30 * 60);
  });

  it("give the ack deadline slack above the resize function's timeout", () => {
    const timeout = resizeTimeoutDefault();
    expect(jobsPush.ackDeadlineSeconds, `ack deadline vs resize timeout ${timeout} s`).to.be.above(timeout);
  });

  it('give every function a scaling default, so the local stack admits what Cloud Run would', () => {
    for (const fn of Object.keys(topology.functions) as FunctionKey[]) {
      const spec = topology.functions[fn];
      expect(spec.maxInstances, fn).to.be.a('number').and.at.least(1);
      expect(spec.concurrency, fn).to.be.a('number').and.within(1, 1000);
      expect(admissionLimit(fn), fn).to.equal(spec.maxInstances * spec.concurrency);
    }
  });
});
