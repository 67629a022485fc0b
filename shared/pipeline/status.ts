/**
 * Where an image stands, for `GET /uploads/{id}`: ready (manifest), failed (failure record),
 * processing (variants recorded so far of those planned, and the finished ones a page can show
 * already), or unknown; all from its document.
 */
import type { PipelineDeps } from '../cloud/deps.js';
import { publicBaseUrl } from '../core/config.js';
import type { OutputFormat } from '../core/domain.js';
import { parseVariantName } from '../core/naming.js';
import { variantUrl } from '../image/manifest.js';
import type { FailureRecord, Manifest } from '../core/schemas.js';
import { type ImageDoc, readImage } from '../state/image-doc.js';

/** A finished variant of an image still processing: its object is final (immutable URL). */
export interface FinishedVariant {
  readonly url: string;
  readonly width: number;
  readonly height: number;
  readonly format: OutputFormat;
  readonly aspect?: string;
  /** An animated WebP (ANIMATION=keep). */
  readonly animated?: true;
}

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
