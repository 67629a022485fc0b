/**
 * The local stack's front door on PORT: the try-it page (`GET /` and its assets), the variants
 * under `/images/{id}/{file}` streamed from the images bucket (what PUBLIC_BASE_URL points at,
 * standing in for the public bucket), and everything else handed to the `upload` function.
 * One origin for all three, so the page needs no CORS.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { FileMetadata, Storage } from '@google-cloud/storage';
import { isNotFound } from '../shared/core/errors.js';
import { VARIANT_CACHE_CONTROL } from '../shared/core/naming.js';

/** URL path under which the images bucket is served. */
export const IMAGES_PATH = '/images';

/** Where the page reads how the stack authenticates (`{auth, signInUrl?, users?}`). */
export const PAGE_CONFIG_PATH = '/page-config.json';

/** Where the page reads the recent webhook deliveries (`{urls, deliveries}`, docs/webhooks.md). */
export const WEBHOOKS_PATH = '/local/webhooks.json';

/** The page's files: served from the sources (HTML, CSS) and from the build (JavaScript). */
const SOURCE_DIR = fileURLToPath(new URL('../../local/web/', import.meta.url));
const BUILD_DIR = fileURLToPath(new URL('./web/', import.meta.url));
/** The client package's bundle, as it ships; by path, so that it is this checkout's client. */
const CLIENT_BUNDLE = fileURLToPath(new URL('../../client/dist/index.js', import.meta.url));

const STATIC_FILES: Readonly<Record<string, { file: string; type: string }>> = {
  '/': { file: `${SOURCE_DIR}index.html`, type: 'text/html; charset=utf-8' },
  '/index.html': { file: `${SOURCE_DIR}index.html`, type: 'text/html; charset=utf-8' },
  '/styles.css': { file: `${SOURCE_DIR}styles.css`, type: 'text/css; charset=utf-8' },
  '/favicon.svg': { file: `${SOURCE_DIR}favicon.svg`, type: 'image/svg+xml' },
  '/app.js': { file: `${BUILD_DIR}app.js`, type: 'text/javascript; charset=utf-8' },
  // The page is built on the client package (upload, status, list, delete, <picture>, placeholder).
  '/client.js': { file: CLIENT_BUNDLE, type: 'text/javascript; charset=utf-8' },
};

/**
 * The page may load images from anywhere (PUBLIC_BASE_URL may be another host) and local
 * previews, and connect to itself and to the storage server that signed-URL uploads PUT to.
 */
function pageCsp(connectSources: readonly string[]): string {
  return `default-src 'self'; img-src * data: blob:; style-src 'self'; script-src 'self'; connect-src ${["'self'", ...connectSources].join(' ')}; base-uri 'none'; form-action 'self'; frame-ancestors 'none'`;
}

/** Object names the images route serves: `{id}/{file}` and aspect variants `{id}/{W}x{H}/{file}`, nothing else. */
const IMAGE_OBJECT = /^([0-9a-f]{32})\/((?:[1-9]\d*x[1-9]\d*\/)?[A-Za-z0-9._-]+)$/;

/** What the web server needs. */
export interface WebServerOptions {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  readonly storage: () => Storage;
  readonly imagesBucket: () => string;
  /** Everything that is not the page or an image: the upload function. */
  readonly api: RequestListener;
  /** Called for each unexpected failure (a line of text). */
  readonly onError?: (message: string) => void;
  /** Origins the page may connect to besides its own (the storage server, for signed-URL PUTs; the issuer). */
  readonly connectSources?: readonly string[];
  /** What the page reads from `/page-config.json` (how it signs in). */
  readonly pageConfig?: unknown;
  /** What the page reads from {@link WEBHOOKS_PATH}: the receivers and their recent deliveries. */
  readonly webhookDeliveries?: () => Promise<unknown>;
}

/** A running web server. */
export interface WebServer {
  readonly server: Server;
  readonly port: number;
}

function plain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(text);
}

async function serveStatic(
  req: IncomingMessage,
  res: ServerResponse,
  entry: { file: string; type: string },
  csp: string,
): Promise<void> {
  let body: Buffer;
  try {
    body = await readFile(entry.file);
  } catch {
    plain(
      res,
      500,
      `${entry.file} is missing. Run "npm run build" (it builds client/ and local/web/ too), then reload.`,
    );
    return;
  }
  res.writeHead(200, {
    'Content-Type': entry.type,
    'Content-Length': body.length,
    'Cache-Control': 'no-cache',
    'X-Content-Type-Options': 'nosniff',
    ...(entry.type.startsWith('text/html') ? { 'Content-Security-Policy': csp, 'Referrer-Policy': 'no-referrer' } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * Streams `{id}/{file}` from the images bucket the way the public bucket would serve it: the
 * object's Content-Type and Cache-Control (variants are immutable), an ETag, 304 on a match.
 */
async function serveImage(
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
  options: WebServerOptions,
): Promise<void> {
  if (!IMAGE_OBJECT.test(name)) return plain(res, 404, 'Not found');
  const bucket = options.storage().bucket(options.imagesBucket());
  let metadata: FileMetadata;
  try {
    [metadata] = await bucket.file(name).getMetadata();
  } catch (error) {
    if (isNotFound(error)) return plain(res, 404, 'Not found');
    throw error;
  }
  const etag = `"${metadata.md5Hash ?? metadata.etag ?? metadata.generation}"`;
  const headers: Record<string, string | number> = {
    'Content-Type': metadata.contentType ?? 'application/octet-stream',
    'Cache-Control': metadata.cacheControl ?? VARIANT_CACHE_CONTROL,
    ETag: etag,
    'X-Content-Type-Options': 'nosniff',
    'Access-Control-Allow-Origin': '*',
  };
  if (metadata.updated) headers['Last-Modified'] = new Date(metadata.updated).toUTCString();
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return;
  }
  headers['Content-Length'] = Number(metadata.size ?? 0);
  if (req.method === 'HEAD') {
    res.writeHead(200, headers);
    res.end();
    return;
  }
  const stream = bucket.file(name, { generation: Number(metadata.generation) }).createReadStream({ validation: false });
  await new Promise<void>((resolve) => {
    // Headers go out with the first byte, so a read that fails at once can still answer 404/502.
    let started = false;
    const start = () => {
      if (!started) res.writeHead(200, headers);
      started = true;
    };
    stream.on('data', (chunk: Buffer) => {
      start();
      if (!res.write(chunk)) {
        stream.pause();
        res.once('drain', () => stream.resume());
      }
    });
    stream.once('end', () => {
      start();
      res.end();
      resolve();
    });
    stream.once('error', (error) => {
      if (!started) plain(res, isNotFound(error) ? 404 : 502, isNotFound(error) ? 'Not found' : 'Storage read failed');
      else res.destroy();
      resolve();
    });
    res.once('close', () => {
      if (!res.writableFinished) stream.destroy();
      resolve();
    });
  });
}

/** Starts the web server; resolves once it listens. */
export async function startWebServer(options: WebServerOptions): Promise<WebServer> {
  const csp = pageCsp(options.connectSources ?? []);
  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const isRead = req.method === 'GET' || req.method === 'HEAD';
    const entry = STATIC_FILES[path];
    if (isRead && entry) return serveStatic(req, res, entry, csp);
    if (isRead && path === PAGE_CONFIG_PATH) {
      const body = JSON.stringify(options.pageConfig ?? { auth: 'none' });
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (req.method === 'GET' && path === WEBHOOKS_PATH && options.webhookDeliveries) {
      const body = JSON.stringify(await options.webhookDeliveries());
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(body);
      return;
    }
    if (path.startsWith(`${IMAGES_PATH}/`)) {
      if (!isRead) {
        res.setHeader('Allow', 'GET, HEAD');
        return plain(res, 405, 'Method not allowed');
      }
      let name: string;
      try {
        name = decodeURIComponent(path.slice(IMAGES_PATH.length + 1));
      } catch {
        return plain(res, 400, 'Bad path');
      }
      return serveImage(req, res, name, options);
    }
    options.api(req, res);
  };
  const server = createServer((req, res) => {
    handler(req, res).catch((error: unknown) => {
      options.onError?.(
        `web server: ${req.method} ${req.url} failed: ${error instanceof Error ? error.message : String(error)}`,
      );
      if (!res.headersSent) plain(res, 500, 'Internal error');
      else res.destroy();
    });
  });
  await listen(server, options.port, options.host);
  return { server, port: (server.address() as AddressInfo).port };
}

/** Listens; rejects with the listen error (EADDRINUSE and friends). */
export function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
