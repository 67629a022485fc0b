/**
 * The storage server's preconditions (local/storage-server/preconditions.ts), with Cloud Storage's
 * semantics: `ifGenerationMatch=0` means "does not exist", every other condition needs a live
 * object, a failed "not match" on a read is 304, anything else 412, a malformed value 400.
 */
import { expect } from 'chai';
import { StorageApiError } from '../../local/storage-server/api-errors.js';
import type { ObjectRecord } from '../../local/storage-server/object-records.js';
import {
  checkPreconditions,
  isUnconditional,
  parsePreconditions,
  type Preconditions,
} from '../../local/storage-server/preconditions.js';

const live: ObjectRecord = {
  bucket: 'b',
  name: 'o',
  generation: '1700000000000001',
  metageneration: 3,
  size: 0,
  crc32c: 'AAAAAA==',
  storageClass: 'STANDARD',
  timeCreated: '2026-01-01T00:00:00.000Z',
  updated: '2026-01-01T00:00:00.000Z',
};

/** The status `checkPreconditions` answers with, or 'ok'. */
function outcome(
  current: ObjectRecord | undefined,
  preconditions: Preconditions,
  operation: 'read' | 'write' = 'write',
): number | 'ok' {
  try {
    checkPreconditions(current, preconditions, operation);
    return 'ok';
  } catch (error) {
    expect(error).to.be.instanceOf(StorageApiError);
    return (error as StorageApiError).status;
  }
}

describe('storage server preconditions', () => {
  describe('parsePreconditions', () => {
    it('reads the four conditions as bigints, and only those given', () => {
      const params = new URLSearchParams(
        'ifGenerationMatch=0&ifMetagenerationNotMatch=%2012%20&ifSourceGenerationMatch=5',
      );
      expect(parsePreconditions(params)).to.deep.equal({ ifGenerationMatch: 0n, ifMetagenerationNotMatch: 12n });
      expect(parsePreconditions(params, 'source')).to.deep.equal({ ifGenerationMatch: 5n });
      expect(isUnconditional(parsePreconditions(new URLSearchParams('generation=5')))).to.equal(true);
      expect(isUnconditional(parsePreconditions(params))).to.equal(false);
    });

    it('refuses a value that is not a non-negative decimal integer with a 400 naming the parameter', () => {
      for (const query of [
        'ifGenerationMatch=-1',
        'ifGenerationMatch=abc',
        'ifMetagenerationMatch=',
        'ifSourceGenerationMatch=1e3',
        'ifGenerationMatch=12345678901234567890',
      ]) {
        const which = query.startsWith('ifSource') ? 'source' : 'target';
        let caught: unknown;
        try {
          parsePreconditions(new URLSearchParams(query), which);
        } catch (error) {
          caught = error;
        }
        expect(caught, query).to.be.instanceOf(StorageApiError);
        expect(caught, query).to.include({ status: 400, reason: 'invalidParameter' });
        expect((caught as Error).message, query).to.contain(query.split('=')[0] ?? query);
      }
    });
  });

  describe('checkPreconditions', () => {
    const generation = BigInt(live.generation);

    it('ifGenerationMatch=0 passes only when no live object exists', () => {
      expect(outcome(undefined, { ifGenerationMatch: 0n })).to.equal('ok');
      expect(outcome(live, { ifGenerationMatch: 0n })).to.equal(412);
    });

    it('every other condition fails on a missing object', () => {
      expect(outcome(undefined, {})).to.equal('ok');
      for (const condition of [
        { ifGenerationMatch: 5n },
        { ifGenerationNotMatch: 0n },
        { ifMetagenerationMatch: 1n },
        { ifMetagenerationNotMatch: 1n },
      ]) {
        expect(outcome(undefined, condition), JSON.stringify(Object.keys(condition))).to.equal(412);
      }
    });

    it('match conditions compare with the live generation and metageneration', () => {
      expect(outcome(live, { ifGenerationMatch: generation, ifMetagenerationMatch: 3n })).to.equal('ok');
      expect(outcome(live, { ifGenerationMatch: generation + 1n })).to.equal(412);
      expect(outcome(live, { ifMetagenerationMatch: 2n })).to.equal(412);
    });

    it('a failed "not match" is 304 on a read and 412 on a write', () => {
      expect(outcome(live, { ifGenerationNotMatch: generation }, 'read')).to.equal(304);
      expect(outcome(live, { ifMetagenerationNotMatch: 3n }, 'read')).to.equal(304);
      expect(outcome(live, { ifGenerationNotMatch: generation }, 'write')).to.equal(412);
      expect(outcome(live, { ifMetagenerationNotMatch: 3n }, 'write')).to.equal(412);
      expect(outcome(live, { ifGenerationNotMatch: generation + 1n, ifMetagenerationNotMatch: 4n }, 'read')).to.equal(
        'ok',
      );
    });

    it('answers 412 with reason conditionNotMet, which the clients do not retry', () => {
      let caught: unknown;
      try {
        checkPreconditions(live, { ifGenerationMatch: 0n });
      } catch (error) {
        caught = error;
      }
      expect(caught).to.include({ status: 412, reason: 'conditionNotMet' });
    });
  });
});
