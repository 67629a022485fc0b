/**
 * Taking an image down: `DELETE /uploads/{id}`. The outcome marker becomes a tombstone that every
 * later writer honours (docs/record-protocol.md, "Delete"); its holder removes the objects and
 * announces `image.deleted` once.
 */
import { randomUUID } from 'node:crypto';
import type { PipelineDeps } from '../cloud/deps.js';
import { deleteImageRecords } from '../state/records.js';

/** Deletes an image; `not-found` when nothing of it exists. Safe to retry and to run concurrently. */
export async function deleteImage(
  deps: PipelineDeps,
  id: string,
): Promise<'deleted' | 'already-deleted' | 'not-found'> {
  const result = await deleteImageRecords(deps, id, `delete:${randomUUID()}`);
  deps.log.info(result === 'not-found' ? 'delete of an unknown image' : 'image deleted', {
    event: 'image.delete',
    imageId: id,
    result,
  });
  return result;
}
