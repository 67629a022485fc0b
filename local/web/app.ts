/**
 * The try-it page, built on the client package (client/, served as /client.js from its shipped
 * bundle): `upload` sends each picked or dropped image by `POST /uploads` or, for large files (or
 * on a 413), by a signed URL straight to Cloud Storage, with the card's progress bar fed by its
 * onProgress; `waitUntilReadyStatus` polls until it is ready or failed, and its onProgress shows the
 * best variant already finished at once, until the `<picture>` takes its place. A ready image is a
 * `<picture>` from `pictureSources(manifest)` plus a table of its variants, each cropped aspect
 * (ASPECTS) as its own `<picture>` beside it, with the crop drawn on a small copy of the uncropped
 * image; `placeholderDataURL` paints behind each until it loads. "Your uploads" is `listUploads`,
 * Delete is `deleteUpload`. Errors are shown as the API returns them. Plain DOM, no framework; ids
 * seen are kept in localStorage so that a reload (or a later `npm start`) lists them again.
 */

import {
  ApiError,
  type ApiOptions,
  deleteUpload,
  type FinishedVariant,
  type HasPlaceholder,
  listUploads,
  type Manifest as ClientManifest,
  type ManifestVariant,
  pictureSources,
  placeholderDataURL,
  type ReadyStatus,
  type UploadListItem,
  type UploadResult,
  type UploadStatus,
  upload,
  waitUntilReadyStatus,
} from './client.js';

/** The manifest as the client types it, and the pipeline's own timing, which only this page shows. */
type Manifest = ClientManifest & { readonly processing?: { uploadToReadyMs?: number; cpuSeconds: number } };

/** What the upload's metadata field asks for: a JSON object to send, nothing, or why it cannot be sent. */
type MetadataInput = { metadata?: Record<string, unknown> } | { error: string };

// ---- Small helpers.

const MAX_PARALLEL_UPLOADS = 3;
/**
 * How long a card waits for its image before it says so: a 60 MB scan takes a couple of minutes
 * here. The ID token is renewed before a wait that it could not outlast (apiOptions).
 */
const FOLLOW_TIMEOUT_MS = 10 * 60_000;
const STORAGE_KEY = 'image-pipeline.uploads';
const FORMAT_LABELS: Record<string, string> = { avif: 'AVIF', webp: 'WebP', jpeg: 'JPEG' };

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<Record<string, string>> = {},
  ...children: Array<Node | string>
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[unit]}`;
}

/** Change in size against the original's bytes: "−94 %" (smaller) or "+12 %" (larger), with words for a tooltip. */
function saving(bytes: number, original: number): { text: string; words: string; fraction: number; larger: boolean } {
  if (original <= 0) return { text: '–', words: 'original size unknown', fraction: 0, larger: false };
  const fraction = 1 - bytes / original;
  const percent = Math.abs(fraction * 100);
  const shown = percent >= 10 ? percent.toFixed(0) : percent.toFixed(1);
  return fraction >= 0
    ? { text: `−${shown} %`, words: `${shown} % smaller than the original`, fraction, larger: false }
    : { text: `+${shown} %`, words: `${shown} % larger than the original`, fraction, larger: true };
}

function formatLabel(format: string): string {
  return FORMAT_LABELS[format] ?? format.toUpperCase();
}

/** The client's errors as they are; anything else (a bug, a browser refusal) as one the card can show. */
function asApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  return new ApiError({
    status: 0,
    code: 'page_error',
    message: error instanceof Error ? error.message : String(error),
    retryable: false,
  });
}

// ---- Signing in: with UPLOAD_AUTH=jwt the local stack's own issuer signs in a dev user.

/** What `/page-config.json` says (local/web-server.ts). */
interface PageConfig {
  auth: 'jwt' | 'token' | 'none';
  signInUrl?: string;
  users?: string[];
}

const USER_KEY = 'image-pipeline.user';
let pageConfig: PageConfig = { auth: 'none' };
let session: { user: string; idToken: string; expiresAt: number } | undefined;

async function loadPageConfig(): Promise<PageConfig> {
  try {
    const response = await fetch('/page-config.json', { cache: 'no-store' });
    if (response.ok) return (await response.json()) as PageConfig;
  } catch {
    /* an older server: no sign-in */
  }
  return { auth: 'none' };
}

/** Gets an ID token for `user` from the local issuer's dev sign-in. */
async function signIn(user: string): Promise<void> {
  if (!pageConfig.signInUrl) return;
  const response = await fetch(`${pageConfig.signInUrl}?user=${encodeURIComponent(user)}`, { cache: 'no-store' });
  if (!response.ok) throw new Error(`The local issuer did not sign in ${user} (${response.status}).`);
  const body = (await response.json()) as { idToken: string; expiresAt: string };
  session = { user, idToken: body.idToken, expiresAt: Date.parse(body.expiresAt) };
  try {
    localStorage.setItem(USER_KEY, user);
  } catch {
    /* remembering the user is a convenience */
  }
}

/**
 * What every client call takes: this origin (the web server hands /uploads to the upload
 * function) and the signed-in user's ID token, renewed while it has less than the longest wait
 * (FOLLOW_TIMEOUT_MS) and a minute left, since the client sends one token for a whole wait.
 */
async function apiOptions(): Promise<ApiOptions> {
  await started;
  if (session && session.expiresAt - Date.now() < FOLLOW_TIMEOUT_MS + 60_000) await signIn(session.user);
  return { baseUrl: location.origin, idToken: session?.idToken };
}

// ---- Remembering uploads across reloads.

interface Remembered {
  id: string;
  filename: string;
}

/** Each signed-in user's uploads are remembered apart. */
function storageKey(): string {
  return session ? `${STORAGE_KEY}.${session.user}` : STORAGE_KEY;
}

function remembered(): Remembered[] {
  try {
    const parsed = JSON.parse(localStorage.getItem(storageKey()) ?? '[]') as unknown;
    return Array.isArray(parsed)
      ? parsed.filter((r): r is Remembered => typeof r?.id === 'string' && /^[0-9a-f]{32}$/.test(r.id))
      : [];
  } catch {
    return [];
  }
}

function remember(entry: Remembered): void {
  try {
    const list = [entry, ...remembered().filter((r) => r.id !== entry.id)].slice(0, 24);
    localStorage.setItem(storageKey(), JSON.stringify(list));
  } catch {
    /* storage full or disabled: the list is a convenience */
  }
}

function forget(id?: string): void {
  try {
    if (id === undefined) localStorage.removeItem(storageKey());
    else localStorage.setItem(storageKey(), JSON.stringify(remembered().filter((r) => r.id !== id)));
  } catch {
    /* ignore */
  }
}

// ---- One card per upload.

type CardState = 'queued' | 'uploading' | 'processing' | 'ready' | 'failed';

const STATE_LABELS: Record<CardState, string> = {
  queued: 'Waiting',
  uploading: 'Uploading',
  processing: 'Processing',
  ready: 'Ready',
  failed: 'Failed',
};

class UploadCard {
  readonly root: HTMLLIElement;
  private readonly badge: HTMLSpanElement;
  private readonly status: HTMLParagraphElement;
  private readonly progress: HTMLProgressElement;
  private readonly body: HTMLDivElement;
  private readonly actions: HTMLDivElement;
  private readonly meta: HTMLParagraphElement;
  private lastAnnounced = '';
  private previewUrl: string | undefined;
  id: string | undefined;
  /** Listed from an earlier visit rather than uploaded now. */
  restored = false;

  constructor(
    readonly filename: string,
    details: string,
    file?: File,
  ) {
    const titleId = `card-${Math.random().toString(36).slice(2)}`;
    this.badge = el('span', { class: 'badge' });
    this.status = el('p', { class: 'status', role: 'status' });
    this.progress = el('progress', { class: 'progress', max: '100', 'aria-labelledby': titleId });
    this.body = el('div', { class: 'card-body' });
    this.actions = el('div', { class: 'card-actions' });
    this.meta = el('p', { class: 'card-meta', text: details });
    const thumb = el('div', { class: 'thumb', 'aria-hidden': 'true' });
    if (file?.type.startsWith('image/')) {
      this.previewUrl = URL.createObjectURL(file);
      const img = el('img', { src: this.previewUrl, alt: '' });
      img.addEventListener('error', () => img.remove(), { once: true });
      thumb.append(img);
    }
    this.root = el(
      'li',
      { class: 'card', 'aria-labelledby': titleId },
      el(
        'div',
        { class: 'card-head' },
        thumb,
        el('div', { class: 'card-title' }, el('h3', { id: titleId, text: filename }), this.meta),
        this.badge,
      ),
      this.status,
      this.progress,
      this.actions,
      this.body,
    );
  }

  setState(state: CardState, message: string, progress?: number): void {
    this.root.dataset.state = state;
    this.badge.textContent = STATE_LABELS[state];
    this.badge.className = `badge badge-${state}`;
    // Announce changes of wording, not every percent: the progress bar carries the detail.
    if (message !== this.lastAnnounced) {
      this.status.textContent = message;
      this.lastAnnounced = message;
    }
    if (progress === undefined) {
      this.progress.hidden = state === 'ready' || state === 'failed';
      this.progress.removeAttribute('value');
    } else {
      this.progress.hidden = false;
      this.progress.value = Math.max(0, Math.min(100, progress));
    }
  }

  setMeta(text: string): void {
    this.meta.textContent = text;
  }

  setActions(...buttons: HTMLElement[]): void {
    this.actions.replaceChildren(...buttons);
  }

  showError(error: ApiError): void {
    const code = el('code', { text: error.code });
    const box = el(
      'div',
      { class: 'error', role: 'alert' },
      el('p', { class: 'error-message', text: error.message }),
      el(
        'p',
        { class: 'error-code' },
        'code ',
        code,
        error.status ? ` · HTTP ${error.status}` : '',
        error.retryable ? ' · retryable' : '',
      ),
    );
    this.body.replaceChildren(box);
    // The alert announces the message; the status line would only repeat it.
    this.setState('failed', `Failed: ${error.message} (${error.code})`);
  }

  /** A status answer while the image is made: how far it is, and the best variant already finished. */
  showProgress(status: Exclude<UploadStatus, { status: 'ready' }>): void {
    if (status.status === 'waiting') {
      this.setState('processing', 'Uploaded; waiting for the pipeline to take it…');
      return;
    }
    this.showFinished(status.finished ?? [], status, this.filename);
    const done = status.done ?? 0;
    const total = status.total ?? 0;
    this.setState(
      'processing',
      total > 0 ? `Processing: ${done} of ${total} variants made.` : 'Processing…',
      total > 0 ? (100 * done) / total : undefined,
    );
  }

  /**
   * Shows the best variant already finished (bestFinished) while the image processes; the same
   * element stays while the choice does not change, so polling never reloads it.
   */
  showFinished(finished: readonly FinishedVariant[], placeholder: HasPlaceholder, alt: string): void {
    const best = bestFinished(finished, Math.min(this.body.clientWidth || EARLY_WIDTH, EARLY_WIDTH) * devicePixelRatio);
    if (!best || this.body.querySelector('.preview-early img')?.getAttribute('src') === best.url) return;
    const img = el('img', {
      src: best.url,
      width: String(best.width),
      height: String(best.height),
      alt,
      decoding: 'async',
    });
    showPlaceholder(img, placeholder);
    const caption = `Early look: the ${best.width} px ${formatLabel(best.format)}, finished first; the full set follows.`;
    this.body.replaceChildren(
      el('figure', { class: 'preview preview-early' }, img, el('figcaption', { text: caption })),
    );
  }

  /** The ready answer: the image's manifest, and what belongs to this upload (its metadata). */
  showReady(ready: ReadyStatus): void {
    const manifest: Manifest = ready.manifest;
    // The card keeps the upload's id (status and DELETE take it); the manifest's is the image's.
    this.body.replaceChildren(renderResult(manifest, this.filename, ready.metadata));
    const formats = manifest.formats.map(formatLabel).join(', ');
    // Upload→ready as the pipeline measured it (docs/observability.md); absent in older manifests.
    const { processing } = manifest;
    const timing =
      processing?.uploadToReadyMs === undefined
        ? ''
        : ` Upload to ready: ${(processing.uploadToReadyMs / 1000).toFixed(1)} s, ${processing.cpuSeconds.toFixed(1)} CPU-s.`;
    this.setState('ready', `Ready: ${manifest.variants.length} variants in ${formats}.${timing}`);
    this.setMeta(
      `${manifest.original.width} × ${manifest.original.height} ${manifest.original.format.toUpperCase()} · ${formatBytes(manifest.original.bytes)}`,
    );
    this.setActions(deleteButton(this, this.id ?? manifest.id));
    if (this.previewUrl) {
      URL.revokeObjectURL(this.previewUrl);
      this.previewUrl = undefined;
      const thumb = this.root.querySelector('.thumb img');
      const smallest = manifest.variants.find((v) => v.format === manifest.formats[manifest.formats.length - 1]);
      if (thumb && smallest) thumb.setAttribute('src', smallest.url);
    }
  }
}

// ---- The early look: one finished variant while the rest is made.

/** CSS pixels the early look is shown at, at most: the ready view's `<picture>` width on a wide page. */
const EARLY_WIDTH = 440;

/**
 * The finished variant to show early: uncropped, the widest that is not wider than `targetWidth`
 * device pixels (no bytes wasted), or the narrowest when all are wider.
 */
export function bestFinished(finished: readonly FinishedVariant[], targetWidth: number): FinishedVariant | undefined {
  const uncropped = finished.filter((v) => v.aspect === undefined).sort((a, b) => a.width - b.width);
  return uncropped.filter((v) => v.width <= targetWidth).at(-1) ?? uncropped[0];
}

// ---- The ready view: <picture> from the manifest alone, and the variant tables.

const PREVIEW_SIZES = '(min-width: 1000px) 440px, (min-width: 720px) 45vw, calc(100vw - 4rem)';

/**
 * `<picture>` from the manifest alone (or one aspect's crop of it), as the client's pictureSources
 * lays it out: a `<source>` per format in the manifest's preference order, the JPEG `<img>`.
 */
export function buildPicture(
  manifest: Manifest,
  alt: string,
  sizes = PREVIEW_SIZES,
  aspect?: string,
): HTMLPictureElement {
  const { sources, img } = pictureSources(manifest, { sizes, aspect });
  return el(
    'picture',
    {},
    ...sources.map((source) => el('source', { type: source.type, srcset: source.srcset, sizes: source.sizes })),
    el('img', {
      src: img.src,
      srcset: img.srcset,
      sizes: img.sizes,
      width: String(img.width),
      height: String(img.height),
      alt,
      decoding: 'async',
    }),
  );
}

const ASPECT_SIZES = '(min-width: 720px) 200px, 45vw';

/**
 * Each aspect's `<picture>` (from its manifest section alone), and beside it the crop rectangle
 * drawn over a small copy of the uncropped image, so one can see what the crop kept.
 */
function renderAspects(manifest: Manifest, alt: string): HTMLElement | undefined {
  const aspects = Object.entries(manifest.aspects ?? {});
  if (aspects.length === 0) return undefined;
  const { width, height } = manifest.original;
  const smallest = [...manifest.variants]
    .filter((v) => v.format === manifest.formats[manifest.formats.length - 1])
    .sort((a, b) => a.width - b.width)[0];
  const percent = (value: number, of: number) => `${((100 * value) / of).toFixed(3)}%`;
  const figures = aspects.map(([aspect, section]) => {
    const { crop } = section;
    const map = el('div', {
      class: 'crop-map',
      role: 'img',
      'aria-label': `Where the ${aspect} crop sits in the original`,
    });
    map.style.aspectRatio = `${width} / ${height}`;
    if (smallest)
      map.append(
        el('img', {
          src: smallest.url,
          alt: '',
          width: String(smallest.width),
          height: String(smallest.height),
          decoding: 'async',
        }),
      );
    const rect = el('span', {
      class: 'crop-rect',
      'data-crop': `${crop.left},${crop.top},${crop.width},${crop.height}`,
    });
    Object.assign(rect.style, {
      left: percent(crop.left, width),
      top: percent(crop.top, height),
      width: percent(crop.width, width),
      height: percent(crop.height, height),
    });
    map.append(rect);
    return el(
      'figure',
      { class: 'aspect', 'data-aspect': aspect },
      buildPicture(manifest, `${alt} (${aspect} crop)`, ASPECT_SIZES, aspect),
      map,
      el(
        'figcaption',
        {},
        el('strong', { text: aspect }),
        ` · ${section.variants.length} variants · ${crop.by} · crop ${crop.width} × ${crop.height} at ${crop.left}, ${crop.top}`,
      ),
    );
  });
  return el('div', { class: 'aspects' }, ...figures);
}

/**
 * Paints the placeholder of a manifest (or of a status that has one) behind the `<img>` until it
 * loads: the dominant colour at once, the client's placeholderDataURL over it. CSSOM styles are
 * allowed by the page's CSP, unlike inline style attributes.
 */
function showPlaceholder(img: HTMLImageElement, source: HasPlaceholder): void {
  if (!source.placeholder) return;
  img.style.backgroundColor = source.placeholder.color;
  try {
    const preview = placeholderDataURL(source);
    if (preview) {
      img.style.backgroundImage = `url(${preview})`;
      img.style.backgroundSize = '100% 100%';
    }
  } catch {
    // A malformed hash leaves the colour alone; the image still loads.
  }
  const clear = () => {
    img.style.backgroundColor = '';
    img.style.backgroundImage = '';
  };
  img.addEventListener('load', clear, { once: true });
  if (img.complete && img.naturalWidth > 0) clear();
}

/** The metadata given with the upload, as the status answered it (servers with per-upload metadata). */
function renderMetadata(metadata: Readonly<Record<string, unknown>>): HTMLElement {
  return el(
    'section',
    { class: 'upload-metadata', 'aria-label': 'Metadata of this upload' },
    el('h4', { text: 'Metadata' }),
    el('pre', { text: JSON.stringify(metadata, null, 2) }),
  );
}

function renderResult(
  manifest: Manifest,
  filename: string,
  metadata: Readonly<Record<string, unknown>> | undefined,
): HTMLElement {
  const original = manifest.original;
  const picture = buildPicture(manifest, filename);
  const loaded = el('span', { class: 'loaded' });
  const img = picture.querySelector('img');
  if (img) showPlaceholder(img, manifest);
  img?.addEventListener('load', () => {
    const file = img.currentSrc.split('/').pop() ?? '';
    loaded.textContent = file ? `Your browser picked ${file}.` : '';
  });
  const manifestUrl = manifest.variants[0]?.url.replace(/[^/]+$/, 'manifest.json');
  const figure = el(
    'figure',
    { class: 'preview' },
    picture,
    el(
      'figcaption',
      {},
      loaded,
      ' ',
      manifestUrl ? el('a', { href: manifestUrl, target: '_blank', rel: 'noopener', text: 'manifest.json' }) : '',
      el('span', { class: 'image-id' }, ' · image ', el('code', { text: manifest.id })),
    ),
  );

  // Variants: one row each, in the manifest's order (format preference, then width).
  const rows = manifest.variants.map((variant) => {
    const s = saving(variant.bytes, original.bytes);
    const file = variant.name.split('/').pop() ?? variant.name;
    const bar = el('span', { class: 'saving-bar', 'aria-hidden': 'true' });
    bar.style.setProperty('--fraction', String(Math.max(0, Math.min(1, s.fraction))));
    return el(
      'tr',
      { 'data-format': variant.format },
      el('th', { scope: 'row' }, el('a', { href: variant.url, target: '_blank', rel: 'noopener', text: file })),
      el('td', { class: 'col-format', text: formatLabel(variant.format) }),
      el('td', { class: 'num', text: `${variant.width} × ${variant.height}` }),
      el('td', { class: 'num', text: formatBytes(variant.bytes), title: `${variant.bytes.toLocaleString()} bytes` }),
      el(
        'td',
        { class: `num saving${s.larger ? ' saving-larger' : ''}`, title: s.words },
        bar,
        el('span', { text: s.text }),
      ),
    );
  });
  const table = el(
    'table',
    { class: 'variants' },
    el('caption', { text: `Variants · original ${formatBytes(original.bytes)}` }),
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', { scope: 'col', text: 'File' }),
        el('th', { scope: 'col', class: 'col-format', text: 'Format' }),
        el('th', { scope: 'col', class: 'num', text: 'Size (px)' }),
        el('th', { scope: 'col', class: 'num', text: 'Bytes' }),
        el('th', { scope: 'col', class: 'num', text: 'vs original' }),
      ),
    ),
    el('tbody', {}, ...rows),
  );

  // Totals per format: every width of a format together, against the original once.
  const totalRows = manifest.formats.map((format) => {
    const variants = manifest.variants.filter((v) => v.format === format);
    const total = variants.reduce((sum, v) => sum + v.bytes, 0);
    const largest = variants.reduce<ManifestVariant | undefined>(
      (best, v) => (!best || v.width > best.width ? v : best),
      undefined,
    );
    return el(
      'tr',
      {},
      el('th', { scope: 'row', text: formatLabel(format) }),
      el('td', { class: 'num', text: String(variants.length) }),
      el('td', { class: 'num', text: formatBytes(total), title: `${total.toLocaleString()} bytes` }),
      el('td', { class: 'num col-average', text: formatBytes(total / variants.length) }),
      el('td', {
        class: 'num',
        text: largest ? saving(largest.bytes, original.bytes).text : '–',
        title: largest ? `${largest.width}w: ${saving(largest.bytes, original.bytes).words}` : '',
      }),
    );
  });
  const totals = el(
    'table',
    { class: 'totals' },
    el('caption', { text: 'Totals per format' }),
    el(
      'thead',
      {},
      el(
        'tr',
        {},
        el('th', { scope: 'col', text: 'Format' }),
        el('th', { scope: 'col', class: 'num', text: 'Files' }),
        el('th', { scope: 'col', class: 'num', text: 'Total' }),
        el('th', { scope: 'col', class: 'num col-average', text: 'Average' }),
        el('th', { scope: 'col', class: 'num', text: 'Largest vs original' }),
      ),
    ),
    el('tbody', {}, ...totalRows),
  );

  const scroller = (table: HTMLTableElement, label: string) =>
    el('div', { class: 'table-wrap', tabindex: '0', role: 'region', 'aria-label': label }, table);
  const aspects = renderAspects(manifest, filename);
  return el(
    'div',
    { class: 'result' },
    aspects ? el('div', { class: 'pictures' }, figure, aspects) : figure,
    el(
      'div',
      { class: 'tables' },
      scroller(table, `Variants of ${filename}`),
      scroller(totals, `Totals per format for ${filename}`),
      metadata ? renderMetadata(metadata) : '',
    ),
  );
}

// ---- Talking to the API: the client package's upload, wait, list and delete.

/**
 * Waits until the card's upload is ready or failed, showing how far it is and the variants already
 * finished on the way. The ready answer (not just the manifest) carries the upload's metadata.
 */
async function follow(card: UploadCard): Promise<void> {
  const id = card.id;
  if (!id) return;
  let ready: ReadyStatus;
  try {
    ready = await waitUntilReadyStatus(id, {
      ...(await apiOptions()),
      // Soon at first and never long apart: the first finished variant is often listed within a
      // second of the upload, and the early look is the point of polling here.
      initialDelayMs: 300,
      maxDelayMs: 2500,
      timeoutMs: FOLLOW_TIMEOUT_MS,
      onProgress: (status) => card.showProgress(status),
      onRetry: (error) =>
        card.setState(
          'processing',
          error.code === 'network_error'
            ? 'Lost contact with the server; retrying…'
            : `Waiting for the server: ${error.message}`,
        ),
    });
  } catch (error) {
    const failure = asApiError(error);
    if (failure.status === 404) {
      forget(id);
      // Gone since the last visit (e.g. .local/ was deleted): drop it quietly.
      if (card.restored) {
        card.root.remove();
        syncEmpty();
        return;
      }
    }
    card.showError(failure);
    return;
  }
  card.showReady(ready);
}

function showUploadProgress(card: UploadCard, fraction: number): void {
  const percent = Math.round(fraction * 100);
  card.setState(
    'uploading',
    fraction >= 1 ? 'Uploaded; checking the image…' : `Uploading… ${Math.floor(percent / 10) * 10} %`,
    percent,
  );
}

/**
 * Uploads the file with the client (which picks POST /uploads or a signed URL by size, and falls
 * back to the signed URL on a 413), then follows it. `metadata` only when the user gave some: a
 * server without per-upload metadata may refuse the field.
 */
async function uploadFile(card: UploadCard, file: File, metadata: Record<string, unknown> | undefined): Promise<void> {
  card.setActions();
  card.setState('uploading', 'Uploading…', 0);
  let accepted: UploadResult;
  try {
    accepted = await upload(file, {
      ...(await apiOptions()),
      ...(metadata ? { metadata } : {}),
      onProgress: ({ loaded, total }) => showUploadProgress(card, total > 0 ? loaded / total : 0),
    });
  } catch (error) {
    const failure = asApiError(error);
    // A refused image is still the caller's upload when the answer names it: listed after a reload.
    if (typeof failure.details?.id === 'string') remember({ id: failure.details.id, filename: file.name });
    card.showError(failure);
    if (failure.retryable) card.setActions(retryButton(card, file, metadata));
    return;
  }
  card.id = accepted.id;
  remember({ id: accepted.id, filename: file.name });
  void refreshMine();
  // Even an image that was ready at once is read back by status: that answer has the metadata.
  card.setState('processing', 'Processing…', 0);
  // The upload's answer may carry the first variant already (PREVIEW=inline): shown with no poll.
  if (accepted.preview) card.showFinished([accepted.preview], {}, file.name);
  await follow(card);
  // "Your uploads" listed it while it was processing.
  void refreshMine();
}

function retryButton(card: UploadCard, file: File, metadata: Record<string, unknown> | undefined): HTMLButtonElement {
  const button = el('button', { type: 'button', class: 'button', text: 'Try again' });
  button.addEventListener('click', () => {
    card.setActions();
    enqueue(() => uploadFile(card, file, metadata));
  });
  return button;
}

/** DELETE /uploads/{id}: the upload goes (its image with its last upload); so does the card. */
function deleteButton(card: UploadCard, id: string): HTMLButtonElement {
  const button = el('button', { type: 'button', class: 'button', text: 'Delete' });
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await deleteUpload(id, await apiOptions());
      forget(id);
      card.root.remove();
      syncEmpty();
      void refreshMine();
    } catch (error) {
      card.showError(asApiError(error));
      button.disabled = false;
    }
  });
  return button;
}

// ---- A small queue so that many files do not all upload at once.

const waiting: Array<() => Promise<void>> = [];
let active = 0;

function enqueue(task: () => Promise<void>): void {
  waiting.push(task);
  pump();
}

function pump(): void {
  while (active < MAX_PARALLEL_UPLOADS && waiting.length > 0) {
    const task = waiting.shift();
    if (!task) break;
    active++;
    void task().finally(() => {
      active--;
      pump();
    });
  }
}

// ---- Wiring.

/** An element index.html always has; a page without it is a broken build, said so at load. */
function pageElement<T extends Element>(selector: string): T {
  const node = document.querySelector<T>(selector);
  if (!node) throw new Error(`The page has no ${selector} element.`);
  return node;
}

const input = pageElement<HTMLInputElement>('#files');
const dropzone = pageElement<HTMLLabelElement>('#dropzone');
const list = pageElement<HTMLOListElement>('#list');
const empty = pageElement<HTMLParagraphElement>('#empty');
const clear = pageElement<HTMLButtonElement>('#clear');
const metadataField = pageElement<HTMLInputElement>('#metadata');
const metadataError = pageElement<HTMLParagraphElement>('#metadata-error');

/** The metadata field: empty is no metadata; anything else must be a JSON object. */
function readMetadata(): MetadataInput {
  const text = metadataField.value.trim();
  if (text === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `Metadata is not valid JSON (${(error as Error).message}). Nothing was uploaded.` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return { error: 'Metadata must be a JSON object, such as {"postId":"p1"}. Nothing was uploaded.' };
  return { metadata: value as Record<string, unknown> };
}

function showMetadataError(message: string | undefined): void {
  metadataError.textContent = message ?? '';
  metadataError.hidden = message === undefined;
  if (message === undefined) metadataField.removeAttribute('aria-invalid');
  else metadataField.setAttribute('aria-invalid', 'true');
}

// The error stays until the field is edited, so that it is not lost before it is read.
metadataField.addEventListener('input', () => showMetadataError(undefined));

function syncEmpty(): void {
  const any = list.children.length > 0;
  empty.hidden = any;
  clear.hidden = !any;
}

function addCard(card: UploadCard): void {
  list.prepend(card.root);
  syncEmpty();
}

/** Cards for the files, each uploaded in turn with the metadata field's object; none while the field is invalid. */
function addFiles(files: Iterable<File>): void {
  const given = readMetadata();
  if ('error' in given) {
    showMetadataError(given.error);
    metadataField.focus();
    return;
  }
  showMetadataError(undefined);
  for (const file of files) {
    const card = new UploadCard(
      file.name || 'untitled',
      `${file.type || 'unknown type'} · ${formatBytes(file.size)}`,
      file,
    );
    card.setState('queued', 'Waiting to upload…');
    addCard(card);
    enqueue(() => uploadFile(card, file, given.metadata));
  }
}

input.addEventListener('change', () => {
  if (input.files && input.files.length > 0) addFiles(Array.from(input.files));
  // The same file can be picked again.
  input.value = '';
});

// Dropping anywhere on the page works; the drop zone lights up while something is dragged.
let dragDepth = 0;
const hasFiles = (event: DragEvent) => Array.from(event.dataTransfer?.types ?? []).includes('Files');
document.addEventListener('dragenter', (event) => {
  if (!hasFiles(event)) return;
  dragDepth++;
  dropzone.classList.add('is-dragging');
});
document.addEventListener('dragleave', (event) => {
  if (!hasFiles(event)) return;
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) dropzone.classList.remove('is-dragging');
});
document.addEventListener('dragover', (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('drop', (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  dragDepth = 0;
  dropzone.classList.remove('is-dragging');
  const files = Array.from(event.dataTransfer?.files ?? []);
  if (files.length > 0) addFiles(files);
});

clear.addEventListener('click', () => {
  forget();
  list.replaceChildren();
  syncEmpty();
  input.focus();
});

/**
 * Images from earlier visits (this user's), below any picked since the page loaded: ask the API
 * where each stands. `fresh`: another user signed in, so the list is theirs alone.
 */
function restoreCards(fresh: boolean): void {
  if (fresh) list.replaceChildren();
  for (const entry of remembered()) {
    const card = new UploadCard(entry.filename, 'uploaded earlier');
    card.id = entry.id;
    card.restored = true;
    card.setState('processing', 'Checking…');
    list.append(card.root);
    void follow(card);
  }
  syncEmpty();
}

// ---- Your uploads: the client's listUploads (`GET /uploads?limit=20`), the caller's own, newest first.

const mineList = pageElement<HTMLOListElement>('#mine-list');
const mineNote = pageElement<HTMLParagraphElement>('#mine-note');

function mineRow(item: UploadListItem): HTMLLIElement {
  const row = el('li', { class: 'mine-item' });
  const name = el('span', { class: 'mine-name', text: item.filename ?? item.imageId });
  const when = new Date(item.createdAt);
  const meta = el('span', {
    class: 'mine-meta',
    text: `${item.status} · ${Number.isNaN(when.getTime()) ? item.createdAt : when.toLocaleString()}`,
  });
  const remove = el('button', { type: 'button', class: 'button-quiet', text: 'Delete' });
  remove.setAttribute('aria-label', `Delete ${item.filename ?? item.imageId}`);
  remove.addEventListener('click', async () => {
    remove.disabled = true;
    try {
      await deleteUpload(item.id, await apiOptions());
      forget(item.id);
      await refreshMine();
    } catch (error) {
      mineNote.hidden = false;
      mineNote.textContent = `Could not delete: ${(error as { message?: string }).message ?? String(error)}`;
      remove.disabled = false;
    }
  });
  row.append(name, meta, remove);
  return row;
}

/** Lists the caller's uploads; a failure leaves a note and the rest of the page working. */
async function refreshMine(): Promise<void> {
  try {
    const { items } = await listUploads({ ...(await apiOptions()), limit: 20 });
    mineList.replaceChildren(...items.map(mineRow));
    mineNote.hidden = items.length > 0;
    mineNote.textContent = 'No uploads yet.';
  } catch (error) {
    mineList.replaceChildren();
    mineNote.hidden = false;
    mineNote.textContent = `Your uploads could not be listed: ${(error as { message?: string }).message ?? String(error)}`;
  }
}

// ---- Webhooks: with WEBHOOK_URLS set, what each receiver got (docs/webhooks.md).

interface WebhookDelivery {
  webhookId: string;
  url: string;
  type: string;
  imageId: string;
  state: string;
  attempts: number;
  lastStatus: number | null;
  lastBody: string;
  updatedAt: string;
}

const webhooksSection = pageElement<HTMLElement>('#webhooks');
const webhooksNote = pageElement<HTMLParagraphElement>('#webhooks-note');
const webhooksList = pageElement<HTMLOListElement>('#webhooks-list');

function webhookRow(d: WebhookDelivery): HTMLLIElement {
  const answer = d.lastStatus === null ? 'no answer' : `HTTP ${d.lastStatus}`;
  return el(
    'li',
    { class: 'mine-row' },
    el('strong', { text: `${d.type} → ${d.url}` }),
    el('span', {
      text: ` ${d.state}, ${answer}, ${d.attempts} attempt${d.attempts === 1 ? '' : 's'} · ${d.webhookId}`,
    }),
    el('pre', { text: d.lastBody || '(empty body)' }),
  );
}

/** Refreshes the deliveries every few seconds while the stack has receivers configured. */
async function refreshWebhooks(): Promise<void> {
  try {
    const response = await fetch('/local/webhooks.json', { cache: 'no-store' });
    const body = (await response.json()) as { urls: string[]; deliveries: WebhookDelivery[] };
    if (body.urls.length === 0) return;
    webhooksSection.hidden = false;
    webhooksList.replaceChildren(...body.deliveries.map(webhookRow));
    webhooksNote.textContent = `Receivers: ${body.urls.join(', ')}. ${body.deliveries.length === 0 ? 'No delivery yet.' : ''}`;
  } catch {
    /* the stack is stopping, or an older one without webhooks: try again later */
  }
  setTimeout(() => void refreshWebhooks(), 3000);
}

// ---- Start: sign in (if the stack asks for it), then the cards and the list.

const account = pageElement<HTMLDivElement>('#account');
const userSelect = pageElement<HTMLSelectElement>('#user');

async function start(): Promise<void> {
  pageConfig = await loadPageConfig();
  const users = pageConfig.users ?? [];
  if (pageConfig.auth !== 'jwt' || !pageConfig.signInUrl || users.length === 0) return;
  let user = users[0] as string;
  try {
    const saved = localStorage.getItem(USER_KEY);
    if (saved && users.includes(saved)) user = saved;
  } catch {
    /* no storage: the first user */
  }
  userSelect.replaceChildren(...users.map((u) => el('option', { text: u, value: u })));
  userSelect.value = user;
  account.hidden = false;
  await signIn(user);
}

const started = start().catch((error: unknown) => {
  mineNote.hidden = false;
  mineNote.textContent = `Sign-in failed: ${(error as Error).message}`;
});

userSelect.addEventListener('change', async () => {
  userSelect.disabled = true;
  try {
    await signIn(userSelect.value);
    restoreCards(true);
    await refreshMine();
  } catch (error) {
    mineNote.hidden = false;
    mineNote.textContent = `Sign-in failed: ${(error as Error).message}`;
  } finally {
    userSelect.disabled = false;
  }
});

void started.then(() => {
  restoreCards(false);
  void refreshMine();
  void refreshWebhooks();
});
