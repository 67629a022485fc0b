/**
 * Where an image stands, for `GET /uploads/{id}`: ready (manifest), failed (failure record),
 * processing (variants recorded so far of those planned), or unknown; all from its document.
 */
import type { PipelineDeps } from '../cloud/deps.js';
import type { FailureRecord, Manifest } from '../core/schemas.js';
import { readImage } from '../state/image-doc.js';

/** An image's state. */
export type ImageStatus =
  | { readonly state: 'ready'; readonly id: string; readonly manifest: Manifest }
  | { readonly state: 'failed'; readonly id: string; readonly record: FailureRecord }
  | { readonly state: 'processing'; readonly id: string; readonly done: number; readonly total: number }
  | { readonly state: 'unknown'; readonly id: string };

/** Looks an image up by id (the caller has validated the id's shape). */
export async function imageStatus(deps: PipelineDeps, id: string): Promise<ImageStatus> {
  const doc = await readImage(deps, id);
  if (doc?.status === 'ready' && doc.manifest) return { state: 'ready', id, manifest: doc.manifest };
  if (doc?.status === 'failed' && doc.failure) return { state: 'failed', id, record: doc.failure };
  if (doc?.status !== 'processing') return { state: 'unknown', id };
  const total = doc.plannedVariants;
  return { state: 'processing', id, done: Math.min(doc.variants.length, total), total };
}
