/**
 * The framework loaders in Chromium (Debian's, driven by playwright-core) against the real pipeline:
 * the local stack makes an image with the default widths (and a 16:9 crop), a page on its own origin
 * loads the built loaders (client/dist/loaders) and renders an `<img srcset>` per framework as each
 * asks for it by default: next/image's device and image sizes (as its getImgProps emits them),
 * Astro's resolutions through the image service's getSrcSet/getURL, unpic's breakpoints through the
 * transformer. Every srcset URL answers 200, and Chromium loads the one it picks.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { Manifest } from '../../client/dist/index.js';
import { client, loaderBundlePaths } from '../fixtures/client.js';
import { makePhoto } from '../fixtures/images.js';
import { close, listen } from '../helpers.js';
import { openModulePage, skipWithoutChromium, startTestStack, type TestStack, urlsOf } from './helpers.js';

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>loaders test</title></head>
<body><main id="out"></main>
<script type="module">
  import * as next from '/next.js';
  import * as astro from '/astro.js';
  import * as unpic from '/unpic.js';
  import * as frameworks from '/frameworks.js';
  window.loaders = { next, astro, unpic, frameworks };
  document.body.dataset.loaded = 'yes';
</script></body></html>`;

/** Serves the page, the built loaders and the frameworks' width lists (test/fixtures/frameworks.ts, import-free). */
function pageServer(): Server {
  const files: Record<string, Buffer> = {
    '/next.js': readFileSync(loaderBundlePaths.next),
    '/astro.js': readFileSync(loaderBundlePaths.astro),
    '/unpic.js': readFileSync(loaderBundlePaths.unpic),
    '/frameworks.js': readFileSync(new URL('../fixtures/frameworks.js', import.meta.url)),
  };
  return createServer((req, res) => {
    const file = files[req.url ?? ''];
    if (req.url === '/') res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(PAGE);
    else if (file) res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(file);
    else res.writeHead(404).end();
  });
}

/** One rendered `<img>`: what was asked of it, and what Chromium loaded. */
interface Rendered {
  name: string;
  src: string;
  srcset: string;
  currentSrc: string;
  naturalWidth: number;
}

/** In the page: build each framework's `<img>` with its loader, add them all, wait until each decodes. */
function renderInPage(page: Page, manifest: Manifest): Promise<Rendered[]> {
  return page.evaluate(async (manifest): Promise<Rendered[]> => {
    type Loaders = {
      next: typeof import('../../client/dist/loaders/next.js');
      astro: typeof import('../../client/dist/loaders/astro.js');
      unpic: typeof import('../../client/dist/loaders/unpic.js');
      frameworks: typeof import('../fixtures/frameworks.js');
    };
    const { next, astro, unpic, frameworks } = (window as unknown as { loaders: Loaders }).loaders;
    const cases: Array<{ name: string; src: string; srcset: string; sizes?: string }> = [];
    for (const [label, options] of [
      ['', {}],
      [' 16:9', { aspect: '16:9' }],
    ] as const) {
      const image = next.loaderImage(manifest, options);
      for (const sizes of ['100vw', '(max-width: 768px) 50vw, 33vw', undefined]) {
        const props = { src: image.src, width: sizes ? image.width : 300, ...(sizes ? { sizes } : {}) };
        cases.push({ name: `next${label} sizes=${sizes}`, ...frameworks.nextImgAttributes(next.default, props) });
      }
      const astroImage = astro.loaderImage(manifest, options);
      for (const format of ['avif', 'webp', 'jpeg']) {
        const transform = { src: astroImage.src, width: astroImage.width, height: astroImage.height, format };
        const candidates = astro.default.getSrcSet({ ...transform, widths: [...frameworks.ASTRO_RESOLUTIONS] });
        cases.push({
          name: `astro${label} ${format}`,
          src: astro.default.getURL(transform),
          srcset: candidates.map((c) => `${astro.default.getURL(c.transform)} ${c.descriptor}`).join(', '),
          sizes: '100vw',
        });
      }
      const unpicImage = unpic.loaderImage(manifest, options);
      for (const [layout, width] of [
        ['fullWidth', undefined],
        ['constrained', 800],
        ['fixed', 300],
      ] as const) {
        const widths = frameworks.unpicWidths(layout, width);
        cases.push({
          name: `unpic${label} ${layout}`,
          src: unpic.transformer(unpicImage.src, { width: width ?? unpicImage.width }),
          srcset: widths.map((w) => `${unpic.transformer(unpicImage.src, { width: w })} ${w}w`).join(', '),
          sizes: width ? `(min-width: ${width}px) ${width}px, 100vw` : '100vw',
        });
      }
    }
    const out = document.querySelector('#out') as HTMLElement;
    const images = cases.map((c) => {
      const img = document.createElement('img');
      img.alt = c.name;
      if (c.sizes) img.sizes = c.sizes;
      img.srcset = c.srcset;
      img.src = c.src;
      img.style.width = '300px';
      out.append(img);
      return img;
    });
    await Promise.all(images.map((img) => img.decode()));
    return cases.map((c, i) => ({
      name: c.name,
      src: c.src,
      srcset: c.srcset,
      currentSrc: images[i]?.currentSrc ?? '',
      naturalWidth: images[i]?.naturalWidth ?? 0,
    }));
  }, manifest);
}

describe('framework loaders in Chromium against the local stack', function () {
  this.timeout(240_000);
  let t: TestStack;
  let server: Server;
  let browser: Browser;
  let page: Page;
  let manifest: Manifest;
  let pageErrors: string[];

  before(async function () {
    skipWithoutChromium(this);
    server = pageServer();
    const origin = `http://127.0.0.1:${await listen(server)}`;
    // The default widths; the 1800-px photo is made at 1800 instead of 2048, a width no framework asks for.
    t = await startTestStack({ env: { WIDTHS: '320,640,1024,1600,2048', ASPECTS: '16:9' } });
    const baseUrl = t.stack.urls.api.replace(/\/uploads$/, '');
    const photo = await makePhoto({ width: 1800, height: 1200, seed: 2201 });
    const { id } = await client.upload(photo, { baseUrl, filename: 'harbour.jpg' });
    manifest = await client.waitUntilReady(id, { baseUrl, timeoutMs: 150_000 });
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

  it('the image was made at the default widths up to the original, and a naive `{width}w` URL would 404', async () => {
    const widths = [...new Set(manifest.variants.map((v) => v.width))];
    expect(widths).to.deep.equal([320, 640, 1024, 1600, 1800]);
    expect(manifest.srcset?.webp).to.equal(
      manifest.variants
        .filter((v) => v.format === 'webp')
        .map((v) => `${v.url} ${v.width}w`)
        .join(', '),
    );
    // What a loader that writes the requested width into the name would ask for: next/image's 750.
    const folder = (manifest.variants[0]?.url ?? '').replace(/[^/]+$/, '');
    expect((await fetch(`${folder}750w.webp`)).status).to.equal(404);
  });

  it("renders each framework's default srcset through its loader: every URL answers 200, Chromium loads one", async () => {
    const rendered = await renderInPage(page, manifest);
    expect(rendered).to.have.length(18);
    const listed = new Set([
      ...manifest.variants.map((v) => v.url),
      ...Object.values(manifest.aspects ?? {}).flatMap((a) => a.variants.map((v) => v.url)),
    ]);
    const urls = new Set(rendered.flatMap((r) => [r.src, ...urlsOf(r.srcset)]));
    for (const url of urls) {
      expect(listed.has(url), `${url} is a listed variant`).to.equal(true);
      const response = await fetch(url);
      expect(response.status, url).to.equal(200);
      await response.arrayBuffer();
    }
    for (const r of rendered) {
      expect(r.naturalWidth, `${r.name} decoded`).to.be.greaterThan(0);
      expect([r.src, ...urlsOf(r.srcset)], `${r.name} loaded one of its own`).to.include(r.currentSrc);
    }
    // Every format and both crops were asked for: more than a handful of distinct variants.
    expect(urls.size).to.be.greaterThan(12);
    expect(pageErrors).to.deep.equal([]);
  });
});
