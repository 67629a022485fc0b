/**
 * The two checksums Cloud Storage reports for every object: CRC32C and MD5, each as the base64
 * of its big-endian bytes. The clients compare them with their own after every upload (and
 * delete the object when they differ) and on every whole-object download, so they must be exact.
 *
 * CRC32C is table-driven (slicing by 8) in plain TypeScript: no native package to build; its
 * speed is in docs/performance.md.
 */
import { createHash } from 'node:crypto';
import { badRequest } from './api-errors.js';

/** Castagnoli polynomial, bit-reversed. */
const POLYNOMIAL = 0x82f63b78;

/** One 256-entry table of the slicing-by-8 method. */
type Table = Uint32Array;

/** TABLES[k][b]: the CRC of byte b followed by k zero bytes, for slicing by 8. */
const TABLES = ((): readonly [Table, Table, Table, Table, Table, Table, Table, Table] => {
  const t0 = new Uint32Array(256);
  for (let b = 0; b < 256; b++) {
    let crc = b;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    t0[b] = crc >>> 0;
  }
  const next = (previous: Table): Table => previous.map((value) => ((value >>> 8) ^ at(t0, value & 0xff)) >>> 0);
  const t1 = next(t0);
  const t2 = next(t1);
  const t3 = next(t2);
  const t4 = next(t3);
  const t5 = next(t4);
  const t6 = next(t5);
  return [t0, t1, t2, t3, t4, t5, t6, next(t6)];
})();

/** `array[index]`; every caller indexes inside the array (a byte, or a table by a byte), so 0 is never used. */
function at(array: Uint8Array | Uint32Array, index: number): number {
  return array[index] ?? 0;
}

/**
 * Extends a CRC32C over `data`. Start with 0 (the CRC of nothing); pass the previous result to
 * checksum data that arrives in pieces.
 */
export function crc32c(data: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let crc = ~previous >>> 0;
  let i = 0;
  const fast = data.length - (data.length % 8);
  for (; i < fast; i += 8) {
    const low = (crc ^ view.getUint32(i, true)) >>> 0;
    const high = view.getUint32(i + 4, true);
    crc =
      at(t7, low & 0xff) ^
      at(t6, (low >>> 8) & 0xff) ^
      at(t5, (low >>> 16) & 0xff) ^
      at(t4, low >>> 24) ^
      at(t3, high & 0xff) ^
      at(t2, (high >>> 8) & 0xff) ^
      at(t1, (high >>> 16) & 0xff) ^
      at(t0, high >>> 24);
  }
  for (; i < data.length; i++) crc = at(t0, (crc ^ at(data, i)) & 0xff) ^ (crc >>> 8);
  return ~crc >>> 0;
}

/** The CRC32C as Cloud Storage writes it: base64 of the four big-endian bytes. */
export function crc32cBase64(data: Uint8Array | number): string {
  const value = typeof data === 'number' ? data : crc32c(data);
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes.toString('base64');
}

/** The MD5 as Cloud Storage writes it: base64 of the 16 digest bytes. */
export function md5Base64(data: Uint8Array): string {
  return createHash('md5').update(data).digest('base64');
}

/** Checksums a client claims for the data it sends. */
export interface ClaimedHashes {
  crc32c?: string;
  md5?: string;
}

/**
 * Reads an `X-Goog-Hash` header (`crc32c=AAAAAA==,md5=...`; the header may repeat, which Node
 * joins with ", "). Unknown algorithms are ignored, as Cloud Storage does.
 */
export function parseGoogHash(header: string | string[] | undefined): ClaimedHashes {
  const claimed: ClaimedHashes = {};
  if (header === undefined) return claimed;
  const text = Array.isArray(header) ? header.join(',') : header;
  for (const pair of text.split(',')) {
    const at = pair.indexOf('=');
    if (at < 0) continue;
    const algorithm = pair.slice(0, at).trim().toLowerCase();
    const value = pair.slice(at + 1).trim();
    if (algorithm === 'crc32c') claimed.crc32c = value;
    else if (algorithm === 'md5') claimed.md5 = value;
  }
  return claimed;
}

/**
 * Throws a 400 when a claimed checksum differs from the data's. This is what makes a client's
 * corrupted upload fail instead of being stored.
 */
export function verifyClaimedHashes(claimed: ClaimedHashes, actual: { crc32c: string; md5Hash: string }): void {
  if (claimed.crc32c !== undefined && claimed.crc32c !== actual.crc32c) {
    throw badRequest(
      `Provided CRC32C "${claimed.crc32c}" doesn't match calculated CRC32C "${actual.crc32c}".`,
      'invalid',
    );
  }
  if (claimed.md5 !== undefined && claimed.md5 !== actual.md5Hash) {
    throw badRequest(
      `Provided MD5 hash "${claimed.md5}" doesn't match calculated MD5 hash "${actual.md5Hash}".`,
      'invalid',
    );
  }
}
