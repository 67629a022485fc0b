/**
 * The resumable upload sessions of one server, in memory: what each has received and how it
 * ended. Pure bookkeeping; the HTTP side is routes/uploads.ts.
 */
import { randomUUID } from 'node:crypto';
import type { StorageApiError } from './api-errors.js';
import type { ClaimedHashes } from './checksums.js';
import type { ObjectRecord, WritableObjectFields } from './object-records.js';
import type { Preconditions } from './preconditions.js';

/** One resumable upload session. */
export interface UploadSession {
  id: string;
  bucket: string;
  name: string;
  fields: WritableObjectFields;
  preconditions: Preconditions;
  claimedInMetadata: ClaimedHashes;
  /** From `X-Upload-Content-Length`, when the client announced the size. */
  announcedSize: number | undefined;
  chunks: Buffer[];
  received: number;
  /** Set once the object is committed; later status queries answer it again. */
  result: ObjectRecord | undefined;
  /** Set when finalizing failed for good (precondition, checksum); later requests answer it. */
  failure: StorageApiError | undefined;
  /** Serialises requests to one session so chunks never interleave. */
  queue: Promise<void>;
  /** Last request to the session (ms since the epoch), for expiry. */
  touched: number;
}

/** Cloud Storage expires resumable sessions after a week. */
const OPEN_SESSION_LIFETIME_MS = 7 * 24 * 60 * 60 * 1000;
/** Finished sessions are kept a while so a client that lost the final answer can ask again. */
const FINISHED_SESSION_LIFETIME_MS = 60 * 60 * 1000;

/** The open (and recently finished) resumable sessions of one server, in memory. */
export class UploadSessions {
  private readonly sessions = new Map<string, UploadSession>();

  create(
    session: Omit<UploadSession, 'id' | 'chunks' | 'received' | 'result' | 'failure' | 'queue' | 'touched'>,
  ): UploadSession {
    this.prune();
    const full: UploadSession = {
      ...session,
      id: randomUUID().replace(/-/g, ''),
      chunks: [],
      received: 0,
      result: undefined,
      failure: undefined,
      queue: Promise.resolve(),
      touched: Date.now(),
    };
    this.sessions.set(full.id, full);
    return full;
  }

  get(id: string): UploadSession | undefined {
    const session = this.sessions.get(id);
    if (session) session.touched = Date.now();
    return session;
  }

  /** Forgets expired sessions, so abandoned uploads do not hold their bytes forever. */
  private prune(): void {
    const now = Date.now();
    for (const [id, session] of this.sessions) {
      const lifetime = session.result || session.failure ? FINISHED_SESSION_LIFETIME_MS : OPEN_SESSION_LIFETIME_MS;
      if (now - session.touched > lifetime) this.sessions.delete(id);
    }
  }

  delete(id: string): boolean {
    return this.sessions.delete(id);
  }

  /** Sessions still receiving bytes. */
  get open(): number {
    return [...this.sessions.values()].filter((s) => !s.result && !s.failure).length;
  }
}
