/**
 * JSON API resources rendered from records, and client-supplied metadata validated into
 * records. Field names and types follow https://cloud.google.com/storage/docs/json_api/v1/objects:
 * int64 values (`generation`, `metageneration`, `size`) are strings, checksums are base64.
 */
import { badRequest } from './api-errors.js';
import {
  WRITABLE_STRING_FIELDS,
  type BucketRecord,
  type ObjectRecord,
  type WritableObjectFields,
} from './object-records.js';

/** Object names are URL path segments in every route; `/` must be escaped as Cloud Storage does. */
export const encodeName = (name: string): string => encodeURIComponent(name);

/** Cloud Storage's etag is opaque; this one changes whenever generation or metageneration does. */
function etag(record: ObjectRecord): string {
  return Buffer.from(`${record.generation}/${record.metageneration}`).toString('base64');
}

/** The object resource, as `objects.get` returns it. `baseUrl` is what the client called. */
export function objectResource(record: ObjectRecord, baseUrl: string): Record<string, unknown> {
  const path = `b/${encodeName(record.bucket)}/o/${encodeName(record.name)}`;
  const resource: Record<string, unknown> = {
    kind: 'storage#object',
    id: `${record.bucket}/${record.name}/${record.generation}`,
    selfLink: `${baseUrl}/storage/v1/${path}`,
    mediaLink: `${baseUrl}/download/storage/v1/${path}?generation=${record.generation}&alt=media`,
    name: record.name,
    bucket: record.bucket,
    generation: record.generation,
    metageneration: String(record.metageneration),
    contentType: record.contentType ?? 'application/octet-stream',
    storageClass: record.storageClass,
    size: String(record.size),
    crc32c: record.crc32c,
    etag: etag(record),
    timeCreated: record.timeCreated,
    updated: record.updated,
    timeStorageClassUpdated: record.timeCreated,
    timeFinalized: record.timeCreated,
  };
  if (record.md5Hash !== undefined) resource.md5Hash = record.md5Hash;
  for (const field of WRITABLE_STRING_FIELDS) {
    if (field !== 'contentType' && record[field] !== undefined) resource[field] = record[field];
  }
  if (record.metadata && Object.keys(record.metadata).length > 0) resource.metadata = { ...record.metadata };
  if (record.componentCount !== undefined) resource.componentCount = record.componentCount;
  return resource;
}

/** The bucket resource, as `buckets.get` returns it. */
export function bucketResource(record: BucketRecord, baseUrl: string): Record<string, unknown> {
  const resource: Record<string, unknown> = {
    kind: 'storage#bucket',
    id: record.name,
    selfLink: `${baseUrl}/storage/v1/b/${encodeName(record.name)}`,
    projectNumber: '0',
    name: record.name,
    timeCreated: record.timeCreated,
    updated: record.updated,
    metageneration: String(record.metageneration),
    iamConfiguration: {
      bucketPolicyOnly: { enabled: true },
      uniformBucketLevelAccess: { enabled: true },
      publicAccessPrevention: 'inherited',
    },
    location: record.location,
    locationType: 'multi-region',
    storageClass: record.storageClass,
    etag: Buffer.from(`${record.name}/${record.metageneration}`).toString('base64'),
    rpo: 'DEFAULT',
  };
  if (record.labels && Object.keys(record.labels).length > 0) resource.labels = { ...record.labels };
  return resource;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** Custom metadata values are strings; numbers and booleans are accepted and stringified. */
function metadataValue(key: string, value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw badRequest(`Invalid value for metadata.${key}: custom metadata values must be strings`);
}

/**
 * Applies a client's metadata JSON to `fields`. With `patch`, absent fields are kept, `null`
 * removes a field, and custom `metadata` keys are merged (a `null` value removes one key), as
 * `objects.patch` does; without it (uploads, `objects.update`) the result is exactly what was
 * sent. Unknown and read-only fields are ignored, as Cloud Storage ignores them.
 */
export function applyWritableFields(
  fields: WritableObjectFields,
  body: unknown,
  mode: 'replace' | 'patch',
): WritableObjectFields {
  if (body === undefined || body === null) return mode === 'patch' ? { ...fields } : {};
  if (!isRecord(body)) throw badRequest('The object metadata must be a JSON object');
  const result: WritableObjectFields =
    mode === 'patch' ? { ...fields, metadata: fields.metadata ? { ...fields.metadata } : undefined } : {};
  for (const field of WRITABLE_STRING_FIELDS) {
    if (!(field in body)) continue;
    const value = body[field];
    if (value === null) delete result[field];
    else if (typeof value === 'string') result[field] = value;
    else throw badRequest(`Invalid value for ${field}: must be a string`);
  }
  if ('metadata' in body) {
    const metadata = body.metadata;
    if (metadata === null) delete result.metadata;
    else if (!isRecord(metadata)) throw badRequest('Invalid value for metadata: must be an object of strings');
    else {
      const merged: Record<string, string> = mode === 'patch' ? { ...(result.metadata ?? {}) } : {};
      for (const [key, value] of Object.entries(metadata)) {
        if (value === null) delete merged[key];
        else merged[key] = metadataValue(key, value);
      }
      result.metadata = merged;
    }
  }
  if (result.metadata && Object.keys(result.metadata).length === 0) delete result.metadata;
  if (result.metadata === undefined) delete result.metadata;
  return result;
}

/** The writable fields of a record, e.g. to copy them to a rewrite's destination. */
export function writableFieldsOf(record: ObjectRecord): WritableObjectFields {
  const fields: WritableObjectFields = {};
  for (const field of WRITABLE_STRING_FIELDS) if (record[field] !== undefined) fields[field] = record[field];
  if (record.metadata) fields.metadata = { ...record.metadata };
  return fields;
}

/** Parses a JSON request body; an empty body is `undefined`, invalid JSON a 400. */
export function parseJsonBody(body: Buffer): unknown {
  const text = body.toString('utf8').trim();
  if (text === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badRequest('Parse Error: the request body is not valid JSON', 'parseError');
  }
}
