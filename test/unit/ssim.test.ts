/** SSIM on luma (shared/image/ssim.ts): the score of the auto-quality search and of the benches. */
import { expect } from 'chai';
import { luma, ssim } from '../../shared/image/ssim.js';
import { photoPixels } from '../fixtures/images.js';

describe('SSIM (shared/image/ssim.ts)', () => {
  const width = 64;
  const height = 48;
  const plane = luma(photoPixels(width, height, { seed: 3 }), width, height, 3);

  it('is 1 for identical images and falls as noise is added', () => {
    expect(ssim(plane, plane, width, height)).to.be.closeTo(1, 1e-9);
    const noisy = (amount: number): Float32Array =>
      plane.map((v, i) => v + amount * Math.sin(i * 12.9898)) as Float32Array;
    const slight = ssim(plane, noisy(4), width, height);
    const strong = ssim(plane, noisy(40), width, height);
    expect(slight).to.be.lessThan(1).and.greaterThan(strong);
    expect(strong).to.be.greaterThan(0);
  });

  it('handles images smaller than the 11 × 11 window', () => {
    const tiny = new Float32Array([10, 20, 30, 40, 50, 60]);
    expect(ssim(tiny, tiny, 3, 2)).to.be.closeTo(1, 1e-9);
  });
});
