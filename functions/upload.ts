/**
 * `upload` (HTTP): `POST /uploads` stores an image as the caller's asset and queues its variants;
 * `GET /uploads/{assetId}` reports progress, `DELETE /uploads/{assetId}` takes the upload down,
 * `GET /uploads` lists the caller's uploads (only the owner's own: another's is 404); `GET /healthz`;
 * `GET /openapi.json`, the API's contract (shared/http/openapi.ts).
 * Every answer is JSON; every error is `{error:{code,message}}`.
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { acceptImage, type AcceptOutcome } from '../shared/pipeline/accept.js';
import { parseFocus } from '../shared/image/crop.js';
import type { PipelineDeps } from '../shared/cloud/deps.js';
import { permanent, type PipelineError, toHttpError } from '../shared/core/errors.js';
import { AssetId } from '../shared/core/schemas.js';
import { METADATA_FIELDS, parseMetadataText, type UploadMetadata } from '../shared/core/metadata.js';
import { variantName } from '../shared/core/naming.js';
import { uploadAuth } from '../shared/auth/settings.js';
import { OWNER_HEADER, ownerOf, type Principal } from '../shared/auth/principal.js';
import { authenticateRequest } from '../shared/auth/authenticate.js';
import { ALLOWED_METHODS, routePath, screenRequest } from '../shared/http/request-policy.js';
import { extractUpload } from '../shared/http/request-body.js';
import { issueSignedUpload, ticketStatus } from '../shared/http/signed-url.js';
import { assetStatus, listAssets } from '../shared/pipeline/status.js';
import {
  type ErrorBodyShape,
  errorAnswer,
  type HealthBody,
  type SignedUploadBody,
  type StatusProcessingBody,
  type StatusReadyBody,
  type TicketWaitingBody,
  type UploadProcessingBody,
  type UploadReadyBody,
} from '../shared/http/api-schemas.js';
import { openApiDocument } from '../shared/http/openapi.js';
import { deleteAsset } from '../shared/pipeline/lifecycle.js';
import { runWithTrace, traceFromHeaders } from '../shared/cloud/trace.js';

type Handler = (req: Request, res: Response) => Promise<void>;

function sendError(res: Response, error: unknown, deps: PipelineDeps, req: Request): void {
  const { status, body } = toHttpError(error);
  const severity = status >= 500 ? 'error' : 'info';
  deps.log[severity === 'error' ? 'error' : 'info']('upload request failed', {
    event: 'http.error',
    status,
    code: body.error.code,
    ...(typeof body.error.details?.reason === 'string' ? { reason: body.error.details.reason } : {}),
    method: req.method,
    path: req.path,
    ...(status >= 500 ? { error } : {}),
  });
  if (status === 401) res.set('WWW-Authenticate', 'Bearer');
  if (status === 503) res.set('Retry-After', '10');
  const retryAfter = body.error.details?.retryAfterSeconds;
  if (status === 429 && typeof retryAfter === 'number') res.set('Retry-After', String(retryAfter));
  res.status(status).json(errorAnswer(body));
}

/**
 * The caller (shared/auth/principal.ts): whose assets this request reads and writes. Behind the
 * guard this is the verdict the guard reached before the body was read (kept per request);
 * without it (a handler called directly) the credential is verified here.
 */
export function principalFor(deps: PipelineDeps, req: Request): Promise<Principal> {
  const head = { authorization: req.get('authorization'), owner: req.get(OWNER_HEADER) };
  return authenticateRequest(req, head, uploadAuth(deps.config));
}

function failedBody(
  ids: { readonly id: string; readonly imageId: string },
  record: { code: string; message: string; retryable?: boolean | undefined },
): ErrorBodyShape {
  // retryable: the cause was about the world; uploading the same file again processes it again.
  return {
    error: {
      code: 'image_failed',
      message: record.message,
      retryable: record.retryable === true,
      details: { id: ids.id, imageId: ids.imageId, cause: record.code },
    },
  };
}

function statusUrl(req: Request, id: string): string {
  return `${req.protocol}://${req.get('host')}/uploads/${id}`;
}

/** `id` is the caller's asset; variants are named by the image they share with other assets. */
function answerAccepted(req: Request, res: Response, outcome: AcceptOutcome): void {
  const ids = { id: outcome.assetId, imageId: outcome.id };
  if (outcome.state === 'ready') {
    res.status(200).json({ ...ids, status: 'ready', manifest: outcome.manifest } satisfies UploadReadyBody);
  } else if (outcome.state === 'failed') {
    res.status(422).json(failedBody(ids, outcome.record));
  } else {
    res.status(202).json({
      ...ids,
      status: 'processing',
      statusUrl: statusUrl(req, outcome.assetId),
      variants: outcome.variants.map((v) => ({
        width: v.width,
        format: v.format,
        ...(v.aspect !== undefined ? { aspect: v.aspect } : {}),
        ...(v.animated ? { animated: true } : {}),
        name: variantName(outcome.id, v.width, v.format, v.aspect, v.animated),
      })),
      ...(outcome.preview ? { preview: outcome.preview } : {}),
    } satisfies UploadProcessingBody);
  }
}

/** Metadata from the `X-Upload-Metadata` header or `?metadata=` (checked before the body is read). */
function metadataOfHead(req: Request): { metadata: UploadMetadata } | undefined {
  const header = req.get(METADATA_FIELDS.header);
  const query = req.query[METADATA_FIELDS.query];
  if (header !== undefined && query !== undefined)
    throw permanent('invalid_metadata', 'Give the metadata once: as a header or a query parameter.', {
      where: 'header',
    });
  if (query !== undefined && typeof query !== 'string')
    throw permanent('invalid_metadata', 'Give ?metadata= once, as JSON text.', { where: 'query' });
  if (header !== undefined) return { metadata: parseMetadataText(header, 'header') };
  if (query !== undefined) return { metadata: parseMetadataText(query, 'query') };
  return undefined;
}

async function handleUpload(deps: PipelineDeps, req: Request, res: Response): Promise<void> {
  const body = Buffer.isBuffer(req.rawBody) ? req.rawBody : Buffer.alloc(0);
  const filenameHint = typeof req.query.filename === 'string' ? req.query.filename : undefined;
  // Checked before the body is read: a bad focus is the caller's mistake whatever the image.
  const focus = parseFocus(
    req.query.focus === undefined
      ? undefined
      : typeof req.query.focus === 'string'
        ? req.query.focus
        : String(req.query.focus),
  );
  const headMetadata = metadataOfHead(req);
  const principal = await principalFor(deps, req);
  const file = await extractUpload(body, req.get('content-type'), deps.config.MAX_UPLOAD_BYTES, filenameHint);
  if (file.metadataText !== undefined && headMetadata)
    throw permanent('invalid_metadata', 'Give the metadata once: as the form field, a header or a query parameter.', {
      where: 'form field',
    });
  const metadata =
    file.metadataText !== undefined ? parseMetadataText(file.metadataText, 'form field') : headMetadata?.metadata;
  const outcome = await acceptImage(deps, {
    bytes: file.bytes,
    owner: ownerOf(principal),
    chargeQuota: true,
    source: 'upload',
    ...(file.filename ? { filename: file.filename } : {}),
    ...(focus ? { focus } : {}),
    ...(metadata ? { metadata } : {}),
  });
  answerAccepted(req, res, outcome);
}

const NOT_FOUND = 'None of your uploads has that id.';

/**
 * `GET /uploads/{assetId}` for `principal`: the upload's status if it is the principal's own,
 * else 404 (an unknown id and another owner's asset answer the same).
 */
export async function handleStatus(
  deps: PipelineDeps,
  req: Request,
  res: Response,
  rawAssetId: string,
  principal: Principal,
): Promise<void> {
  const assetId = AssetId.safeParse(rawAssetId);
  const found = assetId.success ? await assetStatus(deps, assetId.data, ownerOf(principal)) : undefined;
  if (!found) throw permanent('not_found', NOT_FOUND);
  const { asset, image: status } = found;
  const ids = { id: asset.id, imageId: asset.imageId };
  const facts = {
    ...(asset.filename ? { filename: asset.filename } : {}),
    ...(asset.metadata ? { metadata: asset.metadata } : {}),
    createdAt: asset.createdAt.toISOString(),
  };
  switch (status.state) {
    case 'ready':
      res.status(200).json({ ...ids, status: 'ready', manifest: status.manifest, ...facts } satisfies StatusReadyBody);
      return;
    case 'failed':
      res.status(422).json(failedBody(ids, status.record));
      return;
    case 'processing':
      res.status(202).json({
        ...ids,
        status: 'processing',
        done: status.done,
        total: status.total,
        finished: [...status.finished],
        ...(status.placeholder ? { placeholder: status.placeholder } : {}),
        statusUrl: statusUrl(req, asset.id),
        ...facts,
      } satisfies StatusProcessingBody);
      return;
    default:
      throw permanent('not_found', NOT_FOUND);
  }
}

/**
 * `DELETE /uploads/{assetId}`: 204 once the caller's upload is gone (its image goes with its last
 * upload); 404 for an unknown id, another owner's, and one already deleted.
 */
async function handleDelete(deps: PipelineDeps, req: Request, res: Response, rawAssetId: string): Promise<void> {
  const principal = await principalFor(deps, req);
  const assetId = AssetId.safeParse(rawAssetId);
  if (!assetId.success || (await deleteAsset(deps, assetId.data, ownerOf(principal))) === 'not-found')
    throw permanent('not_found', NOT_FOUND);
  res.status(204).end();
}

/** `GET /uploads?limit=&cursor=`: the caller's uploads, newest first. */
async function handleList(deps: PipelineDeps, req: Request, res: Response): Promise<void> {
  const principal = await principalFor(deps, req);
  const param = (name: string) => {
    const value = req.query[name];
    if (value === undefined || typeof value === 'string') return value;
    throw permanent('bad_request', `Give ${name} once.`);
  };
  const page = await listAssets(deps, ownerOf(principal), { limit: param('limit'), cursor: param('cursor') });
  res.status(200).json(page);
}

/**
 * `POST /uploads/signed-url` signs a direct upload to the bucket for the caller (its ticket is
 * charged to the caller's quotas); `GET /uploads/signed-url/{ticket}` answers the ticket's owner
 * only: 202 `waiting` until ingest has taken the object, then what `GET /uploads/{id}` answers
 * (422 when the bytes were refused), and 404 to anyone else.
 */
async function handleSignedUrl(
  deps: PipelineDeps,
  req: Request,
  res: Response,
  ticket: string | undefined,
): Promise<void> {
  if (ticket === undefined) {
    if (req.method !== 'POST') throw methodNotAllowed(res, 'POST');
    const body = Buffer.isBuffer(req.rawBody) ? req.rawBody : Buffer.alloc(0);
    const signed = await issueSignedUpload(deps, body, ownerOf(await principalFor(deps, req)));
    res.status(201).json({
      uploadUrl: signed.uploadUrl,
      method: signed.method,
      headers: signed.headers,
      expiresAt: signed.expiresAt,
      statusUrl: `${req.protocol}://${req.get('host')}/uploads/signed-url/${signed.ticket}`,
      ticket: signed.ticket,
      maxBytes: signed.maxBytes,
    } satisfies SignedUploadBody);
    return;
  }
  if (req.method !== 'GET') throw methodNotAllowed(res, 'GET');
  const principal = await principalFor(deps, req);
  const status = await ticketStatus(deps, ticket, ownerOf(principal));
  if (status.state === 'unknown') throw permanent('not_found', 'No upload has that ticket, or its URL expired unused.');
  if (status.state === 'waiting') {
    res.status(202).json({ ticket, status: 'waiting' } satisfies TicketWaitingBody);
    return;
  }
  const { use } = status;
  // The asset ingest filed the object under answers, failed or not; a refusal recorded before
  // any asset existed answers from the ticket.
  if (use.assetId) {
    await handleStatus(deps, req, res, use.assetId, principal);
    return;
  }
  if (use.failure) {
    res.status(422).json(failedBody({ id: use.imageId, imageId: use.imageId }, use.failure));
    return;
  }
  throw permanent('not_found', 'No upload has that ticket, or its URL expired unused.');
}

/** Creates the `upload` HTTP handler over the instance's collaborators. */
export function createUploadHandler(getDeps: () => PipelineDeps): Handler {
  // Every line of the request's work, and the jobs it publishes, carry its trace (docs/observability.md).
  const traced: Handler = (req, res) =>
    runWithTrace(
      getDeps().config.GOOGLE_CLOUD_PROJECT,
      traceFromHeaders((name) => req.get(name)),
      () => handler(req, res),
    );
  const handler: Handler = async (req, res) => {
    const deps = getDeps();
    try {
      res.set('Cache-Control', 'no-store');
      res.set('X-Content-Type-Options', 'nosniff');
      // Origin and caller, as the guard (upload-guard.ts) already checked them before the body:
      // here again for servers without the guard (tests), and a misconfiguration fails closed.
      const path = routePath(req.path);
      const screening = screenRequest(
        { method: req.method, path, origin: req.get('origin') },
        deps.config.CORS_ORIGINS,
      );
      res.set(screening.headers);
      if (screening.error) throw screening.error;
      if (!screening.open) await principalFor(deps, req);
      if (req.method === 'OPTIONS') {
        res.set('Allow', ALLOWED_METHODS).status(204).end();
        return;
      }
      if (path === '/healthz') {
        if (req.method !== 'GET') throw methodNotAllowed(res, 'GET');
        res.status(200).json({ status: 'ok' } satisfies HealthBody);
        return;
      }
      if (path === '/openapi.json') {
        if (req.method !== 'GET') throw methodNotAllowed(res, 'GET');
        res.status(200).json(openApiDocument());
        return;
      }
      if (path === '/uploads' || path === '/') {
        if (req.method === 'GET' && path === '/uploads') {
          await handleList(deps, req, res);
          return;
        }
        if (req.method !== 'POST') throw methodNotAllowed(res, path === '/uploads' ? 'GET, POST' : 'POST');
        await handleUpload(deps, req, res);
        return;
      }
      const signed = /^\/uploads\/signed-url(?:\/([^/]+))?$/.exec(path);
      if (signed) {
        await handleSignedUrl(deps, req, res, signed[1]);
        return;
      }
      const id = /^\/uploads\/([^/]+)$/.exec(path)?.[1];
      if (id) {
        if (req.method === 'DELETE') {
          await handleDelete(deps, req, res, id);
          return;
        }
        if (req.method !== 'GET') throw methodNotAllowed(res, 'GET, DELETE');
        await handleStatus(deps, req, res, id, await principalFor(deps, req));
        return;
      }
      throw permanent('not_found', 'No such endpoint. Use POST /uploads, GET /uploads or GET /uploads/{id}.');
    } catch (error) {
      sendError(res, error, deps, req);
    }
  };
  return traced;
}

function methodNotAllowed(res: Response, allow: string): PipelineError {
  res.set('Allow', `${allow}, OPTIONS`);
  return permanent('method_not_allowed', `Use ${allow} here.`);
}
