/**
 * `POST /_admin/bulk`: many small objects in one request, to seed scale runs that would otherwise
 * spend minutes on uploads. Seeding, not traffic: no preconditions, no notifications. Body and
 * answer: the README's "Admin endpoint".
 */
import { badRequest } from '../api-errors.js';
import { readBody, type RequestContext } from '../http.js';
import { sendJson } from '../responses.js';
import { crc32cBase64, md5Base64 } from '../checksums.js';
import { resolveBucket, validateObjectName } from '../object-operations.js';
import type { ObjectRecord } from '../object-records.js';
import { parseJsonBody } from '../resources.js';

/** Largest bulk request body: 64 MiB (about 200,000 metadata-only objects). */
const MAX_BULK_BYTES = 64 * 1024 * 1024;

interface BulkObject {
  name: string;
  data?: string;
  contentType?: string;
  metadata?: Record<string, string>;
  timeCreated?: string;
}

function parse(body: unknown): { bucket: string; objects: BulkObject[] } {
  const { bucket, objects } = (body ?? {}) as { bucket?: unknown; objects?: unknown };
  if (typeof bucket !== 'string' || bucket === '') throw badRequest('Required: bucket', 'required');
  if (!Array.isArray(objects)) throw badRequest('Required: objects (an array)', 'required');
  for (const [index, object] of objects.entries()) {
    const o = object as Partial<BulkObject> | null;
    if (typeof o !== 'object' || o === null || typeof o.name !== 'string')
      throw badRequest(`objects[${index}].name must be a string`);
    if (o.timeCreated !== undefined && Number.isNaN(new Date(o.timeCreated).getTime()))
      throw badRequest(`objects[${index}].timeCreated is not a date`);
    if (
      o.metadata !== undefined &&
      (typeof o.metadata !== 'object' || Object.values(o.metadata).some((v) => typeof v !== 'string'))
    ) {
      throw badRequest(`objects[${index}].metadata must map strings to strings`);
    }
  }
  return { bucket, objects: objects as BulkObject[] };
}

/** Handles `POST /_admin/bulk`. */
export async function bulkCreate(ctx: RequestContext): Promise<void> {
  const { bucket, objects } = parse(parseJsonBody(await readBody(ctx.req, MAX_BULK_BYTES)));
  await resolveBucket(ctx, bucket);
  for (const object of objects) validateObjectName(object.name);
  for (const object of objects) {
    const data = Buffer.from(object.data ?? '', 'utf8');
    const time = new Date(object.timeCreated ?? Date.now()).toISOString();
    const record: ObjectRecord = {
      contentType: object.contentType ?? 'application/octet-stream',
      ...(object.metadata ? { metadata: object.metadata } : {}),
      bucket,
      name: object.name,
      generation: ctx.store.nextGeneration(),
      metageneration: 1,
      size: data.length,
      md5Hash: md5Base64(data),
      crc32c: crc32cBase64(data),
      storageClass: 'STANDARD',
      timeCreated: time,
      updated: time,
    };
    await ctx.store.withLock(bucket, object.name, () => ctx.store.putObject(record, data));
  }
  sendJson(ctx.res, 201, { created: objects.length });
}
