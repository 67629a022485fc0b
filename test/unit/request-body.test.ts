import { expect } from 'chai';
import { PipelineError } from '../../shared/core/errors.js';
import { extractUpload } from '../../shared/http/request-body.js';

const boundary = 'XyZboundary123';
const type = `multipart/form-data; boundary=${boundary}`;

function part(field: string, filename: string | undefined, body: string | Buffer): Buffer {
  const disposition = `form-data; name="${field}"${filename === undefined ? '' : `; filename="${filename}"`}`;
  return Buffer.concat([
    Buffer.from(
      `--${boundary}\r\nContent-Disposition: ${disposition}\r\n${filename === undefined ? '' : 'Content-Type: application/octet-stream\r\n'}\r\n`,
    ),
    Buffer.isBuffer(body) ? body : Buffer.from(body),
    Buffer.from('\r\n'),
  ]);
}
const end = Buffer.from(`--${boundary}--\r\n`);

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'resolved';
  } catch (error) {
    expect(error).to.be.instanceOf(PipelineError);
    return (error as PipelineError).code;
  }
}

describe('request body', () => {
  it('takes the file field of a multipart form, with its sanitised name', async () => {
    const body = Buffer.concat([part('title', undefined, 'hello'), part('file', '../../x/cat.png', 'PNGDATA'), end]);
    const file = await extractUpload(body, type, 1000);
    expect(file.bytes.toString()).to.equal('PNGDATA');
    expect(file.filename).to.equal('cat.png');
  });

  it('takes a raw body as is, whatever its declared type', async () => {
    const file = await extractUpload(Buffer.from('RAW'), 'image/jpeg', 1000, 'a/b.jpg');
    expect(file.bytes.toString()).to.equal('RAW');
    expect(file.filename).to.equal('b.jpg');
  });

  const bad: Array<[string, Buffer, string | undefined, number, string]> = [
    ['no boundary', Buffer.from('x'), 'multipart/form-data', 1000, 'bad_multipart'],
    ['a wrong boundary', Buffer.concat([Buffer.from('--other\r\n'), end]), type, 1000, 'missing_file'],
    ['no file field', Buffer.concat([part('title', undefined, 'x'), end]), type, 1000, 'missing_file'],
    ['a file in another field', Buffer.concat([part('image', 'a.jpg', 'x'), end]), type, 1000, 'missing_file'],
    [
      'two files',
      Buffer.concat([part('file', 'a.jpg', 'x'), part('file', 'b.jpg', 'y'), end]),
      type,
      1000,
      'too_many_files',
    ],
    [
      'a file and another file field',
      Buffer.concat([part('file', 'a.jpg', 'x'), part('other', 'b.jpg', 'y'), end]),
      type,
      1000,
      'too_many_files',
    ],
    [
      'a file over the limit',
      Buffer.concat([part('file', 'a.jpg', Buffer.alloc(2000)), end]),
      type,
      1000,
      'payload_too_large',
    ],
    ['a raw body over the limit', Buffer.alloc(1001), 'image/png', 1000, 'payload_too_large'],
    ['multipart/related', Buffer.from('x'), 'multipart/related; boundary=a', 1000, 'bad_multipart'],
  ];
  for (const [what, body, contentType, max, code] of bad) {
    it(`rejects ${what} with ${code}`, async () =>
      expect(await codeOf(extractUpload(body, contentType, max))).to.equal(code));
  }

  it('rejects a truncated multipart body', async () => {
    const body = Buffer.concat([part('file', 'a.jpg', 'abc')]).subarray(0, 60);
    expect(await codeOf(extractUpload(body, type, 1000))).to.be.oneOf(['bad_multipart', 'missing_file']);
  });
});
