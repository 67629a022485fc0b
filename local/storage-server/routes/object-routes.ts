/**
 * JSON API object routes under `/storage/v1/b/{bucket}/o`: get (metadata or `alt=media`),
 * patch, update, delete, list, and the server-side copies (`rewriteTo`, `copyTo`, `moveTo`,
 * `compose`).
 */
import { StorageApiError, badRequest, noSuchObject } from '../api-errors.js';
import { integerParam, readBody, type RequestContext } from '../http.js';
import { sendEmpty, sendJson, sendMedia, sendObject } from '../responses.js';
import { commitNewGeneration, findObjectForRead, moveObject, resolveBucket } from '../object-operations.js';
import { checkPreconditions, parsePreconditions, type Preconditions } from '../preconditions.js';
import { WRITABLE_STRING_FIELDS, type ObjectRecord, type WritableObjectFields } from '../object-records.js';
import { applyWritableFields, objectResource, parseJsonBody, writableFieldsOf } from '../resources.js';
import { compareNames } from '../store.js';

/** GET/HEAD of one object: its resource, or its bytes with `alt=media`. */
export async function getObject(ctx: RequestContext, bucket: string, name: string, media: boolean): Promise<void> {
  await resolveBucket(ctx, bucket);
  const record = findObjectForRead(ctx, bucket, name);
  const alt = ctx.url.searchParams.get('alt');
  if (media || alt === 'media') return sendMedia(ctx, record);
  if (alt !== null && alt !== 'json')
    throw badRequest(`Invalid argument for parameter alt: ${JSON.stringify(alt)}`, 'invalidParameter');
  sendObject(ctx, record);
}

/** A record with its writable fields replaced by `fields`. */
function withFields(record: ObjectRecord, fields: WritableObjectFields): ObjectRecord {
  const result: ObjectRecord = { ...record };
  for (const field of WRITABLE_STRING_FIELDS) delete result[field];
  delete result.metadata;
  return { ...result, ...fields };
}

/** PATCH (merge) or PUT (replace) of an object's metadata; bumps the metageneration. */
export async function updateObjectMetadata(
  ctx: RequestContext,
  bucket: string,
  name: string,
  mode: 'patch' | 'replace',
): Promise<void> {
  await resolveBucket(ctx, bucket);
  const preconditions = parsePreconditions(ctx.url.searchParams);
  const body = parseJsonBody(await readBody(ctx.req, 8 * 1024 * 1024));
  const generation = ctx.url.searchParams.get('generation');
  const record = await ctx.store.withLock(bucket, name, async () => {
    const current = ctx.store.getObject(bucket, name);
    if (!current || (generation && generation !== current.generation)) throw noSuchObject(bucket, name);
    checkPreconditions(current, preconditions, 'write');
    const fields = applyWritableFields(writableFieldsOf(current), body, mode);
    const updated: ObjectRecord = {
      ...withFields(current, fields),
      contentType: fields.contentType ?? 'application/octet-stream',
      metageneration: current.metageneration + 1,
      updated: new Date().toISOString(),
    };
    await ctx.store.updateObject(updated);
    return updated;
  });
  sendObject(ctx, record);
}

/** DELETE of an object: 204, or 404/412. */
export async function deleteObject(ctx: RequestContext, bucket: string, name: string): Promise<void> {
  await resolveBucket(ctx, bucket);
  const preconditions = parsePreconditions(ctx.url.searchParams);
  const generation = ctx.url.searchParams.get('generation');
  const removed = await ctx.store.withLock(bucket, name, async () => {
    const current = ctx.store.getObject(bucket, name);
    if (!current || (generation && generation !== current.generation)) throw noSuchObject(bucket, name);
    checkPreconditions(current, preconditions, 'write');
    await ctx.store.deleteObject(current);
    return current;
  });
  ctx.notifier.emit('delete', removed, ctx.baseUrl);
  sendEmpty(ctx.res, 204);
}

/** Where a listing page stops: the last name returned, and the prefix it was rolled into, if any. */
interface PageToken {
  after: string;
  prefix?: string;
}

function encodeToken(token: PageToken): string {
  return Buffer.from(JSON.stringify(token), 'utf8').toString('base64url');
}

function decodeToken(raw: string): PageToken {
  try {
    const token = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as PageToken;
    if (typeof token.after !== 'string') throw new Error('no position');
    return token;
  } catch {
    throw new StorageApiError(
      400,
      `Invalid argument for parameter pageToken: ${JSON.stringify(raw)}`,
      'invalidParameter',
    );
  }
}

/**
 * Translates a `matchGlob` pattern to a RegExp: `**` matches anything, `*` and `?` anything but
 * `/`, `[…]` a character class, `{a,b}` alternatives.
 */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob.charAt(i);
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++;
        // "**/" also matches nothing, so "a/**/b" matches "a/b".
        if (glob[i + 1] === '/') {
          i++;
          source += '(?:.*/)?';
        } else source += '.*';
      } else source += '[^/]*';
    } else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) throw badRequest(`Invalid matchGlob: unclosed "[" in ${JSON.stringify(glob)}`);
      let body = glob.slice(i + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      source += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else if (c === '{') {
      const close = glob.indexOf('}', i);
      if (close < 0) throw badRequest(`Invalid matchGlob: unclosed "{" in ${JSON.stringify(glob)}`);
      source += `(?:${glob
        .slice(i + 1, close)
        .split(',')
        .map((alt) => globToRegExp(alt).source.slice(1, -1))
        .join('|')})`;
      i = close;
    } else source += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`, 's');
}

/**
 * GET of `/b/{bucket}/o`: names in UTF-8 order, filtered by `prefix`, `startOffset` (inclusive),
 * `endOffset` (exclusive) and `matchGlob`; with `delimiter`, names with the delimiter after the
 * prefix are rolled up into `prefixes`. `maxResults` (default and maximum 1000) bounds items plus
 * prefixes per page; `nextPageToken` is present only when more results follow.
 * `includeFoldersAsPrefixes`, `versions`, `projection` and `fields` are accepted and ignored.
 */
export async function listObjects(ctx: RequestContext, bucket: string): Promise<void> {
  await resolveBucket(ctx, bucket);
  const params = ctx.url.searchParams;
  const prefix = params.get('prefix') ?? '';
  const delimiter = params.get('delimiter') || undefined;
  const startOffset = params.get('startOffset') || undefined;
  const endOffset = params.get('endOffset') || undefined;
  const glob = params.get('matchGlob');
  const pattern = glob ? globToRegExp(glob) : undefined;
  const includeTrailingDelimiter = params.get('includeTrailingDelimiter') === 'true';
  const maxResults = Math.min(1000, Math.max(1, integerParam(ctx.url, 'maxResults', 1000)));
  const rawToken = params.get('pageToken');
  const token = rawToken ? decodeToken(rawToken) : undefined;

  const items: ObjectRecord[] = [];
  const prefixes: string[] = [];
  let lastPrefix = token?.prefix;
  let position: PageToken | undefined;
  let more = false;
  // Names and records come from the same synchronous pass over the store, so every name has one.
  const pushItem = (name: string): void => {
    const record = ctx.store.getObject(bucket, name);
    if (record) items.push(record);
  };
  for (const name of ctx.store.sortedNames(bucket)) {
    if (!name.startsWith(prefix)) continue;
    if (token && compareNames(name, token.after) <= 0) continue;
    if (startOffset !== undefined && compareNames(name, startOffset) < 0) continue;
    if (endOffset !== undefined && compareNames(name, endOffset) >= 0) continue;
    if (pattern && !pattern.test(name)) continue;
    let rolledUp: string | undefined;
    if (delimiter) {
      const at = name.indexOf(delimiter, prefix.length);
      if (at >= 0) rolledUp = name.slice(0, at + delimiter.length);
    }
    if (rolledUp !== undefined && rolledUp === lastPrefix) {
      // Part of a prefix already returned; with includeTrailingDelimiter the "folder" object
      // itself is returned as an item too (it sorts first, so it is seen when the prefix is).
      continue;
    }
    if (items.length + prefixes.length >= maxResults) {
      more = true;
      break;
    }
    if (rolledUp !== undefined) {
      prefixes.push(rolledUp);
      lastPrefix = rolledUp;
      if (includeTrailingDelimiter && name === rolledUp) pushItem(name);
      position = { after: name, prefix: rolledUp };
    } else {
      pushItem(name);
      position = { after: name };
    }
  }
  const body: Record<string, unknown> = { kind: 'storage#objects' };
  if (items.length > 0) body.items = items.map((record) => objectResource(record, ctx.baseUrl));
  if (prefixes.length > 0) body.prefixes = prefixes;
  if (more && position) body.nextPageToken = encodeToken(position);
  sendJson(ctx.res, 200, body);
}

/** The source of a copy: live, at `sourceGeneration` if given, meeting the `ifSource…` conditions. */
function findCopySource(ctx: RequestContext, bucket: string, name: string, preconditions: Preconditions): ObjectRecord {
  ctx.store.requireBucket(bucket);
  const record = ctx.store.getObject(bucket, name);
  if (!record) throw noSuchObject(bucket, name);
  const sourceGeneration = ctx.url.searchParams.get('sourceGeneration');
  if (sourceGeneration && sourceGeneration !== record.generation) throw noSuchObject(bucket, name);
  checkPreconditions(record, preconditions, 'write');
  return record;
}

/**
 * The destination's metadata: what the request body gives (its content type defaulting to the
 * source's), or the source's when the body sets no writable field.
 */
function destinationFields(source: ObjectRecord, body: unknown): WritableObjectFields {
  const given = applyWritableFields({}, body, 'replace');
  if (Object.keys(given).length === 0) return writableFieldsOf(source);
  given.contentType ??= source.contentType;
  return given;
}

/** Copies an object; shared by `rewriteTo` (answers a rewrite response) and `copyTo`. */
export async function copyObject(
  ctx: RequestContext,
  source: { bucket: string; name: string },
  destination: { bucket: string; name: string },
  answer: 'rewrite' | 'copy',
): Promise<void> {
  // Arguments first: a bad value is 400 even when the source is missing.
  const sourcePreconditions = parsePreconditions(ctx.url.searchParams, 'source');
  const destinationPreconditions = parsePreconditions(ctx.url.searchParams);
  await resolveBucket(ctx, source.bucket);
  const body = parseJsonBody(await readBody(ctx.req, 8 * 1024 * 1024));
  const record = findCopySource(ctx, source.bucket, source.name, sourcePreconditions);
  let data: Buffer;
  try {
    data = await ctx.store.readData(record);
  } catch {
    throw noSuchObject(source.bucket, source.name);
  }
  const copied = await commitNewGeneration(ctx, {
    bucket: destination.bucket,
    name: destination.name,
    data,
    fields: destinationFields(record, body),
    preconditions: destinationPreconditions,
  });
  if (answer === 'copy') return sendObject(ctx, copied);
  sendJson(ctx.res, 200, {
    kind: 'storage#rewriteResponse',
    totalBytesRewritten: String(copied.size),
    objectSize: String(copied.size),
    done: true,
    resource: objectResource(copied, ctx.baseUrl),
  });
}

/** `moveTo`: an atomic rename within one bucket. */
export async function moveObjectRoute(
  ctx: RequestContext,
  bucket: string,
  source: string,
  destination: string,
): Promise<void> {
  await resolveBucket(ctx, bucket);
  await readBody(ctx.req, 1024 * 1024);
  const moved = await moveObject(
    ctx,
    { bucket, name: source, preconditions: parsePreconditions(ctx.url.searchParams, 'source') },
    { name: destination, preconditions: parsePreconditions(ctx.url.searchParams) },
  );
  sendObject(ctx, moved);
}

/** Cloud Storage's limit on compose sources per request. */
const MAX_COMPOSE_SOURCES = 32;

/**
 * `compose`: concatenates up to 32 objects of the bucket into the destination. The result has a
 * CRC32C and a `componentCount` but no MD5, as in Cloud Storage.
 */
export async function composeObject(ctx: RequestContext, bucket: string, destination: string): Promise<void> {
  const preconditions = parsePreconditions(ctx.url.searchParams);
  await resolveBucket(ctx, bucket);
  const body = parseJsonBody(await readBody(ctx.req, 8 * 1024 * 1024));
  if (typeof body !== 'object' || body === null)
    throw badRequest('Compose needs a JSON body with sourceObjects', 'required');
  const { sourceObjects, destination: destinationMetadata } = body as {
    sourceObjects?: unknown;
    destination?: unknown;
  };
  if (!Array.isArray(sourceObjects) || sourceObjects.length === 0)
    throw badRequest('Compose needs at least one source object', 'required');
  if (sourceObjects.length > MAX_COMPOSE_SOURCES) {
    throw badRequest(
      `The number of source components provided (${sourceObjects.length}) exceeds the maximum (${MAX_COMPOSE_SOURCES})`,
    );
  }
  const parts: Buffer[] = [];
  let componentCount = 0;
  for (const entry of sourceObjects as unknown[]) {
    const source = entry as {
      name?: unknown;
      generation?: unknown;
      objectPreconditions?: { ifGenerationMatch?: unknown };
    };
    if (typeof source?.name !== 'string') throw badRequest('Each compose source needs a name', 'required');
    const record = ctx.store.getObject(bucket, source.name);
    if (!record) throw noSuchObject(bucket, source.name);
    if (source.generation !== undefined && String(source.generation) !== record.generation)
      throw noSuchObject(bucket, source.name);
    const condition = source.objectPreconditions?.ifGenerationMatch;
    if (condition !== undefined && String(condition) !== record.generation) {
      throw new StorageApiError(412, `Precondition failed for compose source ${source.name}`, 'conditionNotMet');
    }
    parts.push(await ctx.store.readData(record));
    componentCount += record.componentCount ?? 1;
  }
  const fields = applyWritableFields({}, destinationMetadata, 'replace');
  const composed = await commitNewGeneration(ctx, {
    bucket,
    name: destination,
    data: Buffer.concat(parts),
    fields,
    preconditions,
    componentCount,
  });
  sendObject(ctx, composed);
}
