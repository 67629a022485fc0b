/**
 * A guard in front of functions-framework's body parsers, for the `upload` function only: from
 * the request's head alone it refuses bad paths, origins, tokens, encodings and sizes, counts
 * chunked bodies, and hands every non-multipart body to the raw parser. What each check answers
 * and why: docs/security.md ("Request bodies") and docs/api.md ("Limits").
 */
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { uploadAuth, type Config } from '../shared/core/config.js';
import { permanent, toHttpError, type PipelineError } from '../shared/core/errors.js';
import { corsFor, routePath, screenRequest, withoutQuery } from '../shared/http/request-policy.js';
import { MULTIPART_OVERHEAD_BYTES } from '../shared/http/request-body.js';

type GuardConfig = Pick<Config, 'MAX_UPLOAD_BYTES' | 'CORS_ORIGINS' | 'UPLOAD_AUTH' | 'UPLOAD_TOKEN'>;

function tooLarge(config: GuardConfig): PipelineError {
  return permanent('payload_too_large', `The file is larger than the limit of ${config.MAX_UPLOAD_BYTES} bytes.`, {
    maxBytes: config.MAX_UPLOAD_BYTES,
  });
}

/**
 * Counts a body's bytes as the HTTP parser hands them over (`push`, before any reader sees
 * them); past `limit` the rest is dropped and `onOver` answers. Only this wrapper sees every
 * chunk first: a 'data' listener would take chunks away from the framework's parser.
 */
function capBody(req: IncomingMessage, limit: number, onOver: () => void): void {
  let seen = 0;
  let over = false;
  const push = req.push.bind(req);
  req.push = (chunk: unknown, encoding?: BufferEncoding) => {
    if (over) return false;
    if (chunk !== null && chunk !== undefined) {
      seen += (chunk as Buffer).length;
      if (seen > limit) {
        over = true;
        onOver();
        return false;
      }
    }
    return push(chunk, encoding);
  };
}

function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  config: Pick<GuardConfig, 'CORS_ORIGINS'>,
): void {
  const { status, body } = toHttpError(error);
  const origin = req.headers.origin;
  const cors = corsFor(typeof origin === 'string' ? origin : undefined, config.CORS_ORIGINS);
  res.writeHead(status, {
    ...(cors.allowed ? cors.headers : {}),
    'Content-Type': 'application/json; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    // The body is left unread: tell the client to stop sending it.
    Connection: 'close',
  });
  res.end(JSON.stringify(body));
}

/**
 * Checks a request before any body parser runs. Returns false when it answered the request
 * itself (and the request must go no further).
 */
export function admitUploadRequest(req: IncomingMessage, res: ServerResponse, config: GuardConfig): boolean {
  // Express's router decodes the path before the handler runs; a broken percent-encoding (`/%`,
  // `/uploads/%E0%A4%A`) would end in its HTML error page with a stack trace instead.
  const url = req.url ?? '/';
  try {
    decodeURIComponent(withoutQuery(url));
  } catch {
    refuse(req, res, permanent('bad_request', 'The request path is not valid.'), config);
    return false;
  }
  const header = (name: string) => (typeof req.headers[name] === 'string' ? (req.headers[name] as string) : undefined);
  const head = {
    method: req.method ?? 'GET',
    path: routePath(url),
    origin: header('origin'),
    authorization: header('authorization'),
  };
  const screening = screenRequest(head, config.CORS_ORIGINS, uploadAuth(config));
  if (screening.error) {
    refuse(req, res, screening.error, config);
    return false;
  }
  const encoding = String(req.headers['content-encoding'] ?? 'identity')
    .trim()
    .toLowerCase();
  if (encoding !== 'identity' && encoding !== '') {
    refuse(
      req,
      res,
      permanent('unsupported_encoding', 'Send the file without Content-Encoding; images are already compressed.'),
      config,
    );
    return false;
  }
  const limit = config.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES;
  if (req.headers['content-length'] === undefined) {
    // Chunked: no size to check up front, so count. The framework's parser would buffer up to 1 GiB.
    capBody(req, limit, () => refuse(req, res, tooLarge(config), config));
  } else if (Number(req.headers['content-length']) > limit) {
    refuse(req, res, tooLarge(config), config);
    return false;
  }
  // Multipart bodies reach the raw parser anyway (no other parser claims multipart/*), and the
  // handler needs their real type: forms are parsed, other multipart types refused.
  if (!/^multipart\//i.test(String(req.headers['content-type'] ?? ''))) {
    req.headers['content-type'] = 'application/octet-stream';
  }
  return true;
}

/** Wraps a request listener (functions-framework's app for `upload`) with the guard. */
export function guardUploadListener(listener: RequestListener, getConfig: () => GuardConfig): RequestListener {
  return (req, res) => {
    let admitted: boolean;
    try {
      admitted = admitUploadRequest(req, res, getConfig());
    } catch (error) {
      // A configuration that cannot authenticate (see uploadAuth) refuses everything.
      refuse(req, res, error, { CORS_ORIGINS: [] });
      return;
    }
    if (admitted) listener(req, res);
  };
}

let installed = false;

/**
 * When this process serves the `upload` function (FUNCTION_TARGET, set by Cloud Functions and by
 * `functions-framework --target`), wraps the server that functions-framework is about to create
 * (it loads the function's module first, then calls `http.createServer(app)`) with the guard.
 */
export function installUploadGuard(getConfig: () => GuardConfig): void {
  if (installed || process.env.FUNCTION_TARGET !== 'upload') return;
  // Refuse to start rather than serve without the authentication asked for (UPLOAD_AUTH).
  uploadAuth(getConfig());
  installed = true;
  const original = http.createServer;
  (http as { createServer: unknown }).createServer = (...args: unknown[]) => {
    const at = args.findIndex((arg) => typeof arg === 'function');
    if (at >= 0) args[at] = guardUploadListener(args[at] as RequestListener, getConfig);
    return (original as (...a: unknown[]) => http.Server).apply(http, args);
  };
}
