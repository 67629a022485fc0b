/**
 * Maps a request to its handler. Paths are matched while still percent-encoded, so an object
 * name containing `/` (sent as `%2F`) can never be mistaken for a sub-resource such as
 * `/compose` or `/rewriteTo/…`; names are decoded after matching.
 */
import { StorageApiError, badRequest } from './errors.js';
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
} from './routes/objects.js';
import { handleSignedPut, handleXmlPreflight } from './signatures.js';
import { cancelUploadSession, handleUploadSession, handleUploadStart } from './uploads.js';

type Params = string[];

interface Route {
  methods: readonly string[];
  pattern: RegExp;
  handle: (ctx: RequestContext, params: Params) => Promise<void> | void;
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
    handle: (ctx, [sb, so, db, dn]) => copyObject(ctx, { bucket: sb!, name: so! }, { bucket: db!, name: dn! }, 'rewrite'),
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}/copyTo/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, [sb, so, db, dn]) => copyObject(ctx, { bucket: sb!, name: so! }, { bucket: db!, name: dn! }, 'copy'),
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}/moveTo/o/${NAME}$`),
    handle: (ctx, [b, source, destination]) => moveObjectRoute(ctx, b!, source!, destination!),
  },
  {
    methods: ['POST'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}/compose$`),
    handle: (ctx, [b, o]) => composeObject(ctx, b!, o!),
  },
  {
    methods: ['GET', 'HEAD'],
    pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, [b, o]) => getObject(ctx, b!, o!, false),
  },
  { methods: ['PATCH'], pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}$`), handle: (ctx, [b, o]) => updateObjectMetadata(ctx, b!, o!, 'patch') },
  { methods: ['PUT'], pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}$`), handle: (ctx, [b, o]) => updateObjectMetadata(ctx, b!, o!, 'replace') },
  { methods: ['DELETE'], pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/${NAME}$`), handle: (ctx, [b, o]) => deleteObject(ctx, b!, o!) },
  { methods: ['GET'], pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/o/?$`), handle: (ctx, [b]) => listObjects(ctx, b!) },
  {
    methods: ['GET', 'HEAD'],
    pattern: new RegExp(`^/download/storage/v1/b/${SEGMENT}/o/${NAME}$`),
    handle: (ctx, [b, o]) => getObject(ctx, b!, o!, true),
  },
  {
    methods: ['POST', 'PUT', 'DELETE'],
    pattern: new RegExp(`^(?:/resumable)?/upload/storage/v1/b/${SEGMENT}/o/?$`),
    handle: (ctx, [b]) => {
      const uploadId = ctx.url.searchParams.get('upload_id');
      const method = ctx.req.method;
      if (uploadId && method === 'DELETE') return cancelUploadSession(ctx, uploadId);
      if (uploadId) return handleUploadSession(ctx, b!, uploadId);
      if (method !== 'POST') throw new StorageApiError(400, 'Upload requests without upload_id must be POSTs', 'invalid');
      return handleUploadStart(ctx, b!);
    },
  },
  { methods: ['GET'], pattern: /^\/storage\/v1\/b\/?$/, handle: (ctx) => listBuckets(ctx) },
  { methods: ['POST'], pattern: /^\/storage\/v1\/b\/?$/, handle: (ctx) => insertBucket(ctx) },
  { methods: ['GET'], pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/?$`), handle: (ctx, [b]) => getBucket(ctx, b!) },
  { methods: ['PATCH', 'PUT'], pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/?$`), handle: (ctx, [b]) => patchBucket(ctx, b!) },
  { methods: ['DELETE'], pattern: new RegExp(`^/storage/v1/b/${SEGMENT}/?$`), handle: (ctx, [b]) => deleteBucket(ctx, b!) },
  // Public-URL reads, as https://storage.googleapis.com/{bucket}/{object} serves public objects:
  // lets PUBLIC_BASE_URL point at this server. Beyond plain reads, the XML API has only the
  // signed-URL PUT (and its CORS preflight), checked in signatures.ts.
  {
    methods: ['GET', 'HEAD'],
    pattern: XML_OBJECT,
    handle: (ctx, [b, o]) => {
      // Never auto-create from a stray GET (a browser's /favicon.ico/..., a typo).
      ctx.store.requireBucket(b!);
      return getObject(ctx, b!, o!, true);
    },
  },
  { methods: ['PUT'], pattern: XML_OBJECT, handle: (ctx, [b, o]) => handleSignedPut(ctx, ctx.signedUrls, b!, o!) },
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

/** Routes one request; unknown routes are a 404 in Google's error JSON, logged loudly. */
export async function route(ctx: RequestContext): Promise<void> {
  const pathname = ctx.url.pathname;
  if (pathname.startsWith('/_admin/')) return handleAdmin(ctx, pathname.slice('/_admin'.length));
  const method = effectiveMethod(ctx);
  let pathMatched = false;
  for (const candidate of routes) {
    const match = candidate.pattern.exec(pathname);
    if (!match) continue;
    pathMatched = true;
    if (!candidate.methods.includes(method)) continue;
    return candidate.handle(ctx, match.slice(1).map(decode));
  }
  ctx.log(`storage-server: UNKNOWN ROUTE ${method} ${ctx.req.url} (not implemented; answering ${pathMatched ? 405 : 404})`);
  if (pathMatched) throw new StorageApiError(405, `Method ${method} is not supported for ${pathname}`, 'methodNotAllowed');
  throw new StorageApiError(404, `Not Found: ${method} ${pathname} is not a route of this server`, 'notFound');
}
