/**
 * cleanup's listing steps. `incoming/` objects left unprocessed past INCOMING_MAX_AGE_HOURS are
 * removed. The orphan sweep is the backstop for objects no document accounts for (a writer that
 * died between storing bytes and its transaction, leftovers of a deleted image written after its
 * purge): it walks the images bucket's `{id}/` folders and `originals/` from a persistent cursor
 * (state/cursors.ts), CLEANUP_MAX_OBJECTS entries a pass, so it reaches every object within
 * ⌈N ÷ CLEANUP_MAX_OBJECTS⌉ passes. Every delete is generation-matched to what was listed before
 * the document was read, so a writer that claims the image meanwhile (and then writes a new
 * generation) never loses what it wrote.
 */
import type { Bucket, File } from '@google-cloud/storage';
import type { PassContext, ReviewResult, StepOutcome } from './cleanup.js';
import { CONCURRENCY, guarded, reviewInOrder } from './cleanup.js';
import { idFromImagesName, idFromOriginalName } from '../core/naming.js';
import { deleteIfPresent, guardStorage, listPage } from '../cloud/objects.js';
import { countFirestore, guardFirestore, type ImageDoc, imageDocFrom, imageRef } from '../state/image-doc.js';
import { advanceStep, claimStep, readCursor } from '../state/cursors.js';
import { topology } from '../core/topology.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** True when an object under `incoming/` is old enough to be an abandoned leftover. Pure. */
export function isStaleIncoming(createdAt: Date, maxAgeHours: number, now: Date): boolean {
  return now.getTime() - createdAt.getTime() > maxAgeHours * HOUR;
}

function dateOf(value: string | number | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** Removes stale `incoming/` objects, from the start of the listing (it shrinks as they go). */
export async function reviewIncoming(
  ctx: PassContext,
  until: number,
): Promise<{ outcome: StepOutcome; reviewed: number }> {
  const { deps, summary } = ctx;
  const uploads = deps.storage.bucket(deps.config.UPLOADS_BUCKET);
  let reviewed = 0;
  let pageToken: string | undefined;
  do {
    const page = await listPage(uploads, {
      prefix: topology.prefixes.incoming,
      maxResults: Math.min(500, deps.config.CLEANUP_MAX_OBJECTS - reviewed),
      ...(pageToken ? { pageToken } : {}),
    });
    const done = await reviewInOrder(
      page.files,
      CONCURRENCY,
      () => Date.now() >= until,
      (file) =>
        guarded(ctx, file.name, async () => {
          const created = dateOf(file.metadata.timeCreated);
          if (!created || !isStaleIncoming(created, deps.config.INCOMING_MAX_AGE_HOURS, ctx.now)) return 'done';
          ctx.log.info('stale incoming object', { action: 'delete', object: file.name });
          if (!ctx.dryRun) await deleteIfPresent(file, file.metadata.generation);
          summary.incomingDeleted++;
          return 'done';
        }),
    );
    reviewed += done;
    if (done < page.files.length) return { outcome: 'partial', reviewed };
    pageToken = page.nextPageToken;
  } while (pageToken && reviewed < deps.config.CLEANUP_MAX_OBJECTS && Date.now() < until);
  summary.examined += reviewed;
  return { outcome: pageToken ? 'partial' : 'complete', reviewed };
}

/** One listed entry of the sweep: an image id and the objects of it that the entry covers. */
interface Entry {
  readonly key: string;
  readonly id: string | undefined;
  readonly list: () => Promise<File[]>;
}

/** Cloud Storage's listing order: UTF-8 bytes. */
function after(a: string, b: string): boolean {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')) > 0;
}

/**
 * The sweep's listing, in one order across both buckets: each image folder `{id}/` of the
 * images bucket, then each `originals/{id}`; keys are `images:{id}/` and `originals:{id}`.
 */
async function listEntries(
  ctx: PassContext,
  startAfter: string | undefined,
  max: number,
): Promise<{ entries: Entry[]; end: boolean }> {
  const { deps } = ctx;
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  const uploads = deps.storage.bucket(deps.config.UPLOADS_BUCKET);
  const entries: Entry[] = [];
  const parts: Array<{ tag: string; bucket: Bucket; prefix: string; folders: boolean }> = [
    { tag: 'images:', bucket: images, prefix: '', folders: true },
    { tag: 'originals:', bucket: uploads, prefix: topology.prefixes.originals, folders: false },
  ];
  for (const part of parts) {
    // A cursor in the originals part has finished the images part.
    if (part.tag === 'images:' && startAfter?.startsWith('originals:')) continue;
    const offset = startAfter?.startsWith(part.tag) ? startAfter.slice(part.tag.length) : undefined;
    let pageToken: string | undefined;
    do {
      const [files, next, response] = await guardStorage(`list ${part.bucket.name}/${part.prefix}`, () =>
        part.bucket.getFiles({
          prefix: part.prefix,
          maxResults: Math.min(500, max - entries.length),
          autoPaginate: false,
          ...(part.folders ? { delimiter: '/' } : {}),
          ...(offset ? { startOffset: offset } : {}),
          ...(pageToken ? { pageToken } : {}),
        }),
      );
      const names = part.folders
        ? ((response as { prefixes?: string[] } | undefined)?.prefixes ?? [])
        : files.map((f) => f.name);
      for (const name of names) {
        if (offset && !after(name, offset)) continue;
        const file = files.find((f) => f.name === name);
        entries.push({
          key: `${part.tag}${name}`,
          id: part.folders ? idFromImagesName(name) : idFromOriginalName(name),
          list: async () =>
            part.folders ? (await listPage(part.bucket, { prefix: name, maxResults: 1000 })).files : file ? [file] : [],
        });
        if (entries.length >= max) return { entries, end: false };
      }
      pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken;
    } while (pageToken);
  }
  return { entries, end: true };
}

/** The documents of a page of entries, read in batches (the first look; suspects are read again after their listing). */
async function readDocs(ctx: PassContext, entries: readonly Entry[]): Promise<Map<string, ImageDoc>> {
  const ids = [...new Set(entries.flatMap((e) => (e.id ? [e.id] : [])))];
  const docs = new Map<string, ImageDoc>();
  for (let i = 0; i < ids.length; i += 300) {
    const refs = ids.slice(i, i + 300).map((id) => imageRef(ctx.deps.firestore, id));
    const snapshots = await guardFirestore('read a page of image documents', () => ctx.deps.firestore.getAll(...refs));
    countFirestore(snapshots.length);
    for (const snapshot of snapshots) {
      const doc = imageDocFrom(snapshot);
      if (doc) docs.set(snapshot.id, doc);
    }
  }
  return docs;
}

/** Removes an entry's objects when no document accounts for them. */
async function reviewEntry(ctx: PassContext, entry: Entry, before: ImageDoc | undefined): Promise<ReviewResult> {
  const { deps, now } = ctx;
  if (!entry.id) return 'done';
  // A live image (or a deleted one whose purge is still due) is not the sweep's: no listing.
  if (before && (before.status !== 'deleted' || before.purgeAt)) return 'done';
  const files = await entry.list();
  if (files.length === 0) return 'done';
  // Listed first, then the document: a writer claims its image before it writes, so anything it
  // writes after this read is a new generation that the deletes below cannot match.
  const doc = imageDocFrom(
    await guardFirestore(`read images/${entry.id}`, () => imageRef(deps.firestore, entry.id as string).get()),
  );
  countFirestore(1);
  const graceMs = deps.config.ORPHAN_GRACE_DAYS * DAY;
  const orphan = (file: File) => {
    if (!doc) {
      const at = dateOf(file.metadata.updated ?? file.metadata.timeCreated) ?? now;
      return now.getTime() - at.getTime() > graceMs;
    }
    // A deleted image whose purge is done: anything still here was written after it.
    return doc.status === 'deleted' && !doc.purgeAt;
  };
  const doomed = files.filter(orphan);
  if (doomed.length === 0) return 'done';
  deps.log.info('cleanup decision', {
    event: 'cleanup',
    imageId: entry.id,
    action: 'delete-orphan',
    objects: doomed.length,
    dryRun: ctx.dryRun,
  });
  ctx.summary.orphansDeleted++;
  if (!ctx.dryRun) for (const file of doomed) await deleteIfPresent(file, file.metadata.generation);
  return 'done';
}

/** The sweep's cursor step: claims `cleanup/orphans`, reviews from it within the budgets, moves it on. */
export async function sweepOrphans(
  ctx: PassContext,
  until: number,
): Promise<{ outcome: StepOutcome; reviewed: number }> {
  const { deps } = ctx;
  const step = 'orphans';
  let claim: Awaited<ReturnType<typeof claimStep>> | undefined;
  let cursor: string | undefined;
  if (ctx.dryRun) cursor = await readCursor(deps, step);
  else {
    // The claim outlives the step's own deadline a little: a pass that died is taken over after.
    claim = await claimStep(
      deps,
      step,
      ctx.passId,
      new Date(deps.now().getTime() + Math.max(0, until - Date.now()) + 60_000),
    );
    if (claim === 'busy') {
      ctx.log.info('cleanup step skipped: another pass holds it', { step });
      return { outcome: 'skipped', reviewed: 0 };
    }
    cursor = claim.after;
  }
  let reviewed = 0;
  let last = cursor;
  let complete = false;
  try {
    const { entries, end } = await listEntries(ctx, cursor, deps.config.CLEANUP_MAX_OBJECTS);
    const docs = await readDocs(ctx, entries);
    const done = await reviewInOrder(
      entries,
      CONCURRENCY,
      () => Date.now() >= until,
      (entry) => guarded(ctx, entry.key, () => reviewEntry(ctx, entry, entry.id ? docs.get(entry.id) : undefined)),
    );
    reviewed = done;
    if (done > 0) last = entries[done - 1]?.key;
    // The whole listing was reviewed: start again from the beginning next time.
    if (done === entries.length && end) {
      last = undefined;
      complete = true;
    }
  } finally {
    if (claim && claim !== 'busy' && !(await advanceStep(claim, last)))
      ctx.log.warn('cleanup cursor was taken over; not moved', { step });
  }
  ctx.summary.examined += reviewed;
  return { outcome: complete ? 'complete' : 'partial', reviewed };
}
