/**
 * The record protocol's unit-level facts: which failure causes are retryable, and the stale
 * threshold's arithmetic.
 */
import { expect } from 'chai';
import { ERROR_CODES, isRetryableCause, type ErrorCode } from '../../shared/core/errors.js';
import { STORAGE_CALL_DEADLINE_MS } from '../../shared/cloud/objects.js';
import { PUBLISH_WORST_MS } from '../../shared/cloud/publish.js';
import { ANNOUNCE_STALE_MS, CLOCK_SKEW_MS, PUBLISH_START_LIMIT_MS } from '../../shared/state/records.js';

describe('records: failure causes', () => {
  it('causes about the world are retryable; causes about the image are not', () => {
    for (const code of [
      'dead_lettered',
      'processing_gave_up',
      'time_budget_exceeded',
      'out_of_memory',
      'original_missing',
      'storage_refused',
    ]) {
      expect(isRetryableCause(code), code).to.equal(true);
    }
    for (const code of [
      'corrupt_image',
      'too_many_pixels',
      'too_many_frames',
      'not_an_image',
      'format_not_allowed',
      'payload_too_large',
      'image_failed',
      'no_such_code',
    ]) {
      expect(isRetryableCause(code), code).to.equal(false);
    }
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      if (ERROR_CODES[code].kind === 'transient') expect(isRetryableCause(code), code).to.equal(true);
    }
  });
});

describe('records: stale threshold', () => {
  it('is longer than a holder can take to publish and mark its announcement, plus clock skew', () => {
    expect(PUBLISH_WORST_MS).to.equal(30_000); // 20 s retry budget + one 10 s attempt
    expect(ANNOUNCE_STALE_MS).to.equal(
      PUBLISH_START_LIMIT_MS + PUBLISH_WORST_MS + STORAGE_CALL_DEADLINE_MS + CLOCK_SKEW_MS,
    );
    expect(ANNOUNCE_STALE_MS).to.equal(120_000);
  });
});
