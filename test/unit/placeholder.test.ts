import { expect } from 'chai';
import sharp from 'sharp';
import { thumbHashToAverageRGBA, thumbHashToRGBA } from 'thumbhash';
import { buildManifest, placeholderVariantOf, type VariantObject } from '../../shared/manifest.js';
import type { VariantSpec } from '../../shared/schemas.js';
import { ManifestV1 } from '../../shared/schemas.js';
import { variantName } from '../../shared/naming.js';
import { parsePlaceholderMetadata, placeholderMetadata, placeholderOf } from '../../shared/placeholder.js';
import { renderVariants } from '../../shared/render.js';
import { makePhoto } from '../fixtures/images.js';

const encoders = {
  jpeg: { quality: 80, mozjpeg: false },
  webp: { quality: 80, effort: 4 },
  avif: { quality: 50, effort: 4 },
};

/** Mean RGB of raw RGBA pixels, 0–255. */
function meanRgb(rgba: Uint8Array | Buffer): [number, number, number] {
  const sum = [0, 0, 0];
  for (let i = 0; i < rgba.length; i += 4) for (let c = 0; c < 3; c++) sum[c]! += rgba[i + c]!;
  const n = rgba.length / 4;
  return [sum[0]! / n, sum[1]! / n, sum[2]! / n];
}

describe('placeholder (dominant colour + ThumbHash)', () => {
  it("decodes back with thumbhash's own decoder to the image's average colour and aspect", async () => {
    // Left half orange, right half blue: an average no single pixel has.
    const width = 320;
    const height = 160;
    const image = await sharp({ create: { width, height, channels: 3, background: { r: 240, g: 120, b: 20 } } })
      .composite([
        {
          input: { create: { width: width / 2, height, channels: 3, background: { r: 20, g: 60, b: 200 } } },
          left: width / 2,
          top: 0,
        },
      ])
      .png()
      .toBuffer();
    const placeholder = await placeholderOf(sharp(image));
    expect(placeholder.color).to.match(/^#[0-9a-f]{6}$/);
    const hash = Buffer.from(placeholder.thumbhash, 'base64');
    expect(hash.length).to.be.within(5, 40);
    const decoded = thumbHashToRGBA(hash);
    expect(decoded.w / decoded.h).to.be.closeTo(2, 0.3);
    const { data } = await sharp(image).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    const actual = meanRgb(data);
    const average = thumbHashToAverageRGBA(hash);
    const fromHash = [average.r * 255, average.g * 255, average.b * 255];
    for (let c = 0; c < 3; c++) expect(fromHash[c], `channel ${c}`).to.be.closeTo(actual[c]!, 8);
    const rendered = meanRgb(decoded.rgba);
    for (let c = 0; c < 3; c++) expect(rendered[c], `rendered channel ${c}`).to.be.closeTo(actual[c]!, 12);
    // The dominant colour is one of the two halves, not their average.
    expect(['#f07814', '#143cc8']).to.satisfy((colors: string[]) =>
      colors.some((hex) =>
        [1, 3, 5].every(
          (i) =>
            Math.abs(
              Number.parseInt(hex.slice(i, i + 2), 16) - Number.parseInt(placeholder.color.slice(i, i + 2), 16),
            ) <= 16,
        ),
      ),
    );
  });

  it('round-trips through object metadata and rejects anything else', async () => {
    const placeholder = await placeholderOf(sharp(await makePhoto({ width: 200, height: 150, seed: 3 })));
    expect(parsePlaceholderMetadata(placeholderMetadata(placeholder))).to.deep.equal(placeholder);
    for (const bad of [undefined, 7, '', '#12345 abc', 'red AAAA', '#123456'])
      expect(parsePlaceholderMetadata(bad), String(bad)).to.equal(undefined);
  });

  it('is carried by exactly one variant: the smallest uncropped width in the preferred format', async () => {
    const plan: VariantSpec[] = [
      { width: 640, format: 'jpeg' },
      { width: 320, format: 'jpeg' },
      { width: 320, format: 'webp' },
      { width: 160, format: 'jpeg', aspect: '1:1' },
    ];
    expect(placeholderVariantOf(plan)).to.deep.equal({ width: 320, format: 'webp' });
    const image = await makePhoto({ width: 800, height: 600, seed: 5 });
    const rendered = await renderVariants(image, plan.slice(0, 3), {
      encoders,
      keepMetadata: false,
      limitInputPixels: 1e8,
      maxFrames: 1,
      placeholderFor: placeholderVariantOf(plan),
    });
    const carriers = rendered.filter((variant) => variant.placeholder);
    expect(carriers.map((v) => [v.width, v.format])).to.deep.equal([[320, 'webp']]);
  });

  it('goes into the manifest from the carrying variant only', () => {
    const id = 'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb';
    const plan: VariantSpec[] = [
      { width: 640, format: 'jpeg' },
      { width: 320, format: 'jpeg' },
    ];
    const object = (width: number, extra: Partial<VariantObject> = {}): [string, VariantObject] => {
      const name = variantName(id, width, 'jpeg');
      return [name, { name, bytes: 100, width, height: width / 2, ...extra }];
    };
    const input = {
      id,
      original: {
        format: 'jpeg',
        width: 800,
        height: 400,
        bytes: 12345,
        contentType: 'image/jpeg',
        name: `originals/${id}`,
        generation: '7',
      },
      plan,
      baseUrl: 'https://cdn.example/img',
      now: new Date('2026-01-01T00:00:00Z'),
    };
    const carried = { color: '#102030', thumbhash: 'AAAA' };
    const manifest = buildManifest({
      ...input,
      objects: new Map([
        object(640, { placeholder: { color: '#ffffff', thumbhash: 'BBBB' } }),
        object(320, { placeholder: carried }),
      ]),
    });
    expect(manifest.placeholder).to.deep.equal(carried);
    expect(ManifestV1.parse(manifest).placeholder).to.deep.equal(carried);
    // Older variants without the key: no placeholder, still a valid manifest.
    const older = buildManifest({ ...input, objects: new Map([object(640), object(320)]) });
    expect(older).not.to.have.property('placeholder');
    ManifestV1.parse(older);
  });
});
