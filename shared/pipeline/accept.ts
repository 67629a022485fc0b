/**
 * Accepting an image into the pipeline, shared by `upload` (bytes in a request) and `ingest`
 * (an object under `incoming/`): probe, name by content, claim the image in its document
 * (state/transitions.ts claimForAccept) together with the owner's asset of it (state/assets.ts),
 * store the original, dispatch. The same bytes offered twice are processed once, whoever offers
 * them: a finished image answers with its manifest, one in flight with its plan.
 */
import type { File } from '@google-cloud/storage';
import type { PipelineDeps } from '../cloud/deps.js';
import { chooseCrops, type Focus } from '../image/crop.js';
import { dispatchImage } from './dispatch.js';
import { isPreconditionFailed, transient } from '../core/errors.js';
import type { FailureRecord, Manifest, OriginalInfo, OriginalRef, VariantSpec } from '../core/schemas.js';
import { imageIdOf, ORIGINAL_METADATA, originalName } from '../core/naming.js';
import { createIfAbsent, deleteIfPresent, guardStorage, metadataOrUndefined } from '../cloud/objects.js';
import { planVariants } from '../image/plan.js';
import { probeImage, probeLimitsFromConfig } from '../image/probe.js';
import { animationFrames } from '../image/animation.js';
import { recipeOf } from '../core/recipe.js';
import { readImage, transactImage } from '../state/image-doc.js';
import {
  type AcceptDecision,
  type AcceptFacts,
  claimForAccept,
  recordOriginal,
  releaseClaim,
} from '../state/transitions.js';
import { currentTrace, formatTraceparent } from '../cloud/trace.js';
import type { OwnerKey } from '../auth/principal.js';
import { quotas } from '../auth/settings.js';
import type { Config } from '../core/config.js';
import { type AssetClaim, transactAsset } from '../state/assets.js';
import type { Transition } from '../state/image-doc.js';
import { isCurrentDispatch } from '../state/policy.js';
import { announcerOf } from '../state/upload-events.js';
import { drainOrDefer } from '../state/outbox.js';
import type { UploadMetadata } from '../core/metadata.js';
import type { ImageDoc } from '../state/image-doc.js';
import { randomUUID } from 'node:crypto';
import type { FinishedVariant } from '../http/api-schemas.js';
import { publicBaseUrl } from '../core/config.js';
import { finishedVariants } from './status.js';

/** Where an accepted image stands. */
type ImageOutcome =
  | {
      readonly state: 'processing';
      readonly id: string;
      readonly variants: VariantSpec[];
      readonly dispatched: boolean;
      /** False while another caller's claim has not stored the original yet (it may be copying from the caller's source). */
      readonly stored: boolean;
      /** The preview, written and recorded before the answer (PREVIEW=inline, dispatch.ts). */
      readonly preview?: FinishedVariant;
    }
  | { readonly state: 'ready'; readonly id: string; readonly manifest: Manifest }
  | { readonly state: 'failed'; readonly id: string; readonly record: FailureRecord };

/** What happened to an accepted image (`id`: the image's id) and the owner's asset of it. */
export type AcceptOutcome = ImageOutcome & { readonly assetId: string };

/** An image offered to the pipeline. */
export interface AcceptInput {
  readonly bytes: Buffer;
  /** Whose asset the upload is (shared/auth/principal.ts ownerOf; ingest: the ticket's owner, else SERVICE_OWNER). */
  readonly owner: OwnerKey;
  /**
   * Charge the owner's quotas when the upload makes a new asset; false when they were charged
   * already (a signed URL's ticket, when it was minted).
   */
  readonly chargeQuota: boolean;
  /** Sanitised original file name, kept on the asset (never in public metadata). */
  readonly filename?: string;
  /** The app's metadata (core/metadata.ts), kept on the asset and carried by the upload's events. */
  readonly metadata?: UploadMetadata;
  /** Who offered it, e.g. `upload` or `incoming/photo.jpg`. */
  readonly source: string;
  /** The uploader's focal point for aspect crops (overrides CROP_STRATEGY). */
  readonly focus?: Focus;
  /** Copy this object server-side instead of uploading the bytes again (ingest). */
  readonly copyFrom?: { readonly file: File; readonly generation: string };
  /** When the image reached us (ISO time; ingest: the incoming object's creation); default now. */
  readonly acceptedAt?: string;
}

/** How many times accept claims again when a delete or another claim moved the image on meanwhile. */
const CLAIM_ATTEMPTS = 3;

/**
 * Stores the original as a new generation (never reusing an object that may be on its way out:
 * every delete of an original is matched to the generation its document recorded).
 */
async function storeOriginal(
  deps: PipelineDeps,
  input: AcceptInput,
  id: string,
  info: OriginalInfo,
  acceptedAt: string,
  stillClaimed: () => Promise<boolean>,
): Promise<OriginalRef | undefined> {
  const file = deps.storage.bucket(deps.config.UPLOADS_BUCKET).file(originalName(id));
  const metadata: Record<string, string> = {
    [ORIGINAL_METADATA.imageId]: id,
    [ORIGINAL_METADATA.format]: info.format,
    [ORIGINAL_METADATA.width]: String(info.width),
    [ORIGINAL_METADATA.height]: String(info.height),
    [ORIGINAL_METADATA.source]: input.source,
    [ORIGINAL_METADATA.acceptedAt]: acceptedAt,
  };
  let generation: unknown;
  if (!input.copyFrom) {
    // Conditional writes (create, else replace the generation seen) so the client may retry them.
    let ifGenerationMatch: string | number = 0;
    for (let attempt = 0; generation === undefined; attempt++) {
      if (attempt === 5) throw transient('storage_unavailable', `${file.name} kept changing while being stored.`);
      const result = await createIfAbsent(file, input.bytes, {
        contentType: info.contentType,
        metadata,
        ifGenerationMatch,
      });
      if (result.created) generation = result.generation;
      else {
        ifGenerationMatch = (await metadataOrUndefined(file))?.generation ?? 0;
        // Replacing a generation destroys it (no versioning): only while this claim is still the
        // image's current one. A newer claim is made before its writer stores, so a generation
        // seen before this read that a newer dispatch records makes this read say no.
        if (ifGenerationMatch !== 0 && !(await stillClaimed())) return undefined;
      }
    }
  } else {
    const source = input.copyFrom.file.bucket.file(input.copyFrom.file.name, {
      generation: Number(input.copyFrom.generation),
    });
    // As above: create, else replace the generation seen, and only while still claimed.
    for (let attempt = 0; generation === undefined; attempt++) {
      if (attempt === 5) throw transient('storage_unavailable', `${file.name} kept changing while being stored.`);
      const seen = (await metadataOrUndefined(file))?.generation ?? 0;
      if (seen !== 0 && !(await stillClaimed())) return undefined;
      try {
        const [, response] = await guardStorage(`copy ${source.name} to ${file.name}`, () =>
          source.copy(file, {
            contentType: info.contentType,
            metadata,
            preconditionOpts: { ifGenerationMatch: Number(seen) },
          }),
        );
        // The rewrite response carries the new object's resource; the File object is not updated.
        generation = (response as { resource?: { generation?: string | number } } | undefined)?.resource?.generation;
        if (generation === undefined) throw new Error(`copying to ${file.name} returned no generation`);
      } catch (error) {
        if (!isPreconditionFailed(error)) throw error;
      }
    }
  }
  if (generation === undefined) throw new Error(`writing ${file.name} returned no generation`);
  return { bucket: file.bucket.name, name: file.name, generation: String(generation) };
}

/** The answer for an image that needs no claim. */
function answerOf(
  id: string,
  decision: Exclude<AcceptDecision, { kind: 'claimed' }>,
  plan: VariantSpec[],
): ImageOutcome {
  if (decision.kind === 'deleting')
    throw transient('unavailable', 'This image is being deleted right now; upload it again in a moment.');
  if (decision.kind === 'ready') return { state: 'ready', id, manifest: decision.manifest };
  if (decision.kind === 'failed') return { state: 'failed', id, record: decision.failure };
  return { state: 'processing', id, variants: plan, dispatched: false, stored: decision.stored };
}

/** The focus that is part of the image's identity: only when it changes what is made (ASPECTS set). */
export function identityFocus(focus: Focus | undefined, config: Pick<Config, 'ASPECTS'>): Focus | undefined {
  if (!focus || config.ASPECTS.length === 0) return undefined;
  // Rounded as imageIdOf rounds it, so the crops are made from the focus the id names.
  const round = (value: number) => Number(value.toFixed(4));
  return { x: round(focus.x), y: round(focus.y) };
}

/** An image the early read found finished or in flight; `claim` when it must be claimed after all. */
type Early = Exclude<AcceptDecision, { kind: 'claimed' }> | { readonly kind: 'claim' };

/**
 * Probes the bytes (limits before any decode), claims the image and the owner's asset of it (and
 * charges the owner's quota for a new asset) in one transaction, stores the original and
 * publishes its jobs. Throws permanent errors for bad images and exceeded quotas, transient ones
 * for storage, Firestore or Pub/Sub trouble; a claim left undispatched is dispatched by the next
 * identical upload or by cleanup.
 */
export async function acceptImage(deps: PipelineDeps, input: AcceptInput): Promise<AcceptOutcome> {
  const acceptedAt = input.acceptedAt ?? deps.now().toISOString();
  const probe = await probeImage(input.bytes, probeLimitsFromConfig(deps.config, input.copyFrom ? 'ingest' : 'upload'));
  const keyFocus = identityFocus(input.focus, deps.config);
  const id = imageIdOf(input.bytes, keyFocus);
  const log = deps.log.child({ imageId: id });
  const trace = currentTrace();
  const holder = `accept:${randomUUID()}`;
  const baseInfo: OriginalInfo = {
    format: probe.format,
    width: probe.width,
    height: probe.height,
    bytes: input.bytes.length,
    contentType: probe.contentType,
    ...(animationFrames(probe) ? { frames: probe.frames } : {}),
  };
  const factsFor = (info: OriginalInfo): AcceptFacts => ({
    id,
    info,
    source: input.source,
    acceptedAt: new Date(acceptedAt),
    traceparent: trace ? formatTraceparent(trace) : undefined,
    recipe: recipeOf(deps.config).hash,
    plannedVariants: planVariants(info, deps.config).length,
  });
  const asset: AssetClaim = {
    owner: input.owner,
    imageId: id,
    filename: input.filename,
    focus: input.focus,
    source: input.source,
    bytes: input.bytes.length,
    chargeQuota: input.chargeQuota,
    quotas: quotas(deps.config),
    metadata: input.metadata,
    announcer: announcerOf(deps.config, holder),
  };
  const known = (decision: Early) => decision.kind !== 'claim' && decision.kind !== 'deleting';
  const answered = async (
    decision: Exclude<Early, { kind: 'claim' }>,
    assetId: string,
    info: OriginalInfo,
    outbox: ImageDoc | undefined,
  ) => {
    log.info('image already known', { event: 'accept', state: decision.kind, source: input.source, assetId });
    // A new upload of a made image: its own upload.ready (or .failed) waits in the outbox.
    if (outbox) await drainOrDefer(deps, id, holder, outbox);
    const plan = planVariants(decision.kind === 'in-flight' ? decision.info : info, deps.config);
    return { ...answerOf(id, decision, plan), assetId };
  };

  // A finished or in-flight image answers from a plain read, before crops are chosen; the
  // owner's asset of it is then made in a transaction that claims nothing.
  const seen = await readImage(deps, id);
  if (seen && claimForAccept(factsFor(baseInfo))(seen, deps.now()).result.kind !== 'claimed') {
    const peek: Transition<Early> = (doc, now) => {
      const { result } = claimForAccept(factsFor(baseInfo))(doc, now);
      return { result: result.kind === 'claimed' ? { kind: 'claim' } : result };
    };
    const early = await transactAsset(deps, asset, peek, known);
    if (early.result.kind !== 'claim') return answered(early.result, early.assetId, baseInfo, early.outbox);
  }
  // Aspect crops are chosen here, once per image, so every job of the fan-out agrees (crop.ts).
  const crops = await chooseCrops(input.bytes, probe, {
    aspects: deps.config.ASPECTS,
    strategy: deps.config.CROP_STRATEGY,
    focus: keyFocus ?? input.focus,
    limitInputPixels: deps.config.MAX_INPUT_PIXELS,
  });
  const info: OriginalInfo = { ...baseInfo, ...(crops ? { crops } : {}) };

  for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
    const claim = await transactAsset(deps, asset, claimForAccept(factsFor(info)), (d) => d.kind !== 'deleting');
    const decision = claim.result;
    const assetId = claim.assetId;
    if (decision.kind !== 'claimed') return answered(decision, assetId, info, claim.outbox);
    let original = decision.original;
    if (!original) {
      try {
        original = await storeOriginal(deps, input, id, decision.info, acceptedAt, async () =>
          isCurrentDispatch(await readImage(deps, id), decision.dispatch),
        );
      } catch (error) {
        // The claim goes back at once, so the client's retry claims again instead of waiting for cleanup.
        await transactImage(deps, id, releaseClaim(decision.dispatch)).catch(() => undefined);
        throw error;
      }
      // Claimed again meanwhile: this writer stored nothing, the newer claim stores its own.
      if (!original) continue;
      if ((await transactImage(deps, id, recordOriginal(decision.dispatch, original))) === 'fenced') {
        // Deleted (or claimed again) while the bytes were being stored: they are not this image's now.
        await deleteIfPresent(deps.storage.bucket(original.bucket).file(original.name), original.generation);
        continue;
      }
    }
    log.info(decision.update ? 'image made with another recipe; updating' : 'original stored', {
      event: decision.update ? 'accept.update' : 'accept',
      source: input.source,
      assetId,
      dispatch: decision.dispatch,
      ...(decision.retry ? { retry: decision.retry } : {}),
      ...(decision.update ? { replaces: decision.update.replaces } : {}),
      format: info.format,
      width: info.width,
      height: info.height,
      bytes: info.bytes,
    });
    const { jobs, inline } = await dispatchImage(deps, {
      id,
      original,
      info: decision.info,
      dispatch: decision.dispatch,
      replaces: decision.update?.replaces,
      acceptedAt,
      bytes: input.bytes,
    });
    if (inline?.outcome === 'failed') {
      // Job 0 ran here and failed the image for good: answer with the recorded failure, as a later status would.
      const failure = (await readImage(deps, id))?.failure;
      if (failure) return { state: 'failed', id, assetId, record: failure };
    }
    const [preview] = finishedVariants({ id, variants: [...(inline?.facts ?? [])] }, publicBaseUrl(deps.config));
    const variants = jobs[0]?.plan ?? [];
    return {
      state: 'processing',
      id,
      assetId,
      variants,
      dispatched: true,
      stored: true,
      ...(preview ? { preview } : {}),
    };
  }
  throw transient('unavailable', 'The image kept changing while being accepted; retry shortly.');
}
