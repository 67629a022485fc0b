/**
 * The guard in front of functions-framework's body parsers (functions/upload-guard.ts): through
 * the listener wrapper the local stack uses, and through the real `functions-framework` CLI with
 * FUNCTION_TARGET=upload, as Cloud Functions runs it.
 */
import { http as registerHttp, type Request, type Response } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import { execFile, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  createServer,
  request as httpRequest,
  type OutgoingHttpHeaders,
  type RequestListener,
  type Server,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import '../../functions/index.js';
import { guardUploadListener, requireScreening } from '../../functions/upload-guard.js';
import { useDeps } from '../../functions/runtime.js';
import { waitForPort } from '../../local/pubsub-emulator.js';
import { makePhoto } from '../fixtures/images.js';
import { close, freePort, listen } from '../helpers.js';
import {
  pullJobs,
  spawnUploadFunction,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
} from '../fixtures/pipeline.js';

const MiB = 1024 * 1024;
const TOKEN = 'guard-test-token-0123456789';

interface StreamedAnswer {
  status: number;
  body: string;
  /** Bytes the client had handed to its socket when the answer arrived. */
  sentBeforeAnswer: number;
  /** Whether the client had sent the whole body when the answer arrived. */
  finishedBeforeAnswer: boolean;
  /** Resolves when the server has closed the connection. */
  closed: Promise<void>;
}

/**
 * POSTs a body of `totalBytes` to `port` in 64 KiB chunks, honouring back-pressure, and stops
 * sending as soon as an answer arrives. With no Content-Length in `headers` the body is chunked.
 * `totalBytes` far beyond what socket buffers hold means: a server that does not read cannot
 * let the client finish.
 */
function streamUntilAnswered(port: number, headers: OutgoingHttpHeaders, totalBytes: number): Promise<StreamedAnswer> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    let finished = false;
    const chunk = Buffer.alloc(64 * 1024, 0x5a);
    const outgoing = httpRequest({ host: '127.0.0.1', port, path: '/uploads', method: 'POST', headers }, (incoming) => {
      answered = true;
      const sentBeforeAnswer = sent;
      const finishedBeforeAnswer = finished;
      const closed = new Promise<void>((r) =>
        outgoing.socket?.destroyed ? r() : outgoing.socket?.once('close', () => r()),
      );
      let text = '';
      incoming.on('data', (c: Buffer) => (text += c.toString()));
      incoming.on('end', () => {
        resolve({ status: incoming.statusCode ?? 0, body: text, sentBeforeAnswer, finishedBeforeAnswer, closed });
        outgoing.destroy();
      });
    });
    // Once answered, the server may close while we are still writing: that is the point.
    outgoing.on('error', (error) => (answered ? undefined : reject(error)));
    const pump = () => {
      while (!answered && sent < totalBytes) {
        sent += chunk.length;
        if (!outgoing.write(chunk)) return void outgoing.once('drain', pump);
      }
      if (!answered && sent >= totalBytes) {
        finished = true;
        outgoing.end();
      }
    };
    pump();
  });
}

describe('upload guard: bodies are screened before functions-framework parses them', function () {
  this.timeout(60_000);
  let pipeline: TestPipeline;
  let server: Server;
  let photo: Buffer;

  before(async () => {
    pipeline = await startTestPipeline({ MAX_UPLOAD_BYTES: String(MiB), CORS_ORIGINS: 'https://app.example' });
    useDeps(pipeline.deps);
    const app = getTestServer('upload').listeners('request')[0] as RequestListener;
    server = createServer(guardUploadListener(app, () => pipeline.config));
    photo = await makePhoto({ width: 320, height: 200, seed: 91 });
  });
  after(async () => pipeline.stop());

  const cases: Array<[string, (t: request.Test) => request.Test, Buffer | string, number, string]> = [
    [
      'a gzip bomb (200 KiB → 200 MiB)',
      (t) => t.set('Content-Type', 'image/jpeg').set('Content-Encoding', 'gzip'),
      gzipSync(Buffer.alloc(200 * MiB)),
      415,
      'unsupported_encoding',
    ],
    [
      'a broken Content-Encoding',
      (t) => t.set('Content-Type', 'image/jpeg').set('Content-Encoding', 'gzip'),
      'not gzip at all',
      415,
      'unsupported_encoding',
    ],
    [
      'brotli',
      (t) => t.set('Content-Type', 'image/jpeg').set('Content-Encoding', 'br'),
      'x',
      415,
      'unsupported_encoding',
    ],
    ['malformed JSON', (t) => t.set('Content-Type', 'application/json'), '{"not": json', 415, 'not_an_image'],
    [
      'a url-encoded form',
      (t) => t.set('Content-Type', 'application/x-www-form-urlencoded'),
      'a=1&b=2',
      415,
      'not_an_image',
    ],
    ['text', (t) => t.set('Content-Type', 'text/plain'), 'hello', 415, 'not_an_image'],
  ];
  for (const [what, prepare, body, status, code] of cases) {
    it(`answers ${what} with ${status} ${code} as JSON`, async () => {
      const before = process.memoryUsage().arrayBuffers;
      const response = await prepare(request(server).post('/uploads').set('Origin', 'https://app.example')).send(body);
      expect(response.status).to.equal(status);
      expect(response.type).to.equal('application/json');
      expect(response.body.error.code).to.equal(code);
      expect(response.headers['access-control-allow-origin']).to.equal('https://app.example');
      expect(response.text).not.to.match(/node_modules|\bat /);
      expect(process.memoryUsage().arrayBuffers - before, 'no inflation').to.be.below(64 * MiB);
    });
  }

  it('refuses a declared Content-Length over the limit without reading the body', async () => {
    const port = await freePort();
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      // Declare 50 MiB, send 1 KiB and wait: the answer must come without the rest of the body.
      const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const outgoing = httpRequest(
          {
            host: '127.0.0.1',
            port,
            path: '/uploads',
            method: 'POST',
            headers: { 'Content-Type': 'image/jpeg', 'Content-Length': String(50 * MiB) },
          },
          (incoming) => {
            let text = '';
            incoming.on('data', (chunk: Buffer) => (text += chunk.toString()));
            incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body: text }));
          },
        );
        outgoing.on('error', reject);
        outgoing.write(Buffer.alloc(1024));
      });
      expect(answer.status).to.equal(413);
      expect(JSON.parse(answer.body).error.code).to.equal('payload_too_large');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  describe('origin and token are checked before any byte of the body is read', () => {
    let guarded: Server;
    let port: number;
    before(async () => {
      const app = getTestServer('upload').listeners('request')[0] as RequestListener;
      guarded = createServer(
        guardUploadListener(app, () => ({ ...pipeline.config, UPLOAD_AUTH: 'token', UPLOAD_TOKEN: TOKEN })),
      );
      await new Promise<void>((resolve) => guarded.listen(0, '127.0.0.1', resolve));
      port = (guarded.address() as AddressInfo).port;
    });
    after(() => new Promise<void>((r) => guarded.close(() => r())));

    const cases: Array<[string, OutgoingHttpHeaders, number, string]> = [
      [
        'a bad origin (with the right token)',
        { Origin: 'https://evil.example', Authorization: `Bearer ${TOKEN}` },
        403,
        'forbidden_origin',
      ],
      ['no token', { Origin: 'https://app.example' }, 401, 'unauthorized'],
      ['a wrong token', { Authorization: 'Bearer not-the-token-at-all' }, 401, 'unauthorized'],
    ];
    for (const [what, headers, status, code] of cases) {
      it(`answers ${what} with ${status} before the client has sent a 64 MiB chunked body`, async () => {
        const answer = await streamUntilAnswered(port, { 'Content-Type': 'image/jpeg', ...headers }, 64 * MiB);
        expect(answer.status).to.equal(status);
        expect(JSON.parse(answer.body).error.code).to.equal(code);
        expect(answer.finishedBeforeAnswer, `answered after ${answer.sentBeforeAnswer} bytes`).to.equal(false);
        await answer.closed;
      });
    }

    it('answers a wrong token at once even when the declared body never finishes', async () => {
      const answer = await new Promise<{ status: number; code: string }>((resolve, reject) => {
        const outgoing = httpRequest(
          {
            host: '127.0.0.1',
            port,
            path: '/uploads',
            method: 'POST',
            headers: {
              'Content-Type': 'image/jpeg',
              'Content-Length': String(512 * 1024),
              Authorization: 'Bearer wrong-token-wrong-token',
            },
          },
          (incoming) => {
            let text = '';
            incoming.on('data', (c: Buffer) => (text += c.toString()));
            incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, code: JSON.parse(text).error.code }));
          },
        );
        outgoing.on('error', reject);
        outgoing.write(Buffer.alloc(1024)); // and never the rest
      });
      expect(answer).to.deep.equal({ status: 401, code: 'unauthorized' });
    });

    it('still admits the right token', async () => {
      const response = await request(guarded)
        .post('/uploads')
        .set('Authorization', `Bearer ${TOKEN}`)
        .set('Content-Type', 'image/jpeg')
        .send(photo);
      expect(response.status).to.be.oneOf([200, 202]);
    });
  });

  describe('a body without Content-Length (chunked) is counted and cut off at MAX_UPLOAD_BYTES', () => {
    let port: number;
    before(async () => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as AddressInfo).port;
    });
    after(() => new Promise((r) => server.close(r)));

    it('answers 413 as JSON before the client has sent a 64 MiB body, and closes the connection', async () => {
      const answer = await streamUntilAnswered(
        port,
        { 'Content-Type': 'image/jpeg', Origin: 'https://app.example' },
        64 * MiB,
      );
      expect(answer.status).to.equal(413);
      const body = JSON.parse(answer.body);
      expect(body.error.code).to.equal('payload_too_large');
      expect(body.error.details).to.deep.equal({ maxBytes: MiB });
      expect(answer.finishedBeforeAnswer, `answered after ${answer.sentBeforeAnswer} bytes`).to.equal(false);
      await answer.closed;
    });

    it('takes a chunked body under the limit', async () => {
      const answer = await new Promise<number>((resolve, reject) => {
        const outgoing = httpRequest(
          { host: '127.0.0.1', port, path: '/uploads', method: 'POST', headers: { 'Content-Type': 'image/jpeg' } },
          (incoming) => {
            incoming.resume();
            incoming.on('end', () => resolve(incoming.statusCode ?? 0));
          },
        );
        outgoing.on('error', reject);
        for (let at = 0; at < photo.length; at += 4096) outgoing.write(photo.subarray(at, at + 4096));
        outgoing.end();
      });
      expect(answer).to.be.oneOf([200, 202]);
    });
  });

  it('lets images through, raw and multipart', async () => {
    expect((await request(server).post('/uploads').set('Content-Type', 'image/jpeg').send(photo)).status).to.equal(202);
    expect((await request(server).post('/uploads').attach('file', photo, 'photo.jpg')).status).to.equal(202);
    await pullJobs(pipeline.jobs);
  });

  describe('no request reaches the handler without the guard (requireScreening, as functions/index.ts registers upload)', () => {
    /** What the probe handler saw: only admitted requests, each with at most the limit's bytes. */
    const seen: Array<{ method: string; path: string; bytes: number }> = [];
    let bare: Server;
    let guarded: Server;
    before(async () => {
      // A stand-in handler registered with the framework like upload, behind the same check: it
      // records what reaches it, so the test sees what the real handler would have been given.
      registerHttp(
        'upload-screening-probe',
        requireScreening(
          (req: Request, res: Response) => {
            seen.push({
              method: req.method,
              path: req.path,
              bytes: Buffer.isBuffer(req.rawBody) ? req.rawBody.length : 0,
            });
            res.status(200).json({ handled: true });
          },
          () => true,
        ),
      );
      const app = getTestServer('upload-screening-probe').listeners('request')[0] as RequestListener;
      bare = createServer(app);
      guarded = createServer(guardUploadListener(app, () => pipeline.config));
      await listen(guarded);
    });
    after(async () => close(guarded));
    beforeEach(() => void seen.splice(0));

    const routes: Array<[string, string]> = [
      ['POST', '/uploads'],
      ['POST', '/'],
      ['GET', '/uploads/0123456789abcdef'],
      ['DELETE', '/uploads/0123456789abcdef'],
      ['POST', '/uploads/signed-url'],
      ['GET', '/uploads/signed-url/some-ticket'],
      ['GET', '/healthz'],
      ['GET', '/openapi.json'],
      ['OPTIONS', '/uploads'],
      ['PUT', '/uploads'],
      ['GET', '/no/such/route'],
    ];

    it('answers every route and method with 500 when the framework serves it without the guard', async () => {
      for (const [method, path] of routes) {
        const response = await request(bare)[method.toLowerCase() as 'get'](path).set('Content-Type', 'image/jpeg');
        expect(response.status, `${method} ${path}`).to.equal(500);
        expect(response.body.error.code, `${method} ${path}`).to.equal('internal');
      }
      expect(seen, 'requests that reached the handler').to.deep.equal([]);
    });

    it('hands the handler every route once the guard has screened it', async () => {
      for (const [method, path] of routes) {
        const response = await request(guarded)[method.toLowerCase() as 'get'](path);
        expect(response.status, `${method} ${path}`).to.equal(200);
      }
      expect(seen.map((r) => `${r.method} ${r.path}`)).to.deep.equal(routes.map(([m, p]) => `${m} ${p}`));
    });

    it('never hands it a body over the limit: declared, chunked, or behind a Content-Length that lies', async () => {
      const port = (guarded.address() as AddressInfo).port;
      const declared = await streamUntilAnswered(port, { 'Content-Length': String(3 * MiB) }, 3 * MiB);
      expect(declared.status).to.equal(413);
      const chunked = await streamUntilAnswered(port, { 'Content-Type': 'image/jpeg' }, 8 * MiB);
      expect(chunked.status).to.equal(413);
      // Declares 100 bytes and sends 3 MiB: the framework reads 100, and the rest is not a request.
      const raw = await new Promise<string>((resolve, reject) => {
        const socket = connect(port, '127.0.0.1');
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('error', (error) => (text ? resolve(text) : reject(error)));
        socket.write('POST /uploads HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100\r\n\r\n');
        socket.end(Buffer.alloc(3 * MiB, 0x5a));
      });
      // Node's parser refuses the rest (400), often before the handler has answered the first.
      expect(raw).to.match(/^HTTP\/1\.1 (200|400) /);
      expect(seen.filter((r) => r.bytes !== 100)).to.deep.equal([]);
      expect(seen.length).to.be.at.most(1);
    });
  });

  it('is installed by --target=upload alone (no FUNCTION_TARGET)', async () => {
    const port = await freePort();
    const child = spawnUploadFunction(port, {
      FUNCTION_TARGET: '',
      STORAGE_API_ENDPOINT: pipeline.storageServer.url,
      GOOGLE_CLOUD_PROJECT: TEST_PROJECT,
      UPLOAD_AUTH: 'none',
    });
    try {
      await waitForPort(port, '127.0.0.1', 20_000);
      const bomb = await request(`http://127.0.0.1:${port}`)
        .post('/uploads')
        .set('Content-Type', 'image/jpeg')
        .set('Content-Encoding', 'gzip')
        .send(gzipSync(Buffer.alloc(MiB)));
      expect(bomb.status).to.equal(415);
      expect(bomb.body.error.code).to.equal('unsupported_encoding');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });

  describe('served by the functions-framework CLI with FUNCTION_TARGET=upload, as Cloud Functions runs it', () => {
    const execFileAsync = promisify(execFile);
    let child: ChildProcess;
    let base: string;
    let output = '';
    // The default limit (25 MiB) and the 30 MiB body that a new user tried.
    const overLimit = Buffer.alloc(30 * MiB, 0x5a);
    before(async function () {
      this.timeout(60_000);
      const port = await freePort();
      child = spawnUploadFunction(port, {
        STORAGE_API_ENDPOINT: pipeline.storageServer.url,
        GOOGLE_CLOUD_PROJECT: TEST_PROJECT,
        JOBS_TOPIC: pipeline.config.JOBS_TOPIC,
        EVENTS_TOPIC: pipeline.config.EVENTS_TOPIC,
        UPLOAD_AUTH: 'none',
        MAX_UPLOAD_BYTES: String(25 * MiB),
      });
      child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
      await waitForPort(port, '127.0.0.1', 20_000);
      base = `http://127.0.0.1:${port}`;
    });
    after(async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await pullJobs(pipeline.jobs);
    });

    it("screens its requests (the guard is in front of the framework's app)", async () => {
      const bomb = await request(base)
        .post('/uploads')
        .set('Content-Type', 'image/jpeg')
        .set('Content-Encoding', 'gzip')
        .send(gzipSync(Buffer.alloc(50 * MiB)));
      expect(bomb.status).to.equal(415);
      expect(bomb.body.error.code).to.equal('unsupported_encoding');
      const json = await request(base).post('/uploads').set('Content-Type', 'application/json').send('{"broken"');
      expect(json.status).to.equal(415);
      expect(json.type).to.equal('application/json');
      // Handled, so the guard admitted it: requireScreening answers 500 to anything it did not.
      const ok = await request(base).post('/uploads').set('Content-Type', 'image/jpeg').send(photo);
      expect(ok.status, output).to.be.oneOf([200, 202]);
      const health = await request(base).get('/healthz');
      expect(health.status).to.equal(200);
    });

    const expectTooLarge = (status: number, text: string, what: string) => {
      expect(status, what).to.equal(413);
      expect(JSON.parse(text).error, what).to.include({ code: 'payload_too_large' });
      expect(JSON.parse(text).error.message, what).to.match(/larger than the limit of 26214400 bytes/);
    };

    it("answers a 30 MiB body with a 413 that Node's fetch reads, every time (5 tries)", async () => {
      for (let attempt = 1; attempt <= 5; attempt++) {
        const response = await fetch(`${base}/uploads`, {
          method: 'POST',
          headers: { 'Content-Type': 'image/jpeg' },
          body: overLimit,
        });
        expectTooLarge(response.status, await response.text(), `try ${attempt}`);
      }
    });

    it("answers a 30 MiB chunked body (a stream, no Content-Length) with a 413 that Node's fetch reads (3 tries)", async () => {
      for (let attempt = 1; attempt <= 3; attempt++) {
        const body = new ReadableStream<Uint8Array>({
          start(controller) {
            for (let at = 0; at < overLimit.length; at += MiB) controller.enqueue(overLimit.subarray(at, at + MiB));
            controller.close();
          },
        });
        const response = await fetch(`${base}/uploads`, {
          method: 'POST',
          headers: { 'Content-Type': 'image/jpeg' },
          body,
          duplex: 'half',
        } as RequestInit);
        expectTooLarge(response.status, await response.text(), `try ${attempt}`);
      }
    });

    it('answers a 30 MiB body with a 413 that curl reads (3 tries)', async function () {
      const found = await execFileAsync('sh', ['-c', 'command -v curl']).catch(() => undefined);
      if (!found) {
        console.log('      (skipped: curl is not installed)');
        this.skip();
      }
      const file = join(tmpdir(), `upload-guard-30mib-${process.pid}.bin`);
      writeFileSync(file, overLimit);
      for (let attempt = 1; attempt <= 3; attempt++) {
        const { stdout } = await execFileAsync('curl', [
          '--silent',
          '--show-error',
          '--header',
          'Content-Type: image/jpeg',
          '--data-binary',
          `@${file}`,
          '--write-out',
          '\n%{http_code}',
          `${base}/uploads`,
        ]);
        const lines = stdout.trimEnd().split('\n');
        expectTooLarge(Number(lines.at(-1)), lines.slice(0, -1).join('\n'), `try ${attempt}`);
      }
    });
  });

  for (const [what, env, message] of [
    ['no token and no UPLOAD_AUTH', {}, /UPLOAD_TOKEN is unset but UPLOAD_AUTH is token/],
    ['an empty UPLOAD_TOKEN (an empty secret version)', { UPLOAD_TOKEN: '' }, /UPLOAD_TOKEN is set but empty/],
    ['a blank UPLOAD_TOKEN', { UPLOAD_TOKEN: ' \n' }, /UPLOAD_TOKEN is set but empty/],
    [
      'UPLOAD_AUTH=jwt and no JWT_ISSUER',
      { UPLOAD_AUTH: 'jwt', JWT_AUDIENCE: 'app' },
      /JWT_ISSUER or JWT_AUDIENCE is unset/,
    ],
    [
      'UPLOAD_AUTH=jwt and a plain-http issuer off loopback',
      { UPLOAD_AUTH: 'jwt', JWT_ISSUER: 'http://issuer.example', JWT_AUDIENCE: 'app' },
      /JWT_ISSUER must use https/,
    ],
  ] as const) {
    it(`keeps functions-framework from serving upload with ${what}, naming the variable`, async () => {
      const port = await freePort();
      const child = spawnUploadFunction(port, env);
      let output = '';
      child.stdout!.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr!.on('data', (c: Buffer) => (output += c.toString()));
      const code = await new Promise<number | null>((r) => child.once('exit', r));
      expect(code, output).to.not.equal(0);
      expect(output).to.match(message);
    });
  }
});
