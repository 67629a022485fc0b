/**
 * A local Cloud Storage server for tests and the local stack: the JSON API subset that
 * @google-cloud/storage 7 and the gcloud CLI use, in memory or persisted to a directory, with
 * Eventarc-style notifications and fault injection. Production always talks to Cloud Storage.
 * See the README section "Local Cloud Storage server".
 */
export { startStorageServer, type StorageServer, type StorageServerOptions } from './server.js';
export type { FaultSpec } from './faults.js';
export type { ArrivedRequest, HeldRequests, RecordedRequests, RequestMatch } from './observer.js';
export type { NotificationEvent } from './notifications.js';
