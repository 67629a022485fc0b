/**
 * The outbox: the transaction that decides an outcome (transitions.ts) also appends its event to
 * the image document; whoever holds the outbox's lease then brings the derived records in the
 * images bucket (`manifest.json`, `error.json`, or nothing for a deleted image) in line with the
 * document, publishes the waiting events in order and marks them published. A holder that dies
 * leaves the lease to expire; cleanup finds the document by `outboxDueAt` and finishes.
 */
import { performance } from 'node:perf_hooks';
import type { File } from '@google-cloud/storage';
import type { PipelineDeps } from '../cloud/deps.js';
import { isPreconditionFailed, transient } from '../core/errors.js';
import {
  errorRecordName,
  isOmittedVariantName,
  isVariantName,
  manifestName,
  RECORD_CACHE_CONTROL,
  STATE_SEQ_METADATA,
} from '../core/naming.js';
import {
  deleteIfPresent,
  guardStorage,
  listObjects,
  metadataOrUndefined,
  STORAGE_CALL_DEADLINE_MS,
} from '../cloud/objects.js';
import { METRIC_LINES } from '../core/observability.js';
import { publishEvent } from '../cloud/publish.js';
import type { Manifest } from '../core/schemas.js';
import { manifestObjectNames } from '../image/manifest.js';
import { type ImageDoc, type OutboxEntry, transactImage } from './image-doc.js';
import { claimPurge, purged } from './upkeep.js';
import { OUTBOX_LEASE_MS } from './policy.js';
import { ANNOUNCED_TYPES, type AnnouncedAsset, announcedTo, assetsOfImage, uploadEventOf } from './upload-events.js';
import { publicBaseUrl } from '../core/config.js';

/**
 * The holder publishes only if it gets to a publish within this long of taking the lease, so
 * that with the publish's own bound (30 s) and the marking it stays inside OUTBOX_LEASE_MS.
 */
export const PUBLISH_START_LIMIT_MS = STORAGE_CALL_DEADLINE_MS;

type Claim =
  | { readonly kind: 'claimed'; readonly doc: ImageDoc; readonly pending: OutboxEntry[] }
  | { readonly kind: 'busy' | 'empty' };

/** The events still to publish, in order. */
const pendingOf = (doc: ImageDoc) => doc.events.filter((e) => !e.published).sort((a, b) => a.seq - b.seq);

function claimOutbox(holder: string) {
  return (doc: ImageDoc | undefined, now: Date) => {
    if (!doc) return { result: { kind: 'empty' } as Claim };
    const pending = pendingOf(doc);
    const lease = doc.outboxLease;
    const leasedToOther = lease && lease.holder !== holder && lease.until.getTime() > now.getTime();
    if (leasedToOther) return { result: { kind: 'busy' } as Claim };
    if (pending.length === 0) {
      if (!lease && !doc.outboxDueAt) return { result: { kind: 'empty' } as Claim };
      const { outboxLease: _l, outboxDueAt: _d, ...rest } = doc;
      return { next: rest as ImageDoc, result: { kind: 'empty' } as Claim };
    }
    const until = new Date(now.getTime() + OUTBOX_LEASE_MS);
    return {
      next: { ...doc, outboxLease: { holder, until }, outboxDueAt: until },
      result: { kind: 'claimed', doc, pending } as Claim,
    };
  };
}

/** Marks `seqs` published and gives the lease back (due again at once if more are waiting). */
function markPublished(holder: string, seqs: ReadonlySet<number>) {
  return (doc: ImageDoc | undefined, now: Date) => {
    if (!doc) return { result: false };
    const events = doc.events.map((e) => (seqs.has(e.seq) ? { ...e, published: true } : e));
    const more = events.some((e) => !e.published);
    const { outboxLease, outboxDueAt: _d, ...rest } = doc;
    const mine = !outboxLease || outboxLease.holder === holder;
    return {
      next: {
        ...rest,
        events,
        ...(mine ? {} : { outboxLease }),
        ...(more ? { outboxDueAt: mine ? now : (outboxLease?.until ?? now) } : {}),
      } as ImageDoc,
      result: more,
    };
  };
}

/** Gives the lease back after a failure, due at once for a retry or cleanup. */
function releaseLease(holder: string) {
  return (doc: ImageDoc | undefined, now: Date) => {
    if (!doc || doc.outboxLease?.holder !== holder) return { result: undefined };
    const { outboxLease: _l, ...rest } = doc;
    return { next: { ...rest, outboxDueAt: now } as ImageDoc, result: undefined };
  };
}

/**
 * Writes a derived record (`manifest.json`, `error.json`) unless the one there was derived from a
 * later state (its `stateSeq`): compare-and-swap on the object's generation, so a late writer
 * can never replace a newer record.
 */
async function writeRecord(file: File, body: string, seq: number): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const metadata = await metadataOrUndefined(file);
    if (metadata && Number(metadata.metadata?.[STATE_SEQ_METADATA] ?? -1) >= seq) return;
    try {
      await guardStorage(`write ${file.name}`, () =>
        file.save(body, {
          resumable: false,
          contentType: 'application/json',
          preconditionOpts: { ifGenerationMatch: Number(metadata?.generation ?? 0) },
          metadata: {
            contentType: 'application/json',
            cacheControl: RECORD_CACHE_CONTROL,
            metadata: { [STATE_SEQ_METADATA]: String(seq) },
          },
        }),
      );
      return;
    } catch (error) {
      if (!isPreconditionFailed(error)) throw error;
    }
  }
  throw transient('storage_unavailable', `${file.name} kept changing while being written; retry later.`);
}

/** Deletes a derived record derived from an earlier state than `seq`. */
async function removeRecord(file: File, seq: number): Promise<void> {
  const metadata = await metadataOrUndefined(file);
  if (metadata && Number(metadata.metadata?.[STATE_SEQ_METADATA] ?? -1) < seq)
    await deleteIfPresent(file, metadata.generation);
}

/**
 * Removes a deleted image's objects: everything under `{id}/` in the images bucket (each
 * generation-matched to what was listed, and only if the document still says deleted after the
 * listing) and, when given, that generation of its original.
 */
export async function purgeImageObjects(
  deps: PipelineDeps,
  id: string,
  options: { readonly final?: boolean } = {},
): Promise<number> {
  // The purge lease first: the image must still be deleted, and it is not claimed again until the
  // purge is done, so nothing a new dispatch writes or finds is removed here.
  const claim = await transactImage(deps, id, claimPurge());
  if (!claim) return 0;
  const { original } = claim;
  let removed = 0;
  const files = await listObjects(deps.storage.bucket(deps.config.IMAGES_BUCKET), `${id}/`);
  for (const file of files) if (await deleteIfPresent(file, file.metadata.generation)) removed++;
  if (
    original &&
    (await deleteIfPresent(deps.storage.bucket(original.bucket).file(original.name), original.generation))
  )
    removed++;
  await transactImage(deps, id, purged(options.final ?? false));
  return removed;
}

/** Variants (and omission markers) a new manifest no longer lists, after an update. */
async function removeStaleVariants(deps: PipelineDeps, manifest: Manifest): Promise<void> {
  const keep = manifestObjectNames(manifest);
  const files = await listObjects(deps.storage.bucket(deps.config.IMAGES_BUCKET), `${manifest.id}/`);
  for (const file of files) {
    const stale = (isVariantName(file.name) || isOmittedVariantName(file.name)) && !keep.has(file.name);
    if (stale) await deleteIfPresent(file, file.metadata.generation);
  }
}

/** Brings the images bucket's derived records in line with the document as the holder read it. */
async function materialise(deps: PipelineDeps, doc: ImageDoc, pending: readonly OutboxEntry[]): Promise<void> {
  const images = deps.storage.bucket(deps.config.IMAGES_BUCKET);
  const seq = doc.nextSeq - 1;
  if (doc.status === 'ready' && doc.manifest) {
    await writeRecord(images.file(manifestName(doc.id)), JSON.stringify(doc.manifest, null, 2), seq);
    await removeRecord(images.file(errorRecordName(doc.id)), seq);
    if (pending.some((e) => e.event.type === 'image.updated')) await removeStaleVariants(deps, doc.manifest);
  } else if (doc.status === 'failed' && doc.failure) {
    await writeRecord(images.file(errorRecordName(doc.id)), JSON.stringify(doc.failure, null, 2), seq);
  } else if (doc.status === 'deleted') {
    await purgeImageObjects(deps, doc.id);
  }
}

/** Uploads announced at once, as one batch of publishes. */
const ANNOUNCE_BATCH = 100;

/**
 * Publishes an image event's per-upload events (upload-events.ts) to the assets it is announced
 * to; returns how many. Built from the entry alone, so a drain again publishes the same bytes
 * (and webhooks deliver them under the same webhook-id).
 */
async function announceToUploads(
  deps: PipelineDeps,
  entry: OutboxEntry,
  assetsOf: () => Promise<AnnouncedAsset[]>,
): Promise<number> {
  if (!ANNOUNCED_TYPES.has(entry.event.type)) return 0;
  const baseUrl = publicBaseUrl(deps.config);
  const events = announcedTo(await assetsOf(), entry.seq).flatMap(
    (asset) => uploadEventOf(entry.event, asset, baseUrl) ?? [],
  );
  for (let start = 0; start < events.length; start += ANNOUNCE_BATCH)
    await Promise.all(
      events
        .slice(start, start + ANNOUNCE_BATCH)
        .map((event) => publishEvent(deps.pubsub, deps.config.EVENTS_TOPIC, event)),
    );
  return events.length;
}

/**
 * Drains what a transition left in the outbox for `holder`; a failure leaves it there, due at
 * once for the next caller or cleanup, and is only logged: the decision it follows stands.
 */
export async function drainOrDefer(deps: PipelineDeps, id: string, holder: string, leased: ImageDoc): Promise<void> {
  await drainOutbox(deps, id, holder, leased).catch((error: unknown) =>
    deps.log.warn('events not published yet; left in the outbox', { event: 'outbox.defer', imageId: id, error }),
  );
}

/** How a drain ended. */
export type DrainResult = 'drained' | 'busy' | 'empty';

/**
 * Publishes the image's waiting events in order, as `holder`: takes the lease (or finds it taken
 * by someone at work: `busy`), writes the derived records, publishes, marks. `leased` is the
 * document as a transition wrote it when it gave `holder` the lease (its `outbox`). Throws a
 * transient error when a publish fails (the lease is given back, due at once).
 */
export async function drainOutbox(
  deps: PipelineDeps,
  id: string,
  holder: string,
  leased?: ImageDoc,
): Promise<DrainResult> {
  let result: DrainResult = 'empty';
  for (let round = 0; round < 5; round++) {
    // A transition that appended the event and gave `holder` the lease hands over the document it
    // wrote: the first round needs no claim of its own.
    const claim: Claim =
      round === 0 && leased
        ? { kind: 'claimed', doc: leased, pending: pendingOf(leased) }
        : await transactImage(deps, id, claimOutbox(holder));
    if (claim.kind !== 'claimed') return round === 0 ? claim.kind : result;
    const startedAt = performance.now();
    const published = new Set<number>();
    let assets: Promise<AnnouncedAsset[]> | undefined;
    try {
      await materialise(deps, claim.doc, claim.pending);
      for (const entry of claim.pending) {
        if (performance.now() - startedAt > PUBLISH_START_LIMIT_MS)
          throw transient(
            'unavailable',
            `${entry.event.type} for ${id} not published in time; it is left for a retry.`,
          );
        await publishEvent(deps.pubsub, deps.config.EVENTS_TOPIC, entry.event);
        const uploads = await announceToUploads(deps, entry, () => (assets ??= assetsOfImage(deps, id)));
        published.add(entry.seq);
        const cost = entry.event.type === 'image.ready' ? claim.doc.manifest?.processing : undefined;
        deps.log.info(`${entry.event.type} published`, {
          event: entry.event.type,
          imageId: id,
          writer: holder,
          ...(uploads > 0 ? { uploads } : {}),
          ...(cost
            ? {
                ...(cost.uploadToReadyMs !== undefined
                  ? { [METRIC_LINES.imageReady.uploadToReadyMs]: cost.uploadToReadyMs }
                  : {}),
                [METRIC_LINES.imageReady.cpuSeconds]: cost.cpuSeconds,
              }
            : {}),
        });
      }
    } catch (error) {
      // What was published stays marked; the rest is due again at once.
      await transactImage(deps, id, published.size > 0 ? markPublished(holder, published) : releaseLease(holder)).catch(
        () => undefined,
      );
      throw error;
    }
    result = 'drained';
    if (!(await transactImage(deps, id, markPublished(holder, published)))) return result;
  }
  return result;
}
