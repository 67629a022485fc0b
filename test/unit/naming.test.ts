import { expect } from 'chai';
import {
  errorRecordName,
  idFromImagesName,
  idFromOriginalName,
  imageIdOf,
  isIncomingName,
  isOmittedVariantName,
  isVariantName,
  manifestName,
  omittedVariantName,
  originalName,
  parseVariantName,
  sanitizeFilename,
  variantName,
} from '../../shared/core/naming.js';

const id = '0123456789abcdef0123456789abcdef';

describe('naming', () => {
  it('names omission markers after their variants, in a folder no variant name can be', () => {
    expect(omittedVariantName(id, 640, 'jpeg')).to.equal(`${id}/omitted/640w.jpg`);
    expect(omittedVariantName(id, 640, 'avif', '16:9')).to.equal(`${id}/omitted/16x9/640w.avif`);
    for (const name of [omittedVariantName(id, 640, 'jpeg'), omittedVariantName(id, 640, 'avif', '16:9')]) {
      expect(isOmittedVariantName(name), name).to.equal(true);
      expect(isVariantName(name), name).to.equal(false);
    }
    expect(isOmittedVariantName(variantName(id, 640, 'jpeg'))).to.equal(false);
    expect(isOmittedVariantName(`${id}/omitted/manifest.json`)).to.equal(false);
  });

  it('reads a variant name back into its parts, and nothing else as a variant', () => {
    for (const [width, format, aspect, animated] of [
      [640, 'jpeg', undefined, undefined],
      [2048, 'avif', undefined, undefined],
      [96, 'webp', '16:9', undefined],
      [480, 'webp', '1:1', true],
    ] as const) {
      const name = variantName(id, width, format, aspect, animated);
      expect(parseVariantName(name), name).to.deep.equal({
        id,
        width,
        format,
        ...(aspect ? { aspect } : {}),
        ...(animated ? { animated } : {}),
      });
    }
    for (const name of [omittedVariantName(id, 640, 'jpeg'), manifestName(id), `${id}/640w.png`, `x/${id}/640w.jpg`])
      expect(parseVariantName(name), name).to.equal(undefined);
  });

  it('names objects by the data layout', () => {
    expect(originalName(id)).to.equal(`originals/${id}`);
    expect(variantName(id, 640, 'avif')).to.equal(`${id}/640w.avif`);
    expect(variantName(id, 640, 'jpeg')).to.equal(`${id}/640w.jpg`);
    expect(manifestName(id)).to.equal(`${id}/manifest.json`);
    expect(errorRecordName(id)).to.equal(`${id}/error.json`);
  });

  it('derives the id from the content: same bytes, same id; other bytes, other id', () => {
    const a = imageIdOf(Buffer.from('image a'));
    expect(a).to.match(/^[0-9a-f]{32}$/);
    expect(imageIdOf(Buffer.from('image a'))).to.equal(a);
    expect(imageIdOf(Buffer.from('image b'))).not.to.equal(a);
  });

  const ids: Array<[string, string | undefined]> = [
    [`originals/${id}`, id],
    [`originals/${id}x`, undefined],
    [`incoming/${id}`, undefined],
    ['originals/', undefined],
  ];
  for (const [name, expected] of ids) {
    it(`reads the id of ${JSON.stringify(name)} as ${expected}`, () =>
      expect(idFromOriginalName(name)).to.equal(expected));
  }

  it('reads the id of an images-bucket name', () => {
    expect(idFromImagesName(`${id}/320w.webp`)).to.equal(id);
    expect(idFromImagesName('_other/thing')).to.equal(undefined);
  });

  const incoming: Array<[string, boolean]> = [
    ['incoming/photo.jpg', true],
    ['incoming/a/b/c.png', true],
    ['incoming/', false],
    ['incoming/folder/', false],
    [`originals/${id}`, false],
    ['photo.jpg', false],
  ];
  for (const [name, expected] of incoming) {
    it(`treats ${JSON.stringify(name)} as incoming: ${expected}`, () =>
      expect(isIncomingName(name)).to.equal(expected));
  }

  const filenames: Array<[string | undefined, string | undefined]> = [
    ['photo.jpg', 'photo.jpg'],
    ['../../etc/passwd', 'passwd'],
    ['C:\\Users\\me\\cat.png', 'cat.png'],
    ['evil\u0000name.jpg', 'evilname.jpg'],
    ['line\r\nX-Injected: 1.jpg', 'lineX-Injected: 1.jpg'],
    ['"quoted".jpg', 'quoted.jpg'],
    ['.hidden', 'hidden'],
    ['..', undefined],
    ['', undefined],
    [undefined, undefined],
    ['é'.repeat(300), 'é'.repeat(200)],
  ];
  for (const [raw, expected] of filenames) {
    it(`sanitises ${JSON.stringify(raw)?.slice(0, 40)}`, () => expect(sanitizeFilename(raw)).to.equal(expected));
  }
});
