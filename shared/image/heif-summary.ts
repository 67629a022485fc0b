/**
 * What a HEIC's container says about its primary image, checked against the limits before any
 * pixel is decoded: the displayed size (the grid's output size for tiled images, `clap`, `irot`),
 * the tile layout, alpha, bit depth, the colour profile, and what decoding will cost in memory.
 * The decoder (heif-decode.ts) then only sees files whose cost is known and bounded.
 */
import { permanent } from '../core/errors.js';
import {
  type HeifContainer,
  HeifFormatError,
  type HeifItem,
  type HeifProperty,
  itemData,
  itemLength,
  parseHeifContainer,
} from './heif-container.js';
import { needsSrgbMapping } from './hdr.js';

/** Brands that say a file is HEIF with HEVC images (or generic HEIF, checked item by item). */
export const HEIC_BRANDS: ReadonlySet<string> = new Set([
  'heic',
  'heix',
  'heim',
  'heis',
  'hevc',
  'hevx',
  'mif1',
  'msf1',
]);

/**
 * Most items a HEIC may hold. A 48 MP iPhone photo holds about 270 (192 tiles of 512×512, the
 * gain map's tiles, depth, thumbnails, EXIF); beyond this a file is built to make parsers work.
 */
export const MAX_HEIF_ITEMS = 1024;

/**
 * The WebAssembly decoder's heap can grow to 2 GiB (libheif-js' build); a file whose planes and
 * RGBA output would not fit with room to spare is refused before decoding instead of aborting it.
 */
export const HEIF_DECODER_MEMORY = 1536 * 1024 * 1024;

/** The colour description of the primary image (`colr`). */
export type HeifColour =
  | { kind: 'icc'; profile: Uint8Array }
  | { kind: 'nclx'; primaries: number; transfer: number; matrix: number; fullRange: boolean };

export interface HeifSummary {
  brands: string[];
  items: number;
  /** Top-level images: not tiles, thumbnails, alpha or depth planes (libvips calls them pages). */
  images: number;
  /** Displayed size: grid output or `ispe`, cropped by `clap`, axes swapped by a 90° `irot`. */
  width: number;
  height: number;
  /** 1 for a single image; rows × columns for a grid. */
  tiles: number;
  hasAlpha: boolean;
  bitDepth: number;
  colour: HeifColour | undefined;
  /**
   * The brightest light of HDR content in nits: its content light level (`clli`, MaxCLL), else its
   * mastering display's peak (`mdcv`); undefined when the file gives neither.
   */
  peakNits: number | undefined;
  /**
   * Set when the primary is a `tmap` (ISO 21496-1 gain-map image, which libheif-js cannot show):
   * its base image (first `dimg` input), which the decoder shows instead by reading a copy of the
   * file whose `pitm` (at `pitm`) names it. The gain map is ignored.
   */
  base: { id: number; pitm: HeifContainer['primaryField'] } | undefined;
  /** The primary image's EXIF (a TIFF structure, from its `Exif` item), for KEEP_METADATA. */
  exif: Uint8Array | undefined;
  /** The primary image's XMP packet (from its `mime` item of type application/rdf+xml), for KEEP_METADATA. */
  xmp: Uint8Array | undefined;
  /** Bytes the decoder will hold: the file, the planes of the whole (tiled) area, its RGBA output. */
  decoderBytes: number;
}

const CORRUPT = 'The image is damaged or incomplete and cannot be read.';
const ALPHA_URNS = new Set(['urn:mpeg:hevc:2015:auxid:1', 'urn:mpeg:mpegB:cicp:systems:auxiliary:alpha']);

const property = (item: HeifItem, type: string): HeifProperty | undefined =>
  item.properties.find((candidate) => candidate.type === type);

const u32 = (bytes: Uint8Array, at: number): number =>
  at + 4 <= bytes.length ? new DataView(bytes.buffer, bytes.byteOffset + at, 4).getUint32(0) : -1;
const i32 = (bytes: Uint8Array, at: number): number =>
  at + 4 <= bytes.length ? new DataView(bytes.buffer, bytes.byteOffset + at, 4).getInt32(0) : 0;

/** `ispe` (full box: version/flags, then width and height). */
function spatialExtent(item: HeifItem): { width: number; height: number } {
  const ispe = property(item, 'ispe');
  if (!ispe) throw new HeifFormatError(`item ${item.id} has no size (ispe)`);
  const width = u32(ispe.payload, 4);
  const height = u32(ispe.payload, 8);
  if (!(width > 0 && height > 0)) throw new HeifFormatError(`item ${item.id} has an empty size`);
  return { width, height };
}

/** The grid descriptor: rows, columns and output size (ISO/IEC 23008-12, 6.6.2.3). */
function gridLayout(
  container: HeifContainer,
  item: HeifItem,
): { rows: number; columns: number; width: number; height: number } {
  const data = itemData(container, item);
  if (data.length < 8) throw new HeifFormatError('the grid descriptor is too short');
  const wide = ((data[1] as number) & 1) === 1;
  const rows = (data[2] as number) + 1;
  const columns = (data[3] as number) + 1;
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  if (wide && data.length < 12) throw new HeifFormatError('the grid descriptor is too short');
  const width = wide ? view.getUint32(4) : view.getUint16(4);
  const height = wide ? view.getUint32(8) : view.getUint16(6);
  if (!(width > 0 && height > 0)) throw new HeifFormatError('the grid has an empty size');
  return { rows, columns, width, height };
}

/** Bit depth of an HEVC item from its `hvcC` (bitDepthLumaMinus8 at byte 17 of the payload). */
function hevcBitDepth(item: HeifItem): number {
  const hvcC = property(item, 'hvcC');
  if (!hvcC || hvcC.payload.length < 23) throw new HeifFormatError(`item ${item.id} has no HEVC configuration`);
  return ((hvcC.payload[17] as number) & 7) + 8;
}

function colourOf(item: HeifItem): HeifColour | undefined {
  const colr = property(item, 'colr');
  if (!colr || colr.payload.length < 4) return undefined;
  const kind = String.fromCharCode(...colr.payload.subarray(0, 4));
  if (kind === 'prof' || kind === 'rICC') return { kind: 'icc', profile: colr.payload.subarray(4) };
  if (kind === 'nclx' && colr.payload.length >= 11) {
    const view = new DataView(colr.payload.buffer, colr.payload.byteOffset, colr.payload.length);
    return {
      kind: 'nclx',
      primaries: view.getUint16(4),
      transfer: view.getUint16(6),
      matrix: view.getUint16(8),
      fullRange: ((colr.payload[10] as number) & 0x80) !== 0,
    };
  }
  return undefined;
}

/** MaxCLL of `clli` (u16 nits), else the peak of `mdcv` (u32 in 0.0001 nits after six primaries and white point). */
function peakNitsOf(item: HeifItem): number | undefined {
  const clli = property(item, 'clli');
  const maxCll =
    clli && clli.payload.length >= 4 ? ((clli.payload[0] as number) << 8) | (clli.payload[1] as number) : 0;
  if (maxCll > 0) return maxCll;
  const mdcv = property(item, 'mdcv');
  const peak = mdcv ? u32(mdcv.payload, 16) / 10000 : 0;
  return peak > 0 ? peak : undefined;
}

/** The TIFF structure of the `Exif` item describing `id` (`cdsc`), after its 4-byte header offset. */
function exifOf(container: HeifContainer, id: number): Uint8Array | undefined {
  const reference = container.references.find(
    (r) => r.type === 'cdsc' && r.to.includes(id) && container.items.get(r.from)?.type === 'Exif',
  );
  const item = reference && container.items.get(reference.from);
  if (!item) return undefined;
  const data = itemData(container, item);
  const start = 4 + u32(data, 0);
  const tiff = start >= 4 && start + 8 <= data.length ? data.subarray(start) : undefined;
  const order = tiff ? String.fromCharCode(tiff[0] ?? 0, tiff[1] ?? 0) : '';
  return order === 'II' || order === 'MM' ? tiff : undefined;
}

/** The XMP packet of the `mime` item (application/rdf+xml) describing `id` (`cdsc`). */
function xmpOf(container: HeifContainer, id: number): Uint8Array | undefined {
  const isXmp = (from: number) => {
    const item = container.items.get(from);
    return item?.type === 'mime' && item.contentType === 'application/rdf+xml';
  };
  const reference = container.references.find((r) => r.type === 'cdsc' && r.to.includes(id) && isXmp(r.from));
  const item = reference && container.items.get(reference.from);
  const data = item ? itemData(container, item) : undefined;
  return data && data.length > 0 ? data : undefined;
}

/** The displayed size after `clap` (rounded as libheif does) and a 90°/270° `irot`. */
function displayedSize(item: HeifItem, width: number, height: number): { width: number; height: number } {
  const clap = property(item, 'clap');
  if (clap) {
    const [wn, wd, hn, hd] = [0, 4, 8, 12].map((at) => i32(clap.payload, at)) as [number, number, number, number];
    if (wd > 0 && hd > 0 && wn > 0 && hn > 0) {
      width = Math.min(width, Math.round(wn / wd));
      height = Math.min(height, Math.round(hn / hd));
    }
  }
  const irot = property(item, 'irot');
  const quarterTurns = irot ? (irot.payload[0] ?? 0) & 3 : 0;
  return quarterTurns % 2 === 1 ? { width: height, height: width } : { width, height };
}

function summarise(
  container: HeifContainer,
  bytes: Uint8Array,
  limits: { maxPixels: number; maxFrames: number },
): HeifSummary {
  const { items } = container;
  const referencedAs = (type: string, from: number): number[] =>
    container.references.filter((reference) => reference.type === type && reference.from === from).flatMap((r) => r.to);
  if (items.size > MAX_HEIF_ITEMS) {
    throw permanent(
      'too_many_frames',
      `The HEIF file holds ${items.size} items, more than the limit of ${MAX_HEIF_ITEMS}.`,
      {
        items: items.size,
        maxItems: MAX_HEIF_ITEMS,
      },
    );
  }
  const declared = items.get(container.primaryId);
  if (!declared) throw new HeifFormatError('the primary item does not exist');
  // A `tmap` primary (ISO 21496-1) derives from its base image and the gain map: the base is shown.
  const baseId = declared.type === 'tmap' ? referencedAs('dimg', declared.id)[0] : undefined;
  const primary = baseId === undefined ? declared : items.get(baseId);
  if (!primary) throw new HeifFormatError('the gain-map image names no base image');
  if (primary.id >= 2 ** (8 * container.primaryField.size)) throw new HeifFormatError('pitm cannot name the base');
  if (primary.type === 'av01') {
    throw permanent('corrupt_image', CORRUPT); // AVIF brands are sniffed before this; a disguised one is damaged
  }
  if (primary.type !== 'hvc1' && primary.type !== 'grid') {
    throw permanent('format_not_allowed', `HEIF images stored as "${primary.type}" cannot be processed.`, {
      format: 'heif',
    });
  }
  const dependent = new Set(
    container.references
      .filter((r) => ['dimg', 'auxl', 'thmb', 'base'].includes(r.type))
      .flatMap((r) => (r.type === 'dimg' || r.type === 'base' ? r.to : [r.from])),
  );
  // The primary always counts: a gain map's `tmap` item (ISO 21496-1, Samsung's HEICs) derives
  // from it with `dimg`, which would otherwise mark it as a part of another image.
  const images = [...items.values()].filter(
    (item) => (item.type === 'hvc1' || item.type === 'grid') && (item.id === primary.id || !dependent.has(item.id)),
  ).length;
  if (images > limits.maxFrames) {
    throw permanent(
      'too_many_frames',
      `The image has ${images} frames or pages, more than the limit of ${limits.maxFrames}.`,
      {
        frames: images,
        maxFrames: limits.maxFrames,
      },
    );
  }

  let coded: { width: number; height: number };
  let decodedPixels: number;
  let tiles = 1;
  let first = primary;
  if (primary.type === 'grid') {
    const grid = gridLayout(container, primary);
    const tileIds = referencedAs('dimg', primary.id);
    tiles = grid.rows * grid.columns;
    if (tileIds.length !== tiles)
      throw new HeifFormatError(`the grid needs ${tiles} tiles and names ${tileIds.length}`);
    const tileItems = tileIds.map((id) => items.get(id));
    if (tileItems.some((tile) => tile?.type !== 'hvc1'))
      throw new HeifFormatError('a grid tile is missing or not HEVC');
    first = tileItems[0] as HeifItem;
    const tile = spatialExtent(first);
    for (const other of tileItems as HeifItem[]) {
      const size = spatialExtent(other);
      if (size.width !== tile.width || size.height !== tile.height)
        throw new HeifFormatError('grid tiles differ in size');
    }
    // Tiles cover the output and at most one row and column of them reach past it.
    const fits = (count: number, step: number, total: number) => count * step >= total && (count - 1) * step < total;
    if (!fits(grid.columns, tile.width, grid.width) || !fits(grid.rows, tile.height, grid.height)) {
      throw new HeifFormatError('the grid tiles do not match the grid size');
    }
    coded = { width: grid.width, height: grid.height };
    decodedPixels = grid.columns * tile.width * grid.rows * tile.height;
  } else {
    coded = spatialExtent(primary);
    decodedPixels = coded.width * coded.height;
  }
  for (const id of [primary.id, ...referencedAs('dimg', primary.id)]) {
    const item = items.get(id) as HeifItem;
    if (item.type === 'hvc1' && itemLength(container, item) === 0) throw new HeifFormatError(`item ${id} is empty`);
  }

  const { width, height } = displayedSize(primary, coded.width, coded.height);
  if (width * height > limits.maxPixels || decodedPixels > limits.maxPixels) {
    throw permanent(
      'too_many_pixels',
      `The image is ${width}×${height} pixels, more than the limit of ${limits.maxPixels.toLocaleString('en-US')} pixels.`,
      { width, height, maxPixels: limits.maxPixels },
    );
  }
  const alphaIds = container.references
    .filter((r) => r.type === 'auxl' && r.to.includes(primary.id))
    .map((r) => items.get(r.from))
    .filter((item) => {
      const auxC = item && property(item, 'auxC');
      return (
        auxC !== undefined &&
        ALPHA_URNS.has(Buffer.from(auxC.payload.subarray(4)).toString('latin1').split('\0')[0] ?? '')
      );
    });
  const hasAlpha = alphaIds.length > 0;
  const bitDepth = hevcBitDepth(first);
  const sampleBytes = bitDepth > 8 ? 2 : 1;
  const colour = colourOf(primary) ?? colourOf(first);
  // HDR and BT.2020 colour is decoded at full depth (hdr.ts): 16-bit output samples, not 8.
  const outputBytes = sampleBytes > 1 && needsSrgbMapping(colour) ? 8 : 4;
  // The file itself, the coded 4:2:0 planes (1.5 samples a pixel) and alpha, libheif's 4:4:4
  // intermediate (3), and the 8-bit RGBA output (4): 8.5 bytes a pixel at 8 bits, where a 12 MP
  // photo was measured at 111 MB of heap (9.1 bytes a pixel, the allocator's slack included).
  const decoderBytes = Math.ceil(
    bytes.length + decodedPixels * (sampleBytes * (4.5 + (hasAlpha ? 1 : 0)) + outputBytes),
  );
  if (decoderBytes > HEIF_DECODER_MEMORY) {
    throw permanent(
      'too_many_pixels',
      `The ${width}×${height} HEIC image needs more memory to decode than the decoder can hold.`,
      { width, height, decoderBytes, maxDecoderBytes: HEIF_DECODER_MEMORY },
    );
  }
  return {
    brands: container.brands,
    items: items.size,
    images,
    width,
    height,
    tiles,
    hasAlpha,
    bitDepth,
    colour,
    peakNits: peakNitsOf(primary) ?? peakNitsOf(first),
    base: baseId === undefined ? undefined : { id: baseId, pitm: container.primaryField },
    exif: exifOf(container, primary.id) ?? exifOf(container, declared.id),
    xmp: xmpOf(container, primary.id) ?? xmpOf(container, declared.id),
    decoderBytes,
  };
}

/**
 * Parses a HEIC's container and checks its primary image against the limits.
 *
 * @throws PipelineError (permanent): `corrupt_image` for a damaged or truncated container (a grid
 *   with missing or oversized tiles, an item outside the file, an empty item), `format_not_allowed`
 *   for a primary image that is not HEVC, `too_many_pixels` past `maxPixels` or past what the
 *   decoder can hold, `too_many_frames` past `maxFrames` top-level images or {@link MAX_HEIF_ITEMS}.
 */
export function summariseHeif(bytes: Uint8Array, limits: { maxPixels: number; maxFrames: number }): HeifSummary {
  try {
    return summarise(parseHeifContainer(bytes), bytes, limits);
  } catch (error) {
    if (error instanceof HeifFormatError) throw permanent('corrupt_image', CORRUPT);
    throw error;
  }
}
