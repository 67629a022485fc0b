/**
 * Preview-first scheduling: which variant an image shows first, and putting it first. The preview
 * is the cheapest still variant at the plan's smallest uncropped width; the renderer writes it
 * first in the job that holds it, and that job goes first (index 0: published first, and the one whose first
 * variant is recorded early, docs/state.md "Progressive status"). Why first in an existing job
 * rather than a tiny job of its own: a job of its own decodes the whole original once more
 * (docs/performance.md, "Preview first" has the measurements).
 */
import type { OutputFormat } from '../core/domain.js';
import type { VariantSpec } from '../core/schemas.js';
import { FORMAT_COST_FACTORS } from './plan.js';

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
 * `jobs` with the one holding the plan's preview moved to the front; the others keep their order,
 * every job its contents (the renderer writes the preview first, render.ts `preview`). Returned
 * as given when the plan has no preview.
 */
export function previewFirst(jobs: readonly VariantSpec[][], plan: readonly VariantSpec[]): VariantSpec[][] {
  const preview = previewVariantOf(plan);
  const holder = preview ? jobs.findIndex((job) => job.some((spec) => isPreview(spec, preview))) : -1;
  if (!preview || holder <= 0) return [...jobs];
  return [jobs[holder] ?? [], ...jobs.filter((_, index) => index !== holder)];
}
