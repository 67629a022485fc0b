/**
 * Where an upload stands, for `GET /uploads/{assetId}` and `GET /uploads`: the owner's asset, and
 * its image ready (manifest), failed (failure record), processing (variants recorded so far of
 * those planned, and the finished ones a page can show already), or unknown; all from documents.
 */
import type { PipelineDeps } from '../cloud/deps.js';
import { publicBaseUrl } from '../core/config.js';
import { manifestName, parseVariantName } from '../core/naming.js';
import { variantUrl } from '../image/manifest.js';
import type { FailureRecord, Manifest } from '../core/schemas.js';
import { type ImageDoc, readImage } from '../state/image-doc.js';
import { type OwnerKey, SERVICE_OWNER } from '../auth/principal.js';
import { permanent } from '../core/errors.js';
import type { FinishedVariant, ListPageBody, ListedAsset } from '../http/api-schemas.js';
import {
  type AssetDoc,
  DEFAULT_LIST_LIMIT,
  decodeAssetCursor,
  encodeAssetCursor,
  listOwnerAssets,
  MAX_LIST_LIMIT,
  isLegacyImage,
  legacyServiceAsset,
  readAsset,
  readImagesOf,
} from '../state/assets.js';

/** An image's state. */
export type ImageStatus =
  | { readonly state: 'ready'; readonly id: string; readonly manifest: Manifest }
  | { readonly state: 'failed'; readonly id: string; readonly record: FailureRecord }
  | {
      readonly state: 'processing';
      readonly id: string;
      readonly done: number;
      readonly total: number;
      /** Written variants, for a page to show before the manifest (docs/api.md, "While processing"). */
      readonly finished: readonly FinishedVariant[];
      readonly placeholder?: { readonly color: string; readonly thumbhash: string };
    }
  | { readonly state: 'unknown'; readonly id: string };

/**
 * The variants a processing image's document records as written, smallest first (uncropped
 * before each aspect's). Variant names never get other bytes while the document records them
 * (a delete empties the list before the name can be written again), so a page may show them at once.
 */
export function finishedVariants(doc: Pick<ImageDoc, 'id' | 'variants'>, baseUrl: string): FinishedVariant[] {
  return doc.variants
    .flatMap((facts) => {
      const parsed = parseVariantName(facts.name);
      if (!parsed || parsed.id !== doc.id || facts.omitted) return [];
      const { width, height } = facts;
      return [
        {
          url: variantUrl(baseUrl, facts.name),
          width,
          height,
          format: parsed.format,
          ...(parsed.aspect ? { aspect: parsed.aspect } : {}),
          ...(parsed.animated ? { animated: true as const } : {}),
        },
      ];
    })
    .sort((a, b) => (a.aspect ?? '').localeCompare(b.aspect ?? '') || a.width - b.width);
}

/** Looks an image up by id (the caller has validated the id's shape). */
export async function imageStatus(deps: PipelineDeps, id: string): Promise<ImageStatus> {
  const doc = await readImage(deps, id);
  if (doc?.status === 'ready' && doc.manifest) return { state: 'ready', id, manifest: doc.manifest };
  if (doc?.status === 'failed' && doc.failure) return { state: 'failed', id, record: doc.failure };
  if (doc?.status !== 'processing') return { state: 'unknown', id };
  const total = doc.plannedVariants;
  const placeholder = doc.variants.find((v) => v.placeholder)?.placeholder;
  return {
    state: 'processing',
    id,
    done: Math.min(doc.variants.length, total),
    total,
    finished: finishedVariants(doc, publicBaseUrl(deps.config)),
    ...(placeholder ? { placeholder } : {}),
  };
}

/** An owner's asset and where its image stands. */
export interface AssetStatus {
  readonly asset: AssetDoc;
  readonly image: ImageStatus;
}

/**
 * An asset's status for its owner; undefined for an unknown asset and for another owner's (the
 * caller answers both 404, so nobody learns which ids others have).
 */
export async function assetStatus(
  deps: PipelineDeps,
  assetId: string,
  owner: OwnerKey,
): Promise<AssetStatus | undefined> {
  const asset = await readAsset(deps, assetId);
  if (!asset && owner === SERVICE_OWNER) {
    // The service may name an image made before assets by its image id (state/assets.ts).
    const legacy = await readImage(deps, assetId);
    if (isLegacyImage(legacy))
      return { asset: legacyServiceAsset(legacy, assetId), image: await imageStatus(deps, assetId) };
  }
  if (!asset || asset.owner !== owner) return undefined;
  return { asset, image: await imageStatus(deps, asset.imageId) };
}

/**
 * A page of the owner's assets, newest first, with each image's status (the image documents are
 * read together). `limit` and `cursor` are the raw query parameters: a bad one is `bad_request`.
 */
export async function listAssets(
  deps: PipelineDeps,
  owner: OwnerKey,
  raw: { readonly limit?: string | undefined; readonly cursor?: string | undefined },
): Promise<ListPageBody> {
  const limit = raw.limit === undefined ? DEFAULT_LIST_LIMIT : Number(raw.limit);
  if (raw.limit !== undefined && !/^\d{1,3}$/.test(raw.limit)) throw badLimit();
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw badLimit();
  const after = raw.cursor === undefined ? undefined : decodeAssetCursor(raw.cursor);
  if (raw.cursor !== undefined && !after)
    throw permanent('bad_request', 'The cursor is not one this API gave; start again without it.');
  const page = await listOwnerAssets(deps, owner, limit, after);
  const images = await readImagesOf(deps, page.assets);
  const baseUrl = publicBaseUrl(deps.config);
  const items = page.assets.map((asset): ListedAsset => {
    const status = images.get(asset.imageId)?.status ?? 'unknown';
    return {
      id: asset.id,
      imageId: asset.imageId,
      status,
      ...(asset.filename ? { filename: asset.filename } : {}),
      ...(asset.metadata ? { metadata: asset.metadata } : {}),
      createdAt: asset.createdAt.toISOString(),
      ...(status === 'ready' ? { manifestUrl: variantUrl(baseUrl, manifestName(asset.imageId)) } : {}),
    };
  });
  return { items, ...(page.next ? { nextCursor: encodeAssetCursor(page.next) } : {}) };
}

function badLimit() {
  return permanent('bad_request', `limit must be a whole number from 1 to ${MAX_LIST_LIMIT}.`, {
    max: MAX_LIST_LIMIT,
  });
}
