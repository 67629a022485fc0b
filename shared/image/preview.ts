/**
 * Preview-first scheduling: which variant an image shows first, and putting it first. The preview
 * is the cheapest still variant at the plan's smallest uncropped width; it goes into the first
 * job and the renderer writes it right after that job's decode (docs/state.md "Progressive
 * status"). Why first in the first job rather than a tiny job of its own: a job of its own decodes
 * the whole original once more (docs/performance.md, "Preview first" has the measurements).
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
