/**
 * The client package in Chromium (Debian's, driven by playwright-core): a page on its own origin,
 * served by a tiny server, loads client/dist/index.js as an ES module and talks to the local
 * stack's API across origins (CORS). It uploads a real image with XMLHttpRequest progress events, by
 * POST and by signed URL, waits until ready, renders the `<picture>` from pictureSources (every
 * srcset URL answers 200, the browser loads the one it picks) and decodes the placeholder data URL.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { imageIdOf } from '../../shared/core/naming.js';
import { serviceAsset } from '../helpers.js';
import { clientBundlePath } from '../fixtures/client.js';
import { makePhoto } from '../fixtures/images.js';
import { close, listen } from '../helpers.js';
import { openModulePage, skipWithoutChromium, startTestStack, type TestStack, urlsOf } from './helpers.js';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>client test</title></head>
<body><main id="out"></main>
<script type="module">
  import * as client from '/client.js';
  window.client = client;
  document.body.dataset.loaded = 'yes';
</script></body></html>`;

/** Serves the test page and the built client, nothing else. */
function pageServer(): Server {
  const bundle = readFileSync(clientBundlePath);
  return createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
    else if (req.url === '/client.js') res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(bundle);
    else res.writeHead(404).end();
  });
}

/** What the page reports after uploading, waiting and rendering. */
interface PageRun {
  accepted: { id: string; via: string };
  progress: Array<[number, number]>;
  fileSize: number;
  sources: Array<{ type: string; srcset: string }>;
  img: { srcset: string; currentSrc: string; naturalWidth: number; width: number; height: number };
  placeholder: { width: number; height: number } | null;
}

/** In the page: upload `bytes` as a File, wait until ready, render the <picture>, decode the placeholder. */
function runInPage(page: Page, args: { baseUrl: string; bytes: number[]; name: string; signedUrlAbove?: number }) {
  return page.evaluate(async ({ baseUrl, bytes, name, signedUrlAbove }): Promise<PageRun> => {
    const c = (window as unknown as { client: typeof import('../../client/dist/index.js') }).client;
    const file = new File([new Uint8Array(bytes)], name, { type: 'image/jpeg' });
    const progress: Array<[number, number]> = [];
    const accepted = await c.upload(file, {
      baseUrl,
      ...(signedUrlAbove === undefined ? {} : { signedUrlAbove }),
      onProgress: ({ loaded, total }) => progress.push([loaded, total]),
    });
    const manifest = await c.waitUntilReady(accepted.id, { baseUrl, timeoutMs: 90_000 });
    const { sources, img } = c.pictureSources(manifest, { sizes: '300px' });
    const picture = document.createElement('picture');
    for (const source of sources) picture.append(Object.assign(document.createElement('source'), source));
    const image = Object.assign(document.createElement('img'), img, { alt: name });
    picture.append(image);
    document.querySelector('#out')?.replaceChildren(picture);
    await image.decode();
    const url = c.placeholderDataURL(manifest);
    let placeholder: PageRun['placeholder'] = null;
    if (url) {
      const preview = new Image();
      preview.src = url;
      await preview.decode();
      placeholder = { width: preview.naturalWidth, height: preview.naturalHeight };
    }
    return {
      accepted: { id: accepted.id, via: accepted.via },
      progress,
      fileSize: file.size,
      sources: sources.map(({ type, srcset }) => ({ type, srcset })),
      img: {
        srcset: image.srcset,
        currentSrc: image.currentSrc,
        naturalWidth: image.naturalWidth,
        width: image.width,
        height: image.height,
      },
      placeholder,
    };
  }, args);
}

describe('client package in Chromium against the local stack', function () {
  this.timeout(180_000);
  let t: TestStack;
  let server: Server;
  let browser: Browser;
  let page: Page;
  let baseUrl: string;
  let pageErrors: string[];

  before(async function () {
    skipWithoutChromium(this);
    server = pageServer();
    const origin = `http://127.0.0.1:${await listen(server)}`;
    t = await startTestStack({ env: { WIDTHS: '320,640', CORS_ORIGINS: origin } });
    baseUrl = t.stack.urls.api.replace(/\/uploads$/, '');
    ({ browser, page, pageErrors } = await openModulePage(`${origin}/`));
  });
  after(async () => {
    await browser?.close();
    await t?.stop();
    if (server?.listening) await close(server);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && t) console.log(`Last log lines of the stack:\n${t.tail(40)}`);
  });

  /** Every URL of the page's srcsets answers 200; the browser loaded one of the <img>'s. */
  async function expectRendered(run: PageRun) {
    expect(run.sources.map((s) => s.type)).to.deep.equal(['image/avif', 'image/webp']);
    const urls = [...run.sources.flatMap((s) => urlsOf(s.srcset)), ...urlsOf(run.img.srcset)];
    expect(urls).to.have.length(6);
    for (const url of urls) expect((await fetch(url)).status, url).to.equal(200);
    expect(run.img.naturalWidth, 'the <img> decoded').to.be.greaterThan(0);
    expect(urls).to.include(run.img.currentSrc);
    expect(run.placeholder, 'the placeholder data URL decodes').to.not.equal(null);
    expect(run.placeholder!.width / run.placeholder!.height).to.be.closeTo(4 / 3, 0.2);
    expect(pageErrors).to.deep.equal([]);
  }

  it('uploads by POST with upload progress events, waits until ready, renders the <picture> and the placeholder', async () => {
    const photo = await makePhoto({ width: 800, height: 600, seed: 231 });
    const run = await runInPage(page, { baseUrl, bytes: [...photo], name: 'terrace.jpg' });
    expect(run.accepted).to.deep.equal({ id: serviceAsset(imageIdOf(photo)), via: 'direct' });
    expect(run.progress.length, 'XMLHttpRequest progress events').to.be.greaterThan(0);
    const [loaded, total] = run.progress.at(-1)!;
    expect(loaded).to.equal(total);
    expect(total, 'the multipart body holds the file').to.be.greaterThan(run.fileSize);
    expect(run.img).to.include({ width: 640, height: 480 });
    await expectRendered(run);
  });

  it('uploads by signed URL from the browser (PUT to storage with progress), then the same', async () => {
    const photo = await makePhoto({ width: 800, height: 600, seed: 232 });
    const run = await runInPage(page, { baseUrl, bytes: [...photo], name: 'garden.jpg', signedUrlAbove: 1024 });
    expect(run.accepted).to.deep.equal({ id: serviceAsset(imageIdOf(photo)), via: 'signed-url' });
    expect(run.progress.at(-1), 'the PUT body is the file itself').to.deep.equal([run.fileSize, run.fileSize]);
    await expectRendered(run);
  });
});
