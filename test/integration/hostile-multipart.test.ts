/**
 * Hostile inputs: malformed multipart bodies (upload only): each its exact 400 code, nothing stored.
 *
 * Split from the former hostile.test.ts; each hostile-*.test.ts file starts its own pipeline
 * (test/fixtures/hostile.ts) and runs alone or with the others in any order.
 */
import { expect } from 'chai';
import type { ErrorCode } from '../../shared/core/errors.js';
import { hostileSuite } from '../fixtures/hostile.js';

describe('hostile inputs: malformed multipart (upload only)', function () {
  this.timeout(120_000);
  const h = hostileSuite();
  const { rows, auth, api, snapshot, expectSafeError, nextUploadWorks } = h;

  const boundary = 'HostileBoundary0123';
  const part = (headers: string, body: string) => `--${boundary}\r\n${headers}\r\n\r\n${body}\r\n`;
  const filePart = (field: string, filename: string, body = 'not really an image') =>
    part(`Content-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: image/jpeg`, body);
  const end = `--${boundary}--\r\n`;
  const cases: Array<[string, string, string, number, ErrorCode]> = [
    ['no boundary parameter', 'multipart/form-data', filePart('file', 'a.jpg') + end, 400, 'bad_multipart'],
    [
      'a boundary that is not the one in the body',
      'multipart/form-data; boundary=SomethingElse',
      filePart('file', 'a.jpg') + end,
      400,
      'bad_multipart',
    ],
    [
      'a body that is not multipart at all',
      `multipart/form-data; boundary=${boundary}`,
      'hello, this is plain text',
      400,
      'bad_multipart',
    ],
    ['an empty body', `multipart/form-data; boundary=${boundary}`, '', 400, 'bad_multipart'],
    [
      'a body cut off inside the file part (no closing boundary)',
      `multipart/form-data; boundary=${boundary}`,
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n\r\nabcdef`,
      400,
      'bad_multipart',
    ],
    [
      'a body cut off after the file part (no closing boundary)',
      `multipart/form-data; boundary=${boundary}`,
      filePart('file', 'a.jpg'),
      400,
      'bad_multipart',
    ],
    [
      'a body cut off inside an ignored second file',
      `multipart/form-data; boundary=${boundary}`,
      filePart('file', 'a.jpg') +
        `--${boundary}\r\nContent-Disposition: form-data; name="other"; filename="b.jpg"\r\n\r\nxyz`,
      400,
      'bad_multipart',
    ],
    [
      'a part header of 100 KB',
      `multipart/form-data; boundary=${boundary}`,
      `--${boundary}\r\nX-Pad: ${'a'.repeat(100_000)}\r\n\r\nabc\r\n${end}`,
      400,
      'bad_multipart',
    ],
    [
      'no file field (a text field only)',
      `multipart/form-data; boundary=${boundary}`,
      part('Content-Disposition: form-data; name="title"', 'x') + end,
      400,
      'missing_file',
    ],
    [
      'the file in another field',
      `multipart/form-data; boundary=${boundary}`,
      filePart('image', 'a.jpg') + end,
      400,
      'missing_file',
    ],
    [
      'a "file" field without a filename (a plain field)',
      `multipart/form-data; boundary=${boundary}`,
      part('Content-Disposition: form-data; name="file"', 'x') + end,
      400,
      'missing_file',
    ],
    [
      'two files in "file"',
      `multipart/form-data; boundary=${boundary}`,
      filePart('file', 'a.jpg') + filePart('file', 'b.jpg') + end,
      400,
      'too_many_files',
    ],
    [
      'one file in "file" and one in "other"',
      `multipart/form-data; boundary=${boundary}`,
      filePart('file', 'a.jpg') + filePart('other', 'b.jpg') + end,
      400,
      'too_many_files',
    ],
    [
      'multipart/mixed instead of form-data',
      `multipart/mixed; boundary=${boundary}`,
      filePart('file', 'a.jpg') + end,
      400,
      'bad_multipart',
    ],
  ];
  for (const [what, contentType, body, status, code] of cases) {
    it(`${what}: ${status} ${code}`, async () => {
      const before = await snapshot();
      const response = await api()
        .post('/uploads')
        .set(auth)
        .set('Content-Type', contentType)
        .send(Buffer.from(body, 'latin1'));
      expectSafeError(response, status, code);
      expect(await snapshot()).to.deep.equal(before);
      rows.push({
        case: `multipart: ${what}`,
        path: 'multipart',
        status: String(status),
        code,
        outcome: 'nothing stored',
      });
      await nextUploadWorks('multipart');
    });
  }
});
