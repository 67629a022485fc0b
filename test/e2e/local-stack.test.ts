/**
 * The whole pipeline through the local stack, as `npm start` runs it: real images in through the
 * upload API (multipart and raw), through `incoming/` with @google-cloud/storage and with
 * `gcloud storage cp`; every variant decoded; exactly one `image.ready` per image on the events
 * subscription; a bad file ends failed; the cleanup schedule runs; and a restart on the same data
 * directory keeps earlier images while running the default configuration on a real photo. Every
 * API answer of the reduced-widths run, every event and the manifest object are validated
 * against the contract the stack serves (`GET /openapi.json`, docs/schemas/).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Storage } from '@google-cloud/storage';
import { expect } from 'chai';
import sharp from 'sharp';
import type { Manifest } from '../../shared/core/schemas.js';
import { imageIdOf } from '../../shared/core/naming.js';
import { makePhoto, textPosingAsJpeg } from '../fixtures/images.js';
import { Contract, committedDocument, publishedSchema } from '../fixtures/contract.js';
import {
  collectEvents,
  gcloudPath,
  removeDir,
  startTestStack,
  tempDir,
  waitForImage,
  waitForManifest,
  type EventCollector,
  type TestStack,
} from './helpers.js';
import { eventually, serviceAsset } from '../helpers.js';

const execFileAsync = promisify(execFile);

/** sharp's name for each output format (AVIF is a HEIF container with AV1 compression). */
const SHARP_FORMAT: Record<string, string> = { avif: 'heif', webp: 'webp', jpeg: 'jpeg' };

/** Fetches every variant through the page server's /images route and decodes it with sharp. */
async function checkVariants(manifest: Manifest, expected: { widths: number[]; aspect: number }): Promise<void> {
  expect(manifest.formats).to.deep.equal(['avif', 'webp', 'jpeg']);
  expect(manifest.variants).to.have.length(expected.widths.length * 3);
  for (const format of manifest.formats) {
    expect(manifest.variants.filter((v) => v.format === format).map((v) => v.width)).to.deep.equal(expected.widths);
  }
  for (const variant of manifest.variants) {
    const response = await fetch(variant.url);
    expect(response.status, variant.url).to.equal(200);
    expect(response.headers.get('content-type')).to.equal(variant.contentType);
    expect(response.headers.get('cache-control')).to.contain('immutable');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect(bytes.length, `${variant.name} bytes`).to.equal(variant.bytes);
    const metadata = await sharp(bytes).metadata();
    expect(metadata.format, variant.name).to.equal(SHARP_FORMAT[variant.format]);
    if (variant.format === 'avif') expect(metadata.compression).to.equal('av1');
    expect([metadata.width, metadata.height], variant.name).to.deep.equal([variant.width, variant.height]);
    expect(variant.height).to.equal(Math.max(1, Math.round(variant.width / expected.aspect)));
  }
}

describe('local stack end to end', function () {
  this.timeout(180_000);

  describe('reduced widths (WIDTHS=160,320)', () => {
    let t: TestStack;
    let events: EventCollector;
    let storage: Storage;
    const images: Record<string, string> = {};
    let contract: Contract;

    /** The answer's JSON body, once it matches what the served contract gives `method template` and its status. */
    async function holds(method: string, template: string, response: Response): Promise<unknown> {
      const body: unknown = response.status === 204 ? undefined : await response.json();
      expect(contract.check(method, template, response.status, body), JSON.stringify(body)).to.deep.equal([]);
      return body;
    }

    before(async () => {
      // Compiled before the stack starts: compiling on first use would delay the first upload
      // past the first cleanup pass, which the cleanup test below expects to find it.
      contract = new Contract(committedDocument());
      contract.compileAll();
      t = await startTestStack({ persist: true, env: { WIDTHS: '160,320' }, cleanupIntervalSeconds: 2 });
      events = collectEvents(t.stack, t.stack.subscriptions.eventsPull);
      storage = new Storage({
        apiEndpoint: t.stack.urls.storage,
        projectId: t.stack.projectId,
        useAuthWithCustomEndpoint: false,
      });
    });
    after(async () => {
      await events?.close();
      await t?.stop();
    });
    afterEach(function () {
      if (this.currentTest?.state === 'failed' && t) console.log(`Last log lines of the stack:\n${t.tail(40)}`);
    });

    it('serves the page, its script and the health check on PORT', async () => {
      const page = await fetch(t.stack.urls.web);
      expect(page.status).to.equal(200);
      expect(page.headers.get('content-type')).to.match(/^text\/html/);
      const html = await page.text();
      expect(html).to.contain('<input id="files"').and.to.contain('type="file"').and.to.contain('multiple');
      const script = await fetch(new URL('/app.js', t.stack.urls.web));
      expect(script.status).to.equal(200);
      expect(script.headers.get('content-type')).to.match(/javascript/);
      const served = await fetch(new URL('/openapi.json', t.stack.urls.web));
      expect(await holds('GET', '/openapi.json', served), 'the stack serves the committed contract').to.deep.equal(
        contract.document,
      );
      const health = await fetch(new URL('/healthz', t.stack.urls.web));
      expect(await holds('GET', '/healthz', health)).to.deep.equal({ status: 'ok' });
    });

    it('processes a multipart upload into every variant', async () => {
      const photo = await makePhoto({ width: 640, height: 480, seed: 11 });
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'multipart.jpg');
      const response = await fetch(t.stack.urls.api, { method: 'POST', body: form });
      const body = (await holds('POST', '/uploads', response)) as {
        id: string;
        imageId: string;
        status: string;
        statusUrl: string;
        variants: unknown[];
      };
      expect(response.status, JSON.stringify(body)).to.equal(202);
      expect(body.status).to.equal('processing');
      expect(body.imageId).to.equal(imageIdOf(photo));
      expect(body.id).to.equal(serviceAsset(body.imageId));
      expect(body.statusUrl).to.equal(`${t.stack.urls.api}/${body.id}`);
      expect(body.variants).to.have.length(6);
      images.multipart = body.imageId;
      const manifest = await waitForManifest(t.stack, body.imageId);
      expect(manifest.original).to.include({ width: 640, height: 480, bytes: photo.length });
      expect(manifest.original, 'the public manifest names no file').to.not.have.property('filename');
      const status = await fetch(body.statusUrl);
      const answer = (await holds('GET', '/uploads/{id}', status)) as { filename?: string };
      expect(answer.filename, 'the owner sees it').to.equal('multipart.jpg');
      const object = await fetch(`${t.stack.urls.images}/${body.imageId}/manifest.json`);
      expect(publishedSchema('manifest.schema.json')(await object.json())).to.deep.equal([]);
      await checkVariants(manifest, { widths: [160, 320], aspect: 640 / 480 });
    });

    it('processes a raw-body upload, and answers a repeat with the manifest', async () => {
      const photo = await makePhoto({ width: 480, height: 640, format: 'png', seed: 12 });
      const post = () =>
        fetch(`${t.stack.urls.api}?filename=raw.png`, {
          method: 'POST',
          body: new Uint8Array(photo),
          headers: { 'Content-Type': 'image/png' },
        });
      const first = await post();
      const body = (await holds('POST', '/uploads', first)) as { imageId: string };
      expect(first.status, JSON.stringify(body)).to.equal(202);
      images.raw = body.imageId;
      const manifest = await waitForManifest(t.stack, body.imageId);
      await checkVariants(manifest, { widths: [160, 320], aspect: 480 / 640 });

      const again = await post();
      const repeat = (await holds('POST', '/uploads', again)) as { status: string; manifest: Manifest };
      expect(again.status).to.equal(200);
      expect(repeat.status).to.equal('ready');
      expect(repeat.manifest).to.deep.equal(manifest);
    });

    it('ingests a file put under incoming/ with @google-cloud/storage', async () => {
      const photo = await makePhoto({ width: 640, height: 360, format: 'webp', seed: 13 });
      const id = imageIdOf(photo);
      await storage
        .bucket(t.stack.buckets.uploads)
        .file('incoming/from-client.webp')
        .save(photo, { contentType: 'image/webp', resumable: false });
      images.client = id;
      const manifest = await waitForManifest(t.stack, id);
      expect(manifest.original, 'the public manifest names no file').to.not.have.property('filename');
      await checkVariants(manifest, { widths: [160, 320], aspect: 640 / 360 });
      // ingest removes what it took from incoming/.
      await eventually(
        async () =>
          (await storage.bucket(t.stack.buckets.uploads).file('incoming/from-client.webp').exists())[0]
            ? undefined
            : true,
        10_000,
        'incoming/from-client.webp removed',
      );
    });

    it('ingests a file copied under incoming/ with gcloud storage cp', async function () {
      const gcloud = gcloudPath();
      if (!gcloud) {
        console.log('      (skipped: gcloud is not installed; install the Google Cloud CLI to run this test)');
        this.skip();
      }
      const photo = await makePhoto({ width: 600, height: 400, seed: 14 });
      const dir = mkdtempSync(join(tmpdir(), 'gcloud-'));
      try {
        const file = join(dir, 'from-gcloud.jpg');
        writeFileSync(file, photo);
        await execFileAsync(gcloud!, ['storage', 'cp', file, `gs://${t.stack.buckets.uploads}/incoming/`], {
          timeout: 60_000,
          env: {
            PATH: process.env.PATH ?? '/usr/bin:/bin',
            HOME: dir,
            CLOUDSDK_CONFIG: join(dir, 'config'),
            CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE: `${t.stack.urls.storage}/`,
            CLOUDSDK_AUTH_DISABLE_CREDENTIALS: 'true',
            CLOUDSDK_CORE_PROJECT: t.stack.projectId,
            CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
          },
        });
      } finally {
        removeDir(dir);
      }
      const id = imageIdOf(photo);
      images.gcloud = id;
      const manifest = await waitForManifest(t.stack, id);
      expect(manifest.original, 'the public manifest names no file').to.not.have.property('filename');
      await checkVariants(manifest, { widths: [160, 320], aspect: 600 / 400 });
    });

    it('records a file under incoming/ that is not an image as failed, with one image.failed', async () => {
      const bad = textPosingAsJpeg();
      await storage
        .bucket(t.stack.buckets.uploads)
        .file('incoming/not-a-photo.jpg')
        .save(bad, { contentType: 'image/jpeg', resumable: false });
      const id = imageIdOf(bad);
      const answer = await waitForImage(t.stack, id);
      expect(answer.status).to.equal(422);
      expect(answer.body.error).to.include({ code: 'image_failed', retryable: false });
      expect(answer.body.error!.details).to.deep.equal({ id: serviceAsset(id), imageId: id, cause: 'not_an_image' });
      await eventually(
        async () => (events.events.some((e) => e.type === 'image.failed' && e.imageId === id) ? true : undefined),
        10_000,
        'image.failed',
      );
      const types = () => events.events.filter((e) => e.imageId === id).map((e) => e.type);
      await eventually(async () => (types().includes('upload.failed') ? true : undefined), 10_000, 'upload.failed');
      expect(types().sort(), 'one of each: the image’s and its (the service’s) upload’s').to.deep.equal([
        'image.failed',
        'upload.failed',
      ]);
    });

    it('answers upload errors as the API documents them', async () => {
      const notImage = await fetch(t.stack.urls.api, {
        method: 'POST',
        body: 'hello',
        headers: { 'Content-Type': 'image/jpeg' },
      });
      expect(notImage.status).to.equal(415);
      expect(((await holds('POST', '/uploads', notImage)) as { error: { code: string } }).error.code).to.equal(
        'not_an_image',
      );
      const form = new FormData();
      form.append('other', 'no file here');
      const missing = await fetch(t.stack.urls.api, { method: 'POST', body: form });
      expect(missing.status).to.equal(400);
      expect(((await holds('POST', '/uploads', missing)) as { error: { code: string } }).error.code).to.equal(
        'missing_file',
      );
      const unknown = await fetch(`${t.stack.urls.api}/${'0'.repeat(32)}`);
      expect(unknown.status).to.equal(404);
      await holds('GET', '/uploads/{id}', unknown);
      const image404 = await fetch(`${t.stack.urls.images}/${'0'.repeat(32)}/320w.jpg`);
      expect(image404.status).to.equal(404);
    });

    it('publishes exactly one image.ready per image on the events subscription', async () => {
      const ids = Object.values(images);
      expect(ids.length).to.be.at.least(3);
      await eventually(
        async () =>
          ids.every((id) => events.events.some((e) => e.type === 'image.ready' && e.imageId === id)) ? true : undefined,
        15_000,
        'an image.ready for every image',
      );
      // Duplicates would arrive right after the first: give them the chance.
      await new Promise((r) => setTimeout(r, 1500));
      for (const id of ids) {
        const ready = events.events.filter((e) => e.type === 'image.ready' && e.imageId === id);
        expect(ready, `image.ready events of ${id}`).to.have.length(1);
        expect(ready[0]).to.include({ v: 1, variants: 6 });
        expect(events.events.filter((e) => e.type === 'image.failed' && e.imageId === id)).to.have.length(0);
      }
      for (const event of events.events)
        expect(publishedSchema(`events/${event.type}.schema.json`)(event), JSON.stringify(event)).to.deep.equal([]);
    });

    it('runs cleanup on its schedule and logs the summary', async () => {
      const tick = await t.waitForLog((l) => l.source === 'stack' && l.entry?.event === 'local.tick', 10_000);
      expect(tick.entry?.topic).to.equal(t.stack.topics.cleanup);
      const summary = await t.waitForLog(
        (l) => l.source === 'cleanup' && l.entry?.message === 'cleanup pass finished',
        30_000,
      );
      const counts = summary.entry?.summary as Record<string, unknown>;
      expect(counts).to.include({ dryRun: false, errors: 0, redispatched: 0, originalsDeleted: 0 });
      expect(counts.examined).to.be.a('number').and.to.be.greaterThan(0);
    });
  });

  describe('default configuration on a real photo, after a restart on the same data', () => {
    let first: TestStack | undefined;
    let t: TestStack;
    let dataDir: string;
    let earlier: string;

    before(async () => {
      dataDir = tempDir('stack-restart');
      // The same project on the shared Firestore emulator, as npm start restarts with its own.
      const projectId = `e2e-restart-${process.pid}`;
      first = await startTestStack({ persist: dataDir, projectId, env: { WIDTHS: '160' } });
      const photo = await makePhoto({ width: 320, height: 240, seed: 21 });
      const response = await fetch(first.stack.urls.api, {
        method: 'POST',
        body: new Uint8Array(photo),
        headers: { 'Content-Type': 'image/jpeg' },
      });
      earlier = ((await response.json()) as { imageId: string }).imageId;
      await waitForManifest(first.stack, earlier);
      await first.stop();
      first = undefined;
      t = await startTestStack({ persist: dataDir, projectId });
    });
    after(async () => {
      await first?.stop();
      await t?.stop();
      removeDir(dataDir);
    });
    afterEach(function () {
      if (this.currentTest?.state === 'failed' && t) console.log(`Last log lines of the stack:\n${t.tail(40)}`);
    });

    it('keeps images from the earlier run', async () => {
      const answer = await waitForImage(t.stack, earlier, 5_000);
      expect(answer.status).to.equal(200);
      expect(answer.body.manifest!.id).to.equal(earlier);
    });

    it('makes every default width and format of a 1600×1067 photo', async () => {
      expect(t.stack.config.WIDTHS).to.deep.equal([320, 640, 1024, 1600, 2048]);
      const photo = await makePhoto({ width: 1600, height: 1067, seed: 22 });
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(photo)], { type: 'image/jpeg' }), 'photo.jpg');
      const response = await fetch(t.stack.urls.api, { method: 'POST', body: form });
      const body = (await response.json()) as { imageId: string; variants: unknown[] };
      expect(response.status, JSON.stringify(body)).to.equal(202);
      // 2048 is wider than the photo: the largest variant is the photo's own width instead.
      expect(body.variants).to.have.length(12);
      const manifest = await waitForManifest(t.stack, body.imageId, 150_000);
      await checkVariants(manifest, { widths: [320, 640, 1024, 1600], aspect: 1600 / 1067 });
    });
  });
});
