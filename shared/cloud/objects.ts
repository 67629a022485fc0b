/**
 * Cloud Storage operations with the pipeline's error classes: 404 and 412 come back as values
 * (`undefined`, `created: false`) because they are expected outcomes under at-least-once
 * delivery; everything else that can pass (5xx, 429, network) becomes a transient
 * `storage_unavailable` error so the caller's trigger retries.
 */
import type { Bucket, File, FileMetadata } from '@google-cloud/storage';
import {
  classifyError,
  httpStatusOf,
  isNotFound,
  isPreconditionFailed,
  PipelineError,
  transient,
} from '../core/errors.js';

/**
 * Runs a storage call; rethrows transient failures as `storage_unavailable`, and 401/403 as
 * `storage_refused` (transient too): a refusal is about permissions, which an operator fixes
 * (an IAM change, a deleted binding), never about the image, so it must not be acknowledged
 * as a permanent failure and lose the work.
 */
export async function guardStorage<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof PipelineError || isNotFound(error) || isPreconditionFailed(error)) throw error;
    const status = httpStatusOf(error);
    if (status === 401 || status === 403)
      throw transient(
        'storage_refused',
        `Cloud Storage refused access (${what}, HTTP ${status}); check the function's permissions.`,
        error,
      );
    if (classifyError(error) === 'transient')
      throw transient('storage_unavailable', `Cloud Storage is unavailable (${what}); retry later.`, error);
    throw error;
  }
}

/**
 * How long the pipeline waits for one storage call (with the client's own retries inside) before
 * treating it as failed. The client's default retry budget is 600 s; the outbox's publish start
 * limit (shared/state/outbox.ts) is built on this bound instead.
 */
export const STORAGE_CALL_DEADLINE_MS = 30_000;

/** Result of a create-if-absent write. */
export interface CreateResult {
  /** False when the object already existed (412): someone else won, which is fine. */
  readonly created: boolean;
  /** Generation of the new object, when created. */
  readonly generation?: string;
}

/** Options for {@link createIfAbsent}. */
export interface CreateOptions {
  readonly contentType: string;
  readonly cacheControl?: string;
  readonly metadata?: Record<string, string>;
  /** Replace only this generation instead of creating (default 0: only if absent). */
  readonly ifGenerationMatch?: string | number;
}

/**
 * Writes an object only if no object has that name (`ifGenerationMatch: 0`), in one
 * non-resumable request so a crash never leaves a partial object.
 */
export async function createIfAbsent(file: File, data: Buffer | string, options: CreateOptions): Promise<CreateResult> {
  try {
    await guardStorage(`write ${file.name}`, () =>
      file.save(data, {
        resumable: false,
        preconditionOpts: { ifGenerationMatch: Number(options.ifGenerationMatch ?? 0) },
        contentType: options.contentType,
        metadata: {
          contentType: options.contentType,
          ...(options.cacheControl ? { cacheControl: options.cacheControl } : {}),
          ...(options.metadata ? { metadata: options.metadata } : {}),
        },
      }),
    );
  } catch (error) {
    if (isPreconditionFailed(error)) return { created: false };
    throw error;
  }
  const generation = file.metadata.generation;
  return { created: true, ...(generation !== undefined ? { generation: String(generation) } : {}) };
}

/** An object's metadata, or undefined when it does not exist. */
export async function metadataOrUndefined(file: File): Promise<FileMetadata | undefined> {
  try {
    const [metadata] = await guardStorage(`stat ${file.name}`, () => file.getMetadata());
    return metadata;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** An object's bytes, or undefined when it (or that generation) does not exist. */
export async function downloadOrUndefined(file: File): Promise<Buffer | undefined> {
  try {
    const [bytes] = await guardStorage(`read ${file.name}`, () => file.download());
    return bytes;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * Deletes an object; a missing object or a changed generation (or metageneration, when given)
 * is not an error.
 */
export async function deleteIfPresent(
  file: File,
  ifGenerationMatch?: string | number,
  ifMetagenerationMatch?: string | number,
): Promise<boolean> {
  try {
    await guardStorage(`delete ${file.name}`, () =>
      file.delete({
        ...(ifGenerationMatch === undefined ? {} : { ifGenerationMatch: Number(ifGenerationMatch) }),
        ...(ifMetagenerationMatch === undefined ? {} : { ifMetagenerationMatch: Number(ifMetagenerationMatch) }),
      }),
    );
    return true;
  } catch (error) {
    if (isNotFound(error) || isPreconditionFailed(error)) return false;
    throw error;
  }
}

/** Every object under a prefix (all pages). For bounded listings use {@link listPage}. */
export async function listObjects(bucket: Bucket, prefix: string): Promise<File[]> {
  const [files] = await guardStorage(`list ${bucket.name}/${prefix}`, () =>
    bucket.getFiles({ prefix, autoPaginate: true }),
  );
  return files;
}

/** One page of a listing, with the token for the next one. */
export interface ListPage {
  readonly files: File[];
  readonly prefixes: string[];
  readonly nextPageToken: string | undefined;
}

/** One page of objects under a prefix (optionally with a delimiter, giving `prefixes`). */
export async function listPage(
  bucket: Bucket,
  options: { prefix?: string; delimiter?: string; matchGlob?: string; maxResults: number; pageToken?: string },
): Promise<ListPage> {
  const [files, nextQuery, apiResponse] = await guardStorage(`list ${bucket.name}/${options.prefix ?? ''}`, () =>
    bucket.getFiles({ ...options, autoPaginate: false }),
  );
  const response = (apiResponse ?? {}) as { prefixes?: string[] };
  const token = (nextQuery as { pageToken?: string } | null | undefined)?.pageToken;
  return { files, prefixes: response.prefixes ?? [], nextPageToken: token };
}
