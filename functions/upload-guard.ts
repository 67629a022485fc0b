/**
 * A guard in front of functions-framework's body parsers, for the `upload` function only.
 *
 * functions-framework parses every request body before the handler runs: it inflates
 * `Content-Encoding: gzip/deflate/br` up to 1 GiB (a 200 KiB gzip bomb becomes 200 MiB in
 * memory) and answers unparseable JSON or broken encodings with Express's HTML error page. The
 * upload API needs none of that: its body is an image or a multipart form. So before the
 * framework sees a request the guard
 *
 * - refuses a path with broken percent-encoding (400 `bad_request`), which Express's router
 *   would answer with its HTML error page,
 * - refuses any `Content-Encoding` but `identity` (415 `unsupported_encoding`, nothing read),
 * - refuses a declared `Content-Length` over the limit (413, nothing read), and
 * - labels every body that is not `multipart/*` as `application/octet-stream`, so only the
 *   framework's raw parser touches it; the format is sniffed from the bytes anyway.
 *
 * Answers carry the same JSON error body and CORS headers as the handler's own.
 */
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { Config } from '../shared/config.js';
import { permanent, toHttpError, type PipelineError } from '../shared/errors.js';
import { corsFor } from '../shared/request-policy.js';
import { MULTIPART_OVERHEAD_BYTES } from '../shared/request-body.js';

type GuardConfig = Pick<Config, 'MAX_UPLOAD_BYTES' | 'CORS_ORIGINS'>;

function refuse(req: IncomingMessage, res: ServerResponse, error: PipelineError, config: GuardConfig): void {
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
  try {
    decodeURIComponent((req.url ?? '/').split('?')[0]!);
  } catch {
    refuse(req, res, permanent('bad_request', 'The request path is not valid.'), config);
    return false;
  }
  const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
  if (encoding !== 'identity' && encoding !== '') {
    refuse(req, res, permanent('unsupported_encoding', 'Send the file without Content-Encoding; images are already compressed.'), config);
    return false;
  }
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > config.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES) {
    const error = permanent('payload_too_large', `The file is larger than the limit of ${config.MAX_UPLOAD_BYTES} bytes.`, {
      maxBytes: config.MAX_UPLOAD_BYTES,
    });
    refuse(req, res, error, config);
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
    if (admitUploadRequest(req, res, getConfig())) listener(req, res);
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
  installed = true;
  const original = http.createServer;
  (http as { createServer: unknown }).createServer = (...args: unknown[]) => {
    const at = args.findIndex((arg) => typeof arg === 'function');
    if (at >= 0) args[at] = guardUploadListener(args[at] as RequestListener, getConfig);
    return (original as (...a: unknown[]) => http.Server).apply(http, args);
  };
}
