/**
 * `upload` (HTTP): `POST /uploads` stores an image and queues its variants; `GET /uploads/{id}`
 * reports progress; `GET /healthz`. Every answer is JSON; every error is `{error:{code,message}}`.
 */
import type { Request, Response } from '@google-cloud/functions-framework';
import { acceptImage, type AcceptOutcome } from '../shared/accept.js';
import { parseFocus } from '../shared/crop.js';
import type { PipelineDeps } from '../shared/deps.js';
import { permanent, PipelineError, toHttpError } from '../shared/errors.js';
import { ImageId } from '../shared/messages.js';
import { variantName } from '../shared/naming.js';
import { ALLOWED_METHODS, corsFor, isAuthorized } from '../shared/request-policy.js';
import { extractUpload } from '../shared/request-body.js';
import { imageStatus } from '../shared/status.js';

type Handler = (req: Request, res: Response) => Promise<void>;

function sendError(res: Response, error: unknown, deps: PipelineDeps, req: Request): void {
  const { status, body } = toHttpError(error);
  const severity = status >= 500 ? 'error' : 'info';
  deps.log[severity === 'error' ? 'error' : 'info']('upload request failed', {
    event: 'http.error',
    status,
    code: body.error.code,
    method: req.method,
    path: req.path,
    ...(status >= 500 ? { error } : {}),
  });
  if (status === 401) res.set('WWW-Authenticate', 'Bearer');
  if (status === 503) res.set('Retry-After', '10');
  res.status(status).json(body);
}

function failedBody(id: string, record: { code: string; message: string }) {
  return { error: { code: 'image_failed', message: record.message, retryable: false, details: { id, cause: record.code } } };
}

function statusUrl(req: Request, id: string): string {
  return `${req.protocol}://${req.get('host')}/uploads/${id}`;
}

function answerAccepted(req: Request, res: Response, outcome: AcceptOutcome): void {
  if (outcome.state === 'ready') {
    res.status(200).json({ id: outcome.id, status: 'ready', manifest: outcome.manifest });
  } else if (outcome.state === 'failed') {
    res.status(422).json(failedBody(outcome.id, outcome.record));
  } else {
    res.status(202).json({
      id: outcome.id,
      status: 'processing',
      statusUrl: statusUrl(req, outcome.id),
      variants: outcome.variants.map((v) => ({
        width: v.width,
        format: v.format,
        ...(v.aspect !== undefined ? { aspect: v.aspect } : {}),
        name: variantName(outcome.id, v.width, v.format, v.aspect),
      })),
    });
  }
}

async function handleUpload(deps: PipelineDeps, req: Request, res: Response): Promise<void> {
  const body = Buffer.isBuffer(req.rawBody) ? req.rawBody : Buffer.alloc(0);
  const filenameHint = typeof req.query.filename === 'string' ? req.query.filename : undefined;
  // Checked before the body is read: a bad focus is the caller's mistake whatever the image.
  const focus = parseFocus(req.query.focus === undefined ? undefined : typeof req.query.focus === 'string' ? req.query.focus : String(req.query.focus));
  const file = await extractUpload(body, req.get('content-type'), deps.config.MAX_UPLOAD_BYTES, filenameHint);
  const outcome = await acceptImage(deps, {
    bytes: file.bytes,
    source: 'upload',
    ...(file.filename ? { filename: file.filename } : {}),
    ...(focus ? { focus } : {}),
  });
  answerAccepted(req, res, outcome);
}

async function handleStatus(deps: PipelineDeps, req: Request, res: Response, rawId: string): Promise<void> {
  const id = ImageId.safeParse(rawId);
  if (!id.success) throw permanent('not_found', 'No image has that id.');
  const status = await imageStatus(deps, id.data);
  switch (status.state) {
    case 'ready':
      res.status(200).json({ id: status.id, status: 'ready', manifest: status.manifest });
      return;
    case 'failed':
      res.status(422).json(failedBody(status.id, status.record));
      return;
    case 'processing':
      res.status(202).json({ id: status.id, status: 'processing', done: status.done, total: status.total, statusUrl: statusUrl(req, status.id) });
      return;
    default:
      throw permanent('not_found', 'No image has that id.');
  }
}

/** Creates the `upload` HTTP handler over the instance's collaborators. */
export function createUploadHandler(getDeps: () => PipelineDeps): Handler {
  return async (req, res) => {
    const deps = getDeps();
    try {
      res.set('Cache-Control', 'no-store');
      res.set('X-Content-Type-Options', 'nosniff');
      const cors = corsFor(req.get('origin'), deps.config.CORS_ORIGINS);
      if (!cors.allowed) throw permanent('forbidden_origin', 'This origin may not call the upload API.');
      res.set(cors.headers);

      const path = req.path.replace(/\/+$/, '') || '/';
      if (req.method === 'OPTIONS') {
        res.set('Allow', ALLOWED_METHODS).status(204).end();
        return;
      }
      if (path === '/healthz') {
        if (req.method !== 'GET') throw methodNotAllowed(res, 'GET');
        res.status(200).json({ status: 'ok' });
        return;
      }
      if (!isAuthorized(req.get('authorization'), deps.config.UPLOAD_TOKEN)) {
        throw permanent('unauthorized', 'A valid bearer token is required.');
      }
      if (path === '/uploads' || path === '/') {
        if (req.method !== 'POST') throw methodNotAllowed(res, 'POST');
        await handleUpload(deps, req, res);
        return;
      }
      const match = /^\/uploads\/([^/]+)$/.exec(path);
      if (match) {
        if (req.method !== 'GET') throw methodNotAllowed(res, 'GET');
        await handleStatus(deps, req, res, match[1]!);
        return;
      }
      throw permanent('not_found', 'No such endpoint. Use POST /uploads or GET /uploads/{id}.');
    } catch (error) {
      sendError(res, error, deps, req);
    }
  };
}

function methodNotAllowed(res: Response, allow: string): PipelineError {
  res.set('Allow', `${allow}, OPTIONS`);
  return permanent('method_not_allowed', `Use ${allow} here.`);
}
