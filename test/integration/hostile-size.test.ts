/**
 * Hostile inputs: bodies over the byte limit (MAX_UPLOAD_BYTES 25 MiB), however they arrive:
 * Content-Length, chunked, multipart, gzip-encoded.
 *
 * Split from the former hostile.test.ts; each hostile-*.test.ts file starts its own pipeline
 * (test/fixtures/hostile.ts) and runs alone or with the others in any order.
 */
import { expect } from 'chai';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { hostileSuite, MiB } from '../fixtures/hostile.js';

describe('hostile inputs: bodies over the byte limit, however they arrive', function () {
  this.timeout(120_000);
  const h = hostileSuite();
  const { rows, auth, uploadListener, api, snapshot, expectSafeError, send, nextUploadWorks } = h;

  const limit = 25 * MiB;

  it('raw body with Content-Length over the limit (+64 KiB slack): 413 from the upload guard, before the body is read', async () => {
    const before = await snapshot();
    const response = await api()
      .post('/uploads')
      .set(auth)
      .set('Content-Type', 'image/jpeg')
      .send(Buffer.alloc(limit + 64 * 1024 + 1, 1));
    expectSafeError(response, 413, 'payload_too_large');
    expect(response.body.error.details).to.deep.equal({ maxBytes: limit });
    expect(await snapshot()).to.deep.equal(before);
    rows.push({
      case: 'Content-Length over the limit',
      path: 'raw',
      status: '413',
      code: 'payload_too_large',
      outcome: 'nothing stored; refused by the upload guard from the header, body unread',
    });
    await nextUploadWorks('raw');
  });

  it('chunked raw body (no Content-Length) over the limit: 413', async () => {
    const before = await snapshot();
    const server = createServer(uploadListener()).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as AddressInfo;
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = httpRequest(
          {
            host: '127.0.0.1',
            port,
            method: 'POST',
            path: '/uploads',
            headers: { ...auth, 'Content-Type': 'image/jpeg', 'Transfer-Encoding': 'chunked' },
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          },
        );
        req.on('error', reject);
        const chunk = Buffer.alloc(MiB, 2);
        for (let i = 0; i < 26; i++) req.write(chunk);
        req.end();
      });
      expect(status).to.equal(413);
      expect(JSON.parse(body).error.code).to.equal('payload_too_large');
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await snapshot()).to.deep.equal(before);
    rows.push({
      case: 'chunked body over the limit',
      path: 'raw',
      status: '413',
      code: 'payload_too_large',
      outcome: 'nothing stored',
    });
    await nextUploadWorks('raw');
  });

  it('multipart form whose whole body is over the limit + 64 KiB: 413 from the header check', async () => {
    const before = await snapshot();
    const response = await send('multipart', Buffer.alloc(limit + 64 * 1024, 3), 'image/jpeg', 'big.jpg');
    expectSafeError(response, 413, 'payload_too_large');
    expect(await snapshot()).to.deep.equal(before);
    rows.push({
      case: 'multipart form over the limit + 64 KiB',
      path: 'multipart',
      status: '413',
      code: 'payload_too_large',
      outcome: 'nothing stored',
    });
    await nextUploadWorks('multipart');
  });

  it('a 200 KiB gzip-encoded body is refused before functions-framework would inflate it to 200 MiB', async () => {
    // body-parser (inside functions-framework, before the handler) inflates Content-Encoding
    // gzip/deflate/br up to 1 GiB; the upload guard refuses encoded bodies before it runs.
    const bomb = gzipSync(Buffer.alloc(200 * MiB));
    expect(bomb.length).to.be.below(300 * 1024);
    let peak = 0;
    const base = process.memoryUsage().arrayBuffers;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)), 5);
    try {
      const response = await api()
        .post('/uploads')
        .set(auth)
        .set('Content-Type', 'application/octet-stream')
        .set('Content-Encoding', 'gzip')
        .send(bomb);
      expect(response.status).to.be.oneOf([413, 415]);
    } finally {
      clearInterval(sampler);
    }
    expect(peak, 'bytes held for one 200 KiB request').to.be.below(2 * limit);
  });
});
