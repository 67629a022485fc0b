import { expect } from 'chai';
import sharp from 'sharp';
import { crc32 } from 'node:zlib';
import { blackPng, jpegHeaderClaiming, makePhoto } from '../fixtures/images.js';
import { damagedIdat, pngChunks } from '../fixtures/surgery.js';

const crcOk = (png: Buffer, type: string): boolean => {
  for (let at = 8; at + 12 <= png.length; ) {
    const length = png.readUInt32BE(at);
    if (png.toString('latin1', at + 4, at + 8) === type)
      return crc32(png.subarray(at + 4, at + 8 + length)) >>> 0 === png.readUInt32BE(at + 8 + length);
    at += 12 + length;
  }
  throw new Error(`no ${type} chunk`);
};

describe('fixtures: PNG and JPEG surgery', () => {
  it('pngChunks reads a real PNG: IHDR first, IEND last', async () => {
    const png = await makePhoto({ width: 40, height: 30, format: 'png', seed: 1 });
    const types = pngChunks(png).map((c) => c.type);
    expect(types[0]).to.equal('IHDR');
    expect(types.at(-1)).to.equal('IEND');
    expect(types).to.include('IDAT');
  });

  it('damagedIdat keeps the header readable and breaks the pixel data (bad CRC, or bad zlib with a good CRC)', async () => {
    const png = await makePhoto({ width: 40, height: 30, format: 'png', seed: 2 });
    for (const damage of ['crc', 'zlib'] as const) {
      const damaged = damagedIdat(png, damage);
      expect(crcOk(damaged, 'IHDR'), damage).to.equal(true);
      expect(crcOk(damaged, 'IDAT'), damage).to.equal(damage === 'zlib');
      expect(await sharp(damaged).metadata(), damage).to.include({ width: 40, height: 30, format: 'png' });
      const decoded = await sharp(damaged)
        .raw()
        .toBuffer()
        .then(
          () => 'decoded',
          () => 'refused',
        );
      expect(decoded, damage).to.equal('refused');
    }
  });

  it('blackPng and jpegHeaderClaiming make headers that claim the size asked for', async () => {
    expect(await sharp(blackPng(300, 200)).metadata()).to.include({ width: 300, height: 200, format: 'png' });
    expect(await sharp(await jpegHeaderClaiming(40_000, 30_000), { limitInputPixels: false }).metadata()).to.include({
      width: 40_000,
      height: 30_000,
      format: 'jpeg',
    });
  });
});
