/**
 * The storage server's multipart/related parser (local/storage-server/multipart.ts): the bodies
 * the Node client and gcloud send, the liberties they take, and a 400 for what is not well formed.
 */
import { expect } from 'chai';
import { StorageApiError } from '../../local/storage-server/api-errors.js';
import { boundaryOf, parseMultipart } from '../../local/storage-server/multipart.js';
import { expectSameBytes } from '../helpers.js';

/** The StorageApiError `fn` throws; fails the test if it throws nothing or something else. */
function apiErrorOf(fn: () => unknown): StorageApiError {
  try {
    fn();
  } catch (error) {
    expect(error).to.be.instanceOf(StorageApiError);
    return error as StorageApiError;
  }
  expect.fail('expected a StorageApiError');
}

describe('storage server multipart parser', () => {
  describe('boundaryOf', () => {
    it('reads a bare, double-quoted or single-quoted boundary', () => {
      expect(boundaryOf('multipart/related; boundary=abc123')).to.equal('abc123');
      expect(boundaryOf('multipart/related; boundary="a b;c"')).to.equal('a b;c');
      expect(boundaryOf("Multipart/Related; charset=utf-8; boundary='===123=='")).to.equal('===123==');
    });

    it('refuses another content type or a missing boundary with a 400', () => {
      expect(apiErrorOf(() => boundaryOf('application/json')).status).to.equal(400);
      expect(apiErrorOf(() => boundaryOf(undefined)).status).to.equal(400);
      expect(apiErrorOf(() => boundaryOf('multipart/related')).message).to.contain('no boundary');
    });
  });

  describe('parseMultipart', () => {
    const media = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x2d, 0x2d, 0x00, 0xff]);

    it('splits a CRLF body into lower-cased headers and raw bytes, binary included', () => {
      const body = Buffer.concat([
        Buffer.from(
          '--b1\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{"name":"x"}\r\n--b1\r\nContent-Type: image/png\r\n\r\n',
        ),
        media,
        Buffer.from('\r\n--b1--\r\n'),
      ]);
      const parts = parseMultipart(body, 'b1');
      expect(parts).to.have.length(2);
      expect(parts[0]?.headers).to.deep.equal({ 'content-type': 'application/json; charset=UTF-8' });
      expect(parts[0]?.body.toString()).to.equal('{"name":"x"}');
      expect(parts[1]?.headers['content-type']).to.equal('image/png');
      expectSameBytes(parts[1]?.body, media, 'the media part');
    });

    it('takes bare LF line endings, a preamble, extra part headers and no final line break', () => {
      const body = Buffer.from(
        'preamble text\n--b2\nMIME-Version: 1.0\nContent-Type: application/json\n\n{}\n--b2\nContent-Type: text/plain\n\nhello\n--b2--',
      );
      const parts = parseMultipart(body, 'b2');
      expect(parts.map((p) => p.body.toString())).to.deep.equal(['{}', 'hello']);
      expect(parts[0]?.headers['mime-version']).to.equal('1.0');
    });

    it('decodes a base64 Content-Transfer-Encoding and passes binary ones through', () => {
      const body = Buffer.from(
        '--b3\r\nContent-Type: application/json\r\n\r\n{}\r\n--b3\r\nContent-Transfer-Encoding: base64\r\n\r\naGVs\r\nbG8=\r\n--b3--\r\n',
      );
      expect(parseMultipart(body, 'b3')[1]?.body.toString()).to.equal('hello');
      const binary = Buffer.from('--b4\r\nContent-Transfer-Encoding: binary\r\n\r\nraw\r\n--b4--');
      expect(parseMultipart(binary, 'b4')[0]?.body.toString()).to.equal('raw');
    });

    it('refuses malformed bodies with a 400 saying what is wrong', () => {
      const cases: [string, string, string][] = [
        ['no boundary at all', 'just bytes', 'does not contain its boundary'],
        ['no closing boundary', '--b\r\nContent-Type: text/plain\r\n\r\nhello', 'missing closing boundary'],
        ['no blank line after the headers', '--b\r\nContent-Type: text/plain\r\n--b--', 'no blank line'],
        ['a header without a colon', '--b\r\nnot a header\r\n\r\nx\r\n--b--', 'Malformed multipart part header'],
        [
          'an unknown transfer encoding',
          '--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nx\r\n--b--',
          'Unsupported Content-Transfer-Encoding',
        ],
        ['only the closing delimiter', '--b--\r\n', 'has no parts'],
      ];
      for (const [title, text, message] of cases) {
        const error = apiErrorOf(() => parseMultipart(Buffer.from(text), 'b'));
        expect(error.status, title).to.equal(400);
        expect(error.message, title).to.contain(message);
      }
    });
  });
});
