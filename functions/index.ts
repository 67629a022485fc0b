/**
 * The five entry points, as deployed (`entry_point` in terraform/functions.tf) and served by the
 * local stack. Nothing else lives here.
 */
import { cloudEvent, http } from '@google-cloud/functions-framework';
import { createCleanupHandler } from './cleanup.js';
import { createIngestHandler } from './ingest.js';
import { createResizeHandler } from './resize.js';
import { getDeps } from './runtime.js';
import { installUploadGuard, requireScreening } from './upload-guard.js';
import { createUploadHandler } from './upload.js';
import { createWebhooksHandler } from './webhooks.js';

// On Cloud Run (K_SERVICE is set) validate the configuration at cold start, so a bad variable
// fails the deployment's first instance loudly instead of the first request.
if (process.env.K_SERVICE) getDeps();
// Where this process serves upload, screen requests before functions-framework parses bodies,
// and refuse any request that reaches the handler without that screening.
const guarded = installUploadGuard(() => getDeps().config);

/** HTTP: POST /uploads, GET /uploads/{id}, GET /healthz. */
export const upload = createUploadHandler(getDeps);
/** CloudEvent: object finalized in the uploads bucket. */
export const ingest = createIngestHandler(getDeps);
/** CloudEvent: a job on the jobs topic (push subscription). */
export const resize = createResizeHandler(getDeps);
/** CloudEvent: a tick on the cleanup topic. */
export const cleanup = createCleanupHandler(getDeps);
/** CloudEvent: an event on the events topic (push subscription), POSTed signed to WEBHOOK_URLS. */
export const webhooks = createWebhooksHandler(getDeps);

http(
  'upload',
  requireScreening(
    upload,
    () => guarded,
    (req) => getDeps().log.error('a request bypassed the upload guard', { event: 'http.unguarded', path: req.path }),
  ),
);
cloudEvent('ingest', ingest);
cloudEvent('resize', resize);
cloudEvent('cleanup', cleanup);
cloudEvent('webhooks', webhooks);
