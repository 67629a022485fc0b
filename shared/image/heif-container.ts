/**
 * Just enough of the HEIF container (ISO/IEC 23008-12 on ISO-BMFF, ISO/IEC 14496-12) to judge a
 * HEIC before any pixel is decoded: the items, their properties, references and data extents.
 * Every length and count comes from the file, so every read is bounds-checked against the box
 * that holds it, and counts are capped before anything is allocated for them: a hostile file can
 * only make this throw {@link HeifFormatError}, never read outside the buffer or loop for long.
 * What the items mean (primary image, grid, limits) is heif-summary.ts.
 */

/** The file breaks the container's rules; the probe turns it into `corrupt_image`. */
export class HeifFormatError extends Error {
  override name = 'HeifFormatError';
}

/** A property box from `ipco`: its type and its payload (the bytes after the box header). */
export interface HeifProperty {
  type: string;
  payload: Uint8Array;
}

/** One item of the `meta` box. */
export interface HeifItem {
  id: number;
  /** `hvc1`, `grid`, `av01`, `Exif`, `mime`, ... */
  type: string;
  /** A `mime` item's content type (`application/rdf+xml` for XMP). */
  contentType?: string;
  /** Properties associated by `ipma`, in association order. */
  properties: HeifProperty[];
  /** Where its data lies: `offset` into the file (construction method 0) or into `idat` (method 1). */
  extents: { offset: number; length: number }[];
  /** 0: in the file (usually `mdat`); 1: in the `idat` box. */
  construction: number;
}

/** The parsed `meta` box. */
export interface HeifContainer {
  /** Major brand first, then the compatible brands. */
  brands: string[];
  primaryId: number;
  /** Where `pitm` stores the primary's id in the file, and its width (2 or 4 bytes). */
  primaryField: { offset: number; size: 2 | 4 };
  items: Map<number, HeifItem>;
  /** `iref` references by type: `dimg` (grid → tiles), `auxl` (alpha/depth → master), `thmb`, ... */
  references: { type: string; from: number; to: number[] }[];
  /** The `idat` box's payload (empty when there is none). */
  idat: Uint8Array;
  /** The whole file, for item data of construction method 0. */
  file: Uint8Array;
}

/** More items, properties or references than any camera writes: refused before allocation. */
export const MAX_HEIF_ENTRIES = 10_000;

/** A box: its type and the bounds of its payload within the file. */
interface Box {
  type: string;
  start: number;
  end: number;
}

function fail(message: string): never {
  throw new HeifFormatError(message);
}

/** A bounds-checked big-endian reader over `[start, end)` of the file. */
class Reader {
  at: number;
  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    readonly end: number,
  ) {
    this.at = start;
  }
  private need(n: number): number {
    if (n < 0 || this.at + n > this.end) fail('a box ends before its fields do');
    const at = this.at;
    this.at += n;
    return at;
  }
  u8(): number {
    return this.bytes[this.need(1)] as number;
  }
  u16(): number {
    const at = this.need(2);
    return ((this.bytes[at] as number) << 8) | (this.bytes[at + 1] as number);
  }
  u32(): number {
    const at = this.need(4);
    return (
      (this.bytes[at] as number) * 0x1000000 +
      (((this.bytes[at + 1] as number) << 16) | ((this.bytes[at + 2] as number) << 8) | (this.bytes[at + 3] as number))
    );
  }
  /** An unsigned integer of 0, 4 or 8 bytes (iloc's sizes); 8-byte values must fit in 2^53. */
  uint(size: number): number {
    if (size === 0) return 0;
    if (size === 4) return this.u32();
    if (size === 8) {
      const high = this.u32();
      if (high > 0x1fffff) fail('an offset is beyond any file');
      return high * 0x100000000 + this.u32();
    }
    return fail(`an integer field of ${size} bytes`);
  }
  /** A null-terminated string (UTF-8); a missing terminator ends it at the box's end, as libheif reads it. */
  string(): string {
    const start = this.at;
    while (this.at < this.end && this.bytes[this.at] !== 0) this.at++;
    const value = Buffer.from(this.bytes.subarray(start, this.at)).toString('utf8');
    if (this.at < this.end) this.at++;
    return value;
  }
  fourcc(): string {
    const at = this.need(4);
    return String.fromCharCode(...this.bytes.subarray(at, at + 4));
  }
  skip(n: number): void {
    this.need(n);
  }
  bytesTo(end: number): Uint8Array {
    if (end < this.at || end > this.end) fail('a box ends before its fields do');
    const slice = this.bytes.subarray(this.at, end);
    this.at = end;
    return slice;
  }
}

/** The boxes between `start` and `end`, each checked to lie inside. */
function boxes(bytes: Uint8Array, start: number, end: number): Box[] {
  const found: Box[] = [];
  const reader = new Reader(bytes, start, end);
  while (reader.at < end) {
    if (found.length >= MAX_HEIF_ENTRIES) fail('too many boxes');
    const boxStart = reader.at;
    let size = reader.u32();
    const type = reader.fourcc();
    if (size === 1) size = reader.uint(8);
    else if (size === 0) size = end - boxStart;
    const payload = reader.at;
    if (size < payload - boxStart || boxStart + size > end) fail(`the ${type} box runs past its container`);
    found.push({ type, start: payload, end: boxStart + size });
    reader.at = boxStart + size;
  }
  return found;
}

/** The one child box of `type`, or undefined; two of a kind that must be unique are an error. */
function only(children: Box[], type: string, required: boolean): Box | undefined {
  const matching = children.filter((box) => box.type === type);
  if (matching.length > 1) fail(`more than one ${type} box`);
  if (required && matching.length === 0) fail(`no ${type} box`);
  return matching[0];
}

/** Reads a full box's version (flags follow in the next three bytes). */
function fullBox(reader: Reader): { version: number; flags: number } {
  const version = reader.u8();
  const flags = (reader.u8() << 16) | reader.u16();
  return { version, flags };
}

function count(reader: Reader, wide: boolean): number {
  const n = wide ? reader.u32() : reader.u16();
  if (n > MAX_HEIF_ENTRIES) fail(`a list of ${n} entries`);
  return n;
}

function readItemInfos(bytes: Uint8Array, box: Box): Map<number, HeifItem> {
  const reader = new Reader(bytes, box.start, box.end);
  const { version } = fullBox(reader);
  const entries = count(reader, version !== 0);
  const items = new Map<number, HeifItem>();
  const children = boxes(bytes, reader.at, box.end).filter((child) => child.type === 'infe');
  if (children.length !== entries) fail('iinf counts a different number of items than it holds');
  for (const infe of children) {
    const entry = new Reader(bytes, infe.start, infe.end);
    const { version: infeVersion } = fullBox(entry);
    if (infeVersion < 2) fail('an item info entry older than version 2');
    const id = infeVersion === 2 ? entry.u16() : entry.u32();
    entry.skip(2); // item_protection_index
    const type = entry.fourcc();
    if (items.has(id)) fail(`item ${id} is declared twice`);
    entry.string(); // item_name
    // A `mime` item names its content type (XMP is `application/rdf+xml`).
    const contentType = type === 'mime' ? entry.string() : undefined;
    items.set(id, { id, type, properties: [], extents: [], construction: 0, ...(contentType ? { contentType } : {}) });
  }
  return items;
}

function readLocations(bytes: Uint8Array, box: Box, items: Map<number, HeifItem>): void {
  const reader = new Reader(bytes, box.start, box.end);
  const { version } = fullBox(reader);
  if (version > 2) fail('an iloc box of unknown version');
  const sizes = reader.u16();
  const offsetSize = sizes >> 12;
  const lengthSize = (sizes >> 8) & 0xf;
  const baseOffsetSize = (sizes >> 4) & 0xf;
  const indexSize = version === 0 ? 0 : sizes & 0xf;
  const entries = count(reader, version === 2);
  for (let i = 0; i < entries; i++) {
    const id = version === 2 ? reader.u32() : reader.u16();
    const construction = version === 0 ? 0 : reader.u16() & 0xf;
    reader.skip(2); // data_reference_index: 0, this file
    const base = reader.uint(baseOffsetSize);
    const extentCount = reader.u16();
    const extents: { offset: number; length: number }[] = [];
    for (let e = 0; e < extentCount; e++) {
      reader.uint(indexSize);
      const offset = base + reader.uint(offsetSize);
      extents.push({ offset, length: reader.uint(lengthSize) });
    }
    const item = items.get(id);
    if (item) {
      item.extents = extents;
      item.construction = construction;
    }
  }
}

function readProperties(bytes: Uint8Array, box: Box, items: Map<number, HeifItem>): void {
  const children = boxes(bytes, box.start, box.end);
  const ipco = only(children, 'ipco', true) as Box;
  const properties: HeifProperty[] = boxes(bytes, ipco.start, ipco.end).map((property) => ({
    type: property.type,
    payload: bytes.subarray(property.start, property.end),
  }));
  for (const ipma of children.filter((child) => child.type === 'ipma')) {
    const reader = new Reader(bytes, ipma.start, ipma.end);
    const { version, flags } = fullBox(reader);
    const entries = count(reader, true);
    for (let i = 0; i < entries; i++) {
      const id = version < 1 ? reader.u16() : reader.u32();
      const associations = reader.u8();
      const item = items.get(id);
      for (let a = 0; a < associations; a++) {
        const index = flags & 1 ? reader.u16() & 0x7fff : reader.u8() & 0x7f;
        if (index === 0) continue; // "no property"
        const property = properties[index - 1];
        if (!property) fail('ipma names a property that ipco does not hold');
        item?.properties.push(property);
      }
    }
  }
}

function readReferences(bytes: Uint8Array, box: Box): HeifContainer['references'] {
  const reader = new Reader(bytes, box.start, box.end);
  const { version } = fullBox(reader);
  const references: HeifContainer['references'] = [];
  for (const child of boxes(bytes, reader.at, box.end)) {
    const entry = new Reader(bytes, child.start, child.end);
    const from = version === 0 ? entry.u16() : entry.u32();
    const n = count(entry, false);
    const to: number[] = [];
    for (let i = 0; i < n; i++) to.push(version === 0 ? entry.u16() : entry.u32());
    references.push({ type: child.type, from, to });
  }
  return references;
}

/** Parses the `ftyp` and `meta` boxes of a HEIF file. @throws HeifFormatError */
export function parseHeifContainer(file: Uint8Array): HeifContainer {
  const top = boxes(file, 0, file.length);
  const ftyp = top[0];
  if (ftyp?.type !== 'ftyp') fail('the file does not start with an ftyp box');
  const brands: string[] = [];
  const ftypReader = new Reader(file, ftyp.start, ftyp.end);
  brands.push(ftypReader.fourcc());
  ftypReader.skip(4); // minor_version
  while (ftypReader.at + 4 <= ftyp.end) brands.push(ftypReader.fourcc());

  const meta = only(top, 'meta', true) as Box;
  const metaReader = new Reader(file, meta.start, meta.end);
  fullBox(metaReader);
  const children = boxes(file, metaReader.at, meta.end);
  const hdlr = only(children, 'hdlr', true) as Box;
  const hdlrReader = new Reader(file, hdlr.start, hdlr.end);
  fullBox(hdlrReader);
  hdlrReader.skip(4); // pre_defined
  if (hdlrReader.fourcc() !== 'pict') fail('the meta box does not describe pictures');

  const pitm = only(children, 'pitm', true) as Box;
  const pitmReader = new Reader(file, pitm.start, pitm.end);
  const primaryField = { offset: pitmReader.at + 4, size: fullBox(pitmReader).version === 0 ? 2 : 4 } as const;
  const primaryId = primaryField.size === 2 ? pitmReader.u16() : pitmReader.u32();

  const items = readItemInfos(file, only(children, 'iinf', true) as Box);
  const iloc = only(children, 'iloc', false);
  if (iloc) readLocations(file, iloc, items);
  const iprp = only(children, 'iprp', false);
  if (iprp) readProperties(file, iprp, items);
  const iref = only(children, 'iref', false);
  const idat = only(children, 'idat', false);
  return {
    brands,
    primaryId,
    primaryField,
    items,
    references: iref ? readReferences(file, iref) : [],
    idat: idat ? file.subarray(idat.start, idat.end) : new Uint8Array(0),
    file,
  };
}

/**
 * A copy of the file whose `pitm` names item `id` instead (it must fit the field): how a decoder
 * that only shows the primary is made to show another image.
 */
export function withPrimary(file: Uint8Array, field: HeifContainer['primaryField'], id: number): Uint8Array {
  const copy = Uint8Array.from(file);
  const view = new DataView(copy.buffer, field.offset, field.size);
  if (field.size === 2) view.setUint16(0, id);
  else view.setUint32(0, id);
  return copy;
}

/** An item's extents as ranges of its source, each checked to lie inside it. */
function spans(container: HeifContainer, item: HeifItem): { source: Uint8Array; ranges: [number, number][] } {
  if (item.construction > 1) fail(`item ${item.id} is stored by reference to other items`);
  const source = item.construction === 1 ? container.idat : container.file;
  const ranges = item.extents.map(({ offset, length }): [number, number] => {
    // length 0 means "to the end of the source" (a single extent only).
    const end = length === 0 && item.extents.length === 1 ? source.length : offset + length;
    if (offset > source.length || end > source.length) fail(`item ${item.id} lies past the end of the file`);
    return [offset, end];
  });
  return { source, ranges };
}

/** An item's data, its extents joined. @throws HeifFormatError when it lies outside the file */
export function itemData(container: HeifContainer, item: HeifItem): Uint8Array {
  const { source, ranges } = spans(container, item);
  const parts = ranges.map(([start, end]) => source.subarray(start, end));
  return parts.length === 1 ? (parts[0] as Uint8Array) : Buffer.concat(parts);
}

/** Total bytes of an item's data, without copying it. @throws HeifFormatError like {@link itemData} */
export function itemLength(container: HeifContainer, item: HeifItem): number {
  return spans(container, item).ranges.reduce((total, [start, end]) => total + end - start, 0);
}
