/**
 * The data layout in one place: every object name and prefix, every custom metadata key the
 * pipeline writes or reads back, and the content types.
 *
 * - uploads bucket: `originals/{id}` (stored by upload/ingest), `incoming/...` (direct uploads;
 *   a signed URL's object is `incoming/{ticket}/{filename}`).
 * - images bucket: `{id}/{width}w.{ext}`, `{id}/{W}x{H}/{width}w.{ext}` (an aspect's crop),
 *   `{id}/omitted/...` (a planned variant not written: larger than the original),
 *   `{id}/manifest.json`, `{id}/error.json`
 * - Firestore: `images/{id}` (the image's state, state/image-doc.ts), `assets/{assetId}` (an
 *   owner's upload of an image, state/assets.ts), `owners/{key}` (quotas), `tickets/{ticket}`
 *   (signed upload URLs, state/tickets.ts) and `cleanup/{step}` (cursors).
 */
import { createHash } from 'node:crypto';
import { topology } from './topology.js';
import type { OutputFormat } from './domain.js';

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

/**
 * The image id of some bytes: the first 32 hex digits of their SHA-256. With a focal point (given
 * only when it changes what is made: ASPECTS non-empty), the id is of the bytes and the focus
 * rounded to 4 decimals, so two focuses on the same bytes are two images (docs/state.md).
 */
export function imageIdOf(bytes: Uint8Array, focus?: { readonly x: number; readonly y: number }): string {
  const hash = createHash('sha256').update(bytes);
  if (focus) hash.update(`\nfocus\n${focus.x.toFixed(4)},${focus.y.toFixed(4)}`);
  return hash.digest('hex').slice(0, 32);
}

/**
 * The asset id of an owner's upload of an image: the first 32 hex digits of the SHA-256 of
 * `asset\n{owner}\n{imageId}`, so the same owner uploading the same image again names the same asset.
 */
export function assetIdOf(owner: string, imageId: string): string {
  return createHash('sha256').update(`asset\n${owner}\n${imageId}`, 'utf8').digest('hex').slice(0, 32);
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
  return (
    name.startsWith(topology.prefixes.incoming) &&
    name.length > topology.prefixes.incoming.length &&
    !name.endsWith('/')
  );
}

/**
 * `{id}/{width}w.{ext}` in the images bucket, or `{id}/{W}x{H}/{width}w.{ext}` for a variant of
 * aspect `W:H`'s crop: a folder of its own, so no cropped name can equal an uncropped one. An
 * animated variant (ANIMATION=keep) is `{width}w.anim.{ext}`: other bytes than the still one, so
 * another name (variants are cached as immutable, and an update makes only names it lacks).
 */
export function variantName(
  id: string,
  width: number,
  format: OutputFormat,
  aspect?: string,
  animated?: boolean,
): string {
  const file = `${width}w${animated ? '.anim' : ''}.${EXTENSIONS[format]}`;
  return aspect === undefined ? `${id}/${file}` : `${id}/${aspectFolder(aspect)}/${file}`;
}

/** True for a variant's name, `{id}/{width}w.{ext}` or `{id}/{W}x{H}/{width}w.{ext}` (not a record). */
export function isVariantName(name: string): boolean {
  return parseVariantName(name) !== undefined;
}

/** The parts of a {@link variantName}, or undefined for any other name (an omission, a record). */
export function parseVariantName(name: string):
  | {
      readonly id: string;
      readonly width: number;
      readonly format: OutputFormat;
      readonly aspect?: string;
      readonly animated?: true;
    }
  | undefined {
  const match = /^([0-9a-f]{32})\/(?:(\d+)x(\d+)\/)?(\d+)w(\.anim)?\.(avif|webp|jpg)$/.exec(name);
  if (!match) return undefined;
  const [, id = '', aspectW, aspectH, width, anim, ext] = match;
  const format = (Object.keys(EXTENSIONS) as OutputFormat[]).find((f) => EXTENSIONS[f] === ext) as OutputFormat;
  return {
    id,
    width: Number(width),
    format,
    ...(aspectW ? { aspect: `${aspectW}:${aspectH}` } : {}),
    ...(anim ? { animated: true as const } : {}),
  };
}

/** The folder under `{id}/` of the markers of planned variants that were not written. */
const OMITTED_FOLDER = 'omitted';

/**
 * `{id}/omitted/{width}w.{ext}` (or `{id}/omitted/{W}x{H}/{width}w.{ext}`): the name under which a
 * job records, in the image's document, a planned variant it left out for encoding larger than
 * the original file, so the fan-in counts that variant as settled (docs/state.md). No object has
 * this name.
 */
export function omittedVariantName(...variant: Parameters<typeof variantName>): string {
  const [id] = variant;
  return `${id}/${OMITTED_FOLDER}/${variantName(...variant).slice(id.length + 1)}`;
}

/** True for an {@link omittedVariantName}. */
export function isOmittedVariantName(name: string): boolean {
  return /^[0-9a-f]{32}\/omitted\/(\d+x\d+\/)?\d+w(\.anim)?\.(avif|webp|jpg)$/.test(name);
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

/**
 * Custom metadata key on `manifest.json` and `error.json`: the outbox sequence number of the
 * document state they were derived from, so a late writer never replaces a newer record
 * (state/outbox.ts).
 */
export const STATE_SEQ_METADATA = 'stateSeq';

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
    // biome-ignore lint/suspicious/noControlCharactersInRegex: file names are sanitised by stripping C0 controls and DEL on purpose
    .replace(/[\u0000-\u001f\u007f"\\]/g, '')
    .replace(/^\.+/, '')
    .trim();
  const truncated = [...cleaned].slice(0, 200).join('');
  return truncated.length > 0 ? truncated : undefined;
}

/**
 * Signed-URL upload tickets. A ticket id is `{expiry, unix seconds}-{24 random hex digits}` (the
 * expiry only makes names sortable and readable; the ticket's document, state/tickets.ts, is what
 * counts). The signed URL's object is `incoming/{ticket}/{filename}`.
 */
export const TICKET_PATTERN = /^(\d{10})-([0-9a-f]{24})$/;

/** A fresh ticket id expiring at `expiresAt`. */
export function newTicketId(expiresAt: Date, random: Buffer): string {
  return `${Math.floor(expiresAt.getTime() / 1000)}-${random.subarray(0, 12).toString('hex')}`;
}

/** `incoming/{ticket}/{filename}`: the object a signed URL may create. */
export function incomingTicketName(ticket: string, filename: string): string {
  return `${topology.prefixes.incoming}${ticket}/${filename}`;
}

/** The ticket of an `incoming/{ticket}/{filename}` name, or undefined for any other name. */
export function ticketFromIncomingName(name: string): string | undefined {
  const prefix = topology.prefixes.incoming;
  if (!name.startsWith(prefix)) return undefined;
  const [ticket, filename, ...rest] = name.slice(prefix.length).split('/');
  return ticket && filename && rest.length === 0 && TICKET_PATTERN.test(ticket) ? ticket : undefined;
}

/**
 * Custom metadata keys on `originals/{id}`, for people looking at the bucket: the pipeline reads
 * what it needs from the image's document (state/image-doc.ts), not from here.
 */
export const ORIGINAL_METADATA = {
  imageId: 'imageId',
  format: 'format',
  width: 'width',
  height: 'height',
  source: 'source',
  /** When the image was accepted (ISO time). */
  acceptedAt: 'acceptedAt',
} as const;

/**
 * Custom metadata keys on variant objects; the fan-in reads width and height back, and sums
 * `cpuMs` (the writing job's process CPU since its previous variant) into the image's CPU-seconds.
 */
export const VARIANT_METADATA = {
  width: 'width',
  height: 'height',
  sourceGeneration: 'sourceGeneration',
  cpuMs: 'cpuMs',
  crop: 'crop',
  placeholder: 'placeholder',
  /** The encoder quality the variant was made with (fixed or auto-quality's choice), for the manifest's `qualities`. */
  quality: 'quality',
} as const;

/** Fields the reprocess step keeps on its cursor document (`cleanup/reprocess`): the day's CPU budget. */
export const REPROCESS_BUDGET_METADATA = { day: 'budgetDay', spent: 'budgetCpuSeconds' } as const;
