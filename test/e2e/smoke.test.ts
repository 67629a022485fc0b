/**
 * `npm run smoke` (local/smoke.ts) against the local stack: every step passes on a working
 * pipeline, and each kind of failure is reported at its step with its likely cause (upload token,
 * CORS, serving, an unreachable URL). The stack is the real one (functions, storage server, Pub/Sub
 * emulator); only Cloud Storage's answer for a private object is played by a local server.
 */
import { expect } from 'chai';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSmokeArgs, runSmoke, type SmokeResult, uploadCause } from '../../local/smoke.js';
import { startTestStack, type TestStack } from './helpers.js';

const STACK_ENV = { WIDTHS: '160,320' };

function stackUrl(stack: TestStack): string {
  return stack.stack.urls.web.replace(/\/+$/, '');
}

async function smoke(options: Parameters<typeof runSmoke>[0]): Promise<{ result: SmokeResult; lines: string[] }> {
  const lines: string[] = [];
  const result = await runSmoke({ pollMs: 200, timeoutMs: 120_000, print: (line) => lines.push(line), ...options });
  return { result, lines };
}

describe('npm run smoke against the local stack', function () {
  this.timeout(180_000);

  describe('without an upload token', function () {
    let stack: TestStack;
    before(async function () {
      stack = await startTestStack({ env: STACK_ENV });
    });
    after(async function () {
      await stack?.stop();
    });

    it('passes every step: health, upload, ready, and every URL of the manifest', async function () {
      const { result, lines } = await smoke({ url: stackUrl(stack) });
      expect(result.ok, lines.join('\n')).to.equal(true);
      expect(result.steps.slice(0, 3).map((s) => s.step)).to.deep.equal(['health', 'upload', 'ready']);
      const variants = result.steps.slice(3);
      expect(variants.map((s) => s.step).sort()).to.deep.equal([
        '160w.avif',
        '160w.jpeg',
        '160w.webp',
        '320w.avif',
        '320w.jpeg',
        '320w.webp',
      ]);
      for (const step of variants)
        expect(step.detail).to.match(
          / 200 image\/(avif|webp|jpeg) \d+ bytes, cache-control: public, max-age=31536000, immutable$/,
        );
      expect(lines.filter((l) => l.startsWith('ok   '))).to.have.length(result.steps.length);
    });

    it("reports variants it cannot load as a serving-mode problem (a private bucket's 403 played by a local server)", async function () {
      // Cloud Storage answers 403 AccessDenied for an object of a private bucket; this server plays
      // that answer for the manifest's URLs, everything else goes to the real stack.
      const denied: Server = createServer((_req, res) => {
        res.writeHead(403, { 'Content-Type': 'application/xml' });
        res.end('<?xml version="1.0"?><Error><Code>AccessDenied</Code></Error>');
      });
      await new Promise<void>((resolve) => denied.listen(0, '127.0.0.1', resolve));
      const deniedUrl = `http://127.0.0.1:${(denied.address() as AddressInfo).port}`;
      const images = stack.stack.urls.images.replace(/\/+$/, '');
      try {
        const { result, lines } = await smoke({
          url: stackUrl(stack),
          fetch: (input, init) => {
            const url = String(input);
            return fetch(url.startsWith(images) ? `${deniedUrl}${url.slice(images.length)}` : url, init);
          },
        });
        expect(result.ok).to.equal(false);
        const failed = result.steps.filter((s) => !s.ok);
        expect(failed).to.have.length(6);
        for (const step of failed) {
          expect(step.detail).to.match(/ 403$/);
          expect(step.cause).to.match(/^serving mode: /);
        }
        expect(lines.join('\n')).to.include('likely cause: serving mode');
      } finally {
        await new Promise((resolve) => denied.close(resolve));
      }
    });

    it('reports an origin upload does not allow as CORS, at the upload step', async function () {
      const { result } = await smoke({ url: stackUrl(stack), origin: 'https://not-listed.example.com' });
      expect(result.ok).to.equal(false);
      const last = result.steps.at(-1)!;
      expect(last).to.include({ step: 'upload', ok: false });
      expect(last.detail).to.match(/ 403 forbidden_origin$/);
      expect(last.cause).to.match(/^CORS: https:\/\/not-listed\.example\.com is not in upload_cors_origins/);
    });

    it('reports a wrong URL at the health step', async function () {
      const { result } = await smoke({ url: `${stackUrl(stack)}/uploads/nothing-here` });
      expect(result.steps).to.have.length(1);
      expect(result.steps[0]).to.include({ step: 'health', ok: false });
      expect(result.steps[0]!.cause).to.match(/^wrong URL/);
    });
  });

  describe('with an upload token', function () {
    let stack: TestStack;
    before(async function () {
      stack = await startTestStack({ env: { ...STACK_ENV, UPLOAD_TOKEN: 'smoke-test-token-0123456789' } });
    });
    after(async function () {
      await stack?.stop();
    });

    it('reports a missing token as the upload token, after a healthy health check', async function () {
      const { result } = await smoke({ url: stackUrl(stack) });
      expect(result.steps.map((s) => [s.step, s.ok])).to.deep.equal([
        ['health', true],
        ['upload', false],
      ]);
      expect(result.steps[1]!.detail).to.match(/ 401 unauthorized$/);
      expect(result.steps[1]!.cause).to.match(/^upload token: upload checks a bearer token/);
    });

    it('reports a wrong token as refused', async function () {
      const { result } = await smoke({ url: stackUrl(stack), token: 'not-the-token-0123456789' });
      expect(result.steps[1]!.cause).to.match(/^upload token: the function refused --token/);
    });

    it('gets through with the right token', async function () {
      const { result, lines } = await smoke({ url: stackUrl(stack), token: 'smoke-test-token-0123456789' });
      expect(result.ok, lines.join('\n')).to.equal(true);
    });
  });

  it('reports a URL nothing answers on as a network problem', async function () {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const { result } = await smoke({ url: `http://127.0.0.1:${port}` });
    expect(result.steps).to.have.length(1);
    expect(result.steps[0]).to.include({ step: 'health', ok: false });
    expect(result.steps[0]!.cause).to.match(/^network: /);
  });

  describe('command line', function () {
    it('parses --url, --token, --identity-token, --origin and --timeout', function () {
      expect(
        parseSmokeArgs([
          '--url',
          'https://x.run.app',
          '--token',
          't',
          '--identity-token=i',
          '--origin',
          'https://a.example',
          '--timeout',
          '60',
        ]),
      ).to.deep.equal({
        url: 'https://x.run.app',
        token: 't',
        identityToken: 'i',
        origin: 'https://a.example',
        timeoutMs: 60_000,
      });
    });

    it("takes an end user's ID token from --id-token or SMOKE_ID_TOKEN, and not with --token", function () {
      const url = ['--url', 'https://x.run.app'];
      expect(parseSmokeArgs([...url, '--id-token', 'eyJ.a.b'], {})).to.include({ idToken: 'eyJ.a.b' });
      expect(parseSmokeArgs(url, { SMOKE_ID_TOKEN: 'eyJ.c.d' })).to.include({ idToken: 'eyJ.c.d' });
      expect(() => parseSmokeArgs([...url, '--id-token', 'eyJ.a.b', '--token', 't'], {})).to.throw(
        /give --token or --id-token, not both/,
      );
    });

    it('names an ID token refusal by its reason, and an issuer outage as the identity provider', function () {
      const answer = (code: string, status: number, reason?: string) =>
        ({
          status,
          headers: new Headers(),
          text: '',
          json: { error: { code, message: 'm', ...(reason ? { details: { reason } } : {}) } },
        }) as Parameters<typeof uploadCause>[0];
      expect(uploadCause(answer('unauthorized', 401, 'expired'), { idToken: 'eyJ.a.b' })).to.match(
        /^ID token: upload refused --id-token \(expired\)/,
      );
      expect(uploadCause(answer('auth_unavailable', 503), { idToken: 'eyJ.a.b' })).to.match(/^identity provider: /);
      expect(uploadCause(answer('unauthorized', 401, 'missing'), {})).to.match(
        /--id-token with an end user's ID token/,
      );
    });

    it('refuses a missing --url, an unknown flag and a bad timeout, with the usage', function () {
      const noStack = { LOCAL_DATA_DIR: join(tmpdir(), `no-stack-here-${process.pid}`) };
      expect(() => parseSmokeArgs([], noStack)).to.throw(/--url is required: no local stack is running.*npm start/);
      expect(() => parseSmokeArgs(['--url', 'https://x', '--verbose'])).to.throw(/unknown option --verbose/);
      expect(() => parseSmokeArgs(['--url', 'https://x', '--timeout', 'soon'])).to.throw(/--timeout must be a number/);
      expect(() => parseSmokeArgs(['--url', 'x.run.app'])).to.throw(/--url must be an http\(s\) URL/);
    });
  });
});
