/**
 * SSIM (Wang et al. 2004) on BT.601 luma, the reference definition: 11×11 Gaussian window,
 * σ = 1.5, K1 = 0.01, K2 = 0.03, "valid" filtering, no downsampling. Images smaller than the window
 * get one uniform window. Why in-house and how it is used: docs/performance.md, "How it is measured".
 */

const WINDOW = 11;
const SIGMA = 1.5;
const C1 = (0.01 * 255) ** 2;
const C2 = (0.03 * 255) ** 2;

/** `array[index]`; every index here is inside its array (the sizes are checked on entry), so 0 is never used. */
function at(array: Float64Array | Float32Array | Uint8Array, index: number): number {
  return array[index] ?? 0;
}

/** The normalised 1-D Gaussian whose outer product is the 2-D window. */
const KERNEL: Float64Array = (() => {
  const kernel = new Float64Array(WINDOW);
  const centre = (WINDOW - 1) / 2;
  let total = 0;
  for (let i = 0; i < WINDOW; i++) {
    kernel[i] = Math.exp(-((i - centre) ** 2) / (2 * SIGMA * SIGMA));
    total += at(kernel, i);
  }
  for (let i = 0; i < WINDOW; i++) kernel[i] = at(kernel, i) / total;
  return kernel;
})();

/** Luma of interleaved 8-bit pixels with `channels` 1 (grey), 3 (RGB) or more (RGB first). */
export function luma(pixels: Uint8Array, width: number, height: number, channels: number): Float32Array {
  if (pixels.length < width * height * channels) throw new Error('luma: fewer pixels than width × height × channels');
  const out = new Float32Array(width * height);
  if (channels < 3) {
    for (let i = 0; i < out.length; i++) out[i] = at(pixels, i * channels);
    return out;
  }
  for (let i = 0, p = 0; i < out.length; i++, p += channels) {
    out[i] = 0.299 * at(pixels, p) + 0.587 * at(pixels, p + 1) + 0.114 * at(pixels, p + 2);
  }
  return out;
}

function ssimTerm(muA: number, muB: number, aa: number, bb: number, ab: number): number {
  const varA = aa - muA * muA;
  const varB = bb - muB * muB;
  const cov = ab - muA * muB;
  return ((2 * muA * muB + C1) * (2 * cov + C2)) / ((muA * muA + muB * muB + C1) * (varA + varB + C2));
}

/** Mean SSIM of two luma planes of the same size; 1 means identical. */
export function ssim(a: Float32Array, b: Float32Array, width: number, height: number): number {
  if (a.length !== width * height || b.length !== width * height)
    throw new Error('ssim: planes must both be width × height');
  if (width < WINDOW || height < WINDOW) {
    let sa = 0,
      sb = 0,
      saa = 0,
      sbb = 0,
      sab = 0;
    for (let i = 0; i < a.length; i++) {
      const x = at(a, i),
        y = at(b, i);
      sa += x;
      sb += y;
      saa += x * x;
      sbb += y * y;
      sab += x * y;
    }
    const n = a.length;
    return ssimTerm(sa / n, sb / n, saa / n, sbb / n, sab / n);
  }
  // Horizontal pass: five filtered planes (a, b, a², b², ab), (width − 10) wide.
  const outWidth = width - WINDOW + 1;
  const size = outWidth * height;
  const ha = new Float32Array(size),
    hb = new Float32Array(size);
  const haa = new Float32Array(size),
    hbb = new Float32Array(size),
    hab = new Float32Array(size);
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < outWidth; x++) {
      let sa = 0,
        sb = 0,
        saa = 0,
        sbb = 0,
        sab = 0;
      for (let k = 0; k < WINDOW; k++) {
        const w = at(KERNEL, k);
        const va = at(a, row + x + k),
          vb = at(b, row + x + k);
        sa += w * va;
        sb += w * vb;
        saa += w * va * va;
        sbb += w * vb * vb;
        sab += w * va * vb;
      }
      const o = y * outWidth + x;
      ha[o] = sa;
      hb[o] = sb;
      haa[o] = saa;
      hbb[o] = sbb;
      hab[o] = sab;
    }
  }
  // Vertical pass, straight into the mean of the SSIM map.
  const outHeight = height - WINDOW + 1;
  let total = 0;
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      let sa = 0,
        sb = 0,
        saa = 0,
        sbb = 0,
        sab = 0;
      for (let k = 0; k < WINDOW; k++) {
        const w = at(KERNEL, k);
        const o = (y + k) * outWidth + x;
        sa += w * at(ha, o);
        sb += w * at(hb, o);
        saa += w * at(haa, o);
        sbb += w * at(hbb, o);
        sab += w * at(hab, o);
      }
      total += ssimTerm(sa, sb, saa, sbb, sab);
    }
  }
  return total / (outWidth * outHeight);
}
