/**
 * The gate in front of every decode: what kind of file is this, and is it small enough to decode?
 *
 * The format comes from the file's first bytes (its magic number), never from the client's
 * Content-Type header or file name, both of which the client controls. Limits are checked from the
 * image header alone: `sharp().metadata()` parses headers without decoding pixels, so a few hundred
 * bytes claiming 60000×60000 pixels cost about a millisecond and no memory.
 *
 * Accepted input formats:
 * - JPEG, PNG, WebP, GIF, TIFF: decoded by the prebuilt sharp. GIF and TIFF may hold several
 *   frames or pages; only the first is rendered, but the count is still limited.
 * - AVIF (a HEIF container holding AV1): decoded by the prebuilt sharp.
 * - HEIC (a HEIF container holding HEVC, as phones write it): the prebuilt sharp cannot decode
 *   HEVC, so its container is read by heif-summary.ts (limits checked there, before any decode)
 *   and its pixels decoded by heif-decode.ts. A HEIF whose primary image is neither HEVC nor an
 *   HEVC grid is `format_not_allowed`.
 * - SVG only when `allowSvg`, and never with XML entity declarations (see {@link probeImage}).
 *
 * Everything else (PDF, JPEG XL, RAW-only files, SVGZ, text) is `not_an_image`. TIFF-based camera RAW files (DNG, NEF, CR2) sniff as TIFF; libvips then reads
 * their first IFD, usually a preview.
 */
import sharp, { type Metadata } from 'sharp';
import { crc32 } from 'node:zlib';
import type { Config } from '../core/config.js';
import { permanent } from '../core/errors.js';
import { FORMAT_LIMITS, planImage } from './plan.js';
import { HEIC_BRANDS, summariseHeif } from './heif-summary.js';
import type { AnimationMode, OutputFormat } from '../core/domain.js';
import { animationFrames, assertAnimationFits } from './animation.js';

/** Formats the sniffer recognises. `heif` is HEIC: HEIF holding HEVC, as phones write it. */
export type InputFormat = 'jpeg' | 'png' | 'webp' | 'avif' | 'heif' | 'gif' | 'tiff' | 'svg';

/** The formats that {@link probeImage} lets through (SVG additionally needs `allowSvg`). */
export const ACCEPTED_INPUT_FORMATS: readonly InputFormat[] = [
  'jpeg',
  'png',
  'webp',
  'avif',
  'heif',
  'gif',
  'tiff',
  'svg',
];

/** Content-Type of each input format, taken from the sniffed format rather than the client's header. */
export const INPUT_CONTENT_TYPES: Readonly<Record<InputFormat, string>> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  avif: 'image/avif',
  heif: 'image/heic',
  gif: 'image/gif',
  tiff: 'image/tiff',
  svg: 'image/svg+xml',
};

/** Other names clients use for a format (a signed URL may be asked for either). */
export const INPUT_CONTENT_TYPE_ALIASES: Readonly<Partial<Record<InputFormat, readonly string[]>>> = {
  heif: ['image/heif'],
};

/** Limits checked before any pixel is decoded. */
export interface ProbeLimits {
  /** Largest accepted file, in bytes. */
  maxBytes: number;
  /** Largest accepted width × height (of one frame). */
  maxPixels: number;
  /** Most frames or pages accepted (only the first is rendered, but parsers walk them all). */
  maxFrames: number;
  /** Whether SVG input is accepted at all. */
  allowSvg: boolean;
  /** ANIMATION: with `keep`, an animation's frames together must fit `maxPixels` (animation.ts). */
  animation?: AnimationMode;
  /** The configured variant widths and formats: a shape none of whose variants fits any format is refused. */
  widths: readonly number[];
  formats: readonly OutputFormat[];
}

/**
 * The probe's limits from configuration. Bytes through the upload function are capped by
 * MAX_UPLOAD_BYTES, objects ingested from `incoming/` by MAX_INGEST_BYTES; the rest is shared.
 */
export function probeLimitsFromConfig(
  config: Pick<
    Config,
    'MAX_UPLOAD_BYTES' | 'MAX_INPUT_PIXELS' | 'MAX_INPUT_FRAMES' | 'ALLOW_SVG' | 'WIDTHS' | 'FORMATS'
  > &
    Partial<Pick<Config, 'MAX_INGEST_BYTES' | 'ANIMATION'>>,
  path: 'upload' | 'ingest' = 'upload',
): ProbeLimits {
  return {
    maxBytes: path === 'ingest' ? (config.MAX_INGEST_BYTES ?? config.MAX_UPLOAD_BYTES) : config.MAX_UPLOAD_BYTES,
    maxPixels: config.MAX_INPUT_PIXELS,
    maxFrames: config.MAX_INPUT_FRAMES,
    allowSvg: config.ALLOW_SVG,
    ...(config.ANIMATION ? { animation: config.ANIMATION } : {}),
    widths: config.WIDTHS,
    formats: config.FORMATS,
  };
}

/** What the probe learnt from an accepted image's header. */
export interface ProbeResult {
  format: InputFormat;
  /** From the sniffed format, never from the client. */
  contentType: string;
  /** Display width: after applying the EXIF orientation (orientations 5–8 swap the axes). */
  width: number;
  /** Display height: after applying the EXIF orientation. */
  height: number;
  /** Frames (GIF, animated WebP) or pages (TIFF); 1 for still images. */
  frames: number;
  hasAlpha: boolean;
  /** EXIF orientation, 1–8 (1 when absent or invalid). */
  orientation: number;
  /** Size of the file. */
  bytes: number;
}

const ascii = (bytes: Uint8Array, start: number, length: number): string =>
  start + length <= bytes.length ? String.fromCharCode(...bytes.subarray(start, start + length)) : '';

const startsWith = (bytes: Uint8Array, prefix: readonly number[]): boolean =>
  bytes.length >= prefix.length && prefix.every((byte, i) => bytes[i] === byte);

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a] as const;

/** ISO-BMFF brands that mean AV1 inside HEIF (AVIF still and sequence). */
const AVIF_BRANDS = new Set(['avif', 'avis']);

/**
 * The brands of an ISO-BMFF `ftyp` box (major brand first), or undefined when the file does not
 * start with one. AVIF files often declare `mif1` as the major brand and `avif` only as a
 * compatible brand, so all of them are needed.
 */
function isoBmffBrands(bytes: Uint8Array): string[] | undefined {
  if (ascii(bytes, 4, 4) !== 'ftyp') return undefined;
  const declaredSize = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  const boxEnd = Math.min(bytes.length, declaredSize >= 16 ? declaredSize : bytes.length, 4096);
  const brands = [ascii(bytes, 8, 4)];
  for (let offset = 16; offset + 4 <= boxEnd; offset += 4) brands.push(ascii(bytes, offset, 4));
  return brands;
}

/** How much of a text file is searched for the `<svg` root; real prologs are far shorter. */
const SVG_SNIFF_WINDOW = 64 * 1024;

/**
 * True when the text starts (after an optional BOM, whitespace, XML declaration, comments,
 * processing instructions and DOCTYPE) with an `<svg` root element. HTML, XML that is not SVG and
 * plain text fail, even if the client called them `image/svg+xml`.
 */
function looksLikeSvg(bytes: Uint8Array): boolean {
  let text = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, SVG_SNIFF_WINDOW)).toString('utf8');
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let at = 0;
  for (;;) {
    while (at < text.length && /\s/.test(text.charAt(at))) at++;
    if (text.startsWith('<?', at)) {
      const end = text.indexOf('?>', at);
      if (end < 0) return false;
      at = end + 2;
    } else if (text.startsWith('<!--', at)) {
      const end = text.indexOf('-->', at);
      if (end < 0) return false;
      at = end + 3;
    } else if (/^<!DOCTYPE/i.test(text.slice(at, at + 9))) {
      // An internal subset ([...]) may itself contain '>', so skip to its closing ']' first.
      const subsetStart = text.indexOf('[', at);
      const firstClose = text.indexOf('>', at);
      const subsetEnd = subsetStart >= 0 && subsetStart < firstClose ? text.indexOf(']', subsetStart) : at;
      if (subsetEnd < 0) return false;
      const end = text.indexOf('>', subsetEnd);
      if (end < 0) return false;
      at = end + 1;
    } else {
      return /^<svg[\s>/]/.test(text.slice(at, at + 5));
    }
  }
}

/**
 * The format of a file from its magic bytes alone, or undefined for anything not recognised.
 * Needs only the first few bytes (SVG: the prolog), so it can run on the start of a stream.
 */
export function sniffFormat(bytes: Uint8Array): InputFormat | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, PNG_SIGNATURE)) return 'png';
  if (ascii(bytes, 0, 6) === 'GIF87a' || ascii(bytes, 0, 6) === 'GIF89a') return 'gif';
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') return 'webp';
  // Classic TIFF (42) and BigTIFF (43), in both byte orders.
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(bytes, [0x49, 0x49, 0x2b, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2b])) return 'tiff';
  const brands = isoBmffBrands(bytes);
  if (brands) {
    if (brands.some((brand) => AVIF_BRANDS.has(brand))) return 'avif';
    if (brands.some((brand) => HEIC_BRANDS.has(brand))) return 'heif';
    return undefined; // MP4, QuickTime and other ISO-BMFF files
  }
  if (looksLikeSvg(bytes)) return 'svg';
  return undefined;
}

/**
 * libvips ignores PNG chunk checksums when reading the header, so a damaged IHDR would be trusted
 * for the limit checks; verify that the first chunk is a 13-byte IHDR with a correct CRC.
 */
function pngHeaderIsIntact(bytes: Uint8Array): boolean {
  if (bytes.length < 8 + 8 + 13 + 4) return false;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.readUInt32BE(8) !== 13 || ascii(bytes, 12, 4) !== 'IHDR') return false;
  return crc32(view.subarray(12, 12 + 4 + 13)) === view.readUInt32BE(12 + 4 + 13);
}

/**
 * XML entity declarations are how XXE and "billion laughs" attacks start; librsvg's libxml2 limits
 * both today, but no legitimate web SVG needs them, so they are refused before any parser runs.
 */
function svgDeclaresEntities(bytes: Uint8Array): boolean {
  return /<!ENTITY/i.test(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1'));
}

const CORRUPT_MESSAGE = 'The image is damaged or incomplete and cannot be read.';

const formatNames = 'JPEG, PNG, WebP, AVIF, HEIC, GIF or TIFF';

function describeBytes(bytes: number): string {
  const MiB = 1024 * 1024;
  return bytes >= MiB ? `${+(bytes / MiB).toFixed(1)} MiB` : `${bytes} bytes`;
}

/**
 * Identifies an image and checks it against the limits, reading headers only: cheap enough to run
 * synchronously in the upload request, and safe against pixel bombs.
 *
 * @throws PipelineError (permanent) with code `payload_too_large`, `not_an_image`,
 *   `format_not_allowed`, `too_many_pixels`, `too_many_frames`, `unsupported_dimensions` (no
 *   variant of this shape fits any configured output format) or `corrupt_image`. Messages are
 *   short sentences safe to show a client. A damaged *body* behind an intact header passes the
 *   probe and fails later, at decode, as `corrupt_image`.
 */
export async function probeImage(bytes: Buffer, limits: ProbeLimits): Promise<ProbeResult> {
  if (bytes.length === 0) throw permanent('not_an_image', 'The file is empty.');
  if (bytes.length > limits.maxBytes) {
    throw permanent('payload_too_large', `The file is larger than the limit of ${describeBytes(limits.maxBytes)}.`, {
      maxBytes: limits.maxBytes,
    });
  }

  const format = sniffFormat(bytes);
  if (format === undefined) throw permanent('not_an_image', `The file is not a supported image (${formatNames}).`);
  if (format === 'svg') {
    if (!limits.allowSvg) throw permanent('format_not_allowed', 'SVG images are not accepted.', { format });
    if (svgDeclaresEntities(bytes))
      throw permanent('format_not_allowed', 'SVG images that declare XML entities are not accepted.', { format });
  }
  if (format === 'png' && !pngHeaderIsIntact(bytes)) throw permanent('corrupt_image', CORRUPT_MESSAGE);
  if (format === 'heif') {
    // sharp cannot decode HEVC, so its header is read here (heif-summary.ts), limits included.
    const heif = summariseHeif(bytes, limits);
    const frames = Math.max(1, heif.images);
    return accepted({ format, width: heif.width, height: heif.height, frames, hasAlpha: heif.hasAlpha }, bytes, limits);
  }

  let metadata: Metadata;
  try {
    // The pixel limit is checked below, from the same header, so that the error can say how big
    // the image claims to be; sharp's own check would only say "exceeds pixel limit".
    metadata = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw permanent('corrupt_image', CORRUPT_MESSAGE);
  }

  // libvips sniffs again on its own; a disagreement means a polyglot or a damaged file.
  const decoderAgrees =
    format === 'avif' ? metadata.format === 'heif' && metadata.compression === 'av1' : metadata.format === format;
  if (!decoderAgrees) {
    if (format === 'avif' && metadata.format === 'heif') {
      throw permanent('format_not_allowed', 'HEIF images that are not AV1-encoded (AVIF) cannot be processed.', {
        format: 'heif',
      });
    }
    throw permanent('corrupt_image', CORRUPT_MESSAGE);
  }

  const orientation =
    metadata.orientation !== undefined && metadata.orientation >= 1 && metadata.orientation <= 8
      ? metadata.orientation
      : 1;
  const { width, height } = metadata.autoOrient;
  if (!(width > 0 && height > 0)) throw permanent('corrupt_image', CORRUPT_MESSAGE);
  if (width * height > limits.maxPixels) {
    throw permanent(
      'too_many_pixels',
      `The image is ${width}×${height} pixels, more than the limit of ${limits.maxPixels.toLocaleString('en-US')} pixels.`,
      { width, height, maxPixels: limits.maxPixels },
    );
  }
  const frames = metadata.pages ?? 1;
  if (frames > limits.maxFrames) {
    throw permanent(
      'too_many_frames',
      `The image has ${frames} frames or pages, more than the limit of ${limits.maxFrames}.`,
      {
        frames,
        maxFrames: limits.maxFrames,
      },
    );
  }
  if (limits.animation === 'keep' && animationFrames({ format, frames, orientation }))
    assertAnimationFits({ width, height, frames }, limits.maxPixels);
  return accepted({ format, width, height, frames, hasAlpha: metadata.hasAlpha, orientation }, bytes, limits);
}

/**
 * The checks every accepted format ends with: variants are planned within each output format's
 * limits; refuse only what yields none at all, so that nothing accepted can fail at encode for its
 * shape.
 */
function accepted(
  header: Pick<ProbeResult, 'format' | 'width' | 'height' | 'frames' | 'hasAlpha'> & { orientation?: number },
  bytes: Buffer,
  limits: ProbeLimits,
): ProbeResult {
  const { width, height } = header;
  if (
    planImage({ width, height }, { WIDTHS: [...limits.widths], FORMATS: [...limits.formats] }).variants.length === 0
  ) {
    const largest = limits.formats.map(
      (format) => `${FORMAT_LIMITS[format].name} ${FORMAT_LIMITS[format].maxHeight.toLocaleString('en-US')} px`,
    );
    throw permanent(
      'unsupported_dimensions',
      `The image is ${width}×${height} pixels: too narrow for its height to make any variant (tallest allowed: ${largest.join(', ')}).`,
      { width, height },
    );
  }
  return {
    ...header,
    orientation: header.orientation ?? 1,
    contentType: INPUT_CONTENT_TYPES[header.format],
    bytes: bytes.length,
  };
}
