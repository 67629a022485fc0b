import { expect } from 'chai';
import sharp from 'sharp';
import { rgbaToThumbHash, thumbHashToAverageRGBA, thumbHashToRGBA } from 'thumbhash';
import { buildManifest, placeholderVariantOf, type VariantObject } from '../../shared/image/manifest.js';
import type { VariantSpec } from '../../shared/core/schemas.js';
import { ManifestV1 } from '../../shared/core/schemas.js';
import { variantName } from '../../shared/core/naming.js';
import {
  parsePlaceholderMetadata,
  placeholderMetadata,
  placeholderOf,
  placeholderOfPixels,
} from '../../shared/image/placeholder.js';
import { renderAll } from '../../shared/image/render.js';
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
    const channelGap = (hex: string) =>
      Math.max(
        ...[1, 3, 5].map((i) =>
          Math.abs(Number.parseInt(hex.slice(i, i + 2), 16) - Number.parseInt(placeholder.color.slice(i, i + 2), 16)),
        ),
      );
    expect(
      Math.min(channelGap('#f07814'), channelGap('#143cc8')),
      `${placeholder.color}: largest channel gap to the nearer half (#f07814 or #143cc8)`,
    ).to.be.at.most(16);
  });

  /** A raw 320 px level, as render.ts holds the carrier's pixels. */
  async function level320(image: Buffer) {
    const { data, info } = await sharp(image).resize(320).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: info.channels, data };
  }
  const rgbOf = (color: string) => [1, 3, 5].map((i) => Number.parseInt(color.slice(i, i + 2), 16));

  it("computes from raw pixels in JS the dominant colour sharp's stats() finds (16×16×16 bins)", async () => {
    for (const seed of [1, 2, 3, 4]) {
      const level = await level320(await makePhoto({ width: 800, height: 600, seed }));
      const { dominant } = await sharp(level.data, {
        raw: { width: level.width, height: level.height, channels: level.channels as 3 },
      }).stats();
      const ours = rgbOf(placeholderOfPixels(level).color);
      expect(ours, `seed ${seed}`).to.deep.equal([dominant.r, dominant.g, dominant.b]);
    }
  });

  it("bins an exact multiple of 16 as sharp's stats() does (into the bin below)", async () => {
    for (const value of [0, 15, 16, 17, 128, 240, 255]) {
      const data = Buffer.from([value, 100, 200, value, 100, 200]);
      const { dominant } = await sharp(data, { raw: { width: 2, height: 1, channels: 3 } }).stats();
      expect(placeholderOfPixels({ width: 2, height: 1, channels: 3, data }).color, `value ${value}`).to.equal(
        `#${[dominant.r, dominant.g, dominant.b].map((v) => v.toString(16).padStart(2, '0')).join('')}`,
      );
    }
  });

  it('leaves transparent pixels out of the dominant colour and the thumbnail', async () => {
    // 70% fully transparent (red underneath), 30% opaque blue.
    const width = 100;
    const height = 100;
    const data = Buffer.alloc(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      const opaque = i % width >= 70;
      data.set(opaque ? [20, 60, 200, 255] : [255, 0, 0, 0], i * 4);
    }
    const placeholder = placeholderOfPixels({ width, height, channels: 4, data });
    expect(placeholder.color).to.equal('#1838c8');
    const decoded = thumbHashToRGBA(Buffer.from(placeholder.thumbhash, 'base64'));
    let red = 0;
    for (let i = 0; i < decoded.rgba.length; i += 4) red = Math.max(red, decoded.rgba[i]!);
    expect(red, 'no red bleeds in from transparent pixels').to.be.below(120);
  });

  it("hashes a thumbnail whose ThumbHash decodes like the previous 100 px sharp resize's", async () => {
    for (const seed of [5, 6, 7]) {
      for (const alpha of [false, true]) {
        const level = await level320(await makePhoto({ width: 640, height: 400, seed, alpha, format: 'png' }));
        const { data, info } = await sharp(level.data, {
          raw: { width: level.width, height: level.height, channels: level.channels as 3 | 4 },
        })
          .resize(100, 100, { fit: 'inside' })
          .ensureAlpha()
          .raw()
          .toBuffer({ resolveWithObject: true });
        const before = thumbHashToAverageRGBA(rgbaToThumbHash(info.width, info.height, data));
        const after = thumbHashToAverageRGBA(Buffer.from(placeholderOfPixels(level).thumbhash, 'base64'));
        for (const c of ['r', 'g', 'b', 'a'] as const)
          expect(Math.abs(before[c] - after[c]) * 255, `seed ${seed} alpha ${alpha} ${c}`).to.be.at.most(3);
      }
    }
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
    const rendered = await renderAll(image, plan.slice(0, 3), {
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
