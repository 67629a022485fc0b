/**
 * Preview-first scheduling: which variant an image shows first, and where it is made. The preview
 * is the cheapest still variant at the plan's smallest uncropped width. With PREVIEW=inline it is
 * a tiny job of its own (job 0), which the accepting function runs from the bytes it holds, when
 * the original decodes cheaply at a fraction of its size (JPEG and WebP shrink on load) or is
 * small; otherwise, and with PREVIEW=first-in-job, it goes into the first job and the renderer
 * writes it right after that job's decode (docs/state.md "Progressive status"; the costs of
 * either: docs/performance.md, "Preview first").
 */
import type { FanoutStrategy, OutputFormat, PreviewMode } from '../core/domain.js';
import type { OriginalInfo, VariantSpec } from '../core/schemas.js';
import { FORMAT_COST_FACTORS, type PlanInput, splitIntoJobs } from './plan.js';

/** The variant an image shows first. */
export interface PreviewVariant {
  readonly width: number;
  readonly format: OutputFormat;
}

/**
 * The plan's preview: at its smallest uncropped still width, the format cheapest to encode
 * ({@link FORMAT_COST_FACTORS}: JPEG, then WebP, then AVIF). Undefined when the plan has no
 * uncropped still variant (an animated-only plan keeps its order).
 */
export function previewVariantOf(plan: readonly VariantSpec[]): PreviewVariant | undefined {
  const stills = plan.filter((spec) => spec.aspect === undefined && !spec.animated);
  if (stills.length === 0) return undefined;
  const width = Math.min(...stills.map((spec) => spec.width));
  const [format] = stills
    .filter((spec) => spec.width === width)
    .map((spec) => spec.format)
    .sort((a, b) => FORMAT_COST_FACTORS[a] - FORMAT_COST_FACTORS[b]);
  return format ? { width, format } : undefined;
}

const isPreview = (spec: VariantSpec, preview: PreviewVariant): boolean =>
  spec.aspect === undefined && !spec.animated && spec.width === preview.width && spec.format === preview.format;

/**
 * `jobs` with the plan's preview moved into the first job (index 0: the heaviest under `balanced`,
 * published first, and the one whose first variant is recorded early), in plan order like every
 * job's variants (the renderer writes it first: render.ts `preview`); every other job keeps its
 * order and the rest of its variants, and a job left empty is dropped (one decode fewer).
 * Returned as given when the plan has no preview or no job holds it.
 */
export function previewFirst(jobs: readonly VariantSpec[][], plan: readonly VariantSpec[]): VariantSpec[][] {
  const preview = previewVariantOf(plan);
  const spec = preview && jobs.flat().find((candidate) => isPreview(candidate, preview));
  if (!preview || !spec) return jobs.map((job) => [...job]);
  const rest = jobs.map((job) => job.filter((candidate) => !isPreview(candidate, preview)));
  const rank = (v: VariantSpec) =>
    plan.findIndex(
      (p) => p.width === v.width && p.format === v.format && p.aspect === v.aspect && p.animated === v.animated,
    );
  const first = [spec, ...(rest[0] ?? [])].sort((a, b) => rank(a) - rank(b));
  return [first, ...rest.slice(1)].filter((job) => job.length > 0);
}

/**
 * Largest originals whose preview is a job of its own: the own job's decode is the whole cost it
 * adds, a fraction of the image's when JPEG/WebP shrink on load, a full decode for the others;
 * HEIC and AVIF never (their decoders cost several times as much per pixel). Each kept under 3 %
 * of the image's CPU (docs/performance.md, "Preview first").
 */
export const OWN_JOB_MAX_PIXELS = { shrinkOnLoad: 30_000_000, other: 13_000_000 } as const;
/**
 * Widest preview that is a job of its own: past it (a plan whose smallest width is large) or in
 * AVIF (a plan without JPEG and WebP) the preview is no longer a cheap first look, and running it
 * before answering would hold the upload for a real encode.
 */
export const OWN_JOB_MAX_PREVIEW_WIDTH = 640;
const SHRINKS_ON_LOAD = new Set(['jpeg', 'webp']);

/** Whether the plan's preview is cheap enough to be a job of its own ({@link OWN_JOB_MAX_PREVIEW_WIDTH}). */
const cheapPreview = (preview: PreviewVariant): boolean =>
  preview.width <= OWN_JOB_MAX_PREVIEW_WIDTH && preview.format !== 'avif';
const DEAR_DECODES = new Set(['heif', 'avif']);

/**
 * Whether the image's jobs start with the preview alone (PREVIEW=inline, a first result, not an
 * update: an update's page shows the ready manifest meanwhile, so a tiny job would only cost).
 * A function of the configuration and the original alone, so every dispatch of an image agrees.
 */
export function previewAlone(
  info: Pick<OriginalInfo, 'format' | 'width' | 'height'>,
  mode: PreviewMode,
  update: boolean,
): boolean {
  if (mode !== 'inline' || update || DEAR_DECODES.has(info.format)) return false;
  const limit = SHRINKS_ON_LOAD.has(info.format) ? OWN_JOB_MAX_PIXELS.shrinkOnLoad : OWN_JOB_MAX_PIXELS.other;
  return info.width * info.height <= limit;
}

/**
 * `jobs` scheduled for the preview: alone in a job 0 of its own ({@link previewAlone}), first in
 * the first job ({@link previewFirst}), or as split (`off`). A job left empty is dropped.
 */
export function schedulePreview(
  jobs: readonly VariantSpec[][],
  plan: readonly VariantSpec[],
  mode: PreviewMode,
  alone: boolean,
): VariantSpec[][] {
  if (mode === 'off') return jobs.map((job) => [...job]);
  const preview = previewVariantOf(plan);
  const spec = preview && jobs.flat().find((candidate) => isPreview(candidate, preview));
  if (!alone || !preview || !spec || !cheapPreview(preview)) return previewFirst(jobs, plan);
  const rest = jobs.map((job) => job.filter((candidate) => !isPreview(candidate, preview)));
  return [[spec], ...rest.filter((job) => job.length > 0)];
}

/**
 * An image's variants grouped into jobs as a dispatch makes them: split by FANOUT_STRATEGY, then
 * the preview scheduled by PREVIEW (unset: first in the first job). `update`: a reprocess.
 */
export function jobGroups(
  plan: readonly VariantSpec[],
  info: PlanInput & Pick<OriginalInfo, 'format'>,
  config: { readonly FANOUT_STRATEGY: FanoutStrategy; readonly PREVIEW?: PreviewMode | undefined },
  update: boolean,
): VariantSpec[][] {
  const mode = config.PREVIEW ?? 'first-in-job';
  return schedulePreview(
    splitIntoJobs(plan, info, config.FANOUT_STRATEGY),
    plan,
    mode,
    previewAlone(info, mode, update),
  );
}

/** True for a job of the preview alone (job 0 of {@link schedulePreview} with `alone`). */
export function isPreviewJob(variants: readonly VariantSpec[], plan: readonly VariantSpec[]): boolean {
  const preview = previewVariantOf(plan);
  const [only] = variants;
  return (
    variants.length === 1 &&
    preview !== undefined &&
    cheapPreview(preview) &&
    only !== undefined &&
    isPreview(only, preview)
  );
}
