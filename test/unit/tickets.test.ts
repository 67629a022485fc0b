/**
 * Signed-upload ticket names (shared/core/naming.ts): the ticket carries its expiry, and only
 * `incoming/{ticket}/{filename}` names belong to a ticket.
 */
import { expect } from 'chai';
import {
  incomingTicketName,
  newTicketId,
  ticketExpiry,
  ticketFromIncomingName,
  ticketMarkerName,
} from '../../shared/core/naming.js';

describe('signed-upload tickets', () => {
  const random = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

  it('carries its expiry in whole seconds, and 24 random hex digits', () => {
    const ticket = newTicketId(new Date('2026-12-02T04:00:00.900Z'), random);
    expect(ticket).to.equal('1796184000-00112233445566778899aabb');
    expect(ticketExpiry(ticket)?.toISOString()).to.equal('2026-12-02T04:00:00.000Z');
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
    expect(ticketMarkerName(ticket)).to.equal(`tickets/${ticket}`);
  });

  it('refuses malformed ticket ids', () => {
    for (const bad of [
      '',
      'abc',
      '1796184000-00112233445566778899AABB',
      '1796184000-001122',
      '../1796184000-00112233445566778899aabb',
    ]) {
      expect(ticketExpiry(bad), bad).to.equal(undefined);
    }
  });
});
