/**
 * One resize job, start to finish, as a short sequence of steps: check the job is the image's
 * current dispatch, render what its document does not record yet from one decode, write each
 * variant once (create-if-absent), then the fan-in, a transaction on the image document that
 * records the job and, for the last job, makes the image ready and queues its event. Safe under
 * duplicate, late and concurrent delivery: a job of any other dispatch changes nothing.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { File } from '@google-cloud/storage';
import { publicBaseUrl } from '../core/config.js';
import type { PipelineDeps } from '../cloud/deps.js';
import { classifyError, PipelineError, transient } from '../core/errors.js';
import { placeholderVariantOf } from '../image/manifest.js';
import { previewVariantOf } from '../image/preview.js';
import { factsOfObject, manifestFor, nameOf, omittedNameOf, variantsToMake } from './job-variants.js';
import type { JobMessage, VariantSpec } from '../core/schemas.js';
import { VARIANT_CACHE_CONTROL, VARIANT_METADATA } from '../core/naming.js';
import { LARGER_THAN_ORIGINAL, omitAsLarger } from '../image/plan.js';
import { createIfAbsent, deleteIfPresent, downloadOrUndefined, metadataOrUndefined } from '../cloud/objects.js';
import { METRIC_LINES } from '../core/observability.js';
import { renderVariants, type RenderedVariant, type StageTiming } from '../image/render.js';
import { encoderSettingsFromConfig } from '../image/encode.js';
import { placeholderMetadata } from '../image/placeholder.js';
import { cropMetadata } from '../image/crop.js';
import { autoQualityFromConfig, type QualitySearch } from '../image/auto-quality.js';
import { type ImageDoc, readImage, transactImage, type VariantFacts } from '../state/image-doc.js';
import { drainOutbox } from '../state/outbox.js';
import { failImage, finishJob } from '../state/transitions.js';
import { recordEarlyVariant } from '../state/progress.js';
import { isCurrentDispatch, stateSettingsOf } from '../state/policy.js';

/**
 * `job.done`'s `stages`: `decode`, `resize {w}`, `encode {format} {w}`, `write {format} {w}`, and with
 * QUALITY_MODE=auto `quality {w}` (the search's decode) and `quality {format} {w}` (its trials) → ms.
 */
export function stageFields(timings: readonly StageTiming[]): Record<string, number> {
  const stages: Record<string, number> = {};
  for (const { stage, width, format, ms } of timings) {
    const key = stage === 'decode' ? stage : [stage, format, width].filter((part) => part !== undefined).join(' ');
    stages[key] = (stages[key] ?? 0) + ms;
  }
  return stages;
}

/**
 * `job.done`'s `qualitySearch` (QUALITY_MODE=auto): per format, the quality chosen, how many trial
 * encodes it took and whether the target was met (their wall time is in `stages`, `quality …`).
 */
export function qualitySearchFields(
  searches: readonly QualitySearch[],
): Record<string, { quality: number; trials: number; met: boolean }> {
  return Object.fromEntries(
    searches.map((s) => [s.format, { quality: s.quality, trials: s.trials.length, met: s.outcome === 'met' }]),
  );
}

const DONE = METRIC_LINES.jobDone;

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(start);
  return Math.round((used.user + used.system) / 1000);
}

/** How a job ended. */
export interface JobResult {
  readonly outcome: 'completed' | 'partial' | 'already-finished' | 'failed';
  /** Variants this delivery wrote. */
  readonly written: number;
  /** Variants this delivery left out for being larger than the original. */
  readonly omitted: number;
  /** Variants already recorded (duplicate delivery) or whose object already existed. */
  readonly skipped: number;
  /** True when this delivery's fan-in made the image ready (or its update done). */
  readonly manifestWritten: boolean;
  /** What the fan-in recorded of this job's variants (completed or partial). */
  readonly facts?: readonly VariantFacts[];
}

/** Who a job is, in logs and (with a per-delivery suffix) as the outbox's lease holder. */
export function jobWriter(job: JobMessage): string {
  return `job:${job.imageId}:${job.dispatch}:${job.job.index}`;
}

/** What rendering and writing a job's variants produced. */
interface Made {
  readonly facts: VariantFacts[];
  /** Objects this delivery created, to remove again if the image was deleted meanwhile. */
  readonly created: Array<{ readonly file: File; readonly generation: string }>;
  written: number;
  omitted: number;
  /** The early record of the first finished variant, when this job makes one (awaited before the fan-in). */
  early?: Promise<void>;
}

/**
 * Writes a variant object unless one rendered from the same generation of the original is there
 * (another delivery of the dispatch wrote it: it is reused). An object rendered from another
 * generation is a leftover of the image before a delete (a writer that died after the purge),
 * which a purge or the orphan sweep may be deleting by its generation right now: it is replaced
 * by a new generation, never reused.
 */
async function writeVariantObject(
  job: JobMessage,
  file: File,
  data: Buffer,
  options: Parameters<typeof createIfAbsent>[2],
): Promise<Awaited<ReturnType<typeof createIfAbsent>>> {
  let ifGenerationMatch: string | number = 0;
  for (let attempt = 0; attempt < 3; attempt++) {
    const result = await createIfAbsent(file, data, { ...options, ifGenerationMatch });
    if (result.created) return result;
    const seen = await metadataOrUndefined(file);
    if (seen && seen.metadata?.[VARIANT_METADATA.sourceGeneration] === job.original.generation) return result;
    ifGenerationMatch = seen?.generation ?? 0;
  }
  throw transient('storage_unavailable', `${file.name} kept changing while being written; retrying.`);
}

/** Writes one rendered variant (or records it as left out) and returns its facts. */
async function writeVariant(
  deps: PipelineDeps,
  job: JobMessage,
  variant: RenderedVariant,
  originalBytes: number,
  cpuMs: number,
  made: Made,
): Promise<void> {
  const spec = {
    width: variant.width,
    format: variant.format,
    ...(variant.aspect ? { aspect: variant.aspect } : {}),
    ...(variant.animated ? { animated: variant.animated } : {}),
  };
  if (omitAsLarger(spec, variant.data.length, originalBytes, job.plan)) {
    // Not written: the original serves better. The document records the omission for the fan-in.
    made.facts.push({
      name: omittedNameOf(job.imageId, spec),
      width: variant.width,
      height: variant.height,
      bytes: variant.data.length,
      cpuMs,
      omitted: LARGER_THAN_ORIGINAL,
    });
    made.omitted++;
    return;
  }
  const file = deps.storage.bucket(deps.config.IMAGES_BUCKET).file(nameOf(job.imageId, spec));
  const result = await writeVariantObject(job, file, variant.data, {
    contentType: variant.contentType,
    cacheControl: VARIANT_CACHE_CONTROL,
    metadata: {
      [VARIANT_METADATA.width]: String(variant.width),
      [VARIANT_METADATA.height]: String(variant.height),
      [VARIANT_METADATA.sourceGeneration]: job.original.generation,
      [VARIANT_METADATA.cpuMs]: String(cpuMs),
      [VARIANT_METADATA.quality]: String(variant.quality),
      ...(variant.crop ? { [VARIANT_METADATA.crop]: cropMetadata(variant.crop) } : {}),
      ...(variant.placeholder ? { [VARIANT_METADATA.placeholder]: placeholderMetadata(variant.placeholder) } : {}),
    },
  });
  if (result.created) {
    made.written++;
    if (result.generation) made.created.push({ file, generation: result.generation });
    made.facts.push({
      name: file.name,
      width: variant.width,
      height: variant.height,
      bytes: variant.data.length,
      cpuMs,
      quality: variant.quality,
      ...(variant.crop ? { crop: variant.crop } : {}),
      ...(variant.placeholder ? { placeholder: variant.placeholder } : {}),
    });
    return;
  }
  // Another delivery wrote it first: its object's facts are the ones that stand.
  const metadata = await metadataOrUndefined(file);
  const facts = metadata && factsOfObject(file.name, metadata);
  if (!facts)
    throw transient('storage_unavailable', `${file.name} exists but its metadata could not be read; retrying.`);
  made.facts.push(facts);
}

/** Per-job bookkeeping for the `job.done` line. */
interface JobRun {
  readonly deps: PipelineDeps;
  readonly job: JobMessage;
  readonly writer: string;
  readonly log: PipelineDeps['log'];
  readonly started: number;
  readonly cpuStart: NodeJS.CpuUsage;
  readonly timings: StageTiming[];
  readonly searches: QualitySearch[];
}

function doneFields(run: JobRun) {
  return {
    [DONE.durationMs]: Math.round(performance.now() - run.started),
    [DONE.cpuMs]: cpuMsSince(run.cpuStart),
    [DONE.stages]: stageFields(run.timings),
    ...(run.searches.length > 0 ? { qualitySearch: qualitySearchFields(run.searches) } : {}),
  };
}

/**
 * Records a finished variant in the document at once (recordEarlyVariant), while the job renders
 * on: one transaction, so the status answer lists something to show long before the job ends,
 * and with PREVIEW_EVENT `image.preview` published from the outbox. A failure costs only that
 * head start: the job's fan-in records the variant again, and a queued event stays due.
 */
async function recordEarly(run: JobRun, facts: VariantFacts): Promise<void> {
  const { deps, job, log, writer } = run;
  const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));
  const early = recordEarlyVariant(job.dispatch, facts, writer, stateSettingsOf(deps.config));
  const result = await transactImage(deps, job.imageId, early).catch((error: unknown) => {
    log.warn('first variant not recorded early; the fan-in records it', {
      event: 'job.early',
      variant: facts.name,
      reason: reason(error),
    });
  });
  if (!result) return;
  log.debug('first variant recorded early', { event: 'job.early', result: result.kind, variant: facts.name });
  if (result.outbox)
    await drainOutbox(deps, job.imageId, writer, result.outbox).catch((error: unknown) =>
      log.warn('image.preview not published yet; it stays due in the outbox', { reason: reason(error) }),
    );
}

/** Downloads the original (unless given its bytes) and renders the variants to make, writing each as it is encoded. */
async function renderAndWrite(
  run: JobRun,
  needed: readonly VariantSpec[],
  made: Made,
  recordFirst: boolean,
  bytes: Buffer | undefined,
): Promise<'done' | 'original-missing'> {
  const { deps, job } = run;
  const source = deps.storage
    .bucket(job.original.bucket)
    .file(job.original.name, { generation: Number(job.original.generation) });
  const original = bytes ?? (await downloadOrUndefined(source));
  if (!original) return 'original-missing';
  let cpuMark = run.cpuStart;
  await renderVariants(
    original,
    needed,
    {
      encoders: encoderSettingsFromConfig(deps.config),
      keepMetadata: deps.config.KEEP_METADATA,
      limitInputPixels: deps.config.MAX_INPUT_PIXELS,
      maxFrames: deps.config.MAX_INPUT_FRAMES,
      // Real time, not deps.now(): the budget bounds work done, and decode/encode check it on Date.now().
      deadline: Date.now() + deps.config.JOB_TIME_BUDGET_SECONDS * 1000,
      timings: run.timings,
      crops: job.info.crops,
      placeholderFor: placeholderVariantOf(job.plan),
      preview: deps.config.PREVIEW !== 'off' ? previewVariantOf(job.plan) : undefined,
      autoQuality: autoQualityFromConfig(deps.config, run.searches),
    },
    async (variant) => {
      const cpuMs = cpuMsSince(cpuMark);
      cpuMark = process.cpuUsage();
      await writeVariant(deps, job, variant, original.length, cpuMs, made);
      const first = made.facts.at(-1);
      if (recordFirst && !made.early && first && !first.omitted) made.early = recordEarly(run, first);
    },
  );
  return 'done';
}

/** Records the job's failure (fenced to its dispatch) and publishes `image.failed` if it was this one's. */
async function failJob(run: JobRun, error: PipelineError): Promise<void> {
  const { deps, job, writer } = run;
  const settings = stateSettingsOf(deps.config);
  const failure = { code: error.code, message: error.message, retryable: isRetryable(error) };
  const outcome = await transactImage(deps, job.imageId, failImage(job.dispatch, failure, writer, settings));
  deps.log.warn('image failed', {
    event: METRIC_LINES.imageFailed.event,
    imageId: job.imageId,
    [METRIC_LINES.imageFailed.code]: error.code,
    reason: error.message,
    retryable: failure.retryable,
    writer,
    [METRIC_LINES.imageFailed.recorded]: outcome.kind === 'failed',
  });
  if (outcome.kind === 'failed' && outcome.outbox) await drainOutbox(deps, job.imageId, writer, outcome.outbox);
}

function isRetryable(error: PipelineError): boolean {
  return error.code === 'time_budget_exceeded' || error.kind === 'transient';
}

/**
 * A job that is not its image's current dispatch changes nothing; if the image's outcome is
 * decided but its event still waits (its writer died after the transaction), the job publishes
 * it before it acknowledges, so a redelivery never leaves an event to cleanup.
 */
async function skipStale(run: JobRun, doc: ImageDoc | undefined): Promise<JobResult> {
  const { deps, job, writer, log } = run;
  // A lease another delivery holds ('busy') is left to it, or to cleanup once it expires.
  if (doc?.events.some((e) => !e.published)) await drainOutbox(deps, job.imageId, writer);
  log.info(doc ? 'job not current; skipped' : 'image unknown; job skipped', {
    event: 'job.skip',
    status: doc?.status ?? 'unknown',
    dispatch: job.dispatch,
    ...(doc ? { current: doc.dispatch } : {}),
  });
  return { outcome: 'already-finished', written: 0, omitted: 0, skipped: job.variants.length, manifestWritten: false };
}

/**
 * Runs a job. Returns normally when the job is done or failed for good (the caller acks);
 * throws a transient error when a retry can help (the caller lets Pub/Sub redeliver).
 * `bytes`: the original's, of `job.original`'s generation, when the caller holds them (dispatch.ts).
 */
export async function runJob(deps: PipelineDeps, job: JobMessage, bytes?: Buffer): Promise<JobResult> {
  const run: JobRun = {
    deps,
    job,
    // Each delivery holds the outbox on its own: two duplicates of a job never share a lease.
    writer: `${jobWriter(job)}:${randomUUID().slice(0, 8)}`,
    log: deps.log.child({ imageId: job.imageId, job: `${job.job.index + 1}/${job.job.count}` }),
    started: performance.now(),
    cpuStart: process.cpuUsage(),
    timings: [],
    searches: [],
  };
  const doc = await readImage(deps, job.imageId);
  if (!isCurrentDispatch(doc, job.dispatch)) return skipStale(run, doc);

  const needed = variantsToMake(job, doc);
  const made: Made = { facts: [], created: [], written: 0, omitted: 0 };
  // One early record per image (the first job's), and only where a page has nothing yet: a
  // first result, not an update, and a job with more than the one variant its fan-in records.
  const recordFirst = job.job.index === 0 && doc.status === 'processing' && needed.length > 1;
  if (needed.length > 0) {
    try {
      if ((await renderAndWrite(run, needed, made, recordFirst, bytes)) === 'original-missing') {
        // Retryable: the bytes are not the problem, and re-submitting them stores a new original.
        await failJob(
          run,
          transient('original_missing', 'The original image is gone; upload the same file again to retry.'),
        );
        return { outcome: 'failed', written: 0, omitted: 0, skipped: 0, manifestWritten: false };
      }
    } catch (error) {
      // Settled before the job ends either way: no transaction outlives its invocation.
      await made.early;
      if (!(error instanceof PipelineError && classifyError(error) === 'permanent')) throw error;
      await failJob(run, error);
      return { outcome: 'failed', written: made.written, omitted: made.omitted, skipped: 0, manifestWritten: false };
    }
  }
  await made.early;
  const skipped = job.variants.length - made.written - made.omitted;
  const finish = await transactImage(
    deps,
    job.imageId,
    finishJob(
      { dispatch: job.dispatch, index: job.job.index, count: job.job.count },
      made.facts,
      manifestFor(job, publicBaseUrl(deps.config)),
      run.writer,
      stateSettingsOf(deps.config),
    ),
  );
  const counts = { written: made.written, omitted: made.omitted, skipped };
  if (finish.kind === 'stale') {
    // Deleted while the job ran: what it wrote after the delete's purge goes too (cleanup's
    // purge looks again later, in case this instance dies first).
    if (finish.status === 'deleted')
      for (const { file, generation } of made.created) await deleteIfPresent(file, generation);
    run.log.info('image moved on while the job ran; nothing recorded', {
      event: 'job.stale',
      status: finish.status,
      ...counts,
    });
    return { outcome: 'already-finished', ...counts, manifestWritten: false };
  }
  if (finish.kind === 'partial') {
    if (finish.outbox) await drainOutbox(deps, job.imageId, run.writer, finish.outbox);
    run.log.info('job done; other jobs still running', { event: DONE.event, ...counts, ...doneFields(run) });
    return { outcome: 'partial', ...counts, manifestWritten: false, facts: made.facts };
  }
  run.log.info(finish.kind === 'updated' ? 'image updated' : 'image ready', {
    event: DONE.event,
    ...counts,
    manifest: 'created',
    ...doneFields(run),
  });
  if (finish.outbox) await drainOutbox(deps, job.imageId, run.writer, finish.outbox);
  return { outcome: 'completed', ...counts, manifestWritten: true, facts: made.facts };
}
