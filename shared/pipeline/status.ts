/**
 * Where an image stands, for `GET /uploads/{id}`: ready (manifest), failed (error record),
 * processing (original stored, variants counted), or unknown.
 */
import { terminalState } from './accept.js';
import type { PipelineDeps } from '../cloud/deps.js';
import { originalInfoFromMetadata } from './dispatch.js';
import type { FailureRecord, Manifest } from '../core/schemas.js';
import { isOmittedVariantName, isVariantName, ORIGINAL_METADATA, originalName } from '../core/naming.js';
import { listObjects, metadataOrUndefined } from '../cloud/objects.js';
import { planVariants } from '../image/plan.js';

/** An image's state. */
export type ImageStatus =
  | { readonly state: 'ready'; readonly id: string; readonly manifest: Manifest }
  | { readonly state: 'failed'; readonly id: string; readonly record: FailureRecord }
  | { readonly state: 'processing'; readonly id: string; readonly done: number; readonly total: number }
  | { readonly state: 'unknown'; readonly id: string };

/** Looks an image up by id (the caller has validated the id's shape). */
export async function imageStatus(deps: PipelineDeps, id: string): Promise<ImageStatus> {
  const terminal = await terminalState(deps, id);
  if (terminal?.state === 'ready') return { state: 'ready', id, manifest: terminal.manifest };
  if (terminal?.state === 'failed') return { state: 'failed', id, record: terminal.record };
  if (terminal?.state === 'deleted') return { state: 'unknown', id };

  const original = await metadataOrUndefined(deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(originalName(id)));
  if (!original) return { state: 'unknown', id };
  const planned = Number(original.metadata?.[ORIGINAL_METADATA.plannedVariants]);
  const info = originalInfoFromMetadata(original);
  const total = Number.isInteger(planned) && planned > 0 ? planned : info ? planVariants(info, deps.config).length : 0;
  const variants = await listObjects(deps.storage.bucket(deps.config.IMAGES_BUCKET), `${id}/`);
  // A variant left out for being larger than the original (its omission marker) is done too.
  const done = variants.filter((file) => isVariantName(file.name) || isOmittedVariantName(file.name)).length;
  return { state: 'processing', id, done: Math.min(done, total), total };
}
