/**
 * Maps a request to its handler. Paths are matched while still percent-encoded, so an object
 * name containing `/` (sent as `%2F`) can never be mistaken for a sub-resource such as
 * `/compose` or `/rewriteTo/…`; names are decoded after matching.
 */
import { StorageApiError, badRequest } from './api-errors.js';
import type { RequestContext } from './http.js';
import { handleAdmin } from './routes/admin.js';
import { deleteBucket, getBucket, insertBucket, listBuckets, patchBucket } from './routes/buckets.js';
import {
  composeObject,
  copyObject,
  deleteObject,
  getObject,
  listObjects,
  moveObjectRoute,
  updateObjectMetadata,
} from './routes/object-routes.js';
import { handleSignedPut, handleXmlPreflight } from './routes/signed-put.js';
import { cancelUploadSession, handleUploadSession, handleUploadStart } from './routes/uploads.js';

/** Capture group `i` of the matched route, decoded. */
type Group = (i: number) => string;

interface Route {
  methods: readonly string[];
  pattern: RegExp;
  handle: (ctx: RequestContext, group: Group) => Promise<void> | void;
}

const SEGMENT = '([^/]+)';
/** Object names: one encoded segment, or (leniently) several when a client left `/` unescaped. */
const NAME = '(.+)';

/** `/{bucket}/{object}`: the XML API's path-style object URL. */
const XML_OBJECT = /^\/(?!(?:storage|upload|download|resumable|batch|_admin)\/)([a-z0-9][a-z0-9._-]+)\/(.+)$/;

const routes: Route[] = [
  // Server-side copies first: their paths also match the plain object route.
  {
    methods: ['POST'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}/rewriteTo/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, group) =>
      copyObject(ctx, { bucket: group(0), name: group(1) }, { bucket: group(2), name: group(3) }, 'rewrite'),
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}/copyTo/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, group) =>
      copyObject(ctx, { bucket: group(0), name: group(1) }, { bucket: group(2), name: group(3) }, 'copy'),
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}/moveTo/o/${NAME}$`),
    handle: (ctx, group) => moveObjectRoute(ctx, group(0), group(1), group(2)),
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}/compose$`),
    handle: (ctx, group) => composeObject(ctx, group(0), group(1)),
  },
  {
    methods: ['GET', 'HEAD'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, group) => getObject(ctx, group(0), group(1), false),
  },
  {
    methods: ['PATCH'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, group) => updateObjectMetadata(ctx, group(0), group(1), 'patch'),
  },
  {
    methods: ['PUT'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, group) => updateObjectMetadata(ctx, group(0), group(1), 'replace'),
  },
  {
    methods: ['DELETE'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, group) => deleteObject(ctx, group(0), group(1)),
  },
  {
    methods: ['GET'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/?$`),
    handle: (ctx, group) => listObjects(ctx, group(0)),
  },
  {
    methods: ['GET', 'HEAD'],
    pattern: new RegExp(`^/download/storage/v1/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, group) => getObject(ctx, group(0), group(1), true),
  },
  {
    methods: ['POST', 'PUT', 'DELETE'],
    pattern: new RegExp(`^(?:/resumable)?/upload/storage/v1/b/${SEGMENT}/o/?$`),
    handle: (ctx, group) => {
      const uploadId = ctx.url.searchParams.get('upload_id');
      const method = ctx.req.method;
      if (uploadId && method === 'DELETE') return cancelUploadSession(ctx, uploadId);
      if (uploadId) return handleUploadSession(ctx, group(0), uploadId);
      if (method !== 'POST')
        throw new StorageApiError(400, 'Upload requests without upload_id must be POSTs', 'invalid');
      return handleUploadStart(ctx, group(0));
    },
  },
  { methods: ['GET'], pattern: /^\/storage\/v1\/b\/?$/, handle: (ctx) => listBuckets(ctx) },
  { methods: ['POST'], pattern: /^\/storage\/v1\/b\/?$/, handle: (ctx) => insertBucket(ctx) },
  {
    methods: ['GET'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/?$`),
    handle: (ctx, group) => getBucket(ctx, group(0)),
  },
  {
    methods: ['PATCH', 'PUT'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/?$`),
    handle: (ctx, group) => patchBucket(ctx, group(0)),
  },
  {
    methods: ['DELETE'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/?$`),
    handle: (ctx, group) => deleteBucket(ctx, group(0)),
  },
  // Public-URL reads, as https://storage.googleapis.com/{bucket}/{object} serves public objects:
  // lets PUBLIC_BASE_URL point at this server. Beyond plain reads, the XML API has only the
  // signed-URL PUT (and its CORS preflight), checked in routes/signed-put.ts.
  {
    methods: ['GET', 'HEAD'],
    pattern: XML_OBJECT,
    handle: (ctx, group) => {
      // Never auto-create from a stray GET (a browser's /favicon.ico/..., a typo).
      ctx.store.requireBucket(group(0));
      return getObject(ctx, group(0), group(1), true);
    },
  },
  {
    methods: ['PUT'],
    pattern: XML_OBJECT,
    handle: (ctx, group) => handleSignedPut(ctx, ctx.signedUrls, group(0), group(1)),
  },
  { methods: ['OPTIONS'], pattern: XML_OBJECT, handle: (ctx) => handleXmlPreflight(ctx, ctx.signedUrls) },
];

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`Invalid percent-encoding in path segment ${JSON.stringify(segment.slice(0, 200))}`);
  }
}

/**
 * The method to route on: the request's, or `X-HTTP-Method-Override` on a POST (which some
 * clients use for PATCH through proxies).
 */
function effectiveMethod(ctx: RequestContext): string {
  const method = (ctx.req.method ?? 'GET').toUpperCase();
  const override = ctx.req.headers['x-http-method-override'];
  if (method === 'POST' && typeof override === 'string' && override.trim() !== '') return override.trim().toUpperCase();
  return method;
}

/**
 * With STORAGE_EMULATOR_HOST set, @google-cloud/storage (7.x) sends JSON API calls to that URL
 * as it is, without `/storage/v1` (`{host}/b/{bucket}/o/...`); they are the same calls. A bucket
 * name has at least 3 characters, so `/b/...` is never an XML API object path.
 */
function jsonApiPath(pathname: string): string {
  return pathname === '/b' || pathname.startsWith('/b/') ? `/storage/v1${pathname}` : pathname;
}

/** Routes one request; unknown routes are a 404 in Google's error JSON, logged loudly. */
export async function route(ctx: RequestContext): Promise<void> {
  const pathname = jsonApiPath(ctx.url.pathname);
  if (pathname.startsWith('/_admin/')) return handleAdmin(ctx, pathname.slice('/_admin'.length));
  const method = effectiveMethod(ctx);
  let pathMatched = false;
  for (const candidate of routes) {
    const match = candidate.pattern.exec(pathname);
    if (!match) continue;
    pathMatched = true;
    if (!candidate.methods.includes(method)) continue;
    const groups = match.slice(1).map(decode);
    return candidate.handle(ctx, (i) => {
      const value = groups[i];
      // Every group in the table is mandatory, so this is a bug in the table, not a bad request.
      if (value === undefined) throw new Error(`Route ${candidate.pattern} has no capture group ${i}`);
      return value;
    });
  }
  ctx.log(
    `storage-server: UNKNOWN ROUTE ${method} ${ctx.req.url} (not implemented; answering ${pathMatched ? 405 : 404})`,
  );
  if (pathMatched)
    throw new StorageApiError(405, `Method ${method} is not supported for ${pathname}`, 'methodNotAllowed');
  throw new StorageApiError(404, `Not Found: ${method} ${pathname} is not a route of this server`, 'notFound');
}
