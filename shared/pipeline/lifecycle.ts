/**
 * Taking an image down: `DELETE /uploads/{id}`. One transaction marks the document deleted (every
 * job of its dispatch is stale from then on) and queues `image.deleted` behind any event still
 * waiting; then the objects go and the event is published.
 */
import { randomUUID } from 'node:crypto';
import type { PipelineDeps } from '../cloud/deps.js';
import { transactImage } from '../state/image-doc.js';
import { drainOutbox, purgeImageObjects } from '../state/outbox.js';
import { deleteImageDoc } from '../state/transitions.js';

/** Deletes an image; `not-found` when it has no document. Safe to retry and to run concurrently. */
export async function deleteImage(
  deps: PipelineDeps,
  id: string,
): Promise<'deleted' | 'already-deleted' | 'not-found'> {
  const holder = `delete:${randomUUID()}`;
  const result = await transactImage(deps, id, deleteImageDoc(holder));
  if (result.kind !== 'not-found') {
    // The objects go now whoever holds the outbox; a writer still at work is fenced by the
    // document, and cleanup's purge looks again after PURGE_AFTER_MS.
    const removed = await purgeImageObjects(deps, id);
    deps.log.info('image objects removed', { event: 'image.purge', imageId: id, removed });
  }
  if (result.kind === 'deleted' && result.outbox) {
    // The delete is decided: a failed publish leaves image.deleted in the outbox, due at once.
    await drainOutbox(deps, id, holder, result.outbox).catch((error: unknown) =>
      deps.log.warn('image.deleted not published yet; left in the outbox', {
        event: 'outbox.defer',
        imageId: id,
        error,
      }),
    );
  }
  deps.log.info(result.kind === 'not-found' ? 'delete of an unknown image' : 'image deleted', {
    event: 'image.delete',
    imageId: id,
    result: result.kind,
  });
  return result.kind;
}
