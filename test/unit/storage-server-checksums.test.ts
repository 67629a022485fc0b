/**
 * The storage server's checksums (local/storage-server/checksums.ts): CRC32C against the
 * published test vectors, in pieces and at odd offsets, MD5 as Cloud Storage writes it, and the
 * X-Goog-Hash header and the mismatch check that refuse a corrupted upload.
 */
import { expect } from 'chai';
import { StorageApiError } from '../../local/storage-server/api-errors.js';
import {
  crc32c,
  crc32cBase64,
  md5Base64,
  parseGoogHash,
  verifyClaimedHashes,
} from '../../local/storage-server/checksums.js';

const ascending = Buffer.from(Array.from({ length: 32 }, (_, i) => i));

describe('storage server checksums', () => {
  describe('crc32c', () => {
    // RFC 3720 appendix B.4 and the usual check value of CRC-32C.
    const vectors: [string, Buffer, number][] = [
      ['nothing', Buffer.alloc(0), 0],
      ['"123456789"', Buffer.from('123456789'), 0xe3069283],
      ['32 zero bytes', Buffer.alloc(32, 0), 0x8a9136aa],
      ['32 bytes of 0xff', Buffer.alloc(32, 0xff), 0x62a8ab43],
      ['32 ascending bytes', ascending, 0x46dd794e],
      ['32 descending bytes', Buffer.from([...ascending].reverse()), 0x113fdb5c],
    ];
    for (const [title, data, expected] of vectors) {
      it(`matches the published value for ${title}`, () => {
        expect(crc32c(data).toString(16)).to.equal(expected.toString(16));
      });
    }

    it('extends over data that arrives in pieces, whatever the split', () => {
      const data = Buffer.from('The quick brown fox jumps over the lazy dog, twice over: 0123456789');
      const whole = crc32c(data);
      for (const split of [0, 1, 7, 8, 9, 31, data.length]) {
        expect(crc32c(data.subarray(split), crc32c(data.subarray(0, split))), `split at ${split}`).to.equal(whole);
      }
    });

    it('reads a view that starts at an odd offset of its buffer', () => {
      const backing = Buffer.concat([Buffer.from([0xaa, 0xbb, 0xcc]), Buffer.from('123456789')]);
      const view = new Uint8Array(backing.buffer, backing.byteOffset + 3, 9);
      expect(crc32c(view)).to.equal(0xe3069283);
    });

    it('is written as the base64 of its four big-endian bytes', () => {
      expect(crc32cBase64(Buffer.from('123456789'))).to.equal(Buffer.from([0xe3, 0x06, 0x92, 0x83]).toString('base64'));
      expect(crc32cBase64(0)).to.equal('AAAAAA==');
      expect(crc32cBase64(Buffer.alloc(0))).to.equal('AAAAAA==');
    });
  });

  it('writes MD5 as the base64 of its digest', () => {
    expect(md5Base64(Buffer.alloc(0))).to.equal('1B2M2Y8AsgTpgAmY7PhCfg==');
    expect(md5Base64(Buffer.from('hello'))).to.equal('XUFAKrxLKna5cZ2REBfFkg==');
  });

  describe('parseGoogHash', () => {
    it('reads both algorithms, from one header or a repeated one, and ignores others', () => {
      expect(parseGoogHash('crc32c=n03x6A==,md5=XUFAKrxLKna5cZ2REBfFkg==')).to.deep.equal({
        crc32c: 'n03x6A==',
        md5: 'XUFAKrxLKna5cZ2REBfFkg==',
      });
      expect(parseGoogHash(['crc32c=n03x6A==', ' md5 = XUFAKrxLKna5cZ2REBfFkg== '])).to.deep.equal({
        crc32c: 'n03x6A==',
        md5: 'XUFAKrxLKna5cZ2REBfFkg==',
      });
      expect(parseGoogHash('CRC32C=AAAAAA==, sha256=abc, nonsense')).to.deep.equal({ crc32c: 'AAAAAA==' });
    });

    it('reads nothing from an absent header', () => {
      expect(parseGoogHash(undefined)).to.deep.equal({});
    });
  });

  describe('verifyClaimedHashes', () => {
    const actual = { crc32c: crc32cBase64(Buffer.from('hello')), md5Hash: md5Base64(Buffer.from('hello')) };

    it('accepts matching claims and no claims', () => {
      expect(() => verifyClaimedHashes({ crc32c: actual.crc32c, md5: actual.md5Hash }, actual)).not.to.throw();
      expect(() => verifyClaimedHashes({}, actual)).not.to.throw();
    });

    it('refuses a wrong CRC32C or a wrong MD5 with a 400 naming both values', () => {
      for (const claimed of [{ crc32c: 'AAAAAA==' }, { crc32c: actual.crc32c, md5: md5Base64(Buffer.from('other')) }]) {
        let caught: unknown;
        try {
          verifyClaimedHashes(claimed, actual);
        } catch (error) {
          caught = error;
        }
        expect(caught).to.be.instanceOf(StorageApiError);
        expect(caught).to.include({ status: 400, reason: 'invalid' });
        expect((caught as Error).message).to.contain(claimed.md5 ?? claimed.crc32c);
      }
    });
  });
});
