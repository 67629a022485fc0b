/**
 * Helpers every test tier shares: waiting for a condition, free ports, expected rejections.
 * Each is defined here once; tests import them instead of keeping copies.
 */
import { expect } from 'chai';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort as freePortOnHost } from '../local/ports.js';
import { PipelineError } from '../shared/core/errors.js';
import { assetIdOf } from '../shared/core/naming.js';
import { SERVICE_OWNER } from '../shared/auth/principal.js';
import type { RenderOptions } from '../shared/image/render.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Polls `probe` every `everyMs` until it returns something other than `undefined`, and returns
 * that; fails naming `what` after `timeoutMs`. Errors thrown by `probe` fail at once.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await pause(everyMs);
  }
}

/**
 * Like {@link waitFor} for checks against a system that is still starting: a thrown error counts
 * as "not yet" (the last one is named if time runs out). Polls every 250 ms.
 */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`${what}: not done after ${timeoutMs} ms${last ? ` (last error: ${String(last)})` : ''}`);
    await pause(250);
  }
}

/**
 * Wakes waiters when something they wait for may have happened (a message, an event), so they
 * check at once instead of polling: call {@link Changes.notify} on every arrival.
 */
export class Changes {
  private waiters: Array<() => void> = [];

  notify(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }

  /** Resolves with `check()`'s first value other than `undefined`; fails naming `what` after `timeoutMs`. */
  async until<T>(what: string, check: () => T | undefined, timeoutMs = 60_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return freePortOnHost();
}

/** Starts `server` on 127.0.0.1 (`port` 0: any free one); resolves with the port it listens on. */
export async function listen(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Closes `server`, resolving once it has stopped (and failing if it was not running). */
export function close(server: Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
}

/** Awaits `promise`, expecting a PipelineError; returns it for further checks. */
export async function rejection(promise: Promise<unknown>): Promise<PipelineError> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(PipelineError);
    return error as PipelineError;
  }
  expect.fail('expected a PipelineError, but the promise resolved');
}

/**
 * Asserts that two byte strings are equal; when they are not, says how long each is and where they
 * first differ, which `expect(a.equals(b)).to.equal(true)` does not.
 */
export function expectSameBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  expect(actual, `${what}: no bytes`).to.not.equal(undefined);
  const a = Buffer.from(actual!.buffer, actual!.byteOffset, actual!.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(b)) return;
  let at = 0;
  while (at < a.length && at < b.length && a[at] === b[at]) at++;
  expect.fail(`${what}: ${a.length} bytes where ${b.length} were expected, first difference at byte ${at}`);
}

/** Fast encoder settings for render tests: they check geometry, colour and frames, not compression. */
export const FAST_RENDER_OPTIONS: RenderOptions = {
  encoders: {
    jpeg: { quality: 85, mozjpeg: false },
    webp: { quality: 85, effort: 2 },
    avif: { quality: 60, effort: 2 },
  },
  keepMetadata: false,
  limitInputPixels: 50_000_000,
  maxFrames: 100,
};

/**
 * The asset id of the service's upload of image `imageId` (an upload without X-Upload-Owner, or
 * a plain `incoming/` object): what `/uploads/{id}` takes for it.
 */
export function serviceAsset(imageId: string): string {
  return assetIdOf(SERVICE_OWNER, imageId);
}
