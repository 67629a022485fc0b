/**
 * JSON API bucket routes: `/storage/v1/b` (list, insert) and `/storage/v1/b/{bucket}` (get,
 * patch, delete-if-empty). Buckets carry no IAM, ACLs, lifecycle or versioning; the resource
 * reports uniform bucket-level access so tools do not try to manage ACLs.
 */
import { badRequest } from '../api-errors.js';
import { integerParam, readBody, type RequestContext } from '../http.js';
import { sendEmpty, sendJson } from '../responses.js';
import { newBucketRecord, resolveBucket, validateBucketName } from '../object-operations.js';
import { bucketResource, parseJsonBody } from '../resources.js';

type Json = Record<string, unknown>;

function stringField(body: Json, key: string): string | undefined {
  const value = body[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw badRequest(`Invalid value for ${key}: must be a string`);
  return value;
}

function labelsField(body: Json): Record<string, string> | undefined {
  const labels = body.labels;
  if (labels === undefined || labels === null) return undefined;
  if (typeof labels !== 'object' || Array.isArray(labels))
    throw badRequest('Invalid value for labels: must be an object');
  const result: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels as Json)) {
    if (value === null) continue;
    if (typeof value !== 'string') throw badRequest(`Invalid value for labels.${key}: must be a string`);
    result[key] = value;
  }
  return result;
}

/** GET `/storage/v1/b`: every bucket (the `project` parameter is accepted and ignored). */
export function listBuckets(ctx: RequestContext): void {
  const prefix = ctx.url.searchParams.get('prefix') ?? '';
  const maxResults = Math.min(1000, Math.max(1, integerParam(ctx.url, 'maxResults', 1000)));
  const after = ctx.url.searchParams.get('pageToken');
  const matching = ctx.store.listBuckets().filter((b) => b.name.startsWith(prefix) && (!after || b.name > after));
  const page = matching.slice(0, maxResults);
  const body: Json = { kind: 'storage#buckets' };
  if (page.length > 0) body.items = page.map((b) => bucketResource(b, ctx.baseUrl));
  const last = page.at(-1);
  if (matching.length > page.length && last) body.nextPageToken = last.name;
  sendJson(ctx.res, 200, body);
}

/** POST `/storage/v1/b`: creates a bucket; 409 if it exists. */
export async function insertBucket(ctx: RequestContext): Promise<void> {
  const body = parseJsonBody(await readBody(ctx.req, 1024 * 1024));
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('Bucket insert needs a JSON body with a name', 'required');
  const name = stringField(body as Json, 'name');
  if (!name) throw badRequest('Required: name', 'required');
  validateBucketName(name);
  const fields: Parameters<typeof newBucketRecord>[1] = {};
  const location = stringField(body as Json, 'location');
  const storageClass = stringField(body as Json, 'storageClass');
  const labels = labelsField(body as Json);
  if (location) fields.location = location;
  if (storageClass) fields.storageClass = storageClass;
  if (labels) fields.labels = labels;
  const record = await ctx.store.createBucket(newBucketRecord(name, fields));
  ctx.log(`storage-server: created bucket ${name}`);
  sendJson(ctx.res, 200, bucketResource(record, ctx.baseUrl));
}

/** GET `/storage/v1/b/{bucket}`. */
export async function getBucket(ctx: RequestContext, bucket: string): Promise<void> {
  sendJson(ctx.res, 200, bucketResource(await resolveBucket(ctx, bucket), ctx.baseUrl));
}

/** PATCH/PUT `/storage/v1/b/{bucket}`: only `labels` are kept; other fields are accepted and ignored. */
export async function patchBucket(ctx: RequestContext, bucket: string): Promise<void> {
  const current = await resolveBucket(ctx, bucket);
  const body = parseJsonBody(await readBody(ctx.req, 1024 * 1024));
  const labels = typeof body === 'object' && body !== null ? labelsField(body as Json) : undefined;
  const updated = { ...current, metageneration: current.metageneration + 1, updated: new Date().toISOString() };
  if (labels !== undefined) updated.labels = labels;
  await ctx.store.updateBucket(updated);
  sendJson(ctx.res, 200, bucketResource(updated, ctx.baseUrl));
}

/** DELETE `/storage/v1/b/{bucket}`: 204, 404, or 409 when objects remain. */
export async function deleteBucket(ctx: RequestContext, bucket: string): Promise<void> {
  await ctx.store.deleteBucket(bucket);
  ctx.log(`storage-server: deleted bucket ${bucket}`);
  sendEmpty(ctx.res, 204);
}
