/**
 * The log lines that terraform/monitoring.tf's log-based metrics read: their `event` names and
 * the fields the metrics extract. The code that writes them uses these names, and
 * test/terraform/monitoring.test.ts checks the metrics' filters against them, so a renamed
 * field breaks a test instead of silently flattening a dashboard (docs/observability.md).
 */
import type { Manifest } from './schemas.js';

type Processing = NonNullable<Manifest['processing']>;

/** Event names and extracted fields of the metric-bearing log lines. */
export const METRIC_LINES = {
  /** One per resize job (shared/pipeline/run-job.ts). */
  jobDone: { event: 'job.done', durationMs: 'durationMs', cpuMs: 'cpuMs', stages: 'stages' },
  /** One per image made ready, by whoever announced it (shared/state/records.ts), fields from `manifest.processing`. */
  imageReady: {
    event: 'image.ready',
    uploadToReadyMs: 'uploadToReadyMs' satisfies keyof Processing,
    cpuSeconds: 'cpuSeconds' satisfies keyof Processing,
  },
  /** One per failure report (shared/state/records.ts); `recorded` is true on the one that recorded the outcome. */
  imageFailed: { event: 'image.failed', code: 'code', recorded: 'recorded' },
} as const;
