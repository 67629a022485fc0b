/**
 * HEIC decoding: sharp's prebuilt libvips has no HEVC decoder (patent licensing), so HEIC goes
 * through libheif and libde265 compiled to WebAssembly (the `libheif-js` package, LGPL-3.0; why
 * this one: CONTRIBUTING.md). It needs no system library and runs wherever Node.js does.
 *
 * libheif decodes the primary image with its transformative properties (`clap`, `irot`, `imir`)
 * applied, assembles grids, converts YCbCr to RGB with the file's matrix and reduces 10-bit to
 * 8-bit, except for HDR and BT.2020 colour, which hdr.ts maps to sRGB from the full depth. The
 * EXIF orientation in a HEIC only repeats what `irot`/`imir` say, and raw pixels carry no EXIF,
 * so sharp's `.rotate()` cannot turn the picture a second time. Any other colour profile stays
 * with the pixels (see {@link heifInput}) so that the decode converts to sRGB as for JPEG.
 *
 * Each decode gets a fresh WebAssembly instance (about 40 ms; the compiled module is cached):
 * WebAssembly memory never shrinks, so a reused instance would keep its largest image's heap for
 * the life of the function, and an instance that aborted mid-decode is unusable.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { permanent } from '../core/errors.js';
import type { Level } from './decode.js';
import { needsSrgbMapping, toSrgb8 } from './hdr.js';
import { withPrimary } from './heif-container.js';
import type { HeifColour, HeifSummary } from './heif-summary.js';

/** The few parts of libheif-js' embind API used here. */
interface LibHeif {
  heif_context_alloc(): unknown;
  heif_context_free(context: unknown): void;
  heif_context_read_from_memory(context: unknown, data: Uint8Array): { code: unknown };
  heif_js_context_get_primary_image_handle(context: unknown): unknown;
  heif_image_handle_has_alpha_channel(handle: unknown): boolean;
  heif_image_handle_release(handle: unknown): void;
  heif_js_decode_image2(
    handle: unknown,
    colorspace: unknown,
    chroma: unknown,
  ): Promise<DecodedImage | { code: unknown }>;
  heif_image_release(image: unknown): void;
  heif_error_code: { heif_error_Ok: unknown };
  heif_colorspace: { heif_colorspace_RGB: unknown };
  heif_channel: { heif_channel_interleaved: unknown };
  heif_chroma: {
    heif_chroma_interleaved_RGB: unknown;
    heif_chroma_interleaved_RGBA: unknown;
    heif_chroma_interleaved_RRGGBB_LE: unknown;
    heif_chroma_interleaved_RRGGBBAA_LE: unknown;
  };
}

interface DecodedImage {
  image: unknown;
  channels: { id: unknown; width: number; height: number; stride: number; data: Uint8Array; bits_per_pixel: number }[];
}

type Factory = (options: {
  instantiateWasm: (imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance) => void) => object;
}) => LibHeif;

const require = createRequire(import.meta.url);
let compiled: { factory: Factory; module: WebAssembly.Module } | undefined;

/** A fresh libheif instance on the cached compiled module. */
function instantiate(): LibHeif {
  if (!compiled) {
    const wasm = readFileSync(require.resolve('libheif-js/libheif-wasm/libheif.wasm'));
    compiled = {
      factory: require('libheif-js/libheif-wasm/libheif.js') as Factory,
      module: new WebAssembly.Module(wasm),
    };
  }
  const { factory, module } = compiled;
  return factory({
    instantiateWasm(imports, done) {
      const instance = new WebAssembly.Instance(module, imports);
      done(instance);
      return instance.exports;
    },
  });
}

/** emscripten's abort when the heap cannot grow: the file needs more than the decoder holds. */
const isHeapExhausted = (error: unknown): boolean =>
  error instanceof Error && /OOM|enlarge memory|out of memory|bad_alloc/i.test(error.message);

const CORRUPT = 'The image is damaged or incomplete and cannot be read.';

/** Copies the interleaved plane out of the WebAssembly heap, dropping row padding. */
function copyPlane(plane: DecodedImage['channels'][number], channels: number): Buffer {
  const row = plane.width * channels;
  if (plane.stride === row) return Buffer.from(plane.data.subarray(0, row * plane.height));
  const out = Buffer.allocUnsafe(row * plane.height);
  for (let y = 0; y < plane.height; y++)
    out.set(plane.data.subarray(y * plane.stride, y * plane.stride + row), y * row);
  return out;
}

/**
 * Decodes with a fresh instance; everything it allocated goes with it. Colour that hdr.ts maps is
 * decoded at the file's full depth and mapped to 8-bit sRGB before the heap goes.
 */
async function decodePrimary(
  bytes: Uint8Array,
  summary: HeifSummary,
): Promise<{ plane: Buffer; width: number; height: number; channels: 3 | 4 }> {
  const lib = instantiate();
  const context = lib.heif_context_alloc();
  let handle: unknown;
  let image: DecodedImage | undefined;
  try {
    if (lib.heif_context_read_from_memory(context, bytes).code !== lib.heif_error_code.heif_error_Ok) {
      throw permanent('corrupt_image', CORRUPT);
    }
    handle = lib.heif_js_context_get_primary_image_handle(context);
    if (!handle || (handle as { code?: unknown }).code !== undefined) throw permanent('corrupt_image', CORRUPT);
    const channels = lib.heif_image_handle_has_alpha_channel(handle) ? 4 : 3;
    const { colour } = summary;
    const mapped = colour?.kind === 'nclx' && needsSrgbMapping(colour) ? colour : undefined;
    const deep = mapped !== undefined && summary.bitDepth > 8;
    const { heif_chroma: chromas } = lib;
    const chroma = deep
      ? channels === 4
        ? chromas.heif_chroma_interleaved_RRGGBBAA_LE
        : chromas.heif_chroma_interleaved_RRGGBB_LE
      : channels === 4
        ? chromas.heif_chroma_interleaved_RGBA
        : chromas.heif_chroma_interleaved_RGB;
    const result = await lib.heif_js_decode_image2(handle, lib.heif_colorspace.heif_colorspace_RGB, chroma);
    if (!('channels' in result) || result.channels.length === 0) throw permanent('corrupt_image', CORRUPT);
    image = result;
    // The interleaved plane: with RRGGBBAA libheif-js also lists an empty Alpha channel, first.
    const interleaved = result.channels.find((channel) => channel.id === lib.heif_channel.heif_channel_interleaved);
    const plane = interleaved ?? (result.channels[0] as DecodedImage['channels'][number]);
    const { width, height } = plane;
    if (mapped) {
      const bits = deep ? plane.bits_per_pixel : 8;
      const srgb = toSrgb8({ ...plane, channels, bits }, mapped, summary.peakNits);
      return { plane: srgb, width, height, channels };
    }
    return { plane: copyPlane(plane, channels), width, height, channels };
  } finally {
    if (image) lib.heif_image_release(image.image);
    if (handle && (handle as { code?: unknown }).code === undefined) lib.heif_image_handle_release(handle);
    lib.heif_context_free(context);
  }
}

let displayP3: Promise<Buffer> | undefined;

/** sharp's own Display P3 profile (an nclx colour description names primaries, not a profile). */
function displayP3Profile(): Promise<Buffer> {
  displayP3 ??= sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } })
    .withIccProfile('p3')
    .png()
    .toBuffer()
    .then(async (png) => (await sharp(png).metadata()).icc as Buffer);
  return displayP3;
}

/**
 * The profile the decoded RGB is in: an embedded ICC profile as is; nclx Display P3 primaries
 * (12) as sharp's P3 profile; sRGB/BT.709 or unspecified primaries need none.
 */
async function profileOf(colour: HeifColour | undefined): Promise<Buffer | undefined> {
  if (needsSrgbMapping(colour)) return undefined; // already sRGB (hdr.ts)
  if (colour?.kind === 'icc') return Buffer.from(colour.profile);
  if (colour?.kind === 'nclx' && colour.primaries === 12) return displayP3Profile();
  return undefined;
}

/**
 * Decodes a HEIC's primary image into 8-bit RGB(A) pixels, upright, as a level that decode.ts
 * reads like any other: raw, or a store-only PNG carrying its colour profile and, with
 * `keepMetadata`, its EXIF (orientation set to 1: the pixels are already upright). The caller has
 * checked `summary` (heif-summary.ts) against the limits, so the decoder's memory is bounded
 * before it starts.
 *
 * @throws PipelineError (permanent): `corrupt_image` when libheif cannot read or decode it (a
 *   garbage HEVC stream), `too_many_pixels` when its heap could not grow far enough.
 */
export async function decodeHeif(bytes: Uint8Array, summary: HeifSummary, keepMetadata = false): Promise<Level> {
  let decoded: Awaited<ReturnType<typeof decodePrimary>>;
  try {
    const shown = summary.base ? withPrimary(bytes, summary.base.pitm, summary.base.id) : bytes;
    decoded = await decodePrimary(shown, summary);
  } catch (error) {
    if (isHeapExhausted(error)) {
      throw permanent('too_many_pixels', 'The HEIC image needs more memory to decode than the decoder can hold.', {
        width: summary.width,
        height: summary.height,
      });
    }
    if (error instanceof Error && error.name === 'PipelineError') throw error;
    throw permanent('corrupt_image', CORRUPT);
  }
  const { width, height, channels, plane } = decoded;
  const icc = await profileOf(summary.colour);
  const exif = keepMetadata && summary.exif ? uprightExif(summary.exif) : undefined;
  const xmp = keepMetadata ? summary.xmp : undefined;
  const chunks = [
    ...(icc ? [pngChunk('iCCP', Buffer.concat([Buffer.from('icc\0\0', 'latin1'), deflateSync(icc)]))] : []),
    ...(exif ? [pngChunk('eXIf', exif)] : []),
    // PNG's XMP: an uncompressed iTXt under Adobe's keyword, which libvips reads and carries over.
    ...(xmp ? [pngChunk('iTXt', Buffer.concat([Buffer.from('XML:com.adobe.xmp\0\0\0\0\0', 'latin1'), xmp]))] : []),
  ];
  if (chunks.length === 0) return { width, height, channels, data: plane, encoding: 'raw' };
  return { width, height, channels, data: await asPng(plane, { width, height, channels }, chunks), encoding: 'png' };
}

/**
 * A copy of an EXIF TIFF structure with IFD0's orientation (0x0112) set to 1, so that sharp's
 * `.rotate()` leaves the upright pixels alone. Malformed EXIF is dropped rather than trusted.
 */
function uprightExif(tiff: Uint8Array): Buffer | undefined {
  const copy = Buffer.from(tiff);
  const little = copy[0] === 0x49;
  const u16 = (at: number) => (little ? copy.readUInt16LE(at) : copy.readUInt16BE(at));
  if (copy.length < 8) return undefined;
  const ifd = little ? copy.readUInt32LE(4) : copy.readUInt32BE(4);
  if (ifd + 2 > copy.length) return undefined;
  const entries = u16(ifd);
  if (ifd + 2 + entries * 12 > copy.length) return undefined;
  for (let i = 0; i < entries; i++) {
    const entry = ifd + 2 + i * 12;
    if (u16(entry) === 0x0112) {
      if (little) copy.writeUInt16LE(1, entry + 8);
      else copy.writeUInt16BE(1, entry + 8);
    }
  }
  return copy;
}

/** A PNG chunk: length, type, data, CRC of type and data. */
function pngChunk(type: string, data: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const chunk = Buffer.alloc(body.length + 8);
  chunk.writeUInt32BE(data.length, 0);
  body.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(body), body.length + 4);
  return chunk;
}

/**
 * Raw pixels as a store-only PNG with `chunks` after IHDR. Raw input cannot carry a profile and
 * sharp takes none for it (lovell/sharp#1324); from the PNG, sharp converts to sRGB exactly as it
 * does a JPEG's embedded profile, and keeps its EXIF when asked to.
 */
async function asPng(
  plane: Buffer,
  raw: { width: number; height: number; channels: 3 | 4 },
  chunks: Buffer[],
): Promise<Buffer> {
  const png = await sharp(plane, { raw }).png({ compressionLevel: 0, adaptiveFiltering: false }).toBuffer();
  const afterHeader = 8 + 8 + 13 + 4; // signature, IHDR
  return Buffer.concat([png.subarray(0, afterHeader), ...chunks, png.subarray(afterHeader)]);
}
