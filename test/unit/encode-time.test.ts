import { expect } from 'chai';
import {
  AVIF_TEN_BIT_FACTOR,
  AVIF_WALL_MS_PER_MEGAPIXEL,
  AvifEncodeTimeModel,
} from '../../shared/image/encode-time.js';

describe('AVIF encode-time model', () => {
  describe('predictMs before it has seen an encode', () => {
    const cases: Array<[string, number, number, number]> = [
      ['1 MP at effort 4', 1_000_000, 4, AVIF_WALL_MS_PER_MEGAPIXEL[4]!],
      ['2 MP at effort 4 takes twice as long', 2_000_000, 4, 2 * AVIF_WALL_MS_PER_MEGAPIXEL[4]!],
      ['1 MP at effort 9', 1_000_000, 9, AVIF_WALL_MS_PER_MEGAPIXEL[9]!],
      ['an effort below 0 counts as 0', 1_000_000, -3, AVIF_WALL_MS_PER_MEGAPIXEL[0]!],
      ['an effort above 9 counts as 9', 1_000_000, 12, AVIF_WALL_MS_PER_MEGAPIXEL[9]!],
      ['no pixels take no time', 0, 6, 0],
    ];
    for (const [what, pixels, effort, expected] of cases) {
      it(what, () => expect(new AvifEncodeTimeModel().predictMs(pixels, effort)).to.be.closeTo(expected, 1e-6));
    }
  });

  it('has a rate for every effort sharp accepts, rising with effort', () => {
    expect(AVIF_WALL_MS_PER_MEGAPIXEL).to.have.length(10);
    for (let effort = 1; effort < 10; effort++) {
      expect(AVIF_WALL_MS_PER_MEGAPIXEL[effort]!).to.be.at.least(AVIF_WALL_MS_PER_MEGAPIXEL[effort - 1]!);
    }
  });

  it('moves its prediction toward what it observes, across efforts', () => {
    const model = new AvifEncodeTimeModel();
    const base = model.predictMs(1_000_000, 6);
    for (let i = 0; i < 20; i++) model.observe(2_000_000, 4, 2 * 3 * AVIF_WALL_MS_PER_MEGAPIXEL[4]!); // three times slower
    expect(model.factor).to.be.closeTo(3, 0.01);
    expect(model.predictMs(1_000_000, 6)).to.be.closeTo(3 * base, base * 0.01);
  });

  it('weighs the newest observation by half', () => {
    const model = new AvifEncodeTimeModel();
    model.observe(1_000_000, 4, 3 * AVIF_WALL_MS_PER_MEGAPIXEL[4]!);
    expect(model.factor).to.be.closeTo(2, 1e-9);
  });

  const ignored: Array<[string, number, number]> = [
    ['an encode of fewer than 100 000 pixels', 99_999, 1e6],
    ['a zero duration', 1_000_000, 0],
    ['a negative duration (clock step)', 1_000_000, -5],
    ['a NaN duration', 1_000_000, Number.NaN],
  ];
  for (const [what, pixels, ms] of ignored) {
    it(`learns nothing from ${what}`, () => {
      const model = new AvifEncodeTimeModel();
      model.observe(pixels, 4, ms);
      expect(model.factor).to.equal(1);
    });
  }

  it('keeps the factor between 0.1 and 20 whatever it sees', () => {
    const model = new AvifEncodeTimeModel();
    for (let i = 0; i < 40; i++) model.observe(1_000_000, 4, 1e9);
    expect(model.factor).to.equal(20);
    for (let i = 0; i < 40; i++) model.observe(1_000_000, 4, 0.001);
    expect(model.factor).to.equal(0.1);
  });

  it('predicts a 10-bit encode AVIF_TEN_BIT_FACTOR times an 8-bit one, and learns from either without mixing them up', () => {
    const model = new AvifEncodeTimeModel();
    expect(model.predictMs(1_000_000, 3, 10)).to.be.closeTo(
      AVIF_TEN_BIT_FACTOR * model.predictMs(1_000_000, 3, 8),
      1e-6,
    );
    // A 10-bit encode that took exactly its predicted time teaches the model nothing new.
    model.observe(1_000_000, 3, AVIF_TEN_BIT_FACTOR * AVIF_WALL_MS_PER_MEGAPIXEL[3]!, 10);
    expect(model.factor).to.be.closeTo(1, 1e-9);
  });
});
