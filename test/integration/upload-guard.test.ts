/**
 * The guard in front of functions-framework's body parsers (functions/upload-guard.ts): through
 * the listener wrapper the local stack uses, and through the real `functions-framework` CLI with
 * FUNCTION_TARGET=upload, as Cloud Functions runs it.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type RequestListener, type Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import '../../functions/index.js';
import { guardUploadListener } from '../../functions/upload-guard.js';
import { useDeps } from '../../functions/runtime.js';
import { waitForPort } from '../../local/pubsub-emulator.js';
import { makePhoto } from '../fixtures/images.js';
import { freePort } from '../fixtures/pubsub.js';
import { pullJobs, startTestPipeline, TEST_PROJECT, type TestPipeline } from '../fixtures/pipeline.js';

const MiB = 1024 * 1024;

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
    ['a gzip bomb (200 KiB → 200 MiB)', (t) => t.set('Content-Type', 'image/jpeg').set('Content-Encoding', 'gzip'), gzipSync(Buffer.alloc(200 * MiB)), 415, 'unsupported_encoding'],
    ['a broken Content-Encoding', (t) => t.set('Content-Type', 'image/jpeg').set('Content-Encoding', 'gzip'), 'not gzip at all', 415, 'unsupported_encoding'],
    ['brotli', (t) => t.set('Content-Type', 'image/jpeg').set('Content-Encoding', 'br'), 'x', 415, 'unsupported_encoding'],
    ['malformed JSON', (t) => t.set('Content-Type', 'application/json'), '{"not": json', 415, 'not_an_image'],
    ['a url-encoded form', (t) => t.set('Content-Type', 'application/x-www-form-urlencoded'), 'a=1&b=2', 415, 'not_an_image'],
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
        const outgoing = httpRequest({ host: '127.0.0.1', port, path: '/uploads', method: 'POST', headers: { 'Content-Type': 'image/jpeg', 'Content-Length': String(50 * MiB) } }, (incoming) => {
          let text = '';
          incoming.on('data', (chunk: Buffer) => (text += chunk.toString()));
          incoming.on('end', () => resolve({ status: incoming.statusCode ?? 0, body: text }));
        });
        outgoing.on('error', reject);
        outgoing.write(Buffer.alloc(1024));
      });
      expect(answer.status).to.equal(413);
      expect(JSON.parse(answer.body).error.code).to.equal('payload_too_large');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('lets images through, raw and multipart', async () => {
    expect((await request(server).post('/uploads').set('Content-Type', 'image/jpeg').send(photo)).status).to.equal(202);
    expect((await request(server).post('/uploads').attach('file', photo, 'photo.jpg')).status).to.equal(202);
    await pullJobs(pipeline.jobs);
  });

  it('is installed by functions/index.ts when functions-framework serves upload (FUNCTION_TARGET)', async () => {
    const port = await freePort();
    const child: ChildProcess = spawn(
      process.execPath,
      ['node_modules/@google-cloud/functions-framework/build/src/main.js', '--target=upload', '--source=dist/functions/index.js', `--port=${port}`],
      {
        env: {
          ...process.env,
          FUNCTION_TARGET: 'upload',
          UPLOADS_BUCKET: 'test-uploads',
          IMAGES_BUCKET: 'test-images',
          STORAGE_API_ENDPOINT: pipeline.storageServer.url,
          GOOGLE_CLOUD_PROJECT: TEST_PROJECT,
          JOBS_TOPIC: pipeline.config.JOBS_TOPIC,
          EVENTS_TOPIC: pipeline.config.EVENTS_TOPIC,
        },
        stdio: 'ignore',
      },
    );
    try {
      await waitForPort(port, '127.0.0.1', 20_000);
      const base = `http://127.0.0.1:${port}`;
      const bomb = await request(base).post('/uploads').set('Content-Type', 'image/jpeg').set('Content-Encoding', 'gzip').send(gzipSync(Buffer.alloc(50 * MiB)));
      expect(bomb.status).to.equal(415);
      expect(bomb.body.error.code).to.equal('unsupported_encoding');
      const json = await request(base).post('/uploads').set('Content-Type', 'application/json').send('{"broken"');
      expect(json.status).to.equal(415);
      expect(json.type).to.equal('application/json');
      const ok = await request(base).post('/uploads').set('Content-Type', 'image/jpeg').send(photo);
      expect(ok.status).to.be.oneOf([200, 202]);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await pullJobs(pipeline.jobs);
    }
  });
});
