/**
 * Per-upload events (`upload.ready`, `upload.failed`, `upload.updated`, `upload.deleted`): each
 * image event is announced to every upload (asset) of the image as well, carrying the upload's
 * id, owner and metadata, so an app acts on its own record. docs/api.md, "Events".
 *
 * An asset created while its image is at sequence S (`sinceSeq`) is announced the image events
 * from S on: the outbox's drain expands each of those to the image's assets when it publishes
 * them (one query, not a write per asset). An asset created for an image already ready or
 * failed gets its own event at once, in the transaction that creates it; the asset whose delete
 * is decided gets `upload.deleted` in that transaction, since it is gone by the drain.
 */
import type { PipelineDeps } from '../cloud/deps.js';
import { SERVICE_OWNER, type OwnerKey } from '../auth/principal.js';
import type { EventMessage } from '../core/schemas.js';
import { countFirestore, guardFirestore, type ImageDoc } from './image-doc.js';
import { withEvent } from './policy.js';
import type { AssetDoc } from './assets.js';
import { topology } from '../core/topology.js';
import { type Config, publicBaseUrl } from '../core/config.js';
import { manifestName } from '../core/naming.js';
import { variantCount, variantUrl } from '../image/manifest.js';

/** The fields of an asset an upload event carries. */
export type AnnouncedAsset = Pick<AssetDoc, 'id' | 'owner' | 'imageId' | 'metadata'> & {
  readonly sinceSeq?: number | undefined;
};

/** The image events each upload hears too (not `image.preview`: once per image, for pages, not apps' records). */
export const ANNOUNCED_TYPES: ReadonlySet<EventMessage['type']> = new Set([
  'image.ready',
  'image.failed',
  'image.updated',
  'image.deleted',
]);

/** The owner as events name it: the user's subject; nothing for the service's own uploads. */
export function eventOwnerOf(owner: OwnerKey): string | undefined {
  if (owner === SERVICE_OWNER) return undefined;
  return owner.startsWith('user:') ? owner.slice('user:'.length) : owner;
}

/**
 * Pure: the upload event that announces image event `event` to `asset`; undefined for an event
 * that is already an upload's. `publicBaseUrl` makes the manifest's public URL.
 */
export function uploadEventOf(
  event: EventMessage,
  asset: AnnouncedAsset,
  publicBaseUrl: string,
): EventMessage | undefined {
  const owner = eventOwnerOf(asset.owner);
  const upload = {
    v: 1 as const,
    id: asset.id,
    imageId: asset.imageId,
    ...(owner !== undefined ? { owner } : {}),
    ...(asset.metadata ? { metadata: asset.metadata } : {}),
  };
  const manifestUrl = (name: string) => variantUrl(publicBaseUrl, name);
  switch (event.type) {
    case 'image.ready': {
      const { manifest, variants, at } = event;
      return { ...upload, type: 'upload.ready', manifest, manifestUrl: manifestUrl(manifest.name), variants, at };
    }
    case 'image.updated': {
      const { manifest, variants, recipe, previousRecipe, at } = event;
      const url = manifestUrl(manifest.name);
      return { ...upload, type: 'upload.updated', manifest, manifestUrl: url, variants, recipe, previousRecipe, at };
    }
    case 'image.failed': {
      const { code, message, retryable, at } = event;
      return { ...upload, type: 'upload.failed', code, message, ...(retryable !== undefined ? { retryable } : {}), at };
    }
    case 'image.deleted':
      return { ...upload, type: 'upload.deleted', at: event.at };
    default:
      return undefined;
  }
}

/** The image event that stands for the image as it is now (ready or failed), for a new upload of it. */
function currentImageEvent(image: ImageDoc, imagesBucket: string, now: Date): EventMessage | undefined {
  const at = now.toISOString();
  if (image.status === 'ready' && image.manifest) {
    const manifest = { bucket: imagesBucket, name: manifestName(image.id) };
    return { v: 1, type: 'image.ready', imageId: image.id, manifest, variants: variantCount(image.manifest), at };
  }
  if (image.status === 'failed' && image.failure) {
    const { code, message, retryable } = image.failure;
    const failed = { v: 1 as const, type: 'image.failed' as const, imageId: image.id, code, message, at };
    return retryable !== undefined ? { ...failed, retryable } : failed;
  }
  return undefined;
}

/** Who announces to a new asset, and how its events name the manifest. */
export interface Announcer {
  readonly holder: string;
  readonly publicBaseUrl: string;
  readonly imagesBucket: string;
}

/**
 * Pure: the image after a new asset was counted on it (`image`, with the asset's `sinceSeq` =
 * the sequence before the transition ran). When the image is ready or failed and no event from
 * `sinceSeq` on announces that, the asset's own `upload.ready`/`upload.failed` is appended.
 */
export function announceNewAsset(
  image: ImageDoc,
  asset: AnnouncedAsset & { readonly sinceSeq: number },
  announcer: Announcer,
  now: Date,
): { readonly image: ImageDoc; readonly leased: boolean } {
  const covering = image.status === 'ready' ? ['image.ready', 'image.updated'] : ['image.failed'];
  if (image.events.some((e) => e.seq >= asset.sinceSeq && covering.includes(e.event.type)))
    return { image, leased: false };
  const current = currentImageEvent(image, announcer.imagesBucket, now);
  const event = current && uploadEventOf(current, asset, announcer.publicBaseUrl);
  if (!event) return { image, leased: false };
  const { leased, ...outbox } = withEvent(image, event, announcer.holder, now);
  return { image: { ...image, ...outbox }, leased };
}

/** Pure: the image with `upload.deleted` for an asset whose delete is being decided. */
export function announceRemoval(
  image: ImageDoc,
  asset: AnnouncedAsset,
  holder: string,
  now: Date,
): { readonly image: ImageDoc; readonly leased: boolean } {
  const deleted: EventMessage = { v: 1, type: 'image.deleted', imageId: image.id, at: now.toISOString() };
  const event = uploadEventOf(deleted, asset, '') as EventMessage;
  const { leased, ...outbox } = withEvent(image, event, holder, now);
  return { image: { ...image, ...outbox }, leased };
}

/** The announcer for `holder` under a deployment's config. */
export function announcerOf(config: Pick<Config, 'PUBLIC_BASE_URL' | 'IMAGES_BUCKET'>, holder: string): Announcer {
  return { holder, publicBaseUrl: publicBaseUrl(config), imagesBucket: config.IMAGES_BUCKET };
}

/** The image's assets that an image event of sequence `seq` is announced to. */
export function announcedTo(assets: readonly AnnouncedAsset[], seq: number): AnnouncedAsset[] {
  return assets.filter((asset) => (asset.sinceSeq ?? 0) <= seq);
}

/** Every asset of an image (one query on `imageId`; a single-field index, no composite one). */
export async function assetsOfImage(deps: Pick<PipelineDeps, 'firestore'>, imageId: string): Promise<AnnouncedAsset[]> {
  const snapshot = await guardFirestore(`assets of ${imageId}`, () =>
    deps.firestore.collection(topology.firestore.collections.assets).where('imageId', '==', imageId).get(),
  );
  countFirestore(Math.max(1, snapshot.size));
  return snapshot.docs.map((doc) => {
    const data = doc.data() as AnnouncedAsset;
    return {
      id: data.id,
      owner: data.owner,
      imageId: data.imageId,
      ...(data.metadata ? { metadata: data.metadata } : {}),
      ...(data.sinceSeq !== undefined ? { sinceSeq: data.sinceSeq } : {}),
    };
  });
}
