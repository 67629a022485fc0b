/**
 * The object operations shared by several routes: finding (or auto-creating) a bucket,
 * validating names, committing a new generation (uploads, copies, composes, signed PUTs), moving
 * an object, and finding the object a read names.
 */
import { crc32cBase64, md5Base64, verifyClaimedHashes, type ClaimedHashes } from './checksums.js';
import { StorageApiError, badRequest, noSuchObject } from './api-errors.js';
import type { RequestContext } from './http.js';
import { checkPreconditions, parsePreconditions, type Preconditions } from './preconditions.js';
import type { BucketRecord, ObjectRecord, WritableObjectFields } from './object-records.js';
import { writableFieldsOf } from './resources.js';
import { compareNames } from './store.js';

/** Bucket names as Cloud Storage accepts them (dotted names may be up to 222 characters). */
const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$/;

/** 400 unless `name` is a valid bucket name. */
export function validateBucketName(name: string): void {
  if (!BUCKET_NAME.test(name) || name.includes('..') || (!name.includes('.') && name.length > 63)) {
    throw new StorageApiError(400, `Invalid bucket name: ${JSON.stringify(name)}`, 'invalid');
  }
}

/** A new bucket record with today's timestamps. */
export function newBucketRecord(
  name: string,
  fields: { location?: string; storageClass?: string; labels?: Record<string, string> } = {},
): BucketRecord {
  const now = new Date().toISOString();
  const record: BucketRecord = {
    name,
    timeCreated: now,
    updated: now,
    metageneration: 1,
    location: (fields.location ?? 'US').toUpperCase(),
    storageClass: (fields.storageClass ?? 'STANDARD').toUpperCase(),
  };
  if (fields.labels) record.labels = fields.labels;
  return record;
}

/** The bucket named in a route; created on the spot with `--auto-create-buckets`, else 404. */
export async function resolveBucket(ctx: RequestContext, name: string): Promise<BucketRecord> {
  const existing = ctx.store.getBucket(name);
  if (existing) return existing;
  if (ctx.autoCreateBuckets) {
    validateBucketName(name);
    try {
      const record = await ctx.store.createBucket(newBucketRecord(name));
      ctx.log(`storage-server: auto-created bucket ${name}`);
      return record;
    } catch (error) {
      // Another request created it first.
      const raced = ctx.store.getBucket(name);
      if (raced) return raced;
      throw error;
    }
  }
  return ctx.store.requireBucket(name);
}

/** 400 unless `name` is a valid object name: 1-1024 UTF-8 bytes, no CR/LF, not `.` or `..`. */
export function validateObjectName(name: string): void {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes === 0 || bytes > 1024)
    throw badRequest(`Object names must be 1 to 1024 bytes of UTF-8; this one is ${bytes}`);
  if (/[\r\n]/.test(name)) throw badRequest('Object names must not contain carriage returns or line feeds');
  if (name === '.' || name === '..') throw badRequest('Object names must not be "." or ".."');
}

/** What a new generation is made of. */
export interface NewGeneration {
  bucket: string;
  name: string;
  data: Buffer;
  fields: WritableObjectFields;
  preconditions: Preconditions;
  /** Checksums the client sent (X-Goog-Hash or metadata); a mismatch is a 400. */
  claimed?: ClaimedHashes;
  /** Composed objects have a component count and, as in Cloud Storage, no MD5. */
  componentCount?: number;
}

/** The checksums of a new generation's bytes, computed before any lock is taken. */
interface Hashed {
  crc32c: string;
  md5Hash: string;
}

/** Validates the name, finds the bucket, and checks the client's claimed checksums. */
async function prepareNewGeneration(ctx: RequestContext, input: NewGeneration): Promise<Hashed> {
  validateObjectName(input.name);
  await resolveBucket(ctx, input.bucket);
  const hashes = { crc32c: crc32cBase64(input.data), md5Hash: md5Base64(input.data) };
  verifyClaimedHashes(input.claimed ?? {}, hashes);
  return hashes;
}

/**
 * Checks preconditions against the live object and stores the new generation. The caller holds
 * the name's lock; returns the new record and the one it replaced.
 */
async function commitLocked(
  ctx: RequestContext,
  input: NewGeneration,
  hashes: Hashed,
): Promise<{ record: ObjectRecord; previous: ObjectRecord | undefined }> {
  const previous = ctx.store.getObject(input.bucket, input.name);
  checkPreconditions(previous, input.preconditions, 'write');
  const now = new Date().toISOString();
  const record: ObjectRecord = {
    ...input.fields,
    contentType: input.fields.contentType ?? 'application/octet-stream',
    bucket: input.bucket,
    name: input.name,
    generation: ctx.store.nextGeneration(),
    metageneration: 1,
    size: input.data.length,
    crc32c: hashes.crc32c,
    storageClass: 'STANDARD',
    timeCreated: now,
    updated: now,
  };
  if (input.componentCount === undefined) record.md5Hash = hashes.md5Hash;
  else record.componentCount = input.componentCount;
  await ctx.store.putObject(record, input.data);
  return { record, previous };
}

/** Announces a new generation: `deleted` for the one it replaced, then `finalized`. */
function announce(ctx: RequestContext, record: ObjectRecord, previous: ObjectRecord | undefined): void {
  if (previous) ctx.notifier.emit('delete', previous, ctx.baseUrl);
  ctx.notifier.emit('finalize', record, ctx.baseUrl);
}

/**
 * Validates and stores a new generation, then announces it. Preconditions are checked under the
 * name's lock, against whatever is live at that moment: of two concurrent `ifGenerationMatch=0`
 * writers exactly one wins, the other gets 412.
 */
export async function commitNewGeneration(ctx: RequestContext, input: NewGeneration): Promise<ObjectRecord> {
  const hashes = await prepareNewGeneration(ctx, input);
  const { record, previous } = await ctx.store.withLock(input.bucket, input.name, () =>
    commitLocked(ctx, input, hashes),
  );
  announce(ctx, record, previous);
  return record;
}

/**
 * Moves an object within a bucket as one step: both names are locked (in a fixed order, so two
 * opposite moves cannot deadlock), the source's preconditions and the destination's are checked,
 * the destination is written and the source removed.
 */
export async function moveObject(
  ctx: RequestContext,
  source: { bucket: string; name: string; preconditions: Preconditions },
  destination: Omit<NewGeneration, 'data' | 'fields' | 'bucket'>,
): Promise<ObjectRecord> {
  const bucket = source.bucket;
  validateObjectName(destination.name);
  if (destination.name === source.name) throw badRequest('Source and destination object names must differ');
  const [first, second] = [source.name, destination.name].sort(compareNames) as [string, string];
  const result = await ctx.store.withLock(bucket, first, () =>
    ctx.store.withLock(bucket, second, async () => {
      const current = ctx.store.getObject(bucket, source.name);
      if (!current) throw noSuchObject(bucket, source.name);
      checkPreconditions(current, source.preconditions, 'write');
      const data = await ctx.store.readData(current);
      const input: NewGeneration = { ...destination, bucket, data, fields: writableFieldsOf(current) };
      const hashes = await prepareNewGeneration(ctx, input);
      const committed = await commitLocked(ctx, input, hashes);
      await ctx.store.deleteObject(current);
      return { ...committed, moved: current };
    }),
  );
  announce(ctx, result.record, result.previous);
  ctx.notifier.emit('delete', result.moved, ctx.baseUrl);
  return result.record;
}

/**
 * The live object named by a read, honouring `generation=` (only the live generation is kept:
 * any other is 404) and the read preconditions.
 */
export function findObjectForRead(ctx: RequestContext, bucket: string, name: string): ObjectRecord {
  // Arguments are validated before existence, as Cloud Storage does: a bad value is 400 even
  // for a missing object.
  const preconditions = parsePreconditions(ctx.url.searchParams);
  ctx.store.requireBucket(bucket);
  const record = ctx.store.getObject(bucket, name);
  if (!record) throw noSuchObject(bucket, name);
  const generation = ctx.url.searchParams.get('generation');
  if (generation !== null && generation !== '') {
    if (!/^\d+$/.test(generation))
      throw badRequest(`Invalid argument for parameter generation: ${JSON.stringify(generation)}`, 'invalidParameter');
    if (BigInt(generation) !== BigInt(record.generation)) throw noSuchObject(bucket, name);
  }
  checkPreconditions(record, preconditions, 'read');
  return record;
}
