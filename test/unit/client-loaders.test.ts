/**
 * The framework loaders (client/src/loaders) over every width each framework asks for by default,
 * against manifests built by the pipeline's own buildManifest: every URL they answer is one the
 * manifest lists (so it exists), the narrowest made width at least as wide as asked, else the widest.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../shared/core/config.js';
import type { Manifest } from '../../client/dist/index.js';
import { variantName } from '../../shared/core/naming.js';
import type { AspectCrop, VariantSpec } from '../../shared/core/schemas.js';
import { buildManifest, type VariantObject } from '../../shared/image/manifest.js';
import { client, loaders } from '../fixtures/client.js';
import {
  ASTRO_RESOLUTIONS,
  NEXT_WIDTHS,
  nextImgAttributes,
  srcsetUrls,
  UNPIC_BREAKPOINTS,
  unpicWidths,
} from '../fixtures/frameworks.js';

const { loaderImage, parseLoaderSrc, snapWidth } = client;
const nextLoader = loaders.next.default;
const astro = loaders.astro.default;
const { transformer } = loaders.unpic;

const id = 'ab'.repeat(16);
const WIDTHS = [320, 640, 1024, 1600, 2048];
const crop: AspectCrop = { left: 0, top: 500, width: 3000, height: 1688, by: 'attention' };

/**
 * A 3000×2250 photo's manifest with the default widths in three formats, AVIF stopping at 1024 (as
 * a format limit would make it), and a 16:9 crop with widths up to 1600; `animated` makes the WebPs
 * animated (`{width}w.anim.webp`).
 */
function manifestOf(options: { animated?: boolean } = {}): Manifest {
  const plan: VariantSpec[] = [
    ...WIDTHS.map((width) => ({ width, format: 'jpeg' as const })),
    ...WIDTHS.map((width) => ({
      width,
      format: 'webp' as const,
      ...(options.animated ? { animated: true as const } : {}),
    })),
    ...WIDTHS.filter((w) => w <= 1024).map((width) => ({ width, format: 'avif' as const })),
    ...[320, 640, 1024, 1600].flatMap((width) =>
      (['avif', 'webp', 'jpeg'] as const).map((format) => ({ width, format, aspect: '16:9' })),
    ),
  ];
  const objects = new Map<string, VariantObject>(
    plan.map((spec) => {
      const name = variantName(id, spec.width, spec.format, spec.aspect, spec.animated);
      const height = Math.round((spec.width * (spec.aspect ? 9 / 16 : 0.75)) | 0);
      return [name, { name, bytes: spec.width, width: spec.width, height, ...(spec.aspect ? { crop } : {}) }];
    }),
  );
  return buildManifest({
    id,
    original: {
      format: 'jpeg',
      width: 3000,
      height: 2250,
      bytes: 1e6,
      contentType: 'image/jpeg',
      name: `originals/${id}`,
      generation: '1',
      crops: { '16:9': crop },
    },
    plan,
    objects,
    baseUrl: 'https://storage.example/my-images',
    now: new Date('2026-12-06T00:00:00Z'),
  }) as Manifest;
}

const manifest = manifestOf();
const listed = (m: Manifest, aspect?: string) =>
  new Map((aspect ? (m.aspects?.[aspect]?.variants ?? []) : m.variants).map((v) => [v.url, v] as const));

/** Every width a framework may ask for, and the edges: tiny, between, far above the widest. */
const ASKED = [...new Set([...NEXT_WIDTHS, ...ASTRO_RESOLUTIONS, ...UNPIC_BREAKPOINTS, 1, 319, 321, 2049, 1e5])];

/** The made width a loader must answer for `asked`. */
const expected = (made: number[], asked: number) => made.find((w) => w >= asked) ?? (made.at(-1) as number);

describe('client framework loaders', () => {
  it("docs/frameworks.md's measurement: how many of each framework's default widths the default WIDTHS lack", () => {
    const { WIDTHS: made } = loadConfig({ UPLOADS_BUCKET: 'my-uploads', IMAGES_BUCKET: 'my-images' });
    expect(made).to.deep.equal(WIDTHS);
    const lacking = (asked: readonly number[]) => `${asked.filter((w) => !made.includes(w)).length} of ${asked.length}`;
    const doc = readFileSync(new URL('../../../docs/frameworks.md', import.meta.url), 'utf8');
    const row = (framework: string) => doc.split('\n').find((line) => line.startsWith(`| ${framework} |`)) ?? '';
    expect(row('next/image'))
      .to.contain(`| ${lacking(NEXT_WIDTHS)} |`)
      .and.contain(NEXT_WIDTHS.join(', '));
    expect(row('Astro `<Image>`/`<Picture>`'))
      .to.contain(`| ${lacking(ASTRO_RESOLUTIONS)} |`)
      .and.contain(ASTRO_RESOLUTIONS.join(', '));
    expect(row('unpic `<Image>`')).to.contain(`| ${lacking(UNPIC_BREAKPOINTS)} |`);
  });

  it("package.json's subpath exports name the built loaders and their declarations", async () => {
    const root = new URL('../../../client/', import.meta.url);
    const { exports } = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
      exports: Record<string, { types: string; default: string }>;
    };
    expect(Object.keys(exports)).to.deep.equal(['.', './next', './astro', './unpic']);
    const expectedExports = {
      './next': ['default', 'loaderImage', 'nextImageLoader'],
      './astro': ['default', 'getHTMLAttributes', 'getSrcSet', 'getURL', 'loaderImage'],
      './unpic': ['default', 'loaderImage', 'transformer'],
    };
    for (const [subpath, names] of Object.entries(expectedExports)) {
      const target = exports[subpath];
      expect(readFileSync(new URL(target?.types ?? '', root), 'utf8')).to.contain('loaderImage');
      const module = (await import(new URL(target?.default ?? '', root).href)) as Record<string, unknown>;
      expect(Object.keys(module).sort(), subpath).to.deep.equal(names);
    }
  });

  it('snapWidth: the narrowest made width at least as wide, else the widest', () => {
    expect(snapWidth([320, 640, 1024], 1)).to.equal(320);
    expect(snapWidth([320, 640, 1024], 640)).to.equal(640);
    expect(snapWidth([320, 640, 1024], 641)).to.equal(1024);
    expect(snapWidth([320, 640, 1024], 3840)).to.equal(1024);
    expect(() => snapWidth([], 100)).to.throw(/no widths/);
  });

  it('loaderImage: a src that is itself a listed variant, carrying every made width per format', () => {
    const image = loaderImage(manifest);
    const [url, fragment] = image.src.split('#');
    expect(listed(manifest).get(url as string)).to.include({ width: 2048, format: 'webp' });
    expect(image).to.include({ width: 2048, height: 1536 });
    expect(fragment).to.equal('gip&webp=320-640-1024-1600-2048&avif=320-640-1024&jpeg=320-640-1024-1600-2048');
    expect(parseLoaderSrc(image.src)?.formats).to.deep.equal(['webp', 'avif', 'jpeg']);
    expect(loaderImage(manifest, { format: 'avif' })).to.include({ width: 1024, height: 768 });
    expect(loaderImage(manifest, { aspect: '16:9' }).src).to.match(/\/16x9\/1600w\.webp#gip&webp=320-640-1024-1600&/);
    expect(() => loaderImage(manifest, { aspect: '1:1' })).to.throw(/no aspect 1:1 \(it has: 16:9\)/);
    const jpegOnly = { ...manifest, formats: ['jpeg'], variants: manifest.variants.filter((v) => v.format === 'jpeg') };
    expect(() => loaderImage(jpegOnly as Manifest, { format: 'avif' })).to.throw(/no avif variants/);
    expect(loaderImage(jpegOnly as Manifest).src).to.match(/2048w\.jpg#gip&jpeg=/);
  });

  it('leaves out a variant whose URL a loader could not rebuild from its width, so none is ever guessed', () => {
    const odd = {
      ...manifest,
      variants: manifest.variants.map((v) =>
        v.format === 'jpeg' && v.width === 1600 ? { ...v, url: `${v.url}?moved` } : v,
      ),
    };
    expect(loaderImage(odd).src).to.contain('&jpeg=320-640-1024-2048');
  });

  it('next: every width next/image asks for (and the edges) answers a listed variant of the snapped width', () => {
    for (const options of [{}, { format: 'avif' as const }, { format: 'jpeg' as const }, { aspect: '16:9' }]) {
      const { src } = loaderImage(manifest, options);
      const variants = listed(manifest, options.aspect);
      const format = options.format ?? 'webp';
      const made = [...variants.values()].filter((v) => v.format === format).map((v) => v.width);
      for (const width of ASKED) {
        const url = nextLoader({ src, width, quality: 75 });
        const variant = variants.get(url);
        expect(variant, `${JSON.stringify(options)} width ${width}: ${url}`).to.not.equal(undefined);
        expect(variant).to.include({ format, width: expected(made, width) });
      }
    }
  });

  it('next: the <img> next/image renders lists only listed variants, for sizes in vw, in px and none', () => {
    const { src } = loaderImage(manifest);
    const urls = listed(manifest);
    for (const props of [
      { src, width: 2048, sizes: '100vw' },
      { src, width: 2048, sizes: '(max-width: 768px) 50vw, 33vw' },
      { src, width: 2048, sizes: '400px' },
      { src, width: 300 },
      { src, width: 3000 },
    ]) {
      const img = nextImgAttributes(nextLoader, props);
      for (const url of [img.src, ...srcsetUrls(img.srcset)])
        expect(urls.has(url), `${url} in ${img.srcset}`).to.equal(true);
    }
    // sizes=100vw: next/image asks for the 8 device sizes (640 and up), which the 4 made widths
    // from 640 serve; 320w is never asked for.
    const all = nextImgAttributes(nextLoader, { src, width: 2048, sizes: '100vw' });
    expect(srcsetUrls(all.srcset)).to.have.length(8);
    expect(new Set(srcsetUrls(all.srcset).map((url) => url.split('/').at(-1)))).to.deep.equal(
      new Set(['640w.webp', '1024w.webp', '1600w.webp', '2048w.webp']),
    );
  });

  it("next: never answers the src itself, which next/image's development check warns about", () => {
    // getImgProps warns when loader({src, width: width || 400}) is src, or a URL whose path is src.
    for (const options of [{}, { aspect: '16:9' }]) {
      const { src, width } = loaderImage(manifest, options);
      for (const w of [400, width]) {
        const url = nextLoader({ src, width: w, quality: 75 });
        expect(url).to.not.equal(src);
        expect(new URL(url).pathname).to.not.equal(src);
      }
    }
  });

  it('next: a src that is not a loaderImage one comes back unchanged (a static asset)', () => {
    expect(nextLoader({ src: '/logo.png', width: 640 })).to.equal('/logo.png');
    expect(nextLoader({ src: 'https://x.example/a.jpg#top', width: 640 })).to.equal('https://x.example/a.jpg#top');
  });

  it('animated WebPs: the loaders answer `{width}w.anim.webp`, as listed', () => {
    const animated = manifestOf({ animated: true });
    const { src } = loaderImage(animated);
    expect(src).to.match(/&anim=webp$/);
    for (const width of ASKED) {
      const url = nextLoader({ src, width });
      expect(listed(animated).get(url), url).to.include({ format: 'webp', animated: true });
    }
    expect(transformer(src, { width: 500, format: 'jpg' })).to.match(/640w\.jpg$/);
  });

  it('astro getURL: the snapped variant, in the format asked when the image has it', () => {
    const { src, width, height } = loaderImage(manifest);
    const urls = listed(manifest);
    for (const format of [undefined, 'avif', 'webp', 'jpeg', 'jpg', 'png', 'svg']) {
      for (const w of [...ASKED, undefined]) {
        const url = astro.getURL({ src, width: w, height, format });
        const variant = urls.get(url);
        expect(variant, `${format} ${w}: ${url}`).to.not.equal(undefined);
        const served = format === 'jpg' ? 'jpeg' : format === 'avif' || format === 'jpeg' ? format : 'webp';
        expect(variant?.format).to.equal(served);
        if (w === undefined) expect(variant?.width).to.equal(served === 'avif' ? 1024 : width);
      }
    }
    // An imported image's metadata (not ours) passes through.
    expect(astro.getURL({ src: { src: '/_astro/a.hash.jpg' }, width: 100 })).to.equal('/_astro/a.hash.jpg');
  });

  it("astro getSrcSet: Astro's widths snapped and each URL once, w-described by the made width; densities keep x", () => {
    const { src, height } = loaderImage(manifest);
    const urls = listed(manifest);
    const asked = astro.getSrcSet({ src, width: 1200, height, widths: [...ASTRO_RESOLUTIONS], format: 'avif' });
    expect(asked.map((c) => c.descriptor)).to.deep.equal(['640w', '1024w']);
    for (const candidate of asked) {
      const url = astro.getURL(candidate.transform);
      expect(urls.get(url)).to.include({ format: 'avif', width: Number.parseInt(candidate.descriptor, 10) });
    }
    const every = astro.getSrcSet({ src, height, widths: [1, 320, 5000] });
    expect(every.map((c) => c.descriptor)).to.deep.equal(['320w', '2048w']);
    for (const c of every) expect(urls.has(astro.getURL(c.transform))).to.equal(true);
    // Neither widths nor densities (no layout): no srcset, as with Astro's own services.
    expect(astro.getSrcSet({ src, width: 800, height })).to.deep.equal([]);
    const densities = astro.getSrcSet({ src, width: 400, height: 300, densities: [1, '2x', 3] });
    expect(densities.map((c) => [c.descriptor, astro.getURL(c.transform).split('/').at(-1)])).to.deep.equal([
      ['1x', '640w.webp'],
      ['2x', '1024w.webp'],
      ['3x', '1600w.webp'],
    ]);
    expect(astro.getSrcSet({ src: { src: '/_astro/a.jpg' }, widths: [640] })).to.deep.equal([]);
  });

  it('astro getHTMLAttributes: the HTML attributes, width and height, lazy by default', () => {
    const { src, width, height } = loaderImage(manifest);
    expect(
      astro.getHTMLAttributes({ src, width, height, format: 'avif', widths: [640], alt: 'A beach', class: 'hero' }),
    ).to.deep.equal({ alt: 'A beach', class: 'hero', width, height, loading: 'lazy', decoding: 'async' });
    expect(astro.getHTMLAttributes({ src, width, height, loading: 'eager' })).to.include({ loading: 'eager' });
  });

  it('unpic transformer: every layout and breakpoint answers a listed variant, aspects included', () => {
    for (const aspect of [undefined, '16:9']) {
      const { src, width } = loaderImage(manifest, { aspect });
      const urls = listed(manifest, aspect);
      for (const widths of [
        unpicWidths('fullWidth'),
        unpicWidths('constrained', 800),
        unpicWidths('fixed', 300),
        unpicWidths('constrained', width),
      ]) {
        for (const w of widths) {
          for (const format of [undefined, 'avif', 'webp', 'jpeg', 'auto']) {
            const url = transformer(new URL(src), { width: w, format });
            expect(urls.has(url), `${aspect} ${w} ${format}: ${url}`).to.equal(true);
          }
        }
      }
    }
    expect(transformer(loaderImage(manifest).src, {})).to.match(/2048w\.webp$/);
    expect(transformer('https://cdn.example/a.jpg', { width: 640 })).to.equal('https://cdn.example/a.jpg');
  });
});
