/** The shared test helpers that assert: what their failures say. */
import { expect } from 'chai';
import { expectSameBytes } from '../helpers.js';

describe('expectSameBytes', () => {
  it('passes equal bytes, whatever the view', () => {
    const bytes = Buffer.from('abcdef');
    expectSameBytes(new Uint8Array(bytes.subarray(2)), Buffer.from('cdef'), 'a view');
  });

  it('names what differs: the lengths and the first differing byte', () => {
    expect(() => expectSameBytes(Buffer.from('abcX'), Buffer.from('abcdef'), 'the object')).to.throw(
      'the object: 4 bytes where 6 were expected, first difference at byte 3',
    );
    expect(() => expectSameBytes(undefined, Buffer.from('a'), 'the part')).to.throw(/the part: no bytes/);
  });
});
