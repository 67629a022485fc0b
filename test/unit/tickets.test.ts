/**
 * Signed-upload tickets: their names (shared/core/naming.ts: only `incoming/{ticket}/{filename}`
 * names belong to a ticket) and their documents' pure transitions (shared/state/tickets.ts:
 * minted open, used by one object generation, refused to any other).
 */
import type { Firestore } from '@google-cloud/firestore';
import { expect } from 'chai';
import { loadConfig } from '../../shared/core/config.js';
import { incomingTicketName, newTicketId, TICKET_PATTERN, ticketFromIncomingName } from '../../shared/core/naming.js';
import {
  claimTicket,
  mintTicket,
  newTicketDoc,
  recordTicketUse,
  TICKET_GRACE_MS,
  TICKET_RETENTION_MS,
  type TicketDoc,
  useTicket,
} from '../../shared/state/tickets.js';
import { rejection } from '../helpers.js';

describe('signed-upload tickets', () => {
  const random = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

  describe('names', () => {
    it('carries its expiry in whole seconds, and 24 random hex digits', () => {
      const ticket = newTicketId(new Date('2026-12-02T04:00:00.900Z'), random);
      expect(ticket).to.equal('1796184000-00112233445566778899aabb');
      expect(TICKET_PATTERN.test(ticket)).to.equal(true);
    });

    it('finds the ticket of incoming/{ticket}/{filename} names only', () => {
      const ticket = newTicketId(new Date('2026-12-02T04:00:00Z'), random);
      expect(incomingTicketName(ticket, 'scan 1.tif')).to.equal(`incoming/${ticket}/scan 1.tif`);
      expect(ticketFromIncomingName(incomingTicketName(ticket, 'scan 1.tif'))).to.equal(ticket);
      for (const name of [
        `incoming/${ticket}`,
        `incoming/${ticket}/`,
        `incoming/${ticket}/a/b.jpg`,
        `originals/${ticket}/a.jpg`,
        'incoming/holiday/beach.jpg',
        `incoming/x${ticket}/a.jpg`,
      ]) {
        expect(ticketFromIncomingName(name), name).to.equal(undefined);
      }
    });

    it('refuses malformed ticket ids', () => {
      for (const bad of [
        '',
        'abc',
        '1796184000-00112233445566778899AABB',
        '1796184000-001122',
        '../1796184000-00112233445566778899aabb',
      ]) {
        expect(TICKET_PATTERN.test(bad), bad).to.equal(false);
      }
    });
  });

  describe('documents', () => {
    const minted = new Date('2026-12-02T03:45:00Z');
    const expiresAt = new Date('2026-12-02T04:00:00Z');
    const ticket = newTicketId(expiresAt, random);
    const objectName = incomingTicketName(ticket, 'scan.tif');
    const open: TicketDoc = newTicketDoc(
      { ticket, owner: 'user:alice', objectName, expiresAt, size: 1000, contentType: 'image/tiff' },
      minted,
    );
    const later = new Date('2026-12-02T03:50:00Z');

    it('is minted open, with a TTL field past the expiry, its grace and the retention', () => {
      expect(open).to.deep.include({ state: 'open', owner: 'user:alice', objectName, size: 1000, createdAt: minted });
      expect(open.used).to.equal(undefined);
      expect(open.expireAt.getTime()).to.equal(expiresAt.getTime() + TICKET_GRACE_MS + TICKET_RETENTION_MS);
    });

    it('is used by the first object generation that claims it', () => {
      const { next, result } = useTicket(open, objectName, '17', later);
      expect(next).to.deep.include({ state: 'used', used: { generation: '17' }, updatedAt: later });
      expect(result).to.deep.equal({ kind: 'claimed', ticket: next, redelivery: false });
    });

    it('claims again for the same generation (a redelivered event), writing nothing', () => {
      const used = useTicket(open, objectName, '17', later).next;
      const again = useTicket(used, objectName, '17', later);
      expect(again.next).to.equal(undefined);
      expect(again.result).to.deep.include({ kind: 'claimed', redelivery: true });
    });

    it('refuses another generation (the URL used again), an unknown ticket and another object name', () => {
      const used = useTicket(open, objectName, '17', later).next;
      expect(useTicket(used, objectName, '18', later)).to.deep.equal({
        result: { kind: 'refused', reason: 'reused', usedBy: '17' },
      });
      expect(useTicket(undefined, objectName, '17', later)).to.deep.equal({
        result: { kind: 'refused', reason: 'unknown_ticket' },
      });
      expect(useTicket(open, incomingTicketName(ticket, 'other.tif'), '17', later)).to.deep.equal({
        result: { kind: 'refused', reason: 'wrong_object' },
      });
    });

    it('is taken after its URL expired: Cloud Storage checks the expiry when the PUT starts', () => {
      const late = new Date(expiresAt.getTime() + 10 * 60_000);
      expect(useTicket(open, objectName, '17', late).result).to.deep.include({ kind: 'claimed', redelivery: false });
    });

    it('records what the using generation became, once, and nothing for another generation', () => {
      const used = useTicket(open, objectName, '17', later).next;
      const recorded = recordTicketUse(used, '17', { imageId: 'a'.repeat(32) }, later);
      expect(recorded?.used).to.deep.equal({ generation: '17', imageId: 'a'.repeat(32) });
      expect(recordTicketUse(recorded, '17', { imageId: 'a'.repeat(32) }, later), 'already recorded').to.equal(
        undefined,
      );
      expect(recordTicketUse(recorded, '18', { imageId: 'b'.repeat(32) }, later), 'another generation').to.equal(
        undefined,
      );
      expect(recordTicketUse(open, '17', { imageId: 'a'.repeat(32) }, later), 'never used').to.equal(undefined);
      const failure = { code: 'not_an_image', message: 'Not an image.', retryable: false };
      expect(recordTicketUse(used, '17', { imageId: 'c'.repeat(32), failure }, later)?.used).to.deep.equal({
        generation: '17',
        imageId: 'c'.repeat(32),
        failure,
      });
    });
  });

  describe('Firestore trouble', () => {
    // A database that is down: every transaction fails as the client would after its retries.
    const down = {
      collection: () => ({ doc: (id: string) => ({ id }) }),
      runTransaction: async () => {
        throw Object.assign(new Error('14 UNAVAILABLE: no connection'), { code: 14 });
      },
    } as unknown as Firestore;
    const deps = {
      firestore: down,
      now: () => new Date(),
      config: loadConfig({ UPLOADS_BUCKET: 'test-uploads', IMAGES_BUCKET: 'test-images', UPLOAD_AUTH: 'none' }),
    };
    const ticket = newTicketId(new Date(Date.now() + 600_000), random);

    it('is a transient error while ingest claims a ticket, so the event is redelivered, never dropped', async () => {
      const error = await rejection(claimTicket(deps, ticket, incomingTicketName(ticket, 'a.jpg'), '17'));
      expect(error).to.include({ code: 'state_unavailable', kind: 'transient' });
    });

    it('is a transient error (503) while minting', async () => {
      const facts = { ticket, owner: 'user:alice', objectName: incomingTicketName(ticket, 'a.jpg'), size: 1 };
      const error = await rejection(
        mintTicket(deps, { ...facts, expiresAt: new Date(Date.now() + 600_000), contentType: 'image/jpeg' }),
      );
      expect(error).to.include({ code: 'state_unavailable', kind: 'transient' });
    });
  });
});
