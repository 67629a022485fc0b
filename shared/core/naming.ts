/**
 * The data layout in one place: every object name and prefix, every custom metadata key the
 * pipeline writes or reads back, and the content types.
 *
 * - uploads bucket: `originals/{id}` (stored by upload/ingest), `incoming/...` (direct uploads),
 *   `outcomes/{id}` (the arbiter of the image's one outcome; docs/record-protocol.md). The
 *   uploads bucket is private, so writer names and announcement state never go public.
 * - images bucket: `{id}/{width}w.{ext}`, `{id}/{W}x{H}/{width}w.{ext}` (an aspect's crop),
 *   `{id}/omitted/...` (a planned variant not written: larger than the original),
 *   `{id}/manifest.json`, `{id}/error.json`
 * - uploads bucket `cleanup/{step}`: cleanup's cursors (docs/cleanup.md).
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
  return (
    name.startsWith(topology.prefixes.incoming) &&
    name.length > topology.prefixes.incoming.length &&
    !name.endsWith('/')
  );
}

/**
 * `{id}/{width}w.{ext}` in the images bucket, or `{id}/{W}x{H}/{width}w.{ext}` for a variant of
 * aspect `W:H`'s crop: a folder of its own, so no cropped name can equal an uncropped one.
 */
export function variantName(id: string, width: number, format: OutputFormat, aspect?: string): string {
  return aspect === undefined
    ? `${id}/${width}w.${EXTENSIONS[format]}`
    : `${id}/${aspectFolder(aspect)}/${width}w.${EXTENSIONS[format]}`;
}

/** True for a variant's name, `{id}/{width}w.{ext}` or `{id}/{W}x{H}/{width}w.{ext}` (not a record). */
export function isVariantName(name: string): boolean {
  return /^[0-9a-f]{32}\/(\d+x\d+\/)?\d+w\.(avif|webp|jpg)$/.test(name);
}

/** The folder under `{id}/` of the markers of planned variants that were not written. */
const OMITTED_FOLDER = 'omitted';

/**
 * `{id}/omitted/{width}w.{ext}` (or `{id}/omitted/{W}x{H}/{width}w.{ext}`): the empty marker a job
 * writes instead of a planned variant that encoded larger than the original file, so the fan-in
 * counts that variant as settled (docs/record-protocol.md, "Variants not written"). Metadata:
 * {@link OMITTED_METADATA}.
 */
export function omittedVariantName(id: string, width: number, format: OutputFormat, aspect?: string): string {
  return `${id}/${OMITTED_FOLDER}/${variantName(id, width, format, aspect).slice(id.length + 1)}`;
}

/** True for an {@link omittedVariantName}. */
export function isOmittedVariantName(name: string): boolean {
  return /^[0-9a-f]{32}\/omitted\/(\d+x\d+\/)?\d+w\.(avif|webp|jpg)$/.test(name);
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

/** `outcomes/{id}` in the uploads bucket: the one outcome marker of an image. */
export function outcomeMarkerName(id: string): string {
  return `${OUTCOME_MARKER.prefix}${id}`;
}

/** The id in an `outcomes/{id}` name, or undefined for any other name. */
export function idFromOutcomeMarkerName(name: string): string | undefined {
  if (!name.startsWith(OUTCOME_MARKER.prefix)) return undefined;
  const id = name.slice(OUTCOME_MARKER.prefix.length);
  return /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

/**
 * The outcome marker: one object per image that the ready and the failed writer both try to
 * create (`ifGenerationMatch: 0`), so an image has one outcome and one announcement. Its custom
 * metadata says the outcome and the announcement's state, so one listing page of the prefix
 * shows which announcements are unsettled without reading any object.
 */
export const OUTCOME_MARKER = {
  /** Which bucket holds the markers (the private one). */
  bucket: 'uploads',
  /** Prefix of every marker: `outcomes/{id}` (topology.json, which Terraform's IAM conditions read too). */
  prefix: topology.prefixes.outcomes,
  /** Metadata keys. */
  keys: {
    /** `ready` | `failed` | `deleted` (a tombstone: the image was deleted). */
    outcome: 'outcome',
    /** See `states`. */
    eventState: 'eventState',
    /** Who created (or took over) the announcement: `job:{id}:{dispatch}:{index}`, `ingest`, `cleanup` (writer ids) */
    writer: 'writer',
    /** `true` when a failed outcome's cause is about the world (re-submitting the bytes retries it). */
    retryable: 'retryable',
    /** Ready outcomes: the recipe hash of the manifest (shared/core/recipe.ts), so a listing finds outdated images. */
    recipe: 'recipe',
  },
  /** Values of `eventState`. Anything but `published` is unsettled. */
  states: {
    /** A writer holds the announcement; stale after ANNOUNCE_STALE_MS (shared/state/records.ts) of `updated`. */
    pending: 'pending',
    /** The holder gave up (its publish failed): anyone may settle it at once. */
    released: 'released',
    /** The event was published. */
    published: 'published',
  },
} as const;

/** True when a marker's custom metadata says its announcement is not yet published. */
export function isUnsettledOutcome(metadata: Record<string, unknown> | undefined | null): boolean {
  const state = metadata?.[OUTCOME_MARKER.keys.eventState];
  return state !== OUTCOME_MARKER.states.published;
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
 * Signed-URL upload tickets. A ticket id is `{expiry, unix seconds}-{24 random hex digits}`: it
 * carries its own expiry, so signing writes nothing and the status route can tell a ticket
 * still in time apart from an expired, unused one without any lookup. The signed URL's object is
 * `incoming/{ticket}/{filename}`; once ingest has taken it, it writes `tickets/{ticket}` in the
 * uploads bucket (empty, metadata {@link TICKET_METADATA}), which the status route reads.
 */
export const TICKET_PATTERN = /^(\d{10})-([0-9a-f]{24})$/;

/** Prefix of the ticket markers in the uploads bucket (ingest ignores everything outside incoming/). */
export const TICKETS_PREFIX = topology.prefixes.tickets;

/** Metadata keys of a ticket marker. */
export const TICKET_METADATA = { imageId: 'imageId' } as const;

/** A fresh ticket id expiring at `expiresAt`. */
export function newTicketId(expiresAt: Date, random: Buffer): string {
  return `${Math.floor(expiresAt.getTime() / 1000)}-${random.subarray(0, 12).toString('hex')}`;
}

/** When a ticket's signed URL expires, or undefined for a malformed ticket id. */
export function ticketExpiry(ticket: string): Date | undefined {
  const match = TICKET_PATTERN.exec(ticket);
  return match ? new Date(Number(match[1]) * 1000) : undefined;
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

/** `tickets/{ticket}` in the uploads bucket. */
export function ticketMarkerName(ticket: string): string {
  return `${TICKETS_PREFIX}${ticket}`;
}

/** Custom metadata keys on `originals/{id}`; cleanup and status read them back. */
export const ORIGINAL_METADATA = {
  imageId: 'imageId',
  format: 'format',
  width: 'width',
  height: 'height',
  bytes: 'bytes',
  filename: 'filename',
  source: 'source',
  plannedVariants: 'plannedVariants',
  /** When the jobs were last accepted by Pub/Sub (ISO time); absent until the first success. */
  dispatchedAt: 'dispatchedAt',
  /** How many times cleanup re-dispatched the image. */
  redispatches: 'redispatches',
  /** The recipe hash an update was last dispatched for (with `dispatchedAt`: when). */
  updateRecipe: 'updateRecipe',
  /** W3C traceparent of the upload, so cleanup's re-dispatch continues its trace. */
  traceparent: 'traceparent',
  /** When the image was accepted (ISO time), for upload→ready after a re-dispatch. */
  acceptedAt: 'acceptedAt',
  /** Each aspect's crop chosen at accept (JSON of `OriginalInfo.crops`), so re-dispatches reuse it. */
  crops: 'crops',
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

/**
 * Custom metadata keys on an omission marker ({@link omittedVariantName}): the variant's height,
 * its encoded size, why it was left out (`larger_than_original`), and, like a variant, the job's
 * CPU for it and the original's generation.
 */
export const OMITTED_METADATA = {
  width: VARIANT_METADATA.width,
  height: VARIANT_METADATA.height,
  bytes: 'bytes',
  reason: 'reason',
  sourceGeneration: VARIANT_METADATA.sourceGeneration,
  cpuMs: VARIANT_METADATA.cpuMs,
} as const;

/** Prefix of the cursor objects in the uploads bucket (outside `originals/` and `incoming/`). */
export const CLEANUP_STATE_PREFIX = 'cleanup/';

/** Custom metadata keys of a cursor object. */
export const CURSOR_METADATA = { after: 'after', claimedBy: 'claimedBy', claimedUntil: 'claimedUntil' } as const;

/** `cleanup/{step}` in the uploads bucket. */
export function cleanupStateName(step: string): string {
  return `${CLEANUP_STATE_PREFIX}${step}`;
}

/** Custom metadata keys the reprocess step keeps on its cursor (`cleanup/reprocess`): the day's CPU budget. */
export const REPROCESS_BUDGET_METADATA = { day: 'budgetDay', spent: 'budgetCpuSeconds' } as const;
