/**
 * Seeding for the scale benches (cleanup-scale, reprocess-scale): image documents `images/{id}`
 * as the pipeline leaves them, written with Firestore batched writes (500 a batch, several
 * batches at once), and their originals as metadata-only objects through the local storage
 * server's `POST /_admin/bulk`. Jobs are never run against these originals; they are published.
 */
import { randomBytes } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import { type Config, publicBaseUrl } from '../shared/core/config.js';
import { originalName, variantName } from '../shared/core/naming.js';
import { recipeOf } from '../shared/core/recipe.js';
import type { EventMessage, OriginalInfo } from '../shared/core/schemas.js';
import { buildManifest } from '../shared/image/manifest.js';
import { planImage } from '../shared/image/plan.js';
import { jobGroups } from '../shared/image/preview.js';
import { type ImageDoc, imageDocData, imageRef } from '../shared/state/image-doc.js';

const MIN = 60_000;

/** Documents per batched write: Firestore's limit. */
export const BATCH_SIZE = 500;
/** Batched writes in flight at once. */
const PARALLEL_BATCHES = 8;

/** A random image id (32 hex digits, as naming.ts makes them). */
export function hexId(): string {
  return randomBytes(16).toString('hex');
}

/** Creates objects (metadata-only unless `data` is given) through the local storage server's `POST /_admin/bulk`. */
export async function bulkCreate(storageUrl: string, bucket: string, objects: readonly unknown[]): Promise<void> {
  for (let start = 0; start < objects.length; start += 10_000) {
    const response = await fetch(`${storageUrl}/_admin/bulk`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bucket, objects: objects.slice(start, start + 10_000) }),
    });
    if (response.status !== 201)
      throw new Error(`bulk create in ${bucket}: ${response.status} ${await response.text()}`);
  }
}

/** Writes documents in batched writes of {@link BATCH_SIZE}, {@link PARALLEL_BATCHES} at a time. */
export async function writeImageDocs(firestore: Firestore, docs: readonly ImageDoc[]): Promise<void> {
  const batches: ImageDoc[][] = [];
  for (let start = 0; start < docs.length; start += BATCH_SIZE) batches.push(docs.slice(start, start + BATCH_SIZE));
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(PARALLEL_BATCHES, batches.length) }, async () => {
      for (let i = next++; i < batches.length; i = next++) {
        const batch = firestore.batch();
        for (const doc of batches[i] ?? []) batch.set(imageRef(firestore, doc.id), imageDocData(doc));
        await batch.commit();
      }
    }),
  );
}

/** The settings a seeded image was made with. */
export type RecipeSettings = Pick<Config, 'WIDTHS' | 'FORMATS'> & Parameters<typeof recipeOf>[0];

/**
 * A ready image's document as finishJob leaves it once its `image.ready` was published: the
 * manifest of `recipe`'s plan (one byte per variant), the original kept.
 */
export function readyImageDoc(
  config: Config,
  recipe: RecipeSettings,
  id: string,
  info: OriginalInfo,
  at: Date,
): ImageDoc {
  const plan = planImage(info, recipe).variants;
  const objects = new Map(
    plan.map((v) => {
      const name = variantName(id, v.width, v.format);
      return [name, { name, bytes: 1, width: v.width, height: Math.round((v.width * info.height) / info.width) }];
    }),
  );
  const original = { bucket: config.UPLOADS_BUCKET, name: originalName(id), generation: '1' };
  const manifest = buildManifest({
    id,
    original: { ...info, ...original },
    plan,
    objects,
    baseUrl: publicBaseUrl(config),
    now: at,
  });
  const event: EventMessage = {
    v: 1,
    type: 'image.ready',
    imageId: id,
    manifest: { bucket: config.IMAGES_BUCKET, name: `${id}/manifest.json` },
    variants: manifest.variants.length,
    at: at.toISOString(),
  };
  const jobs = jobGroups(plan, info, config, false).length;
  return {
    v: 1,
    id,
    status: 'ready',
    dispatch: 1,
    jobCount: jobs,
    jobsDone: Array.from({ length: jobs }, (_, i) => i),
    redispatches: 0,
    dispatchedAt: new Date(at.getTime() - MIN),
    recipe: recipeOf(recipe).hash,
    original,
    info,
    source: 'upload',
    acceptedAt: new Date(at.getTime() - 2 * MIN),
    plannedVariants: plan.length,
    variants: plan.map((v) => ({
      name: variantName(id, v.width, v.format),
      width: v.width,
      height: objects.get(variantName(id, v.width, v.format))?.height ?? v.width,
      bytes: 1,
      cpuMs: 1,
    })),
    manifest,
    events: [{ seq: 0, event, published: true }],
    nextSeq: 1,
    createdAt: new Date(at.getTime() - 2 * MIN),
    updatedAt: at,
  };
}

/**
 * A stuck image: processing, its dispatch accepted by Pub/Sub at `dispatchedAt` and nothing since,
 * `staleAt` (dispatchedAt + REDISPATCH_AFTER_MINUTES) passed; the original stored.
 */
export function stuckImageDoc(config: Config, id: string, info: OriginalInfo, dispatchedAt: Date): ImageDoc {
  const plan = planImage(info, config).variants;
  return {
    v: 1,
    id,
    status: 'processing',
    dispatch: 1,
    jobCount: jobGroups(plan, info, config, false).length,
    jobsDone: [],
    redispatches: 0,
    dispatchedAt,
    staleAt: new Date(dispatchedAt.getTime() + config.REDISPATCH_AFTER_MINUTES * MIN),
    recipe: recipeOf(config).hash,
    original: { bucket: config.UPLOADS_BUCKET, name: originalName(id), generation: '1' },
    info,
    source: 'upload',
    acceptedAt: new Date(dispatchedAt.getTime() - MIN),
    plannedVariants: plan.length,
    variants: [],
    events: [],
    nextSeq: 0,
    createdAt: new Date(dispatchedAt.getTime() - MIN),
    updatedAt: dispatchedAt,
  };
}

/** The metadata-only original objects of `ids` (a few bytes of metadata each, as accept stores them). */
export function originalObjects(ids: readonly string[], created: Date): unknown[] {
  return ids.map((id) => ({
    name: originalName(id),
    contentType: 'image/jpeg',
    timeCreated: created.toISOString(),
    metadata: { imageId: id, format: 'jpeg' },
  }));
}
