/**
 * The client package (client/dist, as it ships) in Node against the real upload API: `upload`
 * served by functions-framework on a port, `resize` behind a real push subscription on the Pub/Sub
 * emulator, `ingest` notified by the local storage server (which verifies the signed URLs), and the
 * Firestore emulator. Upload → waitUntilReady → manifest, by POST and by signed URL (by size and
 * after a 413), errors as ApiError, and delete.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import type { Server } from 'node:http';
import type { Subscription } from '@google-cloud/pubsub';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { createStorageClient } from '../../shared/cloud/deps.js';
import { imageIdOf } from '../../shared/core/naming.js';
import { pushPath } from '../../shared/core/topology.js';
import { generateSigningKey } from '../../local/signing-key.js';
import { client } from '../fixtures/client.js';
import { makePhoto } from '../fixtures/images.js';
import { connectIngest, startTestPipeline, TEST_PROJECT, type TestPipeline } from '../fixtures/pipeline.js';
import { publicBaseUrl } from '../../shared/core/config.js';
import { close, listen, serviceAsset } from '../helpers.js';

const KiB = 1024;
const TOKEN = 'client-test-token';
const { ApiError, upload, waitUntilReady, getStatus, deleteUpload } = client;

describe('client package in Node against the upload API (emulators, local storage)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  let ingest: { close(): Promise<void> };
  let api: Server;
  let resize: Server;
  let push: Subscription;
  let options: { baseUrl: string; idToken: string };

  before(async () => {
    // Uploads over 100 KiB are refused with 413, so the client's fallback to a signed URL is reachable.
    pipeline = await startTestPipeline({
      UPLOAD_TOKEN: TOKEN,
      MAX_UPLOAD_BYTES: String(100 * KiB),
      MAX_INGEST_BYTES: String(4096 * KiB),
    });
    const key = generateSigningKey(TEST_PROJECT);
    pipeline.storageServer.addSigningKey(key.clientEmail, key.publicKey);
    useDeps({ ...pipeline.deps, storage: createStorageClient(pipeline.config, key) });
    ingest = await connectIngest(pipeline);
    api = getTestServer('upload');
    options = { baseUrl: `http://127.0.0.1:${await listen(api)}`, idToken: TOKEN };
    resize = getTestServer('resize');
    const resizePort = await listen(resize);
    const path = pushPath(TEST_PROJECT, 'jobs').replace(/[^/]+$/, pipeline.config.JOBS_TOPIC);
    [push] = await pipeline.pubsub.topic(pipeline.config.JOBS_TOPIC).createSubscription(`client-push-${resizePort}`, {
      pushEndpoint: `http://127.0.0.1:${resizePort}${path}`,
      ackDeadlineSeconds: 60,
    });
  });
  after(async () => {
    await push?.delete();
    // Graceful closes: a push or a notification still being handled ends before Firestore is terminated.
    await ingest?.close();
    for (const server of [api, resize]) if (server?.listening) await close(server);
    await pipeline?.stop();
  });

  /** Every variant of the manifest answers 200 with its content type. */
  async function expectServed(manifest: { variants: ReadonlyArray<{ url: string; contentType: string }> }) {
    for (const variant of manifest.variants) {
      const response = await fetch(variant.url);
      expect(response.status, variant.url).to.equal(200);
      expect(response.headers.get('content-type')).to.equal(variant.contentType);
      await response.arrayBuffer();
    }
  }

  it('uploads a small image by POST, waits until ready with progress, and gets the manifest; the same bytes again are ready at once', async () => {
    const photo = await makePhoto({ width: 400, height: 300, seed: 221 });
    const progress: number[] = [];
    const accepted = await upload(photo, {
      ...options,
      filename: 'harbour.jpg',
      onProgress: (p) => progress.push(p.loaded),
    });
    const id = imageIdOf(photo);
    expect(accepted).to.deep.equal({
      id: serviceAsset(id),
      imageId: id,
      status: 'processing',
      via: 'direct',
      // The image's job 0 ran in the upload (PREVIEW=inline): its smallest JPEG, already final.
      preview: { url: `${publicBaseUrl(pipeline.config)}/${id}/96w.jpg`, width: 96, height: 72, format: 'jpeg' },
    });
    expect(progress).to.deep.equal([photo.length]);

    const manifest = await waitUntilReady(accepted.id, { ...options, timeoutMs: 90_000 });
    expect(manifest.id).to.equal(imageIdOf(photo));
    expect(manifest.original).to.include({ width: 400, height: 300 });
    expect(manifest.original, 'the public manifest names no file').to.not.have.property('filename');
    expect(await getStatus(accepted.id, options)).to.include({ filename: 'harbour.jpg' });
    expect(manifest.variants.map((v) => `${v.format} ${v.width}`).sort()).to.deep.equal([
      'avif 160',
      'avif 96',
      'jpeg 160',
      'jpeg 96',
      'webp 160',
      'webp 96',
    ]);
    await expectServed(manifest);

    const again = await upload(photo, options);
    expect(again).to.deep.include({ status: 'ready', via: 'direct' });
    expect(again.manifest).to.deep.equal(manifest);
  });

  it('goes through a signed URL above the threshold: PUT to storage, ingest, then ready', async () => {
    const photo = await makePhoto({ width: 360, height: 240, format: 'webp', seed: 222 });
    const accepted = await upload(new Blob([Uint8Array.from(photo)]), {
      ...options,
      filename: 'big.webp',
      signedUrlAbove: 1024,
    });
    expect(accepted).to.deep.include({ id: serviceAsset(imageIdOf(photo)), via: 'signed-url' });
    const manifest = await waitUntilReady(accepted.id, { ...options, timeoutMs: 90_000 });
    expect(manifest.original).to.include({ format: 'webp' });
    expect(await getStatus(accepted.id, options)).to.include({ filename: 'big.webp' });
    await expectServed(manifest);
  });

  it("falls back to a signed URL when the server's MAX_UPLOAD_BYTES refuses the POST with 413", async () => {
    const photo = await makePhoto({ width: 700, height: 500, format: 'png', seed: 223 });
    expect(photo.length, 'the fixture must exceed MAX_UPLOAD_BYTES').to.be.greaterThan(100 * KiB);
    const accepted = await upload(photo, { ...options, filename: 'scan.png' });
    expect(accepted).to.deep.include({ id: serviceAsset(imageIdOf(photo)), via: 'signed-url' });
    expect((await waitUntilReady(accepted.id, { ...options, timeoutMs: 90_000 })).original.format).to.equal('png');
  });

  it("throws the API's errors as ApiError: a file that is not an image, a wrong token", async () => {
    const notImage = await upload(new TextEncoder().encode('just some notes\n'), options).catch((e: unknown) => e);
    expect(notImage)
      .to.be.instanceOf(ApiError)
      .and.deep.include({ status: 415, code: 'not_an_image', retryable: false });
    const photo = await makePhoto({ width: 64, height: 64, seed: 224 });
    const refused = await upload(photo, { ...options, idToken: 'wrong' }).catch((e: unknown) => e);
    expect(refused).to.deep.include({ status: 401, code: 'unauthorized' });
  });

  it('deletes an upload: 204, then its status and its variants answer 404, and deleting again is safe', async () => {
    const photo = await makePhoto({ width: 300, height: 200, seed: 225 });
    const { id } = await upload(photo, options);
    const manifest = await waitUntilReady(id, { ...options, timeoutMs: 90_000 });
    await deleteUpload(id, options);
    const gone = await getStatus(id, options).catch((e: unknown) => e);
    expect(gone).to.be.instanceOf(ApiError).and.deep.include({ status: 404, code: 'not_found' });
    const waiting = await waitUntilReady(id, options).catch((e: unknown) => e);
    expect(waiting).to.deep.include({ status: 404, code: 'not_found' });
    for (const variant of manifest.variants) expect((await fetch(variant.url)).status, variant.url).to.equal(404);
    await deleteUpload(id, options);
  });
});
