/**
 * Object names and content types: the data layout in one place.
 *
 * - uploads bucket: `originals/{id}` (stored by upload/ingest), `incoming/...` (direct uploads)
 * - images bucket: `{id}/{width}w.{ext}`, `{id}/{W}x{H}/{width}w.{ext}` (an aspect's crop),
 *   `{id}/manifest.json`, `{id}/error.json`
 */
import { createHash } from 'node:crypto';
import type { OutputFormat } from './config.js';
import { topology } from './topology.js';

/** File extension per output format. */
export const EXTENSIONS: Readonly<Record<OutputFormat, string>> = { avif: 'avif', webp: 'webp', jpeg: 'jpg' };

/** Content-Type per output format. */
export const CONTENT_TYPES: Readonly<Record<OutputFormat, string>> = {
  avif: 'image/avif',
  webp: 'image/webp',
  jpeg: 'image/jpeg',
};

/** Cache-Control of variants: their names never change content, so they are immutable. */
export const VARIANT_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** Cache-Control of manifests and failure records: written once, but may be deleted by cleanup. */
export const RECORD_CACHE_CONTROL = 'no-cache';

/** The image id of some bytes: the first 32 hex digits of their SHA-256. */
export function imageIdOf(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 32);
}

/** `originals/{id}` in the uploads bucket. */
export function originalName(id: string): string {
  return `${topology.prefixes.originals}${id}`;
}

/** The id in an `originals/{id}` name, or undefined for any other name. */
export function idFromOriginalName(name: string): string | undefined {
  const prefix = topology.prefixes.originals;
  if (!name.startsWith(prefix)) return undefined;
  const id = name.slice(prefix.length);
  return /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

/** True for names under `incoming/`, the direct-upload area that `ingest` watches. */
export function isIncomingName(name: string): boolean {
  return name.startsWith(topology.prefixes.incoming) && name.length > topology.prefixes.incoming.length && !name.endsWith('/');
}

/**
 * `{id}/{width}w.{ext}` in the images bucket, or `{id}/{W}x{H}/{width}w.{ext}` for a variant of
 * aspect `W:H`'s crop: a folder of its own, so no cropped name can equal an uncropped one.
 */
export function variantName(id: string, width: number, format: OutputFormat, aspect?: string): string {
  return aspect === undefined ? `${id}/${width}w.${EXTENSIONS[format]}` : `${id}/${aspectFolder(aspect)}/${width}w.${EXTENSIONS[format]}`;
}

/** The folder of aspect `W:H`'s variants: `WxH` (a colon is awkward in URLs and file systems). */
export function aspectFolder(aspect: string): string {
  return aspect.replace(':', 'x');
}

/** Custom metadata key on `incoming/` objects: the uploader's focal point, `x,y` from 0 to 1. */
export const FOCUS_METADATA_KEY = 'focus';

/** `{id}/manifest.json` in the images bucket. */
export function manifestName(id: string): string {
  return `${id}/manifest.json`;
}

/** `{id}/error.json` in the images bucket. */
export function errorRecordName(id: string): string {
  return `${id}/error.json`;
}

/** The id that leads an images-bucket name (`{id}/...`), or undefined. */
export function idFromImagesName(name: string): string | undefined {
  const match = /^([0-9a-f]{32})\//.exec(name);
  return match ? match[1] : undefined;
}

/**
 * Makes a client-supplied file name safe for object metadata and headers: the last path segment
 * only, no control characters (NUL, CR, LF), no quotes or backslashes, at most 200 characters.
 * Returns undefined when nothing usable is left.
 */
export function sanitizeFilename(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const lastSegment = raw.split(/[\\/]/).pop() ?? '';
  const cleaned = lastSegment
    .normalize('NFC')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f"\\]/g, '')
    .replace(/^\.+/, '')
    .trim();
  const truncated = [...cleaned].slice(0, 200).join('');
  return truncated.length > 0 ? truncated : undefined;
}
