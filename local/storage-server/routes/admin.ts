/**
 * `/_admin/…`: control of a server started by another process (the CLI, the local stack), so a
 * test can inject faults, wire notifications and seed objects over HTTP. Not part of Cloud
 * Storage's API; the endpoints are listed in the README's "Admin endpoint".
 */
import { StorageApiError, badRequest } from '../api-errors.js';
import { readBody, type RequestContext } from '../http.js';
import { sendEmpty, sendJson } from '../responses.js';
import { faultFromJson } from '../faults.js';
import { bulkCreate } from './bulk.js';
import type { NotificationEvent } from '../notifications.js';
import { parseJsonBody } from '../resources.js';

async function jsonObject(ctx: RequestContext): Promise<Record<string, unknown>> {
  const body = parseJsonBody(await readBody(ctx.req, 1024 * 1024));
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw badRequest('The body must be a JSON object');
  return body as Record<string, unknown>;
}

/** Turns the TypeErrors of the fault and notification registries into 400s. */
function asBadRequest<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof TypeError) throw badRequest(error.message);
    throw error;
  }
}

/** Handles one admin request; `path` is the part after `/_admin`. */
export async function handleAdmin(ctx: RequestContext, path: string): Promise<void> {
  const method = ctx.req.method ?? 'GET';
  if (path === '/health' && method === 'GET') {
    return sendJson(ctx.res, 200, {
      ok: true,
      buckets: ctx.store.listBuckets().length,
      openUploads: ctx.sessions.open,
    });
  }
  if (path === '/bulk' && method === 'POST') return bulkCreate(ctx);
  if (path === '/faults') {
    if (method === 'POST') {
      const spec = faultFromJson(await jsonObject(ctx));
      asBadRequest(() => ctx.faults.add(spec));
      return sendJson(ctx.res, 201, { active: ctx.faults.active });
    }
    if (method === 'DELETE') {
      ctx.faults.clear();
      return sendEmpty(ctx.res, 204);
    }
  }
  if (path === '/notifications') {
    if (method === 'GET') return sendJson(ctx.res, 200, ctx.notifier.list());
    if (method === 'POST') {
      const body = await jsonObject(ctx);
      const { bucket, url, events } = body;
      if (typeof bucket !== 'string' || bucket === '') throw badRequest('Required: bucket', 'required');
      if (typeof url !== 'string' || url === '') throw badRequest('Required: url', 'required');
      if (events !== undefined && (!Array.isArray(events) || !events.every((e) => typeof e === 'string'))) {
        throw badRequest('events must be an array such as ["finalize","delete"]');
      }
      asBadRequest(() => ctx.notifier.add(bucket, url, events as NotificationEvent[] | undefined));
      return sendJson(ctx.res, 201, ctx.notifier.list());
    }
    if (method === 'DELETE') {
      const bucket = ctx.url.searchParams.get('bucket');
      if (bucket) ctx.notifier.remove(bucket);
      else for (const name of Object.keys(ctx.notifier.list())) ctx.notifier.remove(name);
      return sendEmpty(ctx.res, 204);
    }
  }
  throw new StorageApiError(404, `Unknown admin endpoint: ${method} /_admin${path}`, 'notFound');
}
