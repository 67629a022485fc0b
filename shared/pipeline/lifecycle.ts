/**
 * Taking an upload down: `DELETE /uploads/{assetId}`. One transaction deletes the owner's asset and
 * counts it off its image; when it was the image's last asset, the same transaction marks the
 * image deleted (every job of its dispatch is stale from then on) and queues `image.deleted`
 * behind any event still waiting; then the objects go and the event is published.
 */
import { randomUUID } from 'node:crypto';
import type { PipelineDeps } from '../cloud/deps.js';
import type { OwnerKey } from '../auth/principal.js';
import { transactRemoveAsset } from '../state/assets.js';
import { drainOrDefer, purgeImageObjects } from '../state/outbox.js';

/**
 * Deletes `owner`'s asset `assetId`, and its image with it when no other asset refers to the image.
 * `not-found` for an unknown asset and for another owner's (the same answer, so their ids stay
 * unknown); safe to retry (the retry finds it gone) and to run concurrently.
 */
export async function deleteAsset(
  deps: PipelineDeps,
  assetId: string,
  owner: OwnerKey,
): Promise<'deleted' | 'image-deleted' | 'not-found'> {
  const holder = `delete:${randomUUID()}`;
  const removal = await transactRemoveAsset(deps, assetId, owner, holder);
  if (removal.kind === 'image-deleted' && removal.outcome.kind !== 'not-found') {
    const id = removal.imageId;
    // The objects go now whoever holds the outbox; a writer still at work is fenced by the
    // document, and cleanup's purge looks again after PURGE_AFTER_MS.
    const removed = await purgeImageObjects(deps, id);
    deps.log.info('image objects removed', { event: 'image.purge', imageId: id, removed });
    // The delete is decided: a failed publish leaves image.deleted in the outbox, due at once.
    if (removal.outcome.kind === 'deleted' && removal.outcome.outbox)
      await drainOrDefer(deps, id, holder, removal.outcome.outbox);
  }
  if (removal.kind === 'kept' && removal.outbox) await drainOrDefer(deps, removal.imageId, holder, removal.outbox);
  const result = removal.kind === 'not-found' ? 'not-found' : removal.kind === 'kept' ? 'deleted' : 'image-deleted';
  deps.log.info(result === 'not-found' ? 'delete of an unknown asset' : 'asset deleted', {
    event: 'asset.delete',
    assetId,
    ...(removal.kind !== 'not-found' ? { imageId: removal.imageId } : {}),
    result,
    ...(removal.kind === 'kept' ? { assetsLeft: removal.assets } : {}),
  });
  return result;
}
