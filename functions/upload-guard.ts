/**
 * A guard in front of functions-framework's body parsers, for the `upload` function only: from
 * the request's head alone it refuses bad paths, origins, credentials (an ID token is verified
 * against its issuer's keys while the body waits unread), encodings and sizes, counts chunked
 * bodies, and hands every non-multipart body to the raw parser. What each check answers and why:
 * docs/security.md ("Request bodies"), docs/api.md ("Authentication", "Limits").
 *
 * functions-framework (5.x) parses every body (up to a fixed 1 GiB) before the user function runs
 * and has no option to change that or to add middleware, so the guard has to sit in front of its
 * app. It gets there through Node's documented `http.server.request.start` diagnostics channel
 * (published for each request before the server's 'request' event), whatever creates the server;
 * and the registered handler refuses any request the guard did not admit ({@link requireScreening}),
 * so a framework that one day escapes the channel fails every request instead of going unguarded.
 */
import { subscribe } from 'node:diagnostics_channel';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Config } from '../shared/core/config.js';
import { uploadAuth } from '../shared/auth/settings.js';
import { authenticateRequest } from '../shared/auth/authenticate.js';
import type { IdTokenVerifier } from '../shared/auth/jwt.js';
import { OWNER_HEADER } from '../shared/auth/principal.js';
import { PipelineError, permanent, toHttpError } from '../shared/core/errors.js';
import { corsFor, routePath, screenRequest, withoutQuery } from '../shared/http/request-policy.js';
import { MULTIPART_OVERHEAD_BYTES } from '../shared/http/request-body.js';

type GuardConfig = Pick<Config, 'MAX_UPLOAD_BYTES' | 'CORS_ORIGINS' | 'UPLOAD_AUTH' | 'UPLOAD_TOKEN'> &
  Partial<Pick<Config, 'JWT_ISSUER' | 'JWT_AUDIENCE' | 'JWT_JWKS_URL'>>;

/** How the guard checks ID tokens; default: the instance's verifier for the configured issuer. */
export interface GuardOptions {
  readonly verify?: IdTokenVerifier;
}

/**
 * How much of a refused body is read and thrown away before the connection closes, as a multiple
 * of the upload limit, and for how long. Closing while the client is still sending makes the
 * server's TCP stack reset the connection, and clients that are still writing (Node's fetch,
 * browsers) then often report a network error instead of the answer already sent to them (the
 * "staged close" of RFC 9112 §9.6). Past either bound the connection is cut.
 */
const DRAIN_LIMITS = 4;
const DRAIN_MS = 20_000;

/** Requests the guard admitted; see {@link requireScreening}. */
const admitted = new WeakSet<IncomingMessage>();

/** Bodies capBody counts, so that a refusal can take over the rest of them. */
const caps = new WeakMap<IncomingMessage, { discard: (drain: Drain) => void }>();

/** Where refuse wants the rest of a body to go. */
interface Drain {
  /** Bytes to discard before giving up on the client. */
  bytes: number;
  /** The body ended within the bound. */
  onEnd: () => void;
  /** The body went past the bound. */
  onOver: () => void;
}

function tooLarge(config: GuardConfig): PipelineError {
  return permanent('payload_too_large', `The file is larger than the limit of ${config.MAX_UPLOAD_BYTES} bytes.`, {
    maxBytes: config.MAX_UPLOAD_BYTES,
  });
}

function drainBytes(config: Partial<Pick<GuardConfig, 'MAX_UPLOAD_BYTES'>>): number {
  return DRAIN_LIMITS * ((config.MAX_UPLOAD_BYTES ?? 32 * 1024 * 1024) + MULTIPART_OVERHEAD_BYTES);
}

/**
 * Counts a body's bytes as the HTTP parser hands them over (`push`, before any reader sees
 * them); past `limit` `onOver` answers and the rest is discarded, never passed on, so the
 * framework's parser never completes and the handler never runs. This wraps `push` on this one
 * request: a 'data' listener would start the stream flowing before the framework's parser
 * listens, and the framework has no body limit to set.
 */
function capBody(req: IncomingMessage, limit: number, onOver: () => void): void {
  // What arrived while the caller was authenticated waits in the stream's buffer, unread.
  let seen = req.readableLength;
  let discard: ((size: number) => void) | undefined;
  const push = req.push.bind(req);
  caps.set(req, {
    discard: (drain) => {
      discard = discarder(drain);
    },
  });
  req.push = (chunk: unknown, encoding?: BufferEncoding) => {
    const size = chunk === null || chunk === undefined ? -1 : (chunk as Buffer).length;
    if (!discard && size >= 0 && seen + size > limit) onOver();
    if (discard) {
      discard(size);
      return true;
    }
    seen += Math.max(size, 0);
    return push(chunk, encoding);
  };
}

/** Counts discarded chunks (`-1`: the body's end) against a {@link Drain}. */
function discarder(drain: Drain): (size: number) => void {
  let discarded = 0;
  return (size) => {
    if (size < 0) {
      drain.onEnd();
      return;
    }
    discarded += size;
    if (discarded > drain.bytes) drain.onOver();
  };
}

/**
 * Reads and discards the rest of a body, wherever it is going (capBody's, or one nobody reads).
 */
function discardRest(req: IncomingMessage, drain: Drain): void {
  const cap = caps.get(req);
  if (cap) {
    cap.discard(drain);
    return;
  }
  const discard = discarder(drain);
  req.on('data', (chunk: Buffer) => discard(chunk.length));
  req.once('end', () => discard(-1));
  req.resume();
}

/**
 * Answers with `error` as JSON at once (the whole answer, with its Content-Length), then reads
 * and discards the rest of the body within the bounds above before ending the response, which
 * closes the connection (`Connection: close`: Node closes the socket when such a response ends).
 */
function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  error: unknown,
  config: Pick<GuardConfig, 'CORS_ORIGINS'> & Partial<Pick<GuardConfig, 'MAX_UPLOAD_BYTES'>>,
): void {
  const { status, body } = toHttpError(error);
  const origin = req.headers.origin;
  const cors = corsFor(typeof origin === 'string' ? origin : undefined, config.CORS_ORIGINS);
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...(cors.allowed ? cors.headers : {}),
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    Connection: 'close',
  });
  res.write(text);
  const timer = setTimeout(() => req.socket.destroy(), DRAIN_MS).unref();
  res.once('close', () => clearTimeout(timer));
  discardRest(req, {
    bytes: drainBytes(config),
    onEnd: () => res.end(),
    onOver: () => req.socket.destroy(),
  });
}

/**
 * Checks a request before any body parser runs: path and origin, then the caller (an ID token is
 * verified asynchronously; meanwhile the body waits in the socket, unread), then encoding and
 * size. Resolves to false when it answered the request itself (and the request must go no further).
 */
export async function admitUploadRequest(
  req: IncomingMessage,
  res: ServerResponse,
  config: GuardConfig,
  options: GuardOptions = {},
): Promise<boolean> {
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
  const screening = screenRequest(
    { method: req.method ?? 'GET', path: routePath(url), origin: header('origin') },
    config.CORS_ORIGINS,
  );
  if (screening.error) {
    refuse(req, res, screening.error, config);
    return false;
  }
  if (!screening.open) {
    const head = { authorization: header('authorization'), owner: header(OWNER_HEADER) };
    try {
      await authenticateRequest(req, head, uploadAuth(config), options.verify);
    } catch (error) {
      refuse(req, res, error, config);
      return false;
    }
    // The client may have given up while its token was checked.
    if (req.destroyed) return false;
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
  admitted.add(req);
  return true;
}

/** Wraps a request listener (functions-framework's app for `upload`) with the guard. */
export function guardUploadListener(
  listener: RequestListener,
  getConfig: () => GuardConfig,
  options: GuardOptions = {},
): RequestListener {
  return (req, res) => {
    let config: GuardConfig;
    try {
      config = getConfig();
      // A configuration that cannot authenticate refuses everything.
      uploadAuth(config);
    } catch (error) {
      refuse(req, res, error, { CORS_ORIGINS: [] });
      return;
    }
    admitUploadRequest(req, res, config, options).then(
      (admitted) => {
        if (admitted) listener(req, res);
      },
      (error: unknown) => {
        if (!res.headersSent) refuse(req, res, error, config);
      },
    );
  };
}

/**
 * Puts the guard in front of `server`'s request listeners (functions-framework's app), once.
 * Called for a server's first request, before the server emits it, so that request is screened too.
 */
function guardServer(server: Server, getConfig: () => GuardConfig): void {
  const listeners = server.listeners('request') as RequestListener[];
  server.removeAllListeners('request');
  const all: RequestListener = (req, res) => {
    for (const listener of listeners) listener.call(server, req, res);
  };
  server.on('request', guardUploadListener(all, getConfig));
}

let installed = false;

/**
 * Whether this process serves the `upload` function: FUNCTION_TARGET (set by Cloud Functions), or
 * `functions-framework --target=upload` (or `--target upload`) on the command line.
 */
export function servesUpload(env: NodeJS.ProcessEnv, argv: readonly string[]): boolean {
  return (
    env.FUNCTION_TARGET === 'upload' ||
    argv.some((arg, i) => arg === '--target=upload' || (arg === '--target' && argv[i + 1] === 'upload'))
  );
}

/**
 * When this process serves the `upload` function ({@link servesUpload}), screens every request its
 * HTTP server receives with the guard. Returns whether it did (so whether {@link requireScreening}
 * should insist).
 */
export function installUploadGuard(
  getConfig: () => GuardConfig,
  env: NodeJS.ProcessEnv = process.env,
  argv: readonly string[] = process.argv,
): boolean {
  if (installed) return true;
  if (!servesUpload(env, argv)) return false;
  // Refuse to start rather than serve without the authentication asked for (UPLOAD_AUTH).
  uploadAuth(getConfig());
  installed = true;
  const guarded = new WeakSet<Server>();
  subscribe('http.server.request.start', (message) => {
    const { server } = message as { server: Server };
    if (guarded.has(server)) return;
    guarded.add(server);
    guardServer(server, getConfig);
  });
  return true;
}

/**
 * Wraps the `upload` handler: while `required()` (the guard is installed), a request the guard
 * did not admit is answered 500 and never handled, so the guard cannot be bypassed silently.
 */
export function requireScreening<R extends IncomingMessage, S extends ServerResponse, T>(
  handler: (req: R, res: S) => T,
  required: () => boolean,
  onBypass: (req: R) => void = () => undefined,
): (req: R, res: S) => T | undefined {
  return (req, res) => {
    if (!required() || admitted.has(req)) return handler(req, res);
    onBypass(req);
    const { status, body } = toHttpError(
      new PipelineError('internal', 'The request reached the upload handler without the upload guard; refused.'),
    );
    res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end(JSON.stringify(body));
    return undefined;
  };
}
