/**
 * What the orchestrator asks a child process to measure, and what the child answers. Every
 * measured configuration runs in its own fresh process, so that settings read at start-up
 * (MALLOC_ARENA_MAX, sharp's concurrency and cache) apply and peak RSS is that configuration's
 * alone. Settings travel as environment variables, read by the same config schema the functions
 * use.
 */
import type { VariantSpec } from '../shared/core/schemas.js';
import type { ImageSize } from '../shared/image/plan.js';
import type { AnchorVariantRun, FloorRun, JobRun, ParityResult, Timing } from './methods.js';
import type { OutputFormat } from '../shared/core/domain.js';

/** One encoder setting of the encoder-settings table. */
export interface EncoderCase {
  format: OutputFormat;
  quality: number;
  /** WebP and AVIF. */
  effort?: number;
  /** JPEG. */
  mozjpeg?: boolean;
}

/** A task for a child process. */
export type Task =
  | { kind: 'ours'; image: string; info: ImageSize; jobs: VariantSpec[][]; saveDir?: string }
  | { kind: 'anchor'; image: string; info: ImageSize; variants: VariantSpec[]; saveDir?: string }
  | { kind: 'floor'; image: string; info: ImageSize; variants: VariantSpec[]; saveDir?: string }
  | { kind: 'quality'; image: string; info: ImageSize; variants: VariantSpec[]; dirs: Record<string, string> }
  | {
      kind: 'encoders';
      images: Array<{ name: string; path: string; info: ImageSize }>;
      width: number;
      cases: EncoderCase[];
    }
  | { kind: 'runtime'; image: string; info: ImageSize; instances: number }
  | { kind: 'parity'; images: Array<{ name: string; path: string }> };

/** What every child reports besides its task's result. */
export interface ProcessFacts {
  /** Peak resident set size of the whole child, KiB (`process.resourceUsage().maxRSS`). */
  maxRssKiB: number;
  /** Peak RSS after start-up and codec warm-up, before the measured work. */
  baselineRssKiB: number;
  /** libvips threads per image as sharp reports it after configuration. */
  sharpConcurrency: number;
  /** The runtime-relevant environment the child ran with. */
  env: { SHARP_CONCURRENCY?: string; SHARP_CACHE?: string; MALLOC_ARENA_MAX?: string };
}

/** One SSIM measurement. */
export interface QualityRow {
  method: string;
  width: number;
  format: OutputFormat;
  bytes: number;
  ssim: number;
}

/** One row of the encoder-settings table, for one image. */
export interface EncoderRow extends EncoderCase {
  image: string;
  width: number;
  height: number;
  cpuMs: number;
  wallMs: number;
  bytes: number;
  ssim: number;
}

/** Result of a runtime task: `instances` images rendered at once. */
export interface RuntimeResult extends Timing {
  instances: number;
  variants: number;
}

/** Results by task kind. */
export interface TaskResults {
  ours: { jobs: JobRun[]; outputs: Array<{ width: number; format: OutputFormat; bytes: number }> };
  anchor: { variants: AnchorVariantRun[] } & Timing;
  floor: FloorRun;
  quality: { rows: QualityRow[] };
  encoders: { rows: EncoderRow[] };
  runtime: RuntimeResult;
  parity: ParityResult;
}

/** A child's answer. */
export type ChildAnswer<K extends Task['kind'] = Task['kind']> =
  | ({ ok: true; result: TaskResults[K] } & ProcessFacts)
  | ({ ok: false; error: { code: string; message: string } } & Partial<ProcessFacts>);

/** Marks the answer line on the child's stdout. */
export const ANSWER_MARKER = '@@bench-answer ';
