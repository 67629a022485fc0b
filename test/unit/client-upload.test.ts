/** upload: direct POST or signed URL by size (or on 413), what each request carries, and the answers it returns. */
import { expect } from 'chai';
import { client, fakeFetch, jsonAnswer, type RecordedRequest } from '../fixtures/client.js';

const { upload, sniffContentType, ApiError } = client;
const baseUrl = 'https://api.example';
/** The start of a JPEG: enough for the sniffer. */
const jpegBytes = (size: number) => {
  const bytes = new Uint8Array(size);
  bytes.set([0xff, 0xd8, 0xff, 0xe0]);
  return bytes;
};

/** A server: 202 on POST /uploads (or `direct`), a signed URL, a PUT that stores, a ticket waiting once. */
function server(direct: () => Response = () => jsonAnswer(202, { id: 'img1', status: 'processing', statusUrl: 'x' })) {
  let polls = 0;
  return fakeFetch((request: RecordedRequest) => {
    const url = new URL(request.url);
    if (request.method === 'POST' && url.pathname === '/uploads') return direct();
    if (request.method === 'POST' && url.pathname === '/uploads/signed-url')
      return jsonAnswer(201, {
        uploadUrl: 'https://storage.example/b/incoming/t1/a.jpg?X-Goog-Signature=s',
        method: 'PUT',
        headers: {
          'Content-Type': 'image/jpeg',
          'x-goog-content-length-range': '1,64',
          'x-goog-if-generation-match': '0',
        },
        expiresAt: 'x',
        statusUrl: `${baseUrl}/uploads/signed-url/t1`,
        ticket: 't1',
        maxBytes: 1000,
      });
    if (request.method === 'PUT') return new Response('', { status: 200 });
    if (url.pathname === '/uploads/signed-url/t1')
      return polls++ === 0
        ? jsonAnswer(202, { ticket: 't1', status: 'waiting' })
        : jsonAnswer(202, { id: 'asset9', imageId: 'img9', status: 'processing', done: 0, total: 3 });
    return jsonAnswer(404, { error: { code: 'not_found', message: request.url, retryable: false } });
  });
}

describe('client upload', () => {
  it('POSTs a small file as multipart field `file` with its name and the token; no metadata field unless given', async () => {
    const { fetch, requests } = server();
    const file = new File([jpegBytes(64)], 'beach.jpg', { type: 'image/jpeg' });
    const progress: Array<[number, number]> = [];
    const result = await upload(file, {
      baseUrl,
      fetch,
      idToken: 'tok',
      onProgress: ({ loaded, total }) => progress.push([loaded, total]),
    });
    expect(result).to.deep.equal({ id: 'img1', imageId: 'img1', status: 'processing', via: 'direct' });
    expect(requests).to.have.length(1);
    const [post] = requests;
    expect(post).to.deep.include({ method: 'POST', url: 'https://api.example/uploads' });
    expect(post!.headers.get('authorization')).to.equal('Bearer tok');
    const form = post!.body as FormData;
    expect(form.has('metadata')).to.equal(false);
    expect((form.get('file') as File).name).to.equal('beach.jpg');
    expect((form.get('file') as File).size).to.equal(64);
    expect(progress, 'in Node: the whole body once sent').to.deep.equal([[64, 64]]);
  });

  it('sends metadata as JSON text and the focus as ?focus=x,y; returns the manifest and imageId of a 200', async () => {
    const manifest = { v: 1, id: 'img2' };
    const { fetch, requests } = server(() =>
      jsonAnswer(200, { id: 'asset2', imageId: 'img2', status: 'ready', manifest }),
    );
    const result = await upload(jpegBytes(64), {
      baseUrl,
      fetch,
      metadata: { album: 'summer', n: 3 },
      focus: { x: 0.25, y: 0.75 },
    });
    expect(result).to.deep.equal({ id: 'asset2', imageId: 'img2', status: 'ready', manifest, via: 'direct' });
    expect(requests[0]!.url).to.equal('https://api.example/uploads?focus=0.25,0.75');
    const form = requests[0]!.body as FormData;
    expect(JSON.parse(form.get('metadata') as string)).to.deep.equal({ album: 'summer', n: 3 });
    expect((form.get('file') as File).name).to.equal('upload');
  });

  it('goes by signed URL above the threshold: signs {filename, contentType (sniffed), size}, PUTs with exactly the signed headers, waits for ingest', async () => {
    const { fetch, requests } = server();
    const result = await upload(jpegBytes(64), {
      baseUrl,
      fetch,
      idToken: 'tok',
      filename: 'a.jpg',
      signedUrlAbove: 63,
      metadata: { album: 'x' },
      initialDelayMs: 1,
    });
    expect(result).to.deep.equal({ id: 'asset9', imageId: 'img9', status: 'processing', via: 'signed-url' });
    expect(requests.map((r) => `${r.method} ${new URL(r.url).pathname}`)).to.deep.equal([
      'POST /uploads/signed-url',
      'PUT /b/incoming/t1/a.jpg',
      'GET /uploads/signed-url/t1',
      'GET /uploads/signed-url/t1',
    ]);
    expect(JSON.parse(requests[0]!.body as string)).to.deep.equal({
      filename: 'a.jpg',
      contentType: 'image/jpeg',
      size: 64,
      metadata: { album: 'x' },
    });
    const put = requests[1]!;
    const sent: Record<string, string> = {};
    put.headers.forEach((value, name) => {
      sent[name] = value;
    });
    expect(sent, 'no Authorization: the URL is the credential').to.deep.equal({
      'content-type': 'image/jpeg',
      'x-goog-content-length-range': '1,64',
      'x-goog-if-generation-match': '0',
    });
    expect((put.body as Blob).size).to.equal(64);
  });

  it('falls back to the signed URL when the server answers 413 (its MAX_UPLOAD_BYTES is lower)', async () => {
    const { fetch, requests } = server(() =>
      jsonAnswer(413, {
        error: { code: 'payload_too_large', message: 'big', retryable: false, details: { maxBytes: 10 } },
      }),
    );
    const result = await upload(jpegBytes(64), { baseUrl, fetch });
    expect(result.via).to.equal('signed-url');
    expect(requests.map((r) => `${r.method} ${new URL(r.url).pathname}`).slice(0, 3)).to.deep.equal([
      'POST /uploads',
      'POST /uploads/signed-url',
      'PUT /b/incoming/t1/a.jpg',
    ]);
    expect(JSON.parse(requests[1]!.body as string)).to.not.have.property('metadata');
  });

  it('throws the API error of a refused direct upload, and a clear one for unknown bytes that need a signed URL', async () => {
    const { fetch } = server(() =>
      jsonAnswer(415, {
        error: { code: 'not_an_image', message: 'The file is not a supported image.', retryable: false },
      }),
    );
    const refused = await upload(new Uint8Array(8), { baseUrl, fetch }).catch((e: unknown) => e);
    expect(refused).to.be.instanceOf(ApiError).and.deep.include({ status: 415, code: 'not_an_image' });
    const unknown = await upload(new Uint8Array(8), { baseUrl, fetch, signedUrlAbove: 1 }).catch((e: unknown) => e);
    expect(unknown).to.deep.include({ code: 'unknown_content_type', retryable: false });
  });

  it('names a refused PUT upload_failed with the storage status', async () => {
    const base = server();
    const fetch = (async (input: string | URL | Request, init?: RequestInit) =>
      init?.method === 'PUT'
        ? new Response('<Error><Code>EntityTooLarge</Code></Error>', { status: 400 })
        : base.fetch(input, init)) as typeof globalThis.fetch;
    const error = await upload(jpegBytes(64), { baseUrl, fetch, signedUrlAbove: 1 }).catch((e: unknown) => e);
    expect(error).to.deep.include({ status: 400, code: 'upload_failed', retryable: false });
    expect((error as Error).message).to.contain('EntityTooLarge');
  });

  it('sniffs the content types the pipeline accepts', () => {
    const head = (...parts: Array<string | number[]>) =>
      Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));
    expect(sniffContentType(head([0xff, 0xd8, 0xff, 0xdb]))).to.equal('image/jpeg');
    expect(sniffContentType(head([0x89], 'PNG\r\n'))).to.equal('image/png');
    expect(sniffContentType(head('GIF89a'))).to.equal('image/gif');
    expect(sniffContentType(head('RIFF', [1, 2, 3, 4], 'WEBPVP8 '))).to.equal('image/webp');
    expect(sniffContentType(head([0, 0, 0, 28], 'ftypavif'))).to.equal('image/avif');
    expect(sniffContentType(head([0, 0, 0, 28], 'ftypheic'))).to.equal('image/heic');
    expect(sniffContentType(head([0, 0, 0, 28], 'ftypmif1'))).to.equal('image/heif');
    expect(sniffContentType(head('II*', [0]))).to.equal('image/tiff');
    expect(sniffContentType(head('<svg'))).to.equal(undefined);
  });
});
