/**
 * The storage server's V4 signed-URL check on `PUT /{bucket}/{object}`, with URLs signed by
 * @google-cloud/storage itself (its own signer, with a throwaway key in place of IAM signBlob):
 * a good URL stores the object; a tampered signature, a changed header, an expired URL and a body
 * over `x-goog-content-length-range` are refused as Cloud Storage refuses them, with XML errors,
 * and store nothing.
 */
import { request } from 'node:http';
import { Storage } from '@google-cloud/storage';
import { expect } from 'chai';
import sinon from 'sinon';
import { generateSigningKey, type GeneratedSigningKey } from '../../local/signing-key.js';
import { startStorageServer, type StorageServer } from '../../local/storage-server/index.js';
import { expectSameBytes } from '../helpers.js';

const BUCKET = 'signed';
const ORIGIN = 'http://app.example';

interface Answer {
  status: number;
  headers: Headers;
  text: string;
}

/** The `<Code>` of an XML error body. */
function xmlCode(answer: Answer): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(answer.text)?.[1];
}

describe('storage server: V4 signed URLs (signed by @google-cloud/storage)', function () {
  let server: StorageServer;
  let key: GeneratedSigningKey;
  let storage: Storage;
  let plain: Storage;

  before(async () => {
    server = await startStorageServer({ buckets: [BUCKET] });
    key = generateSigningKey('sig-project');
    server.addSigningKey(key.clientEmail, key.publicKey);
    server.setCorsOrigins([ORIGIN]);
    storage = new Storage({
      apiEndpoint: server.url,
      projectId: 'sig-project',
      useAuthWithCustomEndpoint: false,
      credentials: { client_email: key.clientEmail, private_key: key.privateKey },
    });
    plain = new Storage({ apiEndpoint: server.url, projectId: 'sig-project' });
  });
  after(async () => {
    await server?.stop();
  });

  async function sign(
    name: string,
    options: { contentType?: string; max?: number; expires?: number; client?: Storage } = {},
  ): Promise<string> {
    const [url] = await (options.client ?? storage)
      .bucket(BUCKET)
      .file(name)
      .getSignedUrl({
        version: 'v4',
        action: 'write',
        expires: options.expires ?? Date.now() + 10 * 60 * 1000,
        contentType: options.contentType ?? 'image/jpeg',
        extensionHeaders: { 'x-goog-content-length-range': `1,${options.max ?? 1000}` },
      });
    return url;
  }

  async function put(url: string, body: Buffer, headers: Record<string, string>): Promise<Answer> {
    const response = await fetch(url, { method: 'PUT', headers, body: Uint8Array.from(body) });
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  const headers = (max = 1000, contentType = 'image/jpeg') => ({
    'Content-Type': contentType,
    'x-goog-content-length-range': `1,${max}`,
  });

  async function exists(name: string): Promise<boolean> {
    const [found] = await plain.bucket(BUCKET).file(name).exists();
    return found;
  }

  it('stores the body of a correctly signed PUT, with its content type and the XML API headers', async () => {
    const name = 'incoming/t1/my photo (1).jpg';
    const body = Buffer.alloc(600, 7);
    const answer = await put(await sign(name), body, headers());
    expect(answer.status, answer.text).to.equal(200);
    expect(answer.headers.get('x-goog-generation')).to.match(/^\d+$/);
    expect(answer.headers.get('etag')).to.match(/^"[0-9a-f]{32}"$/);
    const [metadata] = await plain.bucket(BUCKET).file(name).getMetadata();
    expect(metadata.contentType).to.equal('image/jpeg');
    expect(Number(metadata.size)).to.equal(600);
    const [bytes] = await plain.bucket(BUCKET).file(name).download();
    expectSameBytes(bytes, body, 'the object the signed PUT wrote');
  });

  it('honours a signed x-goog-if-generation-match: 0, so the URL creates and never replaces (412 PreconditionFailed)', async () => {
    const name = 'incoming/t1b/once.jpg';
    const [url] = await storage
      .bucket(BUCKET)
      .file(name)
      .getSignedUrl({
        version: 'v4',
        action: 'write',
        expires: Date.now() + 60_000,
        contentType: 'image/jpeg',
        extensionHeaders: { 'x-goog-content-length-range': '1,1000', 'x-goog-if-generation-match': '0' },
      });
    const once = { ...headers(), 'x-goog-if-generation-match': '0' };
    expect((await put(url, Buffer.alloc(10, 1), once)).status).to.equal(200);
    const again = await put(url, Buffer.alloc(10, 2), once);
    expect(again.status).to.equal(412);
    expect(xmlCode(again)).to.equal('PreconditionFailed');
    const [bytes] = await plain.bucket(BUCKET).file(name).download();
    expectSameBytes(bytes, Buffer.alloc(10, 1), 'the object after the second PUT was refused');
    // Dropping the header breaks the signature instead.
    expect((await put(url, Buffer.alloc(10, 3), headers())).status).to.equal(403);
  });

  it('refuses a tampered signature: 403 SignatureDoesNotMatch, with the string to sign', async () => {
    const name = 'incoming/t2/a.jpg';
    const url = new URL(await sign(name));
    const signature = url.searchParams.get('X-Goog-Signature')!;
    url.searchParams.set('X-Goog-Signature', `${signature.slice(0, -2)}${signature.endsWith('00') ? '11' : '00'}`);
    const answer = await put(url.href, Buffer.alloc(10), headers());
    expect(answer.status).to.equal(403);
    expect(answer.headers.get('content-type')).to.match(/application\/xml/);
    expect(xmlCode(answer)).to.equal('SignatureDoesNotMatch');
    expect(answer.text).to.include('<StringToSign>GOOG4-RSA-SHA256');
    expect(await exists(name)).to.equal(false);
  });

  it('refuses a changed signed header (another Content-Type): 403 SignatureDoesNotMatch', async () => {
    const name = 'incoming/t3/a.jpg';
    const answer = await put(await sign(name), Buffer.alloc(10), headers(1000, 'image/png'));
    expect(answer.status).to.equal(403);
    expect(xmlCode(answer)).to.equal('SignatureDoesNotMatch');
    expect(await exists(name)).to.equal(false);
  });

  it('refuses a widened x-goog-content-length-range: 403 SignatureDoesNotMatch', async () => {
    const name = 'incoming/t3b/a.jpg';
    const answer = await put(await sign(name, { max: 100 }), Buffer.alloc(500), headers(1000));
    expect(answer.status).to.equal(403);
    expect(xmlCode(answer)).to.equal('SignatureDoesNotMatch');
    expect(await exists(name)).to.equal(false);
  });

  it('refuses another object name than the signed one: 403 SignatureDoesNotMatch', async () => {
    const url = new URL(await sign('incoming/t4/a.jpg'));
    url.pathname = `/${BUCKET}/originals/0123456789abcdef0123456789abcdef`;
    const answer = await put(url.href, Buffer.alloc(10), headers());
    expect(answer.status).to.equal(403);
    expect(xmlCode(answer)).to.equal('SignatureDoesNotMatch');
  });

  it('refuses an expired URL: 400 ExpiredToken', async () => {
    const name = 'incoming/t5/a.jpg';
    // Signed two hours ago, valid for one: the signer's clock is moved back, the server's is not.
    const clock = sinon.useFakeTimers({ now: Date.now() - 2 * 60 * 60 * 1000, toFake: ['Date'] });
    let url: string;
    try {
      url = await sign(name, { expires: Date.now() + 60 * 60 * 1000 });
    } finally {
      clock.restore();
    }
    const answer = await put(url, Buffer.alloc(10), headers());
    expect(answer.status).to.equal(400);
    expect(xmlCode(answer)).to.equal('ExpiredToken');
    expect(await exists(name)).to.equal(false);
  });

  it('refuses a body over the signed range: 400 EntityTooLarge, with or without Content-Length', async () => {
    const name = 'incoming/t6/a.jpg';
    const url = await sign(name, { max: 1000 });
    const declared = await put(url, Buffer.alloc(1001), headers());
    expect(declared.status).to.equal(400);
    expect(xmlCode(declared)).to.equal('EntityTooLarge');

    // Chunked: no Content-Length to refuse up front; the server counts while reading.
    const chunked = await new Promise<Answer>((resolve, reject) => {
      const req = request(url, { method: 'PUT', headers: { ...headers(), 'Transfer-Encoding': 'chunked' } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode!,
            headers: new Headers(res.headers as Record<string, string>),
            text: Buffer.concat(chunks).toString(),
          }),
        );
      });
      req.on('error', reject);
      for (let i = 0; i < 4; i++) req.write(Buffer.alloc(400, i));
      req.end();
    });
    expect(chunked.status).to.equal(400);
    expect(xmlCode(chunked)).to.equal('EntityTooLarge');
    expect(await exists(name)).to.equal(false);
  });

  it('refuses an unsigned PUT (403 AccessDenied) and a URL signed with a key it does not trust (403)', async () => {
    const anonymous = await put(`${server.url}/${BUCKET}/incoming/t7/a.jpg`, Buffer.alloc(10), {
      'Content-Type': 'image/jpeg',
    });
    expect(anonymous.status).to.equal(403);
    expect(xmlCode(anonymous)).to.equal('AccessDenied');

    const stranger = generateSigningKey('sig-project');
    const other = new Storage({
      apiEndpoint: server.url,
      projectId: 'sig-project',
      useAuthWithCustomEndpoint: false,
      credentials: { client_email: key.clientEmail, private_key: stranger.privateKey },
    });
    const forged = await put(await sign('incoming/t7/b.jpg', { client: other }), Buffer.alloc(10), headers());
    expect(forged.status).to.equal(403);
    expect(xmlCode(forged)).to.equal('SignatureDoesNotMatch');
    expect(await exists('incoming/t7/a.jpg')).to.equal(false);
    expect(await exists('incoming/t7/b.jpg')).to.equal(false);
  });

  it('answers a browser preflight for an allowed origin only, and exposes CORS headers on the PUT', async () => {
    const path = `${server.url}/${BUCKET}/incoming/t8/a.jpg`;
    const preflight = (origin: string) =>
      fetch(path, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': 'PUT',
          'Access-Control-Request-Headers': 'content-type,x-goog-content-length-range',
        },
      });
    const allowed = await preflight(ORIGIN);
    expect(allowed.status).to.equal(200);
    expect(allowed.headers.get('access-control-allow-origin')).to.equal(ORIGIN);
    expect(allowed.headers.get('access-control-allow-headers')).to.include('x-goog-content-length-range');
    const refused = await preflight('http://evil.example');
    expect(refused.status).to.equal(403);
    expect(refused.headers.get('access-control-allow-origin')).to.equal(null);

    const answer = await put(await sign('incoming/t8/a.jpg'), Buffer.alloc(10), { ...headers(), Origin: ORIGIN });
    expect(answer.status, answer.text).to.equal(200);
    expect(answer.headers.get('access-control-allow-origin')).to.equal(ORIGIN);
  });
});
