/**
 * UPLOAD_AUTH=jwt end to end: ID tokens from the local issuer (local/oidc-issuer.ts, real HTTP,
 * real keys) checked by the upload guard (functions/upload-guard.ts) in front of the real upload
 * function on a real server, with the JWKS found through the issuer's discovery document.
 *
 * Every refused token is sent with a body that never finishes: an answer at all proves the
 * refusal came before the body was read, let alone parsed. The table of rows is printed after
 * the suite (status and `details.reason` per row).
 */
import { http as registerHttp, type Request, type Response } from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import { createServer, request as httpRequest, type RequestListener, type Server } from 'node:http';
import '../../functions/index.js';
import { getDeps, useDeps } from '../../functions/runtime.js';
import { principalFor } from '../../functions/upload.js';
import { guardUploadListener, requireScreening } from '../../functions/upload-guard.js';
import { createIdTokenVerifier, type IdTokenVerifier } from '../../shared/auth/jwt.js';
import { type OidcIssuer, startOidcIssuer } from '../../local/oidc-issuer.js';
import { makePhoto } from '../fixtures/images.js';
import {
  pullJobs,
  spawnUploadFunction,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
} from '../fixtures/pipeline.js';
import { waitForPort } from '../../local/pubsub-emulator.js';
import { close, freePort, listen } from '../helpers.js';

const SHARED_TOKEN = 'jwt-suite-shared-token-5c1d9e';

interface Answer {
  status: number;
  code?: string;
  reason?: string;
}

/**
 * POSTs `/uploads` with `headers`. `body` given: sent whole. Absent: 1 KiB of a declared 1 MiB is
 * sent and the rest never, so only an answer that did not wait for the body can arrive.
 */
function post(port: number, headers: Record<string, string>, body?: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(
      {
        host: '127.0.0.1',
        port,
        path: '/uploads',
        method: 'POST',
        headers: {
          'Content-Type': 'image/jpeg',
          'Content-Length': String(body ? body.length : 1024 * 1024),
          ...headers,
        },
      },
      (incoming) => {
        let text = '';
        incoming.on('data', (chunk: Buffer) => (text += chunk.toString()));
        incoming.on('end', () => {
          const error = text
            ? (JSON.parse(text) as { error?: { code: string; details?: { reason?: string } } }).error
            : undefined;
          resolve({
            status: incoming.statusCode ?? 0,
            ...(error ? { code: error.code } : {}),
            ...(error?.details?.reason ? { reason: error.details.reason } : {}),
          });
          outgoing.destroy();
        });
      },
    );
    outgoing.on('error', reject);
    if (body) outgoing.end(body);
    else outgoing.write(Buffer.alloc(1024));
  });
}

describe('UPLOAD_AUTH=jwt: ID tokens through the upload guard', function () {
  this.timeout(60_000);
  let issuer: OidcIssuer;
  let pipeline: TestPipeline;
  let server: Server;
  let port: number;
  let photoSeed = 0;
  const table: Array<{ row: string; status: number; code: string; reason: string }> = [];
  const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
  const now = () => Math.floor(Date.now() / 1000);

  before(async () => {
    issuer = await startOidcIssuer();
    pipeline = await startTestPipeline({
      UPLOAD_AUTH: 'jwt',
      JWT_ISSUER: issuer.url,
      JWT_AUDIENCE: issuer.audience,
      UPLOAD_TOKEN: SHARED_TOKEN,
    });
    useDeps(pipeline.deps);
    // No cooldown between JWKS fetches, so a rotated key is seen at once (production: 30 s).
    const verify = createIdTokenVerifier(
      { issuer: pipeline.config.JWT_ISSUER ?? '', audience: pipeline.config.JWT_AUDIENCE ?? '' },
      { cooldownMs: 0 },
    );
    const app = getTestServer('upload').listeners('request')[0] as RequestListener;
    server = createServer(guardUploadListener(app, () => getDeps().config, { verify }));
    port = await listen(server);
  });
  after(async () => {
    console.log(
      `\n      ID token table (UPLOAD_AUTH=jwt, through the guard):\n${table
        .map(
          (r) =>
            `      ${String(r.status).padEnd(4)} ${(r.code || '-').padEnd(18)} ${(r.reason || '-').padEnd(22)} ${r.row}`,
        )
        .join('\n')}`,
    );
    if (server) await close(server);
    await issuer?.stop();
    await pipeline?.stop();
  });

  /** Sends a row, records it in the table, and checks it. */
  async function row(name: string, headers: Record<string, string>, expected: Answer): Promise<void> {
    const accepted = expected.status < 300;
    const answer = await post(
      port,
      headers,
      accepted ? await makePhoto({ width: 64, height: 48, seed: 700 + ++photoSeed }) : undefined,
    );
    table.push({ row: name, status: answer.status, code: answer.code ?? '', reason: answer.reason ?? '' });
    expect(answer, name).to.deep.equal(expected);
  }
  const refused = (reason: string): Answer => ({ status: 401, code: 'unauthorized', reason });

  it("accepts a valid ID token (alice's)", async () => {
    await row('valid ID token', bearer((await issuer.idToken('alice')).idToken), { status: 202 });
  });

  it('accepts a token expired less than the 60 s clock tolerance ago', async () => {
    const token = await issuer.sign({ ...issuer.claimsFor('bob'), iat: now() - 3630, exp: now() - 30 });
    await row('expired 30 s ago (within tolerance)', bearer(token), { status: 202 });
  });

  it('accepts the shared token, alone and naming an owner', async () => {
    await row('shared token (service)', bearer(SHARED_TOKEN), { status: 202 });
    await row(
      'shared token + X-Upload-Owner: bob',
      { ...bearer(SHARED_TOKEN), 'X-Upload-Owner': 'bob' },
      { status: 202 },
    );
  });

  it('refuses an ID token that names an owner: 403 owner_not_allowed', async () => {
    const token = (await issuer.idToken('alice')).idToken;
    await row(
      'ID token + X-Upload-Owner: bob',
      { ...bearer(token), 'X-Upload-Owner': 'bob' },
      {
        status: 403,
        code: 'owner_not_allowed',
      },
    );
  });

  it('refuses a missing or malformed credential', async () => {
    await row('no Authorization header', {}, refused('missing'));
    await row('Basic instead of Bearer', { Authorization: 'Basic YWxpY2U6c2VjcmV0' }, refused('malformed'));
    await row('not a JWT', bearer('not.a.jwt'), refused('malformed'));
  });

  it('refuses tokens outside their validity period', async () => {
    const expired = await issuer.sign({ ...issuer.claimsFor('alice'), iat: now() - 7200, exp: now() - 3600 });
    await row('expired an hour ago', bearer(expired), refused('expired'));
    const early = await issuer.sign({ ...issuer.claimsFor('alice'), nbf: now() + 3600 });
    await row('nbf an hour ahead', bearer(early), refused('not_yet_valid'));
    const future = await issuer.sign({ ...issuer.claimsFor('alice'), iat: now() + 3600, exp: now() + 7200 });
    await row('iat an hour ahead', bearer(future), refused('not_yet_valid'));
  });

  it('refuses tokens for another issuer or audience', async () => {
    const otherIssuer = await issuer.sign({ ...issuer.claimsFor('alice'), iss: 'https://accounts.example' });
    await row('wrong iss', bearer(otherIssuer), refused('wrong_issuer'));
    const otherAudience = await issuer.sign({ ...issuer.claimsFor('alice'), aud: 'another-app' });
    await row('wrong aud', bearer(otherAudience), refused('wrong_audience'));
  });

  it('refuses an unknown kid, then accepts the same token once rotation publishes its key', async () => {
    const token = await issuer.sign(issuer.claimsFor('carol'), { key: 'unpublished' });
    await row('unpublished key (unknown kid)', bearer(token), refused('unknown_key'));
    await issuer.rotate();
    await row('same token after key rotation', bearer(token), { status: 202 });
  });

  it('refuses forged and tampered tokens', async () => {
    await row(
      'alg none',
      bearer(await issuer.forge('none', issuer.claimsFor('alice'))),
      refused('algorithm_not_allowed'),
    );
    await row(
      'HS256 keyed with the public key',
      bearer(await issuer.forge('hs256-public-key', issuer.claimsFor('alice'))),
      refused('algorithm_not_allowed'),
    );
    const [header, , signature] = (await issuer.idToken('alice')).idToken.split('.');
    const payload = Buffer.from(JSON.stringify(issuer.claimsFor('bob'))).toString('base64url');
    await row('tampered payload (sub changed)', bearer(`${header}.${payload}.${signature}`), refused('bad_signature'));
  });

  it('refuses a token without a usable subject', async () => {
    const { sub: _, ...noSub } = issuer.claimsFor('alice');
    await row('no sub', bearer(await issuer.sign(noSub)), refused('no_subject'));
    await row('empty sub', bearer(await issuer.sign({ ...issuer.claimsFor('alice'), sub: '' })), refused('no_subject'));
  });

  it('answers 503 auth_unavailable, never an accept, while the JWKS answers 500', async () => {
    issuer.failJwks(500);
    try {
      // A key not in the cached set makes the verifier ask the failing JWKS.
      const token = await issuer.sign(issuer.claimsFor('alice'), { key: 'unpublished' });
      await row('JWKS answers 500', bearer(token), { status: 503, code: 'auth_unavailable' });
    } finally {
      issuer.failJwks(undefined);
    }
    await row('valid ID token after the outage', bearer((await issuer.idToken('alice')).idToken), { status: 202 });
  });

  it('answers 503 auth_unavailable when the issuer cannot be reached at all', async () => {
    const gone = `http://127.0.0.1:${await freePort()}`;
    const verify = createIdTokenVerifier({ issuer: gone, audience: 'x' }, { timeoutMs: 2000 });
    const error = await verify((await issuer.idToken('alice')).idToken).then(
      () => undefined,
      (e: unknown) => e as { code?: string; status?: number },
    );
    expect({ code: error?.code, status: error?.status }).to.deep.equal({ code: 'auth_unavailable', status: 503 });
    table.push({ row: 'issuer unreachable (discovery)', status: 503, code: 'auth_unavailable', reason: '' });
  });

  it('leaves /healthz and CORS preflights open', async () => {
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).to.equal(200);
    const preflight = await fetch(`http://127.0.0.1:${port}/uploads`, { method: 'OPTIONS' });
    expect(preflight.status).to.equal(204);
  });

  it('hands the handler the principal the guard verified, without verifying twice', async () => {
    let verifications = 0;
    const real = createIdTokenVerifier({ issuer: issuer.url, audience: issuer.audience });
    const counting: IdTokenVerifier = (token) => {
      verifications += 1;
      return real(token);
    };
    registerHttp(
      'jwt-principal-probe',
      requireScreening(
        async (req: Request, res: Response) => {
          res.status(200).json(await principalFor(getDeps(), req));
        },
        () => true,
      ),
    );
    const probe = createServer(
      guardUploadListener(
        getTestServer('jwt-principal-probe').listeners('request')[0] as RequestListener,
        () => getDeps().config,
        { verify: counting },
      ),
    );
    const probePort = await listen(probe);
    try {
      const response = await fetch(`http://127.0.0.1:${probePort}/uploads`, {
        method: 'POST',
        headers: bearer((await issuer.idToken('bob')).idToken),
        body: 'x',
      });
      expect(await response.json()).to.deep.equal({ kind: 'user', sub: 'bob' });
      expect(verifications).to.equal(1);
    } finally {
      await close(probe);
    }
  });

  it('verifies in the handler itself when no guard runs (UPLOAD_AUTH=jwt, handler called directly)', async () => {
    const bare = createServer(getTestServer('upload').listeners('request')[0] as RequestListener);
    const barePort = await listen(bare);
    try {
      const response = await fetch(`http://127.0.0.1:${barePort}/uploads/0123456789abcdef`, {
        headers: bearer(await issuer.forge('none', issuer.claimsFor('alice'))),
      });
      const body = (await response.json()) as { error: { code: string; details: { reason: string } } };
      expect([response.status, body.error.code, body.error.details.reason]).to.deep.equal([
        401,
        'unauthorized',
        'algorithm_not_allowed',
      ]);
    } finally {
      await close(bare);
    }
    await pullJobs(pipeline.jobs);
  });
  describe('served by the functions-framework CLI with FUNCTION_TARGET=upload, as Cloud Functions runs it', () => {
    let child: ChildProcess;
    let cliPort: number;
    let output = '';
    before(async function () {
      this.timeout(60_000);
      cliPort = await freePort();
      child = spawnUploadFunction(cliPort, {
        STORAGE_API_ENDPOINT: pipeline.storageServer.url,
        GOOGLE_CLOUD_PROJECT: TEST_PROJECT,
        JOBS_TOPIC: pipeline.config.JOBS_TOPIC,
        EVENTS_TOPIC: pipeline.config.EVENTS_TOPIC,
        FIRESTORE_DATABASE: pipeline.config.FIRESTORE_DATABASE,
        UPLOAD_AUTH: 'jwt',
        JWT_ISSUER: issuer.url,
        JWT_AUDIENCE: issuer.audience,
      });
      child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
      await waitForPort(cliPort, '127.0.0.1', 20_000);
    });
    after(async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await pullJobs(pipeline.jobs);
    });

    it('verifies ID tokens before the body, with the JWKS found by discovery', async () => {
      const valid = await post(
        cliPort,
        bearer((await issuer.idToken('alice')).idToken),
        await makePhoto({ width: 64, height: 48, seed: 799 }),
      );
      expect(valid, output).to.deep.equal({ status: 202 });
      const expired = await issuer.sign({ ...issuer.claimsFor('alice'), iat: now() - 7200, exp: now() - 3600 });
      expect(await post(cliPort, bearer(expired))).to.deep.equal(refused('expired'));
      expect(await post(cliPort, bearer(await issuer.forge('none', issuer.claimsFor('bob'))))).to.deep.equal(
        refused('algorithm_not_allowed'),
      );
      expect(await post(cliPort, {})).to.deep.equal(refused('missing'));
    });
  });
});
