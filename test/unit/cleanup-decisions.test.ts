import { expect } from 'chai';
import {
  decideOriginal,
  isOrphan,
  isStaleIncoming,
  type CleanupPolicy,
  type OriginalFacts,
} from '../../shared/pipeline/cleanup.js';

const now = new Date('2026-06-01T12:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms);
const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const policy: CleanupPolicy = {
  ORIGINAL_RETENTION_DAYS: 30,
  REDISPATCH_AFTER_MINUTES: 30,
  MAX_REDISPATCHES: 3,
  ORPHAN_GRACE_DAYS: 7,
  INCOMING_MAX_AGE_HOURS: 24,
};
const base: OriginalFacts = {
  createdAt: ago(DAY),
  dispatchedAt: ago(DAY),
  redispatches: 0,
  hasManifest: false,
  hasFailure: false,
};

describe('cleanup decisions (fake clock)', () => {
  const cases: Array<[string, Partial<OriginalFacts>, Partial<CleanupPolicy>, string, number?]> = [
    ['a finished original within retention is kept', { hasManifest: true, createdAt: ago(29 * DAY) }, {}, 'keep'],
    ['a finished original past retention is deleted', { hasManifest: true, createdAt: ago(31 * DAY) }, {}, 'delete'],
    [
      'retention 0 keeps originals forever',
      { hasManifest: true, createdAt: ago(3650 * DAY) },
      { ORIGINAL_RETENTION_DAYS: 0 },
      'keep',
    ],
    ['a failed original past retention is deleted', { hasFailure: true, createdAt: ago(31 * DAY) }, {}, 'delete'],
    [
      'a fresh undispatched original is left to its upload',
      { dispatchedAt: undefined, createdAt: ago(30_000) },
      {},
      'keep',
    ],
    [
      'an undispatched original past the grace is dispatched',
      { dispatchedAt: undefined, createdAt: ago(5 * MIN) },
      {},
      'redispatch',
      0,
    ],
    ['an in-flight original is kept', { dispatchedAt: ago(10 * MIN) }, {}, 'keep'],
    ['a stuck original is re-dispatched', { dispatchedAt: ago(31 * MIN), redispatches: 1 }, {}, 'redispatch', 2],
    ['a stuck original at the cap is given up', { dispatchedAt: ago(31 * MIN), redispatches: 3 }, {}, 'give-up'],
    ['MAX_REDISPATCHES 0 gives up at once', { dispatchedAt: ago(31 * MIN) }, { MAX_REDISPATCHES: 0 }, 'give-up'],
    // Evidence of progress: a variant written since the last dispatch means its jobs are alive.
    [
      'an image whose variants keep appearing is not re-dispatched',
      { dispatchedAt: ago(2 * 60 * MIN), lastOutputAt: ago(10 * MIN) },
      {},
      'keep',
    ],
    [
      'an image at the cap whose variants keep appearing is not given up',
      { dispatchedAt: ago(2 * 60 * MIN), lastOutputAt: ago(29 * MIN), redispatches: 3 },
      {},
      'keep',
    ],
    [
      'output that then went quiet for the whole window is re-dispatched',
      { dispatchedAt: ago(3 * 60 * MIN), lastOutputAt: ago(31 * MIN), redispatches: 1 },
      {},
      'redispatch',
      2,
    ],
    [
      'output older than the last dispatch is no evidence',
      { dispatchedAt: ago(31 * MIN), lastOutputAt: ago(5 * 60 * MIN) },
      {},
      'redispatch',
      1,
    ],
  ];
  for (const [what, facts, overrides, action, attempt] of cases) {
    it(what, () => {
      const decision = decideOriginal({ ...base, ...facts }, { ...policy, ...overrides }, now);
      expect(decision.action).to.equal(action);
      if (attempt !== undefined && decision.action === 'redispatch') expect(decision.attempt).to.equal(attempt);
    });
  }

  it('finds stale incoming objects', () => {
    expect(isStaleIncoming(ago(25 * 60 * MIN), policy, now)).to.equal(true);
    expect(isStaleIncoming(ago(23 * 60 * MIN), policy, now)).to.equal(false);
  });

  const orphans: Array<[string, boolean, number, number, boolean]> = [
    ['incomplete outputs past the grace', false, 8 * DAY, 30, true],
    ['incomplete outputs within the grace', false, 6 * DAY, 30, false],
    ['finished outputs when retention deletes originals on purpose', true, 100 * DAY, 30, false],
    ['finished outputs whose original was removed while retention is 0', true, 8 * DAY, 0, true],
  ];
  for (const [what, hasManifest, age, retention, expected] of orphans) {
    it(`orphans: ${what} → ${expected ? 'delete' : 'keep'}`, () => {
      expect(
        isOrphan({ hasManifest, newestAt: ago(age) }, { ...policy, ORIGINAL_RETENTION_DAYS: retention }, now),
      ).to.equal(expected);
    });
  }
});
