/** pictureSources: `<source>`/`<img>` attributes from a manifest alone, per format order, width and aspect. */
import { expect } from 'chai';
import type { Manifest, ManifestVariant } from '../../client/dist/index.js';
import { client } from '../fixtures/client.js';

const { pictureSources } = client;
const TYPES = { avif: 'image/avif', webp: 'image/webp', jpeg: 'image/jpeg' } as const;

function variant(format: keyof typeof TYPES, width: number, ratio: number, prefix = ''): ManifestVariant {
  return {
    width,
    height: Math.round(width / ratio),
    format,
    contentType: TYPES[format],
    bytes: width * 10,
    name: `abc/${prefix}${width}w.${format}`,
    url: `https://img.example/abc/${prefix}${width}w.${format}`,
  };
}

/** A manifest listing variants as the pipeline does: by format order, then width. */
function manifestOf(formats: Array<keyof typeof TYPES>, widths: number[], extra: Partial<Manifest> = {}): Manifest {
  return {
    v: 1,
    id: 'abc',
    original: { format: 'jpeg', width: 3000, height: 2000, bytes: 1e6, contentType: 'image/jpeg' },
    formats,
    variants: formats.flatMap((f) => widths.map((w) => variant(f, w, 1.5))),
    createdAt: '2026-12-06T00:00:00.000Z',
    ...extra,
  };
}

describe('client pictureSources', () => {
  it('lists a <source> per format in the manifest order and puts the JPEGs in the <img>, widths ascending', () => {
    const manifest = manifestOf(['avif', 'webp', 'jpeg'], [320, 640, 1024, 1600]);
    // Shuffled within a format: the srcset must still ascend.
    const shuffled = { ...manifest, variants: [...manifest.variants].reverse() };
    const { sources, img } = pictureSources(shuffled, { sizes: '(max-width: 600px) 100vw, 600px' });
    expect(sources).to.deep.equal([
      {
        type: 'image/avif',
        srcset:
          'https://img.example/abc/320w.avif 320w, https://img.example/abc/640w.avif 640w, https://img.example/abc/1024w.avif 1024w, https://img.example/abc/1600w.avif 1600w',
        sizes: '(max-width: 600px) 100vw, 600px',
      },
      {
        type: 'image/webp',
        srcset:
          'https://img.example/abc/320w.webp 320w, https://img.example/abc/640w.webp 640w, https://img.example/abc/1024w.webp 1024w, https://img.example/abc/1600w.webp 1600w',
        sizes: '(max-width: 600px) 100vw, 600px',
      },
    ]);
    expect(img).to.deep.equal({
      src: 'https://img.example/abc/1024w.jpeg',
      srcset:
        'https://img.example/abc/320w.jpeg 320w, https://img.example/abc/640w.jpeg 640w, https://img.example/abc/1024w.jpeg 1024w, https://img.example/abc/1600w.jpeg 1600w',
      sizes: '(max-width: 600px) 100vw, 600px',
      width: 1024,
      height: 683,
    });
  });

  it('defaults sizes to 100vw; src is the narrowest at least srcWidth wide, else the widest', () => {
    const manifest = manifestOf(['webp', 'jpeg'], [320, 640]);
    const { sources, img } = pictureSources(manifest);
    expect(sources.map((s) => s.sizes)).to.deep.equal(['100vw']);
    expect(img).to.include({ src: 'https://img.example/abc/640w.jpeg', width: 640, height: 427, sizes: '100vw' });
    expect(pictureSources(manifest, { srcWidth: 300 }).img.src).to.equal('https://img.example/abc/320w.jpeg');
  });

  it('without JPEG, the last format with variants is the <img>; a format with no variants gets no <source>', () => {
    const manifest = manifestOf(['avif', 'webp'], [320, 640]);
    const noAvif = { ...manifest, variants: manifest.variants.filter((v) => v.format !== 'avif') };
    expect(pictureSources(manifest).sources.map((s) => s.type)).to.deep.equal(['image/avif']);
    expect(pictureSources(manifest).img.srcset).to.contain('640w.webp 640w');
    const only = pictureSources(noAvif);
    expect(only.sources).to.deep.equal([]);
    expect(only.img.src).to.equal('https://img.example/abc/640w.webp');
  });

  it("uses an aspect's crop variants and their size when asked; an unknown aspect names the ones there are", () => {
    const square = ['avif', 'jpeg'] as const;
    const manifest = manifestOf(['avif', 'jpeg'], [320, 640, 1024], {
      aspects: {
        '1:1': {
          crop: { left: 500, top: 0, width: 2000, height: 2000, by: 'attention' },
          formats: [...square],
          variants: square.flatMap((f) => [320, 640].map((w) => variant(f, w, 1, '1x1/'))),
        },
      },
    });
    const { sources, img } = pictureSources(manifest, { aspect: '1:1' });
    expect(sources).to.have.length(1);
    expect(sources[0]?.srcset).to.equal(
      'https://img.example/abc/1x1/320w.avif 320w, https://img.example/abc/1x1/640w.avif 640w',
    );
    expect(img).to.include({ src: 'https://img.example/abc/1x1/640w.jpeg', width: 640, height: 640 });
    expect(() => pictureSources(manifest, { aspect: '16:9' })).to.throw('has no aspect 16:9 (it has: 1:1)');
  });

  it('escapes commas in URLs, which would otherwise end a srcset candidate', () => {
    const manifest = manifestOf(['jpeg'], [320]);
    const odd = { ...manifest, variants: manifest.variants.map((v) => ({ ...v, url: `${v.url}?a=1,2` })) };
    expect(pictureSources(odd).img.srcset).to.equal('https://img.example/abc/320w.jpeg?a=1%2C2 320w');
  });

  it('refuses a manifest without variants', () => {
    expect(() => pictureSources({ ...manifestOf(['jpeg'], [320]), variants: [] })).to.throw('has no variants');
  });
});
