import { expect } from 'chai';
import { SERVICE_OWNER } from '../../shared/auth/principal.js';
import { PipelineError } from '../../shared/core/errors.js';
import { chargeQuota, closeTicket, nextUtcMidnight, ownerDocId, type OwnerDoc } from '../../shared/state/owners.js';

const quotas = { uploadsPerDay: 2, bytesPerDay: 1000, openTickets: 1 };
const now = new Date('2026-12-06T23:59:30Z');
const alice = 'user:alice';

function refusal(call: () => unknown): PipelineError {
  try {
    call();
  } catch (error) {
    if (error instanceof PipelineError) return error;
    throw error;
  }
  throw new Error('expected a quota refusal');
}

describe('owner quotas (state/owners.ts)', () => {
  it('counts uploads and bytes per UTC day and refuses the one past the limit with when it resets', () => {
    const first = chargeQuota(undefined, alice, { uploads: 1, bytes: 400 }, quotas, now);
    const second = chargeQuota(first, alice, { uploads: 1, bytes: 400 }, quotas, now);
    expect(second).to.include({ uploads: 2, bytes: 800, day: '2026-12-06' });
    const error = refusal(() => chargeQuota(second, alice, { uploads: 1, bytes: 1 }, quotas, now));
    expect(error.code).to.equal('quota_exceeded');
    expect(error.status).to.equal(429);
    expect(error.details).to.deep.include({
      quota: 'uploads_per_day',
      limit: 2,
      used: 2,
      resetsAt: '2026-12-07T00:00:00.000Z',
      retryAfterSeconds: 30,
    });
    // The next UTC day starts from zero.
    const tomorrow = new Date('2026-12-07T00:00:01Z');
    expect(chargeQuota(second, alice, { uploads: 1, bytes: 1 }, quotas, tomorrow)).to.include({ uploads: 1, bytes: 1 });
  });

  it('refuses bytes over the daily byte quota, naming it', () => {
    const doc = chargeQuota(undefined, alice, { uploads: 1, bytes: 900 }, quotas, now);
    const error = refusal(() => chargeQuota(doc, alice, { uploads: 1, bytes: 101 }, quotas, now));
    expect(error.details).to.include({ quota: 'bytes_per_day', limit: 1000, used: 900 });
  });

  it('counts open tickets until they are used or expire, and says when the first one frees', () => {
    const ticket = { ticket: 't1', expiresAt: new Date(now.getTime() + 600_000) };
    const doc = chargeQuota(undefined, alice, { uploads: 0, bytes: 0, ticket }, quotas, now) as OwnerDoc;
    const second = { ticket: 't2', expiresAt: new Date(now.getTime() + 900_000) };
    const error = refusal(() => chargeQuota(doc, alice, { uploads: 0, bytes: 0, ticket: second }, quotas, now));
    expect(error.details).to.include({ quota: 'open_tickets', retryAfterSeconds: 600 });
    const closed = closeTicket(doc, 't1', now);
    expect(
      chargeQuota(closed, alice, { uploads: 0, bytes: 0, ticket: second }, quotas, now)?.openTickets,
    ).to.have.length(1);
    const later = new Date(ticket.expiresAt.getTime() + 1);
    expect(chargeQuota(doc, alice, { uploads: 0, bytes: 0, ticket: second }, quotas, later)?.openTickets).to.deep.equal(
      [second],
    );
  });

  it('charges nothing to the service owner, nor when every limit is 0', () => {
    expect(chargeQuota(undefined, SERVICE_OWNER, { uploads: 99, bytes: 1e9 }, quotas, now)).to.equal(undefined);
    const off = { uploadsPerDay: 0, bytesPerDay: 0, openTickets: 0 };
    expect(chargeQuota(undefined, alice, { uploads: 99, bytes: 1e9 }, off, now)).to.equal(undefined);
  });

  it('files owners under a hash (any sub is a valid document id) and knows the next midnight', () => {
    expect(ownerDocId('user:a/b')).to.match(/^[0-9a-f]{32}$/);
    expect(ownerDocId('user:a')).to.not.equal(ownerDocId('user:b'));
    expect(nextUtcMidnight(new Date('2026-12-31T12:00:00Z')).toISOString()).to.equal('2027-01-01T00:00:00.000Z');
  });
});
