import { expect } from 'chai';
import { buildManifest, srcsetOf, type VariantObject } from '../../shared/image/manifest.js';
import type { VariantSpec } from '../../shared/core/schemas.js';
import { ManifestV1 } from '../../shared/core/schemas.js';
import { variantName } from '../../shared/core/naming.js';

const id = 'aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbb';
const plan: VariantSpec[] = [
  { width: 640, format: 'jpeg' },
  { width: 320, format: 'avif' },
  { width: 640, format: 'avif' },
  { width: 320, format: 'jpeg' },
];

function objects(specs: VariantSpec[]): Map<string, VariantObject> {
  return new Map(
    specs.map((s) => {
      const name = variantName(id, s.width, s.format);
      return [name, { name, bytes: s.width * 10, width: s.width, height: s.width / 2 }];
    }),
  );
}

describe('manifest', () => {
  it('builds a valid, srcset-ready manifest ordered by format preference and width', () => {
    const manifest = buildManifest({
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
      objects: objects(plan),
      baseUrl: 'https://cdn.example/img',
      now: new Date('2026-01-01T00:00:00Z'),
    });
    expect(ManifestV1.safeParse(manifest).success).to.equal(true);
    expect(manifest.formats).to.deep.equal(['avif', 'jpeg']);
    expect(manifest.variants.map((v) => `${v.format}@${v.width}`)).to.deep.equal([
      'avif@320',
      'avif@640',
      'jpeg@320',
      'jpeg@640',
    ]);
    expect(manifest.variants[0]).to.include({
      height: 160,
      bytes: 3200,
      contentType: 'image/avif',
      url: `https://cdn.example/img/${id}/320w.avif`,
    });
    expect(srcsetOf(manifest, 'jpeg')).to.equal(
      `https://cdn.example/img/${id}/320w.jpg 320w, https://cdn.example/img/${id}/640w.jpg 640w`,
    );
  });

  it('carries a ready-made srcset per format, widths ascending, with commas in URLs escaped', () => {
    const input = {
      id,
      original: {
        format: 'jpeg',
        width: 800,
        height: 400,
        bytes: 1,
        contentType: 'image/jpeg',
        name: `originals/${id}`,
        generation: '1',
      },
      // Widths planned out of order: the srcset must still ascend.
      plan: [...plan].reverse(),
      objects: objects(plan),
      now: new Date('2026-01-01T00:00:00Z'),
    };
    const manifest = ManifestV1.parse(buildManifest({ ...input, baseUrl: 'https://cdn.example/img' }));
    expect(manifest.srcset).to.deep.equal({
      avif: `https://cdn.example/img/${id}/320w.avif 320w, https://cdn.example/img/${id}/640w.avif 640w`,
      jpeg: srcsetOf(manifest, 'jpeg'),
    });
    expect(Object.keys(manifest.srcset ?? {})).to.deep.equal(manifest.formats);
    const odd = buildManifest({ ...input, baseUrl: 'https://cdn.example/a,b' });
    expect(odd.srcset?.jpeg).to.equal(
      `https://cdn.example/a%2Cb/${id}/320w.jpg 320w, https://cdn.example/a%2Cb/${id}/640w.jpg 640w`,
    );
  });

  it("lists the pairs left out for a format's limits, in the variants' order, and only when there are some", () => {
    const input = {
      id,
      original: {
        format: 'png',
        width: 1080,
        height: 20000,
        bytes: 1,
        contentType: 'image/png',
        name: `originals/${id}`,
        generation: '3',
      },
      plan,
      objects: objects(plan),
      baseUrl: 'https://x',
      now: new Date('2026-01-01T00:00:00Z'),
    };
    const omitted = [
      { width: 1080, height: 20000, format: 'webp' as const, reason: 'exceeds_format_limit' },
      { width: 1080, height: 20000, format: 'avif' as const, reason: 'exceeds_format_limit' },
      { width: 1024, height: 18963, format: 'avif' as const, reason: 'exceeds_format_limit' },
    ];
    const manifest = buildManifest({ ...input, omitted });
    expect(ManifestV1.parse(manifest).omitted).to.deep.equal([omitted[2], omitted[1], omitted[0]]);
    expect(buildManifest({ ...input, omitted: [] })).not.to.have.property('omitted');
    expect(buildManifest(input)).not.to.have.property('omitted');
  });

  it('still reads manifests written before omitted existed', () => {
    const old = {
      v: 1,
      id,
      original: {
        format: 'jpeg',
        width: 10,
        height: 10,
        bytes: 1,
        contentType: 'image/jpeg',
        name: `originals/${id}`,
        generation: '1',
      },
      formats: ['jpeg'],
      variants: [
        {
          width: 10,
          height: 10,
          format: 'jpeg',
          contentType: 'image/jpeg',
          bytes: 1,
          name: `${id}/10w.jpg`,
          url: 'https://x',
        },
      ],
      createdAt: '2026-01-01T00:00:00.000Z',
    };
    expect(ManifestV1.parse(old)).to.deep.equal(old);
  });

  it('refuses to build a manifest with a planned variant missing', () => {
    expect(() =>
      buildManifest({
        id,
        original: {
          format: 'jpeg',
          width: 800,
          height: 400,
          bytes: 1,
          contentType: 'image/jpeg',
          name: 'o',
          generation: '1',
        },
        plan,
        objects: objects(plan.slice(1)),
        baseUrl: 'https://x',
        now: new Date(),
      }),
    ).to.throw(/missing/);
  });

  it("records each format's encoder quality from its variants, and leaves it out when none carries one", () => {
    const original = {
      format: 'jpeg' as const,
      width: 800,
      height: 400,
      bytes: 1,
      contentType: 'image/jpeg',
      name: 'o',
      generation: '1',
    };
    const quality: Record<string, number> = { avif: 47, jpeg: 78 };
    const withQualities = new Map(
      plan.map((spec) => {
        const name = variantName(id, spec.width, spec.format);
        return [name, { ...objects(plan).get(name)!, quality: quality[spec.format]! }] as const;
      }),
    );
    const manifest = buildManifest({
      id,
      original,
      plan,
      objects: withQualities,
      baseUrl: 'https://x',
      now: new Date(),
    });
    expect(manifest.qualities).to.deep.equal({ avif: 47, jpeg: 78 });
    expect(ManifestV1.parse(manifest).qualities).to.deep.equal({ avif: 47, jpeg: 78 });
    // Mixed qualities (variants kept across a recipe update): the widest variant's.
    withQualities.set(variantName(id, 320, 'avif'), {
      ...withQualities.get(variantName(id, 320, 'avif'))!,
      quality: 50,
    });
    expect(
      buildManifest({ id, original, plan, objects: withQualities, baseUrl: 'https://x', now: new Date() }).qualities,
    ).to.deep.equal({ avif: 47, jpeg: 78 });
    const without = buildManifest({
      id,
      original,
      plan,
      objects: objects(plan),
      baseUrl: 'https://x',
      now: new Date(),
    });
    expect(without).to.not.have.property('qualities');
    expect(() => ManifestV1.parse({ ...manifest, qualities: { avif: 0 } })).to.throw();
    expect(() => ManifestV1.parse({ ...manifest, qualities: { gif: 50 } })).to.throw();
  });
});
