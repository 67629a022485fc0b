/**
 * HDR and wide-gamut HEIC colour to 8-bit sRGB. libheif hands over RGB in the file's own primaries
 * and transfer; when its nclx box says PQ or HLG (ITU-R BT.2100), or BT.2020 primaries, the codes
 * cannot be read as sRGB (a PQ 1000-nit white would come out grey). Each pixel is linearised
 * (PQ: nits; HLG: scene light, then BT.2100's OOTF for a 1000-nit display), tone mapped on its
 * largest channel with ITU-R BT.2390's EETF (so hue and saturation stay) onto an SDR display whose
 * white is BT.2408's HDR reference white (203 nits), converted to BT.709 primaries in linear light
 * (out-of-gamut colours desaturated towards their own luminance, then scaled below 1: both keep
 * the hue), and encoded with the sRGB curve. Why these choices: docs/architecture.md (HEIC colour).
 *
 * Everything per code value or per quantised luminance is a table, so a pixel costs a few lookups
 * and a 3×3 matrix.
 */
import type { HeifColour } from './heif-summary.js';

/** H.273 code points used here. */
const PRIMARIES_BT2020 = 9;
const TRANSFER_PQ = 16;
const TRANSFER_HLG = 18;
/** BT.709's OETF, shared by BT.601 (6) and BT.2020 (14, 15). */
const TRANSFER_BT709 = new Set([1, 6, 14, 15]);
const TRANSFER_LINEAR = 8;

/** BT.2408's HDR reference white: what SDR white shows. */
export const REFERENCE_WHITE_NITS = 203;
/** Peak assumed for PQ without mastering or content light levels, and HLG's nominal display peak. */
export const DEFAULT_PEAK_NITS = 1000;

/** Linear BT.2020 to linear BT.709 (ITU-R BT.2087), row-major. */
const BT2020_TO_BT709 = [1.6605, -0.5876, -0.0728, -0.1246, 1.1329, -0.0083, -0.0182, -0.1006, 1.1187] as const;

/** An nclx colour this module must map (HDR transfer or BT.2020 primaries); anything else is read as today. */
export function needsSrgbMapping(colour: HeifColour | undefined): boolean {
  return (
    colour?.kind === 'nclx' &&
    (colour.transfer === TRANSFER_PQ || colour.transfer === TRANSFER_HLG || colour.primaries === PRIMARIES_BT2020)
  );
}

const M1 = 2610 / 16384;
const M2 = (2523 / 4096) * 128;
const C1 = 3424 / 4096;
const C2 = (2413 / 4096) * 32;
const C3 = (2392 / 4096) * 32;

/** PQ's EOTF: signal 0–1 → nits. */
function pqToNits(signal: number): number {
  const p = Math.max(signal, 0) ** (1 / M2);
  return 10000 * (Math.max(p - C1, 0) / (C2 - C3 * p)) ** (1 / M1);
}

/** PQ's inverse EOTF: nits → signal 0–1. */
function nitsToPq(nits: number): number {
  const y = (Math.max(nits, 0) / 10000) ** M1;
  return ((C1 + C2 * y) / (1 + C3 * y)) ** M2;
}

/** HLG's inverse OETF: signal 0–1 → scene light 0–1. */
function hlgToScene(signal: number): number {
  const a = 0.17883277;
  const b = 1 - 4 * a;
  const c = 0.5 - a * Math.log(4 * a);
  return signal <= 0.5 ? (signal * signal) / 3 : (Math.exp((signal - c) / a) + b) / 12;
}

const srgbToLinear = (v: number): number => (v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
const linearToSrgb = (v: number): number => (v <= 0.0031308 ? 12.92 * v : 1.055 * v ** (1 / 2.4) - 0.055);
const bt709ToLinear = (v: number): number => (v < 0.081 ? v / 4.5 : ((v + 0.099) / 1.099) ** (1 / 0.45));

/**
 * BT.2390's EETF (its section 5.4, black level 0): nits of a source mastered up to `peak` onto a
 * display whose peak is `target`, through a Hermite knee in the PQ domain. Below the knee the
 * light is kept as is.
 */
export function eetf(nits: number, peak: number, target: number): number {
  if (peak <= target) return Math.min(nits, target);
  const source = nitsToPq(peak);
  const e1 = Math.min(nitsToPq(nits) / source, 1);
  const maxLum = nitsToPq(target) / source;
  const knee = 1.5 * maxLum - 0.5;
  if (e1 <= knee) return nits;
  const t = (e1 - knee) / (1 - knee);
  const t2 = t * t;
  const t3 = t2 * t;
  const e2 = (2 * t3 - 3 * t2 + 1) * knee + (t3 - 2 * t2 + t) * (1 - knee) + (-2 * t3 + 3 * t2) * maxLum;
  return pqToNits(e2 * source);
}

const TABLE = 65536;

/** Linear light 0–1 → 8-bit sRGB code, quantised to 1/65535. */
let oetfTable: Uint8Array | undefined;
function oetf(): Uint8Array {
  if (!oetfTable) {
    oetfTable = new Uint8Array(TABLE);
    for (let i = 0; i < TABLE; i++) oetfTable[i] = Math.round(255 * linearToSrgb(i / (TABLE - 1)));
  }
  return oetfTable;
}

/** The decoded plane: interleaved RGB(A), `bits` per sample (16-bit little-endian words above 8). */
export interface Plane {
  data: Uint8Array;
  /** Bytes per row. */
  stride: number;
  width: number;
  height: number;
  channels: 3 | 4;
  bits: number;
}

/** What a pixel needs, per code value or quantised light: built once per decode. */
interface Tables {
  /** Code → linear: nits (PQ), scene light 0–1 (HLG), relative light 0–1 (SDR). */
  linear: Float32Array;
  /** PQ: by the largest code, EETF(m) / m / 203 (PQ is monotonic, so the largest code is the largest light). */
  gainByCode: Float32Array | undefined;
  /** HLG: by quantised display nits of the largest channel, EETF(m) / m / 203. */
  gain: Float32Array | undefined;
  gainScale: number;
  /** HLG: by quantised scene luminance Ys, BT.2100's OOTF factor 1000 · Ys^0.2 (γ 1.2). */
  ootf: Float32Array | undefined;
  wide: boolean;
  max: number;
}

function tablesFor(colour: Extract<HeifColour, { kind: 'nclx' }>, bits: number, peakNits?: number): Tables {
  const max = 2 ** bits - 1;
  const hlg = colour.transfer === TRANSFER_HLG;
  const pq = colour.transfer === TRANSFER_PQ;
  const decode = pq
    ? pqToNits
    : hlg
      ? hlgToScene
      : TRANSFER_BT709.has(colour.transfer)
        ? bt709ToLinear
        : colour.transfer === TRANSFER_LINEAR
          ? (v: number) => v
          : srgbToLinear;
  const linear = new Float32Array(max + 1);
  for (let code = 0; code <= max; code++) linear[code] = decode(code / max);
  const toSdr = (nits: number, peak: number) =>
    nits > 0 ? eetf(nits, peak, REFERENCE_WHITE_NITS) / nits / REFERENCE_WHITE_NITS : 1 / REFERENCE_WHITE_NITS;
  let gainByCode: Float32Array | undefined;
  if (pq) {
    const peak = Math.min(Math.max(peakNits ?? DEFAULT_PEAK_NITS, 1), 10000);
    gainByCode = new Float32Array(max + 1);
    for (let code = 0; code <= max; code++) gainByCode[code] = toSdr(linear[code] as number, peak);
  }
  const gainScale = (TABLE - 1) / DEFAULT_PEAK_NITS;
  let gain: Float32Array | undefined;
  let ootf: Float32Array | undefined;
  if (hlg) {
    gain = new Float32Array(TABLE);
    ootf = new Float32Array(TABLE);
    for (let i = 0; i < TABLE; i++) {
      gain[i] = toSdr(i / gainScale, DEFAULT_PEAK_NITS);
      ootf[i] = DEFAULT_PEAK_NITS * (i / (TABLE - 1)) ** 0.2;
    }
  }
  return { linear, gainByCode, gain, gainScale, ootf, wide: colour.primaries === PRIMARIES_BT2020, max };
}

/**
 * The plane as 8-bit sRGB (alpha scaled to 8 bits), tightly packed. `peakNits`: the PQ content's
 * brightest light (its `clli` or `mdcv`); HLG is always taken at its nominal 1000 nits.
 */
export function toSrgb8(plane: Plane, colour: Extract<HeifColour, { kind: 'nclx' }>, peakNits?: number): Buffer {
  const { stride, height, bits } = plane;
  // One sample type for the loop (8-bit BT.2020 files are rare): 8-bit planes are widened.
  const samples =
    bits > 8
      ? new Uint16Array(plane.data.buffer, plane.data.byteOffset, (stride * height) >> 1)
      : Uint16Array.from(plane.data.subarray(0, stride * height));
  return mapPixels(samples, bits > 8 ? stride >> 1 : stride, plane, tablesFor(colour, bits, peakNits));
}

/** The per-pixel loop, on its own so that V8 optimises it whole. */
function mapPixels(samples: Uint16Array, rowStep: number, plane: Plane, tables: Tables): Buffer {
  const { width, height, channels } = plane;
  const { linear, gainByCode, gain, gainScale, ootf, wide, max } = tables;
  const [m0, m1, m2, m3, m4, m5, m6, m7, m8] = BT2020_TO_BT709;
  // Luminance weights of the primaries the pixel is in at each step.
  const [kr, kg, kb] = wide ? [0.2627, 0.678, 0.0593] : [0.2126, 0.7152, 0.0722];
  const encode = oetf();
  const last = TABLE - 1;
  const out = Buffer.allocUnsafe(width * height * channels);
  let o = 0;
  for (let y = 0; y < height; y++) {
    let i = y * rowStep;
    for (let x = 0; x < width; x++, i += channels, o += channels) {
      const cr = samples[i] as number;
      const cg = samples[i + 1] as number;
      const cb = samples[i + 2] as number;
      let r = linear[cr] as number;
      let g = linear[cg] as number;
      let b = linear[cb] as number;
      if (gainByCode) {
        const k = gainByCode[Math.max(cr, cg, cb)] as number;
        r *= k;
        g *= k;
        b *= k;
      } else if (gain && ootf) {
        const display = ootf[((kr * r + kg * g + kb * b) * last + 0.5) | 0] as number;
        const m = Math.max(r, g, b) * display * gainScale + 0.5;
        const k = display * (gain[m < last ? m | 0 : last] as number);
        r *= k;
        g *= k;
        b *= k;
      }
      if (wide) {
        const r709 = m0 * r + m1 * g + m2 * b;
        const g709 = m3 * r + m4 * g + m5 * b;
        b = m6 * r + m7 * g + m8 * b;
        r = r709;
        g = g709;
      }
      // Out of gamut: towards grey of the same luminance until no channel is negative.
      const low = Math.min(r, g, b);
      if (low < 0) {
        const lum = 0.2126 * r + 0.7152 * g + 0.0722 * b;
        const t = lum > 0 ? lum / (lum - low) : 0;
        r = lum > 0 ? lum + t * (r - lum) : 0;
        g = lum > 0 ? lum + t * (g - lum) : 0;
        b = lum > 0 ? lum + t * (b - lum) : 0;
      }
      // Too bright for SDR white: scaled down whole, keeping its chromaticity.
      const high = Math.max(r, g, b);
      if (high > 1) {
        r /= high;
        g /= high;
        b /= high;
      }
      out[o] = encode[(r * last + 0.5) | 0] as number;
      out[o + 1] = encode[(g * last + 0.5) | 0] as number;
      out[o + 2] = encode[(b * last + 0.5) | 0] as number;
      if (channels === 4) out[o + 3] = Math.round(((samples[i + 3] as number) * 255) / max);
    }
  }
  return out;
}
