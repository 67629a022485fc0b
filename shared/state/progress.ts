/**
 * The progressive status's decisions (docs/state.md, "Progressive status"): a job's first finished
 * variant recorded early, and `image.preview`.
 *
 * `image.preview` (PREVIEW_EVENT=true) is queued in the outbox by the transition that records an
 * image's first servable variant, in the same transaction: the job's early record, or its fan-in
 * when the early record failed or was not made (a job of one variant). Transactions on a document
 * are serialised and only the one that finds no servable variant recorded yet queues it, so an
 * image gets one whatever the duplicate and late deliveries; a re-dispatch keeps the recorded
 * variants, so it never queues a second. An update (the image is ready) queues none.
 */
import { parseVariantName } from '../core/naming.js';
import type { EventMessage } from '../core/schemas.js';
import { variantUrl } from '../image/manifest.js';
import type { ImageDoc, Transition, VariantFacts } from './image-doc.js';
import { isCurrentDispatch, type StateSettings, withEvent } from './policy.js';

/** A variant a page can show: written (not left out), of this image. */
const servable = (doc: Pick<ImageDoc, 'id'>, facts: VariantFacts): boolean =>
  !facts.omitted && parseVariantName(facts.name)?.id === doc.id;

/**
 * `doc` with `image.preview` for the first servable variant of `added` appended to its outbox,
 * and whether `holder` got the outbox; undefined when the event is off or not this transition's.
 */
export function queuePreview(
  doc: ImageDoc,
  added: readonly VariantFacts[],
  holder: string,
  settings: Pick<StateSettings, 'previewBaseUrl'>,
  now: Date,
): { readonly doc: ImageDoc; readonly leased: boolean } | undefined {
  const baseUrl = settings.previewBaseUrl;
  if (baseUrl === undefined || doc.status !== 'processing' || doc.update) return undefined;
  if (doc.variants.some((facts) => servable(doc, facts))) return undefined;
  const first = added.find((facts) => servable(doc, facts));
  const parsed = first && parseVariantName(first.name);
  if (!first || !parsed) return undefined;
  const event: EventMessage = {
    v: 1,
    type: 'image.preview',
    imageId: doc.id,
    url: variantUrl(baseUrl, first.name),
    width: first.width,
    height: first.height,
    format: parsed.format,
    at: now.toISOString(),
  };
  const { leased, ...outbox } = withEvent(doc, event, holder, now);
  return { doc: { ...doc, ...outbox }, leased };
}

/** The facts of every variant, newest first: an object once written never changes. */
export function mergeVariants(old: readonly VariantFacts[], added: readonly VariantFacts[]): VariantFacts[] {
  const byName = new Map(old.map((v) => [v.name, v]));
  for (const v of added) if (!byName.has(v.name)) byName.set(v.name, v);
  return [...byName.values()];
}

/** What the early record did, and the outbox when it queued `image.preview` and got the lease. */
export interface EarlyRecord {
  readonly kind: 'recorded' | 'skipped' | 'stale';
  readonly outbox?: ImageDoc;
}

/**
 * A job's first finished variant, recorded before the job ends so the status answer can list
 * something to show at once (docs/state.md, "Progressive status"): only while the image is
 * processing its first result (an update keeps serving its manifest) and the dispatch is current.
 * With PREVIEW_EVENT, the image's first servable variant also queues `image.preview` ({@link queuePreview}).
 */
export function recordEarlyVariant(
  dispatch: number,
  facts: VariantFacts,
  holder: string,
  settings: Pick<StateSettings, 'previewBaseUrl'>,
): Transition<EarlyRecord> {
  return (doc, now) => {
    if (!isCurrentDispatch(doc, dispatch)) return { result: { kind: 'stale' } };
    // An omission has nothing to show; a variant already recorded needs no second write.
    if (doc.status !== 'processing' || facts.omitted || doc.variants.some((v) => v.name === facts.name))
      return { result: { kind: 'skipped' } };
    const queued = queuePreview(doc, [facts], holder, settings, now);
    const next = { ...(queued?.doc ?? doc), variants: mergeVariants(doc.variants, [facts]) };
    return { next, result: { kind: 'recorded', ...(queued?.leased ? { outbox: next } : {}) } };
  };
}
