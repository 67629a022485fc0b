/**
 * The try-it page in a real browser (Debian's Chromium driven by playwright-core): upload through
 * the file input, follow the status until ready, the `<picture>` loads and the table lists every
 * variant; while it processes, the first finished variant is shown at once; a file that is not an image shows the API's error; dropping works; the page is usable
 * with the keyboard and in a 360 px window. The page uploads with the client package: a file that a
 * server's MAX_UPLOAD_BYTES refuses (413) goes by signed URL, as the client decides. Its metadata
 * field: anything but a JSON object is refused inline with nothing sent; an object goes with the
 * upload as `metadata`. Saves a screenshot to test-output/ (to docs/screenshot.png with
 * UPDATE_SCREENSHOT=1, so that a test run never rewrites a tracked file).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { chromium, type BrowserContext, type Locator, type Page, type Route } from 'playwright-core';
import { assetIdOf, imageIdOf } from '../../shared/core/naming.js';
import type { Manifest } from '../../shared/core/schemas.js';
import { probeImage } from '../../shared/image/probe.js';
import { makePhoto, noisePng } from '../fixtures/images.js';
import { removeDir, startTestStack, tempDir, type TestStack } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = fileURLToPath(
  new URL(
    process.env.UPDATE_SCREENSHOT === '1' ? '../../../docs/screenshot.png' : '../../../test-output/screenshot.png',
    import.meta.url,
  ),
);
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];

/** GET `url` of the stack's API as alice, the user the page signs in as. */
/** Alice's upload (asset) of an image: the page signs in as alice. */
/** Waits until the `<img>` that `image` finds exists (within `appearMs`) and has loaded its bytes. */
async function untilLoaded(image: Locator, appearMs: number): Promise<void> {
  await image
    .page()
    .waitForFunction(
      (el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth > 0,
      await image.elementHandle({ timeout: appearMs }),
      { timeout: 15_000 },
    );
}

function aliceAsset(imageId: string): string {
  return assetIdOf('user:alice', imageId);
}

async function asAlice(t: TestStack, url: string): Promise<Response> {
  const token = await t.stack.auth.idToken?.('alice');
  return fetch(url, token ? { headers: { Authorization: `Bearer ${token.idToken}` } } : {});
}

/**
 * A local stack with `env` and a Chromium page for a describe block, stopped after it (skipped
 * without Chromium). Authentication as `npm start` runs by default: UPLOAD_AUTH=jwt against the
 * stack's own issuer, the page signed in as alice.
 */
function useStackAndPage(env: Record<string, string>) {
  const state = { pageErrors: [] as string[] } as {
    t: TestStack;
    context: BrowserContext;
    page: Page;
    profile: string;
    files: string;
    pageErrors: string[];
  };
  before(async function () {
    if (!existsSync(CHROMIUM)) {
      console.log(`      (skipped: ${CHROMIUM} is missing; apt-get install chromium, as .ci/run does)`);
      this.skip();
    }
    state.t = await startTestStack({ env: { UPLOAD_AUTH: 'jwt', ...env } });
    state.profile = tempDir('chromium-profile');
    state.files = tempDir('browser-files');
    state.context = await chromium.launchPersistentContext(state.profile, {
      executablePath: CHROMIUM,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 900 },
      deviceScaleFactor: 1,
      // No transitions (the page honours it), so that the screenshot does not catch one midway.
      reducedMotion: 'reduce',
    });
    state.page = state.context.pages()[0] ?? (await state.context.newPage());
    state.page.on('pageerror', (error) => state.pageErrors.push(error.message));
  });
  after(async () => {
    await state.context?.close();
    await state.t?.stop();
    if (state.profile) removeDir(state.profile);
    if (state.files) removeDir(state.files);
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && state.t)
      console.log(`Last log lines of the stack:\n${state.t.tail(40)}`);
  });
  return state;
}

describe('try-it page in Chromium', function () {
  this.timeout(180_000);
  const s = useStackAndPage({ WIDTHS: '320,640,1024' });
  let t: TestStack;
  let page: Page;
  let files: string;
  let pageErrors: string[];
  before(() => {
    ({ t, page, files, pageErrors } = s);
  });

  it('is usable with the keyboard: Tab reaches the file input, and the drop zone shows focus', async () => {
    await page.goto(t.stack.urls.web);
    expect(await page.title()).to.contain('Image pipeline');
    await page.keyboard.press('Tab'); // skip link
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('files');
    const outline = await page.evaluate(() => getComputedStyle(document.querySelector('#dropzone')!).outlineStyle);
    expect(outline).to.equal('solid');
    // The input has a label (the drop zone), so it has an accessible name.
    expect(await page.evaluate(() => (document.querySelector('#files') as HTMLInputElement).labels?.[0]?.id)).to.equal(
      'dropzone',
    );
  });

  it('refuses metadata that is not a JSON object inline: the field is marked, no card, no request', async () => {
    const photoPath = join(files, 'refused-metadata.jpg');
    writeFileSync(photoPath, await makePhoto({ width: 400, height: 300, seed: 79 }));
    const apiCalls: string[] = [];
    const onRequest = (request: { method(): string; url(): string }) => {
      if (new URL(request.url()).pathname.startsWith('/uploads') && request.method() !== 'GET')
        apiCalls.push(`${request.method()} ${request.url()}`);
    };
    await page.goto(t.stack.urls.web);
    await page.locator('#account').waitFor();
    page.on('request', onRequest);
    try {
      for (const [text, said] of [
        ['{"postId": p1}', /^Metadata is not valid JSON \(.+\)\. Nothing was uploaded\.$/],
        ['["p1"]', /^Metadata must be a JSON object, such as \{"postId":"p1"\}\. Nothing was uploaded\.$/],
      ] as const) {
        await page.fill('#metadata', text);
        await page.setInputFiles('#files', [photoPath]);
        const error = page.locator('#metadata-error');
        await error.waitFor();
        expect(await error.textContent()).to.match(said);
        expect(await page.getAttribute('#metadata', 'aria-invalid')).to.equal('true');
        expect(await page.evaluate(() => document.activeElement?.id)).to.equal('metadata');
      }
      // Long enough for an upload the page had started to have sent its first request.
      await page.waitForTimeout(500);
      expect(await page.locator('.card', { hasText: 'refused-metadata.jpg' }).count()).to.equal(0);
      expect(apiCalls, 'requests that would upload').to.deep.equal([]);
      // Editing the field takes the error away; the tests that follow upload with it empty.
      await page.fill('#metadata', '');
      expect(await page.locator('#metadata-error').isHidden()).to.equal(true);
      expect(await page.getAttribute('#metadata', 'aria-invalid')).to.equal(null);
    } finally {
      page.off('request', onRequest);
      await page.fill('#metadata', '');
    }
    expect(pageErrors).to.deep.equal([]);
  });

  it('signs in as alice, sends her ID token on every API call, and switches to bob', async () => {
    const api = new URL(t.stack.urls.api);
    const calls: Array<{ call: string; sub: string | undefined }> = [];
    const subOf = (authorization: string | undefined) => {
      const payload = authorization?.replace(/^Bearer /, '').split('.')[1];
      return payload ? (JSON.parse(Buffer.from(payload, 'base64url').toString()) as { sub?: string }).sub : undefined;
    };
    const onRequest = (request: { method(): string; url(): string; headers(): Record<string, string> }) => {
      const url = new URL(request.url());
      if (url.origin === api.origin && url.pathname.startsWith('/uploads'))
        calls.push({ call: `${request.method()} ${url.pathname}`, sub: subOf(request.headers().authorization) });
    };
    page.on('request', onRequest);
    try {
      await page.goto(t.stack.urls.web);
      await page.locator('#account').waitFor();
      expect(await page.locator('#user option').allTextContents()).to.deep.equal(['alice', 'bob', 'carol']);
      expect(await page.locator('#user').inputValue()).to.equal('alice');
      // "Your uploads" answers with the list, or (before the list exists) a note: never a broken page.
      await page.locator('#mine-note:not(:has-text("Loading"))').or(page.locator('.mine-item').first()).waitFor();
      await page.selectOption('#user', 'bob');
      await page.waitForFunction(() => !(document.querySelector('#user') as HTMLSelectElement).disabled);
      await page.locator('#mine-note:not(:has-text("Loading"))').or(page.locator('.mine-item').first()).waitFor();
    } finally {
      page.off('request', onRequest);
    }
    expect(calls.length, 'API calls made').to.be.at.least(2);
    expect(
      calls.filter((c) => c.sub === undefined),
      'API calls without an ID token',
    ).to.deep.equal([]);
    expect(calls[0]?.sub).to.equal('alice');
    expect(calls.at(-1)?.sub).to.equal('bob');
    // The next visit signs in as bob again; back to alice for the tests that follow.
    await page.selectOption('#user', 'alice');
    await page.waitForFunction(() => !(document.querySelector('#user') as HTMLSelectElement).disabled);
    expect(pageErrors).to.deep.equal([]);
  });

  it('two users in two tabs: each lists only their own upload of the same photo, and deleting one keeps the other', async () => {
    const photoPath = join(files, 'two-tabs.jpg');
    const bytes = await makePhoto({ width: 400, height: 300, seed: 77 });
    writeFileSync(photoPath, bytes);
    const imageId = imageIdOf(bytes);
    const mine = (tab: Page) => tab.locator('.mine-item', { hasText: 'two-tabs.jpg' });
    await page.goto(t.stack.urls.web);
    await page.locator('#account').waitFor();
    expect(await page.locator('#user').inputValue()).to.equal('alice');
    await page.setInputFiles('#files', [photoPath]);
    await page.locator('.card', { hasText: 'two-tabs.jpg' }).locator('table.variants').waitFor({ timeout: 120_000 });
    await mine(page).waitFor();

    const bobTab = await s.context.newPage();
    bobTab.on('pageerror', (error) => pageErrors.push(error.message));
    try {
      await bobTab.goto(t.stack.urls.web);
      await bobTab.locator('#account').waitFor();
      await bobTab.selectOption('#user', 'bob');
      await bobTab.waitForFunction(() => !(document.querySelector('#user') as HTMLSelectElement).disabled);
      await bobTab.locator('#mine-note:not(:has-text("Loading"))').or(bobTab.locator('.mine-item').first()).waitFor();
      expect(await mine(bobTab).count(), "alice's upload is not in bob's list").to.equal(0);
      const bob = await t.stack.auth.idToken?.('bob');
      const asBob = { headers: { Authorization: `Bearer ${bob?.idToken}` } };
      const alicesAsset = `${t.stack.urls.api}/${aliceAsset(imageId)}`;
      expect((await fetch(alicesAsset, asBob)).status, "bob reading alice's upload").to.equal(404);
      expect((await fetch(alicesAsset, { ...asBob, method: 'DELETE' })).status, 'bob deleting it').to.equal(404);

      // Bob uploads the same photo: his own upload of the same (already made) image.
      await bobTab.setInputFiles('#files', [photoPath]);
      await bobTab.locator('.card', { hasText: 'two-tabs.jpg' }).locator('table.variants').waitFor({ timeout: 60_000 });
      await mine(bobTab).waitFor();
      await mine(bobTab).getByRole('button', { name: 'Delete two-tabs.jpg' }).click();
      await mine(bobTab).waitFor({ state: 'detached' });
    } finally {
      await bobTab.close();
    }
    // Alice's upload, and the image's variants, are still there (the page remembers the last
    // user chosen in any tab, bob: back to alice).
    await page.reload();
    await page.locator('#account').waitFor();
    await page.selectOption('#user', 'alice');
    await page.waitForFunction(() => !(document.querySelector('#user') as HTMLSelectElement).disabled);
    await mine(page).waitFor();
    const status = await asAlice(t, `${t.stack.urls.api}/${aliceAsset(imageId)}`);
    expect(status.status).to.equal(200);
    const { manifest } = (await status.json()) as { manifest: Manifest };
    for (const variant of manifest.variants) expect((await fetch(variant.url)).status, variant.url).to.equal(200);
    await mine(page).getByRole('button', { name: 'Delete two-tabs.jpg' }).click();
    await mine(page).waitFor({ state: 'detached' });
    expect((await fetch(manifest.variants[0]!.url)).status, 'the last upload took the image').to.equal(404);
    expect(pageErrors).to.deep.equal([]);
  });

  it('uploads through the file input and shows the <picture> and every variant', async () => {
    const photoPath = join(files, 'harbour.jpg');
    writeFileSync(photoPath, await makePhoto({ width: 1200, height: 800, seed: 31 }));
    const notImage = join(files, 'notes.jpg');
    const notes = Buffer.from('these are notes, not a photo\n');
    writeFileSync(notImage, notes);
    // The page must show the API's own message for these bytes, whatever formats it names.
    const apiMessage = await probeImage(notes, {
      maxBytes: 1e9,
      maxPixels: 1e9,
      maxFrames: 1,
      allowSvg: false,
      widths: [],
      formats: [],
    }).then(
      () => expect.fail('the notes were probed as an image'),
      (error: Error) => error.message,
    );
    await page.setInputFiles('#files', [notImage, photoPath]);

    // The error, as the API returned it: message and code.
    const failed = page.locator('.card', { hasText: 'notes.jpg' });
    await failed.locator('.error').waitFor({ timeout: 30_000 });
    expect(await failed.getAttribute('data-state')).to.equal('failed');
    expect(await failed.locator('.error-message').textContent()).to.equal(apiMessage);
    expect(apiMessage).to.match(/^The file is not a supported image \(.*HEIC.*\)\.$/);
    expect(await failed.locator('.error-code code').textContent()).to.equal('not_an_image');

    const card = page.locator('.card', { hasText: 'harbour.jpg' });
    await card.locator('table.variants').waitFor({ timeout: 120_000 });
    expect(await card.getAttribute('data-state')).to.equal('ready');
    const id = await card.locator('.image-id code').textContent();
    const manifest = (
      (await (await asAlice(t, `${t.stack.urls.api}/${aliceAsset(id ?? '')}`)).json()) as { manifest: Manifest }
    ).manifest;
    expect(manifest.variants).to.have.length(9);
    expect(await card.locator('table.variants tbody tr').count()).to.equal(manifest.variants.length);
    const links = await card
      .locator('table.variants tbody a')
      .evaluateAll((as) => as.map((a) => (a as HTMLAnchorElement).href));
    expect(links).to.deep.equal(manifest.variants.map((v) => v.url));
    expect(await card.locator('table.totals tbody tr').count()).to.equal(3);

    // The <picture> is built from the manifest alone: AVIF and WebP sources, a JPEG <img>.
    const sources = await card
      .locator('picture source')
      .evaluateAll((ss) => ss.map((s) => (s as HTMLSourceElement).type));
    expect(sources).to.deep.equal(['image/avif', 'image/webp']);
    const img = card.locator('picture img');
    await untilLoaded(img, 30_000);
    const loaded = await img.evaluate((el) => ({
      width: (el as HTMLImageElement).naturalWidth,
      src: (el as HTMLImageElement).currentSrc,
    }));
    expect(loaded.width).to.be.greaterThan(0);
    expect(manifest.variants.map((v) => v.url)).to.include(loaded.src);
    // Chromium chose the AVIF source and decoded it: AVIF is 10-bit by default (AVIF_BITDEPTH).
    expect(loaded.src).to.match(/\.avif$/);
    const status = await card.locator('.status').textContent();
    expect(status).to.contain('Ready: 9 variants');
    // The pipeline's own upload→ready measure, from the manifest (docs/observability.md).
    expect(status).to.match(/Upload to ready: \d+\.\d s, \d+\.\d CPU-s\./);

    mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
    await page.evaluate(() => {
      (document.activeElement as HTMLElement | null)?.blur();
      window.scrollTo(0, 0);
    });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  it("paints the manifest's placeholder (colour + ThumbHash) behind the <img> until the variant loads", async () => {
    // Variant requests are held until the placeholder has been checked, then let through.
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const isVariant = (url: URL) => /\/\d+w\.(avif|webp|jpg)$/.test(url.pathname);
    await page.route(isVariant, async (route) => {
      await released;
      await route.continue();
    });
    try {
      const photoPath = join(files, 'placeholder.jpg');
      writeFileSync(photoPath, await makePhoto({ width: 900, height: 600, seed: 37 }));
      await page.setInputFiles('#files', [photoPath]);
      const card = page.locator('.card', { hasText: 'placeholder.jpg' });
      await card.locator('table.variants').waitFor({ timeout: 120_000 });
      const id = await card.locator('.image-id code').textContent();
      const manifest = (
        (await (await asAlice(t, `${t.stack.urls.api}/${aliceAsset(id ?? '')}`)).json()) as {
          manifest: Manifest & { placeholder?: { color: string } };
        }
      ).manifest;
      expect(manifest.placeholder?.color).to.match(/^#[0-9a-f]{6}$/);
      const img = card.locator('picture img');
      const painted = await img.evaluate((el) => ({
        color: (el as HTMLImageElement).style.backgroundColor,
        image: (el as HTMLImageElement).style.backgroundImage,
      }));
      const hex = manifest.placeholder!.color;
      const rgb = `rgb(${[1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;
      expect(painted.color).to.equal(rgb);
      expect(painted.image).to.match(/^url\("data:image\/png;base64,/);
      release();
      await untilLoaded(img, 30_000);
      expect(await img.evaluate((el) => (el as HTMLImageElement).style.backgroundImage)).to.equal('');
      expect(pageErrors).to.deep.equal([]);
    } finally {
      release();
      await page.unroute(isVariant);
    }
  });

  it('shows a finished variant at once while the image processes, then swaps in the <picture>', async () => {
    const bytes = await makePhoto({ width: 1200, height: 800, seed: 43 });
    const id = imageIdOf(bytes);
    const photoPath = join(files, 'early.jpg');
    writeFileSync(photoPath, bytes);
    // The image's first variant write goes through; the next one (any job's) waits until released,
    // so the image stays processing with at least one variant finished.
    const variantWrite = { method: 'POST', path: new RegExp(`/b/${t.stack.buckets.images}/o\\?.*name=${id}%2F`) };
    const first = t.stack.holdStorageRequests(variantWrite);
    let next: { release(): void } | undefined;
    try {
      // On the page already when the tests before ran (run alone, e.g. with --grep, it opens it).
      if (!page.url().startsWith(t.stack.urls.web)) await page.goto(t.stack.urls.web);
      await page.setInputFiles('#files', [photoPath]);
      await first.arrived;
      next = t.stack.holdStorageRequests(variantWrite);
      first.release();
      const card = page.locator('.card', { hasText: 'early.jpg' });
      const early = card.locator('.preview-early img');
      await untilLoaded(early, 60_000);
      expect(await card.getAttribute('data-state')).to.equal('processing');
      const status = await asAlice(t, `${t.stack.urls.api}/${aliceAsset(id ?? '')}`);
      expect(status.status).to.equal(202);
      const { finished } = (await status.json()) as { finished: Array<{ url: string; width: number }> };
      const src = await early.getAttribute('src');
      const shown = finished.find((v) => v.url === src);
      expect(shown, `${src} is listed as finished`).to.not.equal(undefined);
      // The widest finished variant that fits the 440 px early look at 1×, else the narrowest.
      const fitting = finished.filter((v) => v.width <= 440).map((v) => v.width);
      expect(shown!.width).to.equal(
        fitting.length > 0 ? Math.max(...fitting) : Math.min(...finished.map((v) => v.width)),
      );

      next.release();
      await card.locator('table.variants').waitFor({ timeout: 120_000 });
      expect(await card.getAttribute('data-state')).to.equal('ready');
      expect(await card.locator('.preview-early').count(), 'the early look is gone').to.equal(0);
      const manifest = (
        (await (await asAlice(t, `${t.stack.urls.api}/${aliceAsset(id ?? '')}`)).json()) as { manifest: Manifest }
      ).manifest;
      expect(
        manifest.variants.map((v) => v.url),
        'the manifest serves the same URL',
      ).to.include(src);
      expect(pageErrors).to.deep.equal([]);
    } finally {
      first.release();
      next?.release();
    }
  });

  it("shows the preview the upload's 202 carries before any status poll is answered (PREVIEW=inline)", async () => {
    const bytes = await makePhoto({ width: 1600, height: 1200, seed: 47 });
    const id = imageIdOf(bytes);
    const photoPath = join(files, 'inline.jpg');
    writeFileSync(photoPath, bytes);
    // Every status poll of this upload is held unanswered, so whatever the page shows came from the 202.
    const held: Route[] = [];
    const isStatus = (url: URL) => url.pathname.endsWith(`/${aliceAsset(id)}`);
    await page.route(isStatus, (route) => {
      held.push(route);
    });
    try {
      if (!page.url().startsWith(t.stack.urls.web)) await page.goto(t.stack.urls.web);
      const answered = page.waitForResponse((r) => r.request().method() === 'POST' && r.status() === 202);
      await page.setInputFiles('#files', [photoPath]);
      const accepted = (await (await answered).json()) as { preview?: { url: string; width: number } };
      expect(accepted.preview, 'the 202 carries the preview').to.not.equal(undefined);
      const card = page.locator('.card', { hasText: 'inline.jpg' });
      const early = card.locator('.preview-early img');
      await untilLoaded(early, 30_000);
      expect(await early.getAttribute('src')).to.equal(accepted.preview?.url);
      expect(await card.getAttribute('data-state')).to.equal('processing');
    } finally {
      await page.unroute(isStatus);
      await Promise.all(held.map((route) => route.continue().catch(() => undefined)));
    }
    const card = page.locator('.card', { hasText: 'inline.jpg' });
    await card.locator('table.variants').waitFor({ timeout: 120_000 });
    expect(await card.getAttribute('data-state')).to.equal('ready');
    expect(await card.locator('.preview-early').count(), 'the early look is gone').to.equal(0);
  });

  it('takes dropped files too', async () => {
    const card = page.locator('.card', { hasText: 'harbour.jpg' });
    const small = await card.locator('table.variants tbody a').last().getAttribute('href');
    await page.evaluate(
      async (url) => {
        const bytes = await (await fetch(url!)).blob();
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], 'dropped.jpg', { type: 'image/jpeg' }));
        const zone = document.querySelector('#dropzone')!;
        for (const type of ['dragenter', 'dragover', 'drop']) {
          zone.dispatchEvent(new DragEvent(type, { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }
      },
      small?.replace(/1024w\.jpg$/, '320w.jpg'),
    );
    const dropped = page.locator('.card', { hasText: 'dropped.jpg' });
    await dropped.locator('table.variants').waitFor({ timeout: 60_000 });
    // A 320-wide image with WIDTHS 320,640,1024 gets one width in three formats.
    expect(await dropped.locator('table.variants tbody tr').count()).to.equal(3);
  });

  it('sends a 60 MB file straight to the bucket by signed URL, with the same progress bar and status', async () => {
    const bigPath = join(files, 'scan.png');
    writeFileSync(bigPath, await noisePng(4500));
    const requests: string[] = [];
    const onRequest = (request: { method(): string; url(): string }) =>
      void requests.push(`${request.method()} ${request.url().split('?')[0]}`);
    page.on('request', onRequest);
    const progress: number[] = [];
    await page.exposeFunction('recordProgress', (value: number) => void progress.push(value));
    await page.goto(t.stack.urls.web);
    await page.evaluate(() => {
      // Records every value the card's progress bar takes while uploading.
      new MutationObserver((records) => {
        for (const record of records) {
          const target = record.target as HTMLProgressElement;
          if (target.matches?.('.card progress') && target.hasAttribute('value'))
            (window as unknown as { recordProgress(v: number): void }).recordProgress(target.value);
        }
      }).observe(document.body, { subtree: true, attributes: true, attributeFilter: ['value'] });
    });
    await page.setInputFiles('#files', [bigPath]);
    const card = page.locator('.card', { hasText: 'scan.png' });
    await card.locator('table.variants, .error').first().waitFor({ timeout: 170_000 });
    page.off('request', onRequest);
    expect(await card.getAttribute('data-state'), (await card.textContent()) ?? '').to.equal('ready');
    expect(await card.locator('.status').textContent()).to.contain('Ready: 9 variants');
    expect(requests).to.include(`POST ${new URL('/uploads/signed-url', t.stack.urls.web).href}`);
    const put = requests.find((r) => r.startsWith(`PUT ${t.stack.urls.storage}/${t.stack.buckets.uploads}/incoming/`));
    expect(put, requests.join('\n')).to.be.a('string');
    expect(put).to.match(/\/scan\.png$/);
    expect(requests.filter((r) => r === `POST ${t.stack.urls.api}`)).to.deep.equal(
      [],
      'the file never went through the function',
    );
    expect(
      progress.some((v) => v > 0 && v < 100),
      `progress values: ${progress.join(',')}`,
    ).to.equal(true);
    expect(pageErrors).to.deep.equal([]);
  });

  it('fits a 360 px window and lists earlier uploads after a reload', async () => {
    await page.setViewportSize({ width: 360, height: 740 });
    await page.reload();
    const cards = page.locator('.card');
    await page.locator('.card[data-state="ready"]').first().waitFor({ timeout: 15_000 });
    expect(await cards.count()).to.be.at.least(2);
    await page.waitForFunction(() => document.querySelectorAll('.card[data-state="ready"]').length >= 2, undefined, {
      timeout: 15_000,
    });
    const overflow = await page.evaluate(
      () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
    );
    expect(overflow, 'horizontal overflow in px').to.be.at.most(0);
    expect(pageErrors).to.deep.equal([]);
  });

  it('deletes an image with its Delete button: the card goes, the API and the variant URLs answer 404', async () => {
    const card = page.locator('.card[data-state="ready"]', { hasText: 'dropped.jpg' });
    const id = await card.locator('.image-id code').textContent();
    const variant = await card.locator('table.variants tbody a').first().getAttribute('href');
    await card.getByRole('button', { name: 'Delete' }).click();
    await card.waitFor({ state: 'detached', timeout: 30_000 });
    expect((await asAlice(t, `${t.stack.urls.api}/${aliceAsset(id ?? '')}`)).status).to.equal(404);
    expect((await page.request.get(variant!)).status()).to.equal(404);
    // Gone from the remembered list too: a reload does not bring it back.
    await page.reload();
    await page.locator('.card').first().waitFor({ timeout: 15_000 });
    expect(await page.locator('.card', { hasText: 'dropped.jpg' }).count()).to.equal(0);
    expect(pageErrors).to.deep.equal([]);
  });

  it('sends the metadata object with the upload only when given, and shows the metadata the server answers for it', async () => {
    const withPath = join(files, 'with-metadata.jpg');
    const withoutPath = join(files, 'without-metadata.jpg');
    writeFileSync(withPath, await makePhoto({ width: 400, height: 300, seed: 81 }));
    writeFileSync(withoutPath, await makePhoto({ width: 400, height: 300, seed: 83 }));
    // The metadata part of each POST /uploads, by file name ('' when the body has none).
    const sent = new Map<string, string>();
    const isUpload = (url: URL) => url.pathname === '/uploads';
    await page.route(isUpload, async (route) => {
      const body = route.request().postDataBuffer()?.toString('latin1') ?? '';
      const file = /name="file"; filename="([^"]+)"/.exec(body)?.[1];
      if (route.request().method() === 'POST' && file)
        sent.set(file, /name="metadata"\r\n\r\n([^\r]*)\r\n/.exec(body)?.[1] ?? '');
      await route.continue();
    });
    try {
      await page.goto(t.stack.urls.web);
      await page.locator('#account').waitFor();
      await page.fill('#metadata', '{"postId":"p1","album":"harbour"}');
      await page.setInputFiles('#files', [withPath]);
      const card = page.locator('.card', { hasText: 'with-metadata.jpg' });
      await card.locator('table.variants').waitFor({ timeout: 120_000 });
      expect(sent.get('with-metadata.jpg')).to.equal('{"postId":"p1","album":"harbour"}');
      expect(JSON.parse((await card.locator('.upload-metadata pre').textContent()) ?? '')).to.deep.equal({
        postId: 'p1',
        album: 'harbour',
      });

      await page.fill('#metadata', '');
      await page.setInputFiles('#files', [withoutPath]);
      const plain = page.locator('.card', { hasText: 'without-metadata.jpg' });
      await plain.locator('table.variants').waitFor({ timeout: 120_000 });
      expect(sent.get('without-metadata.jpg'), 'no metadata part without metadata').to.equal('');
      expect(await plain.locator('.upload-metadata').count()).to.equal(0);
    } finally {
      await page.unroute(isUpload);
      await page.fill('#metadata', '');
    }
    expect(pageErrors).to.deep.equal([]);
  });
});

describe('try-it page in Chromium, with ASPECTS=1:1,16:9', function () {
  this.timeout(180_000);
  const s = useStackAndPage({ WIDTHS: '320,640', ASPECTS: '1:1,16:9', CROP_STRATEGY: 'centre' });
  let t: TestStack;
  let page: Page;
  let files: string;
  before(() => {
    ({ t, page, files } = s);
  });

  it("shows each aspect's <picture> beside the uncropped one, with its crop drawn on a small copy", async () => {
    await page.goto(t.stack.urls.web);
    const photoPath = join(files, 'quay.jpg');
    writeFileSync(photoPath, await makePhoto({ width: 900, height: 600, seed: 33 }));
    await page.setInputFiles('#files', [photoPath]);
    const card = page.locator('.card', { hasText: 'quay.jpg' });
    await card.locator('table.variants').waitFor({ timeout: 120_000 });
    const id = await card.locator('.image-id code').textContent();
    const manifest = (
      (await (await asAlice(t, `${t.stack.urls.api}/${aliceAsset(id ?? '')}`)).json()) as { manifest: Manifest }
    ).manifest;
    expect(Object.keys(manifest.aspects ?? {})).to.deep.equal(['1:1', '16:9']);
    // The local images route serves the aspect folders, and still nothing deeper.
    expect((await fetch(`${t.stack.urls.images}/${id}/1x1/320w.jpg`)).status).to.equal(200);
    for (const name of [`${id}/1x1/x/320w.jpg`, `${id}/a/320w.jpg`, `${id}/0x1/320w.jpg`]) {
      expect((await fetch(`${t.stack.urls.images}/${name}`)).status, name).to.equal(404);
    }

    // The uncropped picture is still there, as before; each aspect is a <picture> of its own.
    expect(await card.locator('.preview > picture').count()).to.equal(1);
    expect(
      await card.locator('.aspect').evaluateAll((fs) => fs.map((f) => f.getAttribute('data-aspect'))),
    ).to.deep.equal(['1:1', '16:9']);
    for (const [aspect, section] of Object.entries(manifest.aspects!)) {
      const figure = card.locator(`.aspect[data-aspect="${aspect}"]`);
      const sources = await figure
        .locator('picture source')
        .evaluateAll((ss) => ss.map((s) => (s as HTMLSourceElement).srcset));
      expect(sources).to.deep.equal(
        ['avif', 'webp'].map((format) =>
          section.variants
            .filter((v) => v.format === format)
            .map((v) => `${v.url} ${v.width}w`)
            .join(', '),
        ),
      );
      const img = figure.locator('picture img');
      await untilLoaded(img, 30_000);
      const loaded = await img.evaluate((el) => ({
        width: (el as HTMLImageElement).naturalWidth,
        height: (el as HTMLImageElement).naturalHeight,
        src: (el as HTMLImageElement).currentSrc,
      }));
      expect(section.variants.map((v) => v.url)).to.include(loaded.src);
      expect(loaded.width / loaded.height).to.be.closeTo(section.crop.width / section.crop.height, 0.02);

      // The rectangle on the small copy sits where the crop is, in proportion to the original.
      const map = await figure.locator('.crop-map').boundingBox();
      const rect = await figure.locator('.crop-rect').boundingBox();
      const { width, height } = manifest.original;
      expect((rect!.x - map!.x) / map!.width).to.be.closeTo(section.crop.left / width, 0.02);
      expect((rect!.y - map!.y) / map!.height).to.be.closeTo(section.crop.top / height, 0.02);
      expect(rect!.width / map!.width).to.be.closeTo(section.crop.width / width, 0.02);
      expect(rect!.height / map!.height).to.be.closeTo(section.crop.height / height, 0.02);
      expect(await figure.locator('figcaption').textContent()).to.contain(
        `crop ${section.crop.width} × ${section.crop.height}`,
      );
    }
  });
});

describe('try-it page in Chromium, with MAX_UPLOAD_BYTES at 4 MiB: an oversized upload is read as a 413 and goes by signed URL', function () {
  this.timeout(180_000);
  const MiB = 1024 * 1024;
  const s = useStackAndPage({ WIDTHS: '320', MAX_UPLOAD_BYTES: String(4 * MiB) });
  const message = 'The file is larger than the limit of 4194304 bytes.';

  it('reads each 413 (not a network error) and sends the file by signed URL instead, as the client package decides (three 5 MB files at once)', async () => {
    const { t, page, files, pageErrors } = s;
    await page.goto(t.stack.urls.web);
    // Under the client's 20 MiB signed-URL threshold, so each goes to POST /uploads first; over
    // the server's 4 MiB, so each is refused there. The page's own code never knew this fallback:
    // that it happens shows the upload went through the client package.
    const names = ['big-1.png', 'big-2.png', 'big-3.png'];
    const paths = names.map((name) => join(files, name));
    for (const path of paths) writeFileSync(path, await noisePng(1300));
    const answers: string[] = [];
    const onResponse = (response: { status(): number; request(): { method(): string; url(): string } }) => {
      const url = response.request().url().split('?')[0];
      answers.push(`${response.request().method()} ${url} ${response.status()}`);
    };
    page.on('response', onResponse);
    try {
      await page.setInputFiles('#files', paths);
      for (const name of names) {
        const card = page.locator('.card', { hasText: name });
        await card.locator('table.variants, .error').first().waitFor({ timeout: 150_000 });
        expect(await card.getAttribute('data-state'), (await card.textContent()) ?? name).to.equal('ready');
      }
    } finally {
      page.off('response', onResponse);
    }
    const count = (line: string) => answers.filter((a) => a === line).length;
    expect(count(`POST ${t.stack.urls.api} 413`), answers.join('\n')).to.equal(3);
    expect(count(`POST ${t.stack.urls.api}/signed-url 201`), answers.join('\n')).to.equal(3);
    const puts = answers.filter((a) =>
      a.startsWith(`PUT ${t.stack.urls.storage}/${t.stack.buckets.uploads}/incoming/`),
    );
    expect(puts, answers.join('\n')).to.have.length(3);
    expect(pageErrors).to.deep.equal([]);
  });

  it("lets the page's fetch read the 413 and its JSON for a 12 MiB body (3 tries)", async () => {
    const { page } = s;
    const answers = await page.evaluate(async () => {
      const results: Array<{ status: number; body: string } | { error: string }> = [];
      // Signed in as the page is: the size is checked once the caller is known.
      const config = (await (await fetch('/page-config.json')).json()) as { signInUrl: string };
      const { idToken } = (await (await fetch(`${config.signInUrl}?user=alice`)).json()) as { idToken: string };
      for (let attempt = 0; attempt < 3; attempt++) {
        try {
          const response = await fetch('/uploads', {
            method: 'POST',
            headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${idToken}` },
            body: new Blob([new Uint8Array(12 * 1024 * 1024)]),
          });
          results.push({ status: response.status, body: await response.text() });
        } catch (error) {
          results.push({ error: String(error) });
        }
      }
      return results;
    });
    for (const answer of answers) {
      expect(answer).to.have.property('status', 413);
      const body = JSON.parse((answer as { body: string }).body);
      expect(body.error).to.include({ code: 'payload_too_large', message });
    }
  });
});
