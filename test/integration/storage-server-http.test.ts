/**
 * The storage server at the HTTP level: the protocol details clients depend on (multipart
 * variants, the resumable protocol, download headers, ranges), bad requests answered with 400
 * and Google's error JSON, unknown routes, internal errors, and the admin endpoint. The server
 * must keep serving after every one of them.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { startStorageServer, type StorageServer } from '../../local/storage-server/index.js';
import { crc32cBase64 } from '../../local/storage-server/checksums.js';
import { expectSameBytes } from '../helpers.js';

interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
  /** The body parsed as JSON, when it is JSON. */
  json: Record<string, unknown> | undefined;
}

const md5 = (data: Buffer | string): string => createHash('md5').update(data).digest('base64');

describe('storage server: HTTP protocol', function () {
  let server: StorageServer;
  const log: string[] = [];

  async function call(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: Buffer | string } = {},
  ): Promise<Answer> {
    const body =
      typeof init.body === 'string' ? init.body : init.body === undefined ? undefined : Uint8Array.from(init.body);
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers: init.headers ?? {},
      ...(body !== undefined ? { body } : {}),
    });
    const received = Buffer.from(await response.arrayBuffer());
    let json: Record<string, unknown> | undefined;
    if ((response.headers.get('content-type') ?? '').includes('application/json') && received.length > 0) {
      json = JSON.parse(received.toString('utf8')) as Record<string, unknown>;
    }
    return { status: response.status, headers: response.headers, body: received, json };
  }

  /** Asserts Google's error shape: `{"error":{"code","message","errors":[{reason,…}]}}`. */
  function expectError(answer: Answer, status: number, messagePattern?: RegExp): void {
    expect(answer.status, answer.body.toString()).to.equal(status);
    const error = answer.json?.error as
      | { code: number; message: string; errors: Array<{ reason: string; message: string; domain: string }> }
      | undefined;
    expect(error, 'error JSON').to.be.an('object');
    expect(error!.code).to.equal(status);
    expect(error!.message).to.be.a('string').and.not.empty;
    expect(error!.errors).to.be.an('array').with.length.greaterThan(0);
    expect(error!.errors[0]!.reason).to.be.a('string').and.not.empty;
    if (messagePattern) expect(error!.message).to.match(messagePattern);
  }

  async function expectStillServing(): Promise<void> {
    const health = await call('GET', '/_admin/health');
    expect(health.status).to.equal(200);
    expect((await call('GET', '/storage/v1/b/http/o')).status).to.equal(200);
  }

  async function download(name: string): Promise<Answer> {
    return call('GET', `/storage/v1/b/http/o/${encodeURIComponent(name)}?alt=media`);
  }

  before(async () => {
    server = await startStorageServer({ buckets: ['http'], log: (line) => log.push(line) });
  });
  after(async () => {
    await server?.stop();
  });
  afterEach(() => {
    server.clearFaults();
    log.length = 0;
  });

  describe('multipart uploads accept what different clients send', () => {
    const media = Buffer.concat([Buffer.from('binary\r\n--not-the-boundary\n'), randomBytes(2000)]);
    const metadata = JSON.stringify({ name: 'multipart/variant', contentType: 'image/png', metadata: { k: 'v' } });
    const variants: Array<{ title: string; contentType: string; body: (b: string) => Buffer }> = [
      {
        title: 'CRLF line endings, bare boundary',
        contentType: 'multipart/related; boundary=abc123',
        body: (b) =>
          Buffer.concat([
            Buffer.from(
              `--${b}\r\nContent-Type: application/json\r\n\r\n${metadata}\r\n--${b}\r\nContent-Type: image/png\r\n\r\n`,
            ),
            media,
            Buffer.from(`\r\n--${b}--\r\n`),
          ]),
      },
      {
        title: 'LF line endings, MIME-Version headers, single-quoted boundary (gcloud)',
        contentType: "multipart/related; boundary='===============123=='",
        body: (b) =>
          Buffer.concat([
            Buffer.from(
              `--${b}\nContent-Type: application/json\nMIME-Version: 1.0\n\n${metadata}\n--${b}\nContent-Type: image/png\nMIME-Version: 1.0\nContent-Transfer-Encoding: binary\n\n`,
            ),
            media,
            Buffer.from(`\n--${b}--`),
          ]),
      },
      {
        title: 'double-quoted boundary, a preamble, no final line break',
        contentType: 'multipart/related; boundary="quoted boundary"',
        body: (b) =>
          Buffer.concat([
            Buffer.from(
              `preamble text\r\n--${b}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n${metadata}\r\n--${b}\r\nContent-Type: image/png\r\n\r\n`,
            ),
            media,
            Buffer.from(`\r\n--${b}--`),
          ]),
      },
      {
        title: 'base64 Content-Transfer-Encoding',
        contentType: 'multipart/related; boundary=b64',
        body: (b) =>
          Buffer.from(
            `--${b}\r\nContent-Type: application/json\r\n\r\n${metadata}\r\n--${b}\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n${media.toString('base64')}\r\n--${b}--\r\n`,
          ),
      },
    ];
    for (const { title, contentType, body } of variants) {
      it(title, async () => {
        const boundary = /boundary=["']?([^"';]+)/.exec(contentType)![1]!;
        const answer = await call('POST', '/upload/storage/v1/b/http/o?uploadType=multipart', {
          headers: { 'Content-Type': contentType },
          body: body(boundary),
        });
        expect(answer.status, answer.body.toString()).to.equal(200);
        expect(answer.json).to.include({
          name: 'multipart/variant',
          contentType: 'image/png',
          size: String(media.length),
          md5Hash: md5(media),
          crc32c: crc32cBase64(media),
        });
        expectSameBytes((await download('multipart/variant')).body, media, 'multipart/variant downloaded');
      });
    }

    it('takes the content type from the media part when the metadata has none', async () => {
      const body = `--x\r\nContent-Type: application/json\r\n\r\n{"name":"multipart/typed"}\r\n--x\r\nContent-Type: text/csv\r\n\r\na,b\r\n--x--`;
      const answer = await call('POST', '/upload/storage/v1/b/http/o?uploadType=multipart', {
        headers: { 'Content-Type': 'multipart/related; boundary=x' },
        body,
      });
      expect(answer.json).to.include({ contentType: 'text/csv', size: '3' });
    });
  });

  describe('resumable uploads', () => {
    const KiB256 = 256 * 1024;

    async function open(name: string, path = '/upload/storage/v1/b/http/o'): Promise<string> {
      const answer = await call('POST', `${path}?uploadType=resumable&name=${encodeURIComponent(name)}`, {
        headers: { 'Content-Type': 'application/json', 'X-Upload-Content-Type': 'application/x-test' },
        body: '{}',
      });
      expect(answer.status).to.equal(200);
      const location = answer.headers.get('location');
      expect(location).to.match(new RegExp(`^${server.url}/upload/storage/v1/b/http/o\\?.*upload_id=`));
      return location!.slice(server.url.length);
    }

    it('chunks get 308 with Range; status queries, retried chunks and the final chunk behave like Cloud Storage', async () => {
      const data = randomBytes(KiB256 + 1000);
      const session = await open('resumable/chunked');
      const fresh = await call('PUT', session, { headers: { 'Content-Range': 'bytes */*' } });
      expect(fresh.status).to.equal(308);
      expect(fresh.headers.get('range')).to.equal(null);

      const first = await call('PUT', session, {
        headers: { 'Content-Range': `bytes 0-${KiB256 - 1}/*` },
        body: data.subarray(0, KiB256),
      });
      expect(first.status).to.equal(308);
      expect(first.headers.get('range')).to.equal(`bytes=0-${KiB256 - 1}`);

      const status = await call('PUT', session, { headers: { 'Content-Range': `bytes */${data.length}` } });
      expect(status.status).to.equal(308);
      expect(status.headers.get('range')).to.equal(`bytes=0-${KiB256 - 1}`);

      // A client that never saw the 308 sends the chunk again: nothing is appended twice.
      const again = await call('PUT', session, {
        headers: { 'Content-Range': `bytes 0-${KiB256 - 1}/*` },
        body: data.subarray(0, KiB256),
      });
      expect(again.headers.get('range')).to.equal(`bytes=0-${KiB256 - 1}`);

      const last = await call('PUT', session, {
        headers: {
          'Content-Range': `bytes ${KiB256}-${data.length - 1}/${data.length}`,
          'X-Goog-Hash': `crc32c=${crc32cBase64(data)},md5=${md5(data)}`,
        },
        body: data.subarray(KiB256),
      });
      expect(last.status).to.equal(200);
      expect(last.json).to.include({
        name: 'resumable/chunked',
        size: String(data.length),
        contentType: 'application/x-test',
        crc32c: crc32cBase64(data),
      });

      // After completion a status query answers the object again.
      const done = await call('PUT', session, { headers: { 'Content-Range': `bytes */${data.length}` } });
      expect(done.status).to.equal(200);
      expect(done.json).to.include({ generation: last.json!.generation });
      expectSameBytes((await download('resumable/chunked')).body, data, 'resumable/chunked downloaded');
    });

    it('the /resumable/upload alias, a single PUT without Content-Range, and an empty object via bytes */0', async () => {
      const whole = await open('resumable/whole', '/resumable/upload/storage/v1/b/http/o');
      expect((await call('PUT', whole, { body: 'all at once' })).json).to.include({ size: '11' });
      expect((await download('resumable/whole')).body.toString()).to.equal('all at once');

      const empty = await open('resumable/empty');
      const answer = await call('PUT', empty, { headers: { 'Content-Range': 'bytes */0' } });
      expect(answer.status).to.equal(200);
      expect(answer.json).to.include({ size: '0', crc32c: 'AAAAAA==' });
    });

    it('cancelling a session with DELETE answers 499; the session is then gone', async () => {
      const session = await open('resumable/cancelled');
      expect((await call('DELETE', session)).status).to.equal(499);
      expectError(await call('PUT', session, { body: 'late' }), 404);
      expectError(await download('resumable/cancelled'), 404);
    });

    const bad: Array<{ title: string; send: (session: string) => Promise<Answer>; message: RegExp }> = [
      {
        title: 'a non-final chunk that is not a multiple of 256 KiB',
        send: (s) => call('PUT', s, { headers: { 'Content-Range': 'bytes 0-999/*' }, body: randomBytes(1000) }),
        message: /multiple of 262144/,
      },
      {
        title: 'a chunk starting past what was received',
        send: (s) => call('PUT', s, { headers: { 'Content-Range': 'bytes 100-199/200' }, body: randomBytes(100) }),
        message: /exceeds already uploaded size/,
      },
      {
        title: 'a Content-Range that disagrees with the body length',
        send: (s) => call('PUT', s, { headers: { 'Content-Range': 'bytes 0-9/10' }, body: 'short' }),
        message: /body has 5/,
      },
      {
        title: 'a malformed Content-Range',
        send: (s) => call('PUT', s, { headers: { 'Content-Range': 'bytes=0-9' }, body: 'x' }),
        message: /Content-Range/,
      },
      {
        title: 'a final PUT with a wrong X-Goog-Hash',
        send: (s) =>
          call('PUT', s, {
            headers: { 'Content-Range': 'bytes 0-4/5', 'X-Goog-Hash': `md5=${md5('other')}` },
            body: 'hello',
          }),
        message: /MD5/,
      },
    ];
    for (const { title, send, message } of bad) {
      it(`400 for ${title}`, async () => {
        const name = `resumable/bad-${title.replace(/\W+/g, '-')}`;
        expectError(await send(await open(name)), 400, message);
        expectError(await download(name), 404);
        await expectStillServing();
      });
    }
  });

  describe('downloads', () => {
    const data = randomBytes(1000);
    before(async () => {
      const answer = await call('POST', '/upload/storage/v1/b/http/o?uploadType=media&name=download%2Fdata.bin', {
        headers: { 'Content-Type': 'image/webp' },
        body: data,
      });
      expect(answer.status).to.equal(200);
    });

    it('sends x-goog-hash, x-goog-generation, x-goog-stored-content-encoding and Content-Type, on both download paths', async () => {
      for (const path of [
        '/storage/v1/b/http/o/download%2Fdata.bin?alt=media',
        '/download/storage/v1/b/http/o/download%2Fdata.bin?alt=media',
      ]) {
        const answer = await call('GET', path);
        expect(answer.status).to.equal(200);
        expectSameBytes(answer.body, data, `GET ${path}`);
        expect(answer.headers.get('content-type')).to.equal('image/webp');
        expect(answer.headers.get('x-goog-hash')).to.equal(`crc32c=${crc32cBase64(data)},md5=${md5(data)}`);
        expect(answer.headers.get('x-goog-generation')).to.match(/^\d{16,}$/);
        expect(answer.headers.get('x-goog-stored-content-encoding')).to.equal('identity');
      }
    });

    const ranges: Array<[string, number, [number, number] | undefined]> = [
      ['bytes=0-9', 206, [0, 9]],
      ['bytes=990-', 206, [990, 999]],
      ['bytes=-5', 206, [995, 999]],
      ['bytes=500-5000', 206, [500, 999]],
      ['bytes=1000-', 416, undefined],
      ['bytes=5-1', 416, undefined],
      ['items=0-1', 200, [0, 999]],
    ];
    for (const [range, status, span] of ranges) {
      it(`Range: ${range} → ${status}`, async () => {
        const answer = await call('GET', '/storage/v1/b/http/o/download%2Fdata.bin?alt=media', {
          headers: { Range: range },
        });
        expect(answer.status).to.equal(status);
        if (status === 416) {
          expect(answer.headers.get('content-range')).to.equal('bytes */1000');
          return;
        }
        expectSameBytes(answer.body, data.subarray(span![0], span![1] + 1), `the range ${JSON.stringify(span)}`);
        if (status === 206) expect(answer.headers.get('content-range')).to.equal(`bytes ${span![0]}-${span![1]}/1000`);
      });
    }

    it('public-URL reads (/{bucket}/{object}, as storage.googleapis.com serves them) send the bytes', async () => {
      const answer = await call('GET', '/http/download/data.bin');
      expect(answer.status).to.equal(200);
      expectSameBytes(answer.body, data, 'GET /http/download/data.bin');
      expect(answer.headers.get('content-type')).to.equal('image/webp');
      expectError(await call('GET', '/http/download/missing.bin'), 404);
      expectError(await call('GET', '/no-such-bucket/data.bin'), 404);
    });

    it('a GET whose ifGenerationNotMatch fails is 304 with no body; ifGenerationMatch=0 on an existing object is 412', async () => {
      const meta = await call('GET', '/storage/v1/b/http/o/download%2Fdata.bin');
      const generation = meta.json!.generation as string;
      const notModified = await call(
        'GET',
        `/storage/v1/b/http/o/download%2Fdata.bin?alt=media&ifGenerationNotMatch=${generation}`,
      );
      expect(notModified.status).to.equal(304);
      expect(notModified.body.length).to.equal(0);
      const failed = await call('GET', '/storage/v1/b/http/o/download%2Fdata.bin?ifGenerationMatch=0');
      expectError(failed, 412);
      expect((failed.json!.error as { errors: Array<{ reason: string }> }).errors[0]!.reason).to.equal(
        'conditionNotMet',
      );
    });
  });

  describe('bad requests are 400 with the error JSON, and the server keeps serving', () => {
    const multipart = (metadata: string, media: string): { headers: Record<string, string>; body: string } => ({
      headers: { 'Content-Type': 'multipart/related; boundary=zz' },
      body: `--zz\r\nContent-Type: application/json\r\n\r\n${metadata}\r\n--zz\r\nContent-Type: text/plain\r\n\r\n${media}\r\n--zz--\r\n`,
    });
    const cases: Array<{
      title: string;
      method: string;
      path: string;
      init?: { headers?: Record<string, string>; body?: string };
      message?: RegExp;
      stored?: string;
    }> = [
      {
        title: 'an unknown upload type',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=bogus&name=bad',
        message: /Invalid upload type/,
        stored: 'bad',
      },
      {
        title: 'a missing upload type',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?name=bad',
        message: /uploadType/,
      },
      {
        title: 'a media upload without a name',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=media',
        init: { body: 'x' },
        message: /name/,
      },
      {
        title: 'multipart without a boundary',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=multipart&name=bad',
        init: { headers: { 'Content-Type': 'multipart/related' }, body: 'x' },
        message: /boundary/,
        stored: 'bad',
      },
      {
        title: 'multipart with a body that is not multipart',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=multipart&name=bad',
        init: { headers: { 'Content-Type': 'multipart/related; boundary=zz' }, body: 'just some bytes' },
        stored: 'bad',
      },
      {
        title: 'multipart with one part',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=multipart&name=bad',
        init: {
          headers: { 'Content-Type': 'multipart/related; boundary=zz' },
          body: '--zz\r\nContent-Type: application/json\r\n\r\n{}\r\n--zz--',
        },
        message: /exactly two parts/,
        stored: 'bad',
      },
      {
        title: 'multipart metadata that is not JSON',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=multipart&name=bad',
        init: multipart('{not json', 'x'),
        stored: 'bad',
      },
      {
        title: 'a wrong md5Hash in the multipart metadata',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=multipart',
        init: multipart(JSON.stringify({ name: 'bad', md5Hash: md5('something else') }), 'hello'),
        message: /MD5/,
        stored: 'bad',
      },
      {
        title: 'a wrong crc32c in the multipart metadata',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=multipart',
        init: multipart(JSON.stringify({ name: 'bad', crc32c: 'AAAAAA==' }), 'hello'),
        message: /CRC32C/,
        stored: 'bad',
      },
      {
        title: 'a wrong X-Goog-Hash crc32c on a media upload',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=media&name=bad',
        init: { headers: { 'X-Goog-Hash': `crc32c=${crc32cBase64(Buffer.from('other'))}` }, body: 'hello' },
        message: /CRC32C/,
        stored: 'bad',
      },
      {
        title: 'a wrong X-Goog-Hash md5 on a media upload',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=media&name=bad',
        init: {
          headers: { 'X-Goog-Hash': `crc32c=${crc32cBase64(Buffer.from('hello'))},md5=${md5('other')}` },
          body: 'hello',
        },
        message: /MD5/,
        stored: 'bad',
      },
      {
        title: 'a non-numeric ifGenerationMatch on an upload',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=media&name=bad&ifGenerationMatch=abc',
        init: { body: 'x' },
        message: /ifGenerationMatch/,
        stored: 'bad',
      },
      {
        title: 'a negative ifMetagenerationMatch on a read',
        method: 'GET',
        path: '/storage/v1/b/http/o/anything?ifMetagenerationMatch=-1',
        message: /ifMetagenerationMatch/,
      },
      {
        title: 'a fractional ifGenerationNotMatch on a delete',
        method: 'DELETE',
        path: '/storage/v1/b/http/o/anything?ifGenerationNotMatch=1.5',
        message: /ifGenerationNotMatch/,
      },
      {
        title: 'a non-numeric ifSourceGenerationMatch on a copy',
        method: 'POST',
        path: '/storage/v1/b/http/o/a/rewriteTo/b/http/o/b?ifSourceGenerationMatch=x',
        message: /ifSourceGenerationMatch/,
      },
      {
        title: 'invalid JSON in a patch',
        method: 'PATCH',
        path: '/storage/v1/b/http/o/anything',
        init: { headers: { 'Content-Type': 'application/json' }, body: '{' },
      },
      { title: 'a bad percent-encoding in the object name', method: 'GET', path: '/storage/v1/b/http/o/%E0%A4%A' },
      {
        title: 'a non-numeric maxResults',
        method: 'GET',
        path: '/storage/v1/b/http/o?maxResults=ten',
        message: /maxResults/,
      },
      {
        title: 'a forged pageToken',
        method: 'GET',
        path: '/storage/v1/b/http/o?pageToken=garbage',
        message: /pageToken/,
      },
      {
        title: 'an invalid bucket name',
        method: 'POST',
        path: '/storage/v1/b?project=p',
        init: { body: JSON.stringify({ name: 'Not_Valid!' }) },
        message: /bucket name/,
      },
      {
        title: 'an object name with a line feed',
        method: 'POST',
        path: '/upload/storage/v1/b/http/o?uploadType=media&name=a%0Ab',
        init: { body: 'x' },
      },
    ];
    for (const { title, method, path, init, message, stored } of cases) {
      it(`400 for ${title}`, async () => {
        expectError(await call(method, path, init), 400, message);
        if (stored) expectError(await download(stored), 404);
        await expectStillServing();
      });
    }
  });

  describe('unknown routes and internal errors', () => {
    const unknown: Array<[string, string, number]> = [
      ['GET', '/', 404],
      ['GET', '/storage/v2/b', 404],
      ['POST', '/batch/storage/v1', 404],
      ['DELETE', '/storage/v1/b/http/o', 405],
      ['GET', '/_admin/nothing', 404],
    ];
    for (const [method, path, status] of unknown) {
      it(`${method} ${path} → ${status} JSON, logged`, async () => {
        expectError(await call(method, path), status);
        if (!path.startsWith('/_admin'))
          expect(
            log.filter((line) => line.includes('UNKNOWN ROUTE') && line.includes(path)),
            `an UNKNOWN ROUTE line for ${path} in:\n${log.join('\n')}`,
          ).to.not.deep.equal([]);
        await expectStillServing();
      });
    }

    it('a malformed HTTP request gets a 400 and the server keeps serving', async () => {
      const { port } = new URL(server.url);
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.write('THIS IS NOT HTTP\r\n\r\n'));
        let text = '';
        socket.on('data', (chunk) => (text += chunk.toString()));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect(reply).to.match(/^HTTP\/1\.1 400/);
      await expectStillServing();
    });

    it('an unexpected failure (storage directory removed underneath) is a 500 JSON and the server keeps serving', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'storage-server-500-'));
      const lines: string[] = [];
      const fragile = await startStorageServer({ dir, buckets: ['fragile'], log: (line) => lines.push(line) });
      try {
        await rm(join(dir, 'buckets', 'fragile'), { recursive: true, force: true });
        const response = await fetch(`${fragile.url}/upload/storage/v1/b/fragile/o?uploadType=media&name=x`, {
          method: 'POST',
          body: 'x',
        });
        expect(response.status).to.equal(500);
        const body = (await response.json()) as { error: { code: number; errors: unknown[] } };
        expect(body.error.code).to.equal(500);
        expect(
          lines.filter((line) => line.startsWith('storage-server: ERROR POST')),
          `an ERROR POST line in:\n${lines.join('\n')}`,
        ).to.not.deep.equal([]);
        const list = await fetch(`${fragile.url}/storage/v1/b/fragile/o`);
        expect(list.status).to.equal(200);
        expect(((await list.json()) as { items?: unknown[] }).items).to.equal(undefined);
      } finally {
        await fragile.stop();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('admin endpoint', () => {
    it('POST /_admin/faults injects, DELETE clears; faults never hit admin requests', async () => {
      await call('POST', '/upload/storage/v1/b/http/o?uploadType=media&name=admin.txt', { body: 'admin' });
      const added = await call('POST', '/_admin/faults', {
        body: JSON.stringify({ method: 'GET', pathPattern: 'admin\\.txt\\?alt=media', status: 503, times: 2 }),
      });
      expect(added.status).to.equal(201);
      expect((await download('admin.txt')).status).to.equal(503);
      expect((await call('GET', '/_admin/health')).status).to.equal(200);
      expect((await download('admin.txt')).status).to.equal(503);
      expect((await download('admin.txt')).body.toString()).to.equal('admin');

      await call('POST', '/_admin/faults', { body: JSON.stringify({ path: 'admin.txt', status: 429, times: 100 }) });
      expectError(await download('admin.txt'), 429);
      expect((await call('DELETE', '/_admin/faults')).status).to.equal(204);
      expect((await download('admin.txt')).status).to.equal(200);
    });

    const badAdmin: Array<[string, string, string]> = [
      ['a fault with nothing to do', '/_admin/faults', JSON.stringify({ path: 'x' })],
      ['a fault with a bad status', '/_admin/faults', JSON.stringify({ status: 200 })],
      ['a fault with a bad pattern', '/_admin/faults', JSON.stringify({ pathPattern: '(', status: 503 })],
      ['a notification without a URL', '/_admin/notifications', JSON.stringify({ bucket: 'http' })],
      ['a notification with a bad URL', '/_admin/notifications', JSON.stringify({ bucket: 'http', url: 'not a url' })],
      [
        'a notification with an unknown event',
        '/_admin/notifications',
        JSON.stringify({ bucket: 'http', url: 'http://127.0.0.1:1/', events: ['archive'] }),
      ],
      ['a body that is not JSON', '/_admin/faults', 'nope'],
    ];
    for (const [title, path, body] of badAdmin) {
      it(`400 for ${title}`, async () => {
        expectError(await call('POST', path, { body }), 400);
      });
    }

    it('POST, GET and DELETE /_admin/notifications manage subscriptions', async () => {
      const added = await call('POST', '/_admin/notifications', {
        body: JSON.stringify({ bucket: 'http', url: 'http://127.0.0.1:9/events', events: ['finalize', 'delete'] }),
      });
      expect(added.status).to.equal(201);
      expect((await call('GET', '/_admin/notifications')).json).to.deep.equal({
        http: [{ url: 'http://127.0.0.1:9/events', events: ['finalize', 'delete'] }],
      });
      expect((await call('DELETE', '/_admin/notifications?bucket=http')).status).to.equal(204);
      expect((await call('GET', '/_admin/notifications')).json).to.deep.equal({});
    });
  });
});
