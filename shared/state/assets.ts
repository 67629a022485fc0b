/**
 * Assets: `assets/{assetId}`, one per owner per image. Identical bytes uploaded by two owners are
 * one image (one encode, content-addressed variants) and two assets; the per-upload facts (file
 * name, focus, when) and the ownership belong to the asset. The image document counts its assets
 * (`assets`), and only the transaction that creates or deletes an asset changes that count:
 * creating one runs the image's transition (accept, reject) and charges the owner's quota in the
 * same transaction; deleting the last one deletes the image. docs/state.md, "Assets".
 */
import {
  type DocumentReference,
  type DocumentSnapshot,
  FieldPath,
  type Firestore,
  Timestamp,
} from '@google-cloud/firestore';
import type { PipelineDeps } from '../cloud/deps.js';
import { type OwnerKey, SERVICE_OWNER } from '../auth/principal.js';
import type { Quotas } from '../auth/settings.js';
import { assetIdOf } from '../core/naming.js';
import { topology } from '../core/topology.js';
import { countFirestore, guardFirestore, type ImageDoc, imageDocData, imageDocFrom, imageRef } from './image-doc.js';
import { type OwnerDoc, chargeQuota, ownerDocFrom, ownerRef } from './owners.js';
import { type DeleteOutcome, deleteImageDoc } from './transitions.js';
import type { Transition } from './image-doc.js';
import type { UploadMetadata } from '../core/metadata.js';
import { type Announcer, announceNewAsset, announceRemoval } from './upload-events.js';

/** `assets/{assetId}`: an owner's upload of an image. */
export interface AssetDoc {
  readonly v: 1;
  /** naming.ts assetIdOf(owner, imageId). */
  readonly id: string;
  readonly owner: OwnerKey;
  readonly imageId: string;
  /** The uploader's file name, sanitised; as given the first time (an identical upload again keeps it). */
  readonly filename?: string;
  /** The focal point the upload gave (it is part of the image's identity when ASPECTS is set). */
  readonly focus?: { readonly x: number; readonly y: number };
  /** `upload`, `incoming/...`: how it arrived. */
  readonly source: string;
  /** The original's size, as charged to the owner's bytes quota. */
  readonly bytes: number;
  /** The app's metadata (core/metadata.ts), as given the first time. */
  readonly metadata?: UploadMetadata;
  /** The image's event sequence when the asset was made: later image events are announced to it (upload-events.ts). */
  readonly sinceSeq?: number;
  readonly createdAt: Date;
}

/** The collection of assets. */
export const ASSETS_COLLECTION = topology.firestore.collections.assets;

/** `assets/{assetId}`. */
export function assetRef(firestore: Firestore, assetId: string): DocumentReference {
  return firestore.collection(ASSETS_COLLECTION).doc(assetId);
}

/** Firestore's Timestamps back to Dates. */
export function assetDocFrom(snapshot: DocumentSnapshot): AssetDoc | undefined {
  const data = snapshot.data();
  if (!data) return undefined;
  const createdAt = data.createdAt instanceof Timestamp ? data.createdAt.toDate() : (data.createdAt as Date);
  return { ...(data as AssetDoc), createdAt };
}

/** Reads an asset (outside a transaction: for answers, not decisions). */
export async function readAsset(deps: Pick<PipelineDeps, 'firestore'>, assetId: string): Promise<AssetDoc | undefined> {
  return guardFirestore(`read assets/${assetId}`, async () => {
    const snapshot = await assetRef(deps.firestore, assetId).get();
    countFirestore(1);
    return assetDocFrom(snapshot);
  });
}

/** The asset an upload makes, and what it costs its owner. */
export interface AssetClaim {
  readonly owner: OwnerKey;
  readonly imageId: string;
  readonly filename?: string | undefined;
  readonly focus?: { readonly x: number; readonly y: number } | undefined;
  readonly source: string;
  readonly bytes: number;
  readonly metadata?: UploadMetadata | undefined;
  /** Charge the owner's quotas when the asset is new (false: already paid, e.g. a signed URL's ticket). */
  readonly chargeQuota: boolean;
  readonly quotas: Quotas;
  /** Who announces a new asset of a ready or failed image (upload-events.ts). */
  readonly announcer: Announcer;
}

/** The documents an asset's creation reads, all before any write. */
export interface AssetReads {
  readonly asset: AssetDoc | undefined;
  readonly image: ImageDoc | undefined;
  readonly owner: OwnerDoc | undefined;
}

/** What to write, and what happened. */
export interface AssetDecision<R> {
  readonly image?: ImageDoc;
  readonly asset?: AssetDoc;
  readonly owner?: OwnerDoc;
  /** The service's asset of a {@link isLegacyImage legacy image}, written with this one. */
  readonly legacy?: AssetDoc;
  readonly result: R;
  /** True when this decision creates the asset (and charged for it). */
  readonly created: boolean;
  /** The image as written, when its outbox was given to the announcer: drain it. */
  readonly outbox?: ImageDoc;
}

/**
 * Pure: runs the image's transition and, when `keep` says its result stands for an asset and the
 * owner has none of the image yet, creates the asset, counts it on the image and charges the
 * owner (throws `quota_exceeded` when that would exceed a quota: then nothing is written).
 */
export function addAsset<R>(
  reads: AssetReads,
  claim: AssetClaim,
  decide: Transition<R>,
  keep: (result: R) => boolean,
  now: Date,
): AssetDecision<R> {
  const { next, result } = decide(reads.image, now);
  const base = next ?? reads.image;
  if (reads.asset || !keep(result) || !base) return { ...(next ? { image: next } : {}), result, created: false };
  const owner = claim.chargeQuota
    ? chargeQuota(reads.owner, claim.owner, { uploads: 1, bytes: claim.bytes }, claim.quotas, now)
    : undefined;
  const asset: AssetDoc = {
    v: 1,
    id: assetIdOf(claim.owner, claim.imageId),
    owner: claim.owner,
    imageId: claim.imageId,
    ...(claim.filename ? { filename: claim.filename } : {}),
    ...(claim.focus ? { focus: { x: claim.focus.x, y: claim.focus.y } } : {}),
    source: claim.source,
    bytes: claim.bytes,
    ...(claim.metadata ? { metadata: claim.metadata } : {}),
    sinceSeq: reads.image?.nextSeq ?? 1,
    createdAt: now,
  };
  const legacy =
    isLegacyImage(reads.image) && claim.owner !== SERVICE_OWNER ? legacyServiceAsset(reads.image) : undefined;
  const counted: ImageDoc = { ...base, assets: (base.assets ?? 0) + 1 + (legacy ? 1 : 0) };
  const announced = announceNewAsset(counted, { ...asset, sinceSeq: asset.sinceSeq ?? 1 }, claim.announcer, now);
  return {
    image: announced.image,
    asset,
    ...(legacy ? { legacy } : {}),
    ...(owner ? { owner } : {}),
    result,
    created: true,
    ...(announced.leased ? { outbox: announced.image } : {}),
  };
}

/**
 * True for an image made before assets existed (no count): every upload was the service's then,
 * so it stands for one service asset that has no document yet. The first transaction that
 * counts assets on it writes that asset (a legacy image that another owner uploads again keeps
 * the service's claim on it), and the service may still name it by its image id.
 */
export function isLegacyImage(image: ImageDoc | undefined): image is ImageDoc {
  return image !== undefined && image.assets === undefined && image.status !== 'deleted';
}

/** The service's asset of a legacy image, as its first counted transaction writes it. */
export function legacyServiceAsset(image: ImageDoc, id = assetIdOf(SERVICE_OWNER, image.id)): AssetDoc {
  return {
    v: 1,
    id,
    owner: SERVICE_OWNER,
    imageId: image.id,
    source: image.source,
    bytes: image.info.bytes,
    sinceSeq: image.nextSeq,
    createdAt: image.acceptedAt,
  };
}

/** True when an owner's quota could be charged at all (the owner document is read only then). */
function charges(claim: AssetClaim): boolean {
  const q = claim.quotas;
  return (
    claim.chargeQuota &&
    claim.owner !== SERVICE_OWNER &&
    (q.uploadsPerDay > 0 || q.bytesPerDay > 0 || q.openTickets > 0)
  );
}

/**
 * Runs {@link addAsset} as one Firestore transaction: reads the asset, the image and (when a
 * quota applies) the owner in one round trip, then writes what it decided. The client retries on
 * contention, so concurrent uploads at a quota's limit never exceed it.
 */
export async function transactAsset<R>(
  deps: Pick<PipelineDeps, 'firestore' | 'now'>,
  claim: AssetClaim,
  decide: Transition<R>,
  keep: (result: R) => boolean,
): Promise<{ readonly result: R; readonly assetId: string; readonly created: boolean; readonly outbox?: ImageDoc }> {
  const assetId = assetIdOf(claim.owner, claim.imageId);
  const refs = {
    asset: assetRef(deps.firestore, assetId),
    image: imageRef(deps.firestore, claim.imageId),
    owner: ownerRef(deps.firestore, claim.owner),
  };
  const readOwner = charges(claim);
  let wrote = 0;
  const decision = await guardFirestore(`transaction on assets/${assetId}`, () =>
    deps.firestore.runTransaction(async (tx) => {
      const snapshots = await tx.getAll(refs.asset, refs.image, ...(readOwner ? [refs.owner] : []));
      countFirestore(snapshots.length);
      const [asset, image, owner] = snapshots;
      const now = deps.now();
      const reads: AssetReads = {
        asset: asset ? assetDocFrom(asset) : undefined,
        image: image ? imageDocFrom(image) : undefined,
        owner: owner ? ownerDocFrom(owner) : undefined,
      };
      const decided = addAsset(reads, claim, decide, keep, now);
      if (decided.image) tx.set(refs.image, imageDocData({ ...decided.image, updatedAt: now }));
      if (decided.asset) tx.create(refs.asset, decided.asset);
      if (decided.owner) tx.set(refs.owner, decided.owner);
      if (decided.legacy) tx.create(assetRef(deps.firestore, decided.legacy.id), decided.legacy);
      wrote = [decided.image, decided.asset, decided.owner, decided.legacy].filter(Boolean).length;
      return decided;
    }),
  );
  countFirestore(0, wrote);
  return {
    result: decision.result,
    assetId,
    created: decision.created,
    ...(decision.outbox ? { outbox: decision.outbox } : {}),
  };
}

/** How deleting an asset went. */
export type AssetRemoval =
  /** No such asset, or another owner's: the same answer, so ids of others' assets stay unknown. */
  | { readonly kind: 'not-found' }
  /** The asset is gone; other assets keep the image (`outbox`: its upload.deleted waits there). */
  | { readonly kind: 'kept'; readonly imageId: string; readonly assets: number; readonly outbox?: ImageDoc }
  /** The asset was the image's last: the image is deleted as `deleteImageDoc` decided. */
  | { readonly kind: 'image-deleted'; readonly imageId: string; readonly outcome: DeleteOutcome };

/**
 * Pure: removes `owner`'s asset and counts it off its image; the last asset's removal deletes
 * the image (`deleteImageDoc`: `image.deleted` queued, every job of its dispatch stale).
 */
export function removeAsset(
  asset: AssetDoc | undefined,
  image: ImageDoc | undefined,
  owner: OwnerKey,
  holder: string,
  now: Date,
): { readonly deleteAsset: boolean; readonly image?: ImageDoc; readonly result: AssetRemoval } {
  if (!asset && owner === SERVICE_OWNER && isLegacyImage(image)) {
    // The service names a legacy image by its id: its one (implicit) asset, so the image goes.
    const { next, result } = deleteImageDoc(holder)({ ...image, assets: 0 }, now);
    return { deleteAsset: false, image: next, result: { kind: 'image-deleted', imageId: image.id, outcome: result } };
  }
  if (!asset || asset.owner !== owner) return { deleteAsset: false, result: { kind: 'not-found' } };
  const imageId = asset.imageId;
  if (!image) return { deleteAsset: true, result: { kind: 'kept', imageId, assets: 0 } };
  const assets = Math.max(0, (image.assets ?? 0) - 1);
  // Its upload.deleted goes with the decision: the drain no longer finds the asset.
  const announced = announceRemoval({ ...image, assets }, asset, holder, now);
  const counted = announced.image;
  if (assets > 0) {
    const outbox = announced.leased ? { outbox: counted } : {};
    return { deleteAsset: true, image: counted, result: { kind: 'kept', imageId, assets, ...outbox } };
  }
  const { next, result } = deleteImageDoc(holder)(counted, now);
  return { deleteAsset: true, image: next ?? counted, result: { kind: 'image-deleted', imageId, outcome: result } };
}

/**
 * Runs {@link removeAsset} as one Firestore transaction: the asset's delete, the count's
 * decrement and, for the last asset, the image's delete commit together or not at all.
 */
export async function transactRemoveAsset(
  deps: Pick<PipelineDeps, 'firestore' | 'now'>,
  assetId: string,
  owner: OwnerKey,
  holder: string,
): Promise<AssetRemoval> {
  const ref = assetRef(deps.firestore, assetId);
  let wrote = 0;
  const result = await guardFirestore(`transaction on assets/${assetId}`, () =>
    deps.firestore.runTransaction(async (tx) => {
      const asset = assetDocFrom(await tx.get(ref));
      countFirestore(1);
      // The service may name a legacy image by its image id (isLegacyImage).
      const imageId = asset
        ? asset.owner === owner
          ? asset.imageId
          : undefined
        : owner === SERVICE_OWNER
          ? assetId
          : undefined;
      const image = imageId ? imageRef(deps.firestore, imageId) : undefined;
      const imageDoc = image ? imageDocFrom(await tx.get(image)) : undefined;
      if (image) countFirestore(1);
      const now = deps.now();
      const decided = removeAsset(asset, imageDoc, owner, holder, now);
      if (decided.deleteAsset) tx.delete(ref);
      if (decided.image && image) tx.set(image, imageDocData({ ...decided.image, updatedAt: now }));
      wrote = (decided.deleteAsset ? 1 : 0) + (decided.image && image ? 1 : 0);
      return decided.result;
    }),
  );
  countFirestore(0, wrote);
  return result;
}

/** Most assets one page of `GET /uploads` lists. */
export const MAX_LIST_LIMIT = 100;

/** Assets per page of `GET /uploads` when the caller gives no `limit`. */
export const DEFAULT_LIST_LIMIT = 20;

/** Where a page of an owner's assets starts: after this asset (newest first: createdAt, then id, descending). */
export interface AssetCursor {
  readonly createdAt: Date;
  readonly id: string;
}

/** An opaque cursor: base64url of `{createdAt ms}.{asset id}`. */
export function encodeAssetCursor(cursor: AssetCursor): string {
  return Buffer.from(`${cursor.createdAt.getTime()}.${cursor.id}`, 'utf8').toString('base64url');
}

/** The cursor in `raw`, or undefined when it is not one {@link encodeAssetCursor} made. */
export function decodeAssetCursor(raw: string): AssetCursor | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(raw)) return undefined;
  const match = /^(\d{1,15})\.([0-9a-f]{32})$/.exec(Buffer.from(raw, 'base64url').toString('utf8'));
  return match ? { createdAt: new Date(Number(match[1])), id: match[2] as string } : undefined;
}

/**
 * One page of an owner's assets, newest first (index assets(owner, createdAt desc); ties by id),
 * and the cursor of the next page when there is one.
 */
export async function listOwnerAssets(
  deps: Pick<PipelineDeps, 'firestore'>,
  owner: OwnerKey,
  limit: number,
  after?: AssetCursor,
): Promise<{ readonly assets: readonly AssetDoc[]; readonly next?: AssetCursor }> {
  let query = deps.firestore
    .collection(ASSETS_COLLECTION)
    .where('owner', '==', owner)
    .orderBy('createdAt', 'desc')
    .orderBy(FieldPath.documentId(), 'desc');
  if (after) query = query.startAfter(Timestamp.fromDate(after.createdAt), after.id);
  const snapshot = await guardFirestore(`list assets of ${owner}`, () => query.limit(limit + 1).get());
  countFirestore(Math.max(1, snapshot.size));
  const assets = snapshot.docs.flatMap((doc) => assetDocFrom(doc) ?? []);
  const page = assets.slice(0, limit);
  const last = page[page.length - 1];
  return {
    assets: page,
    ...(assets.length > limit && last ? { next: { createdAt: last.createdAt, id: last.id } } : {}),
  };
}

/** The image documents of some assets, read together (one round trip); absent ones are undefined. */
export async function readImagesOf(
  deps: Pick<PipelineDeps, 'firestore'>,
  assets: readonly AssetDoc[],
): Promise<Map<string, ImageDoc | undefined>> {
  const ids = [...new Set(assets.map((a) => a.imageId))];
  if (ids.length === 0) return new Map();
  const snapshots = await guardFirestore('read images of assets', () =>
    deps.firestore.getAll(...ids.map((id) => imageRef(deps.firestore, id))),
  );
  countFirestore(snapshots.length);
  return new Map(snapshots.map((snapshot, i) => [ids[i] as string, imageDocFrom(snapshot)]));
}
