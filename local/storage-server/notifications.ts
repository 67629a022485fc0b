/**
 * Eventarc-style notifications: on finalize (and delete) a binary-mode CloudEvent is POSTed to every
 * URL registered for the bucket, asynchronously and at least once (retried with backoff under the
 * same `ce-id`, so receivers can deduplicate). Headers and body: the README's "What it covers".
 */
import { randomUUID } from 'node:crypto';
import type { ObjectRecord } from './object-records.js';
import { objectResource } from './resources.js';

/** The object events a notification can subscribe to. */
export type NotificationEvent = 'finalize' | 'delete';

const EVENT_TYPES: Record<NotificationEvent, string> = {
  finalize: 'google.cloud.storage.object.v1.finalized',
  delete: 'google.cloud.storage.object.v1.deleted',
};

/** One subscription: a URL and the events it wants. */
export interface NotificationTarget {
  url: string;
  events: NotificationEvent[];
}

/** Backoff between delivery attempts, in ms; tests shorten it through the constructor. */
export interface RetryPolicy {
  attempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 8, initialDelayMs: 250, maxDelayMs: 10_000 };

/** Holds subscriptions per bucket and delivers events to them. */
export class Notifier {
  private readonly targets = new Map<string, NotificationTarget[]>();
  private readonly pending = new Set<Promise<void>>();
  private readonly abort = new AbortController();

  constructor(
    private readonly log: (line: string) => void,
    private readonly retry: RetryPolicy = DEFAULT_RETRY,
  ) {}

  /** Subscribes `url` to the bucket's events (default: finalize only, like a typical trigger). */
  add(bucket: string, url: string, events: NotificationEvent[] = ['finalize']): void {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError(`Notification URL is not a URL: ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new TypeError(`Notification URL must be http(s): ${url}`);
    for (const event of events) {
      if (!(event in EVENT_TYPES))
        throw new TypeError(`Unknown notification event ${JSON.stringify(event)}; use finalize or delete`);
    }
    const list = this.targets.get(bucket) ?? [];
    list.push({ url, events: [...new Set(events)] });
    this.targets.set(bucket, list);
  }

  /** Removes every subscription of the bucket. */
  remove(bucket: string): void {
    this.targets.delete(bucket);
  }

  /** The subscriptions, by bucket (for the admin endpoint). */
  list(): Record<string, NotificationTarget[]> {
    return Object.fromEntries(
      [...this.targets].map(([bucket, list]) => [bucket, list.map((t) => ({ ...t, events: [...t.events] }))]),
    );
  }

  /** Announces an event for `record` to the bucket's subscribers. Never throws, never waits. */
  emit(event: NotificationEvent, record: ObjectRecord, baseUrl: string): void {
    const subscribers = (this.targets.get(record.bucket) ?? []).filter((target) => target.events.includes(event));
    if (subscribers.length === 0) return;
    const body = JSON.stringify(objectResource(record, baseUrl));
    const headers = {
      'Content-Type': 'application/json',
      'ce-specversion': '1.0',
      'ce-type': EVENT_TYPES[event],
      'ce-source': `//storage.googleapis.com/projects/_/buckets/${record.bucket}`,
      'ce-subject': headerSafe(`objects/${record.name}`),
      'ce-id': randomUUID(),
      'ce-time': event === 'finalize' ? record.updated : new Date().toISOString(),
      'ce-bucket': record.bucket,
    };
    for (const target of subscribers) {
      const delivery = this.deliver(target.url, headers, body).finally(() => this.pending.delete(delivery));
      this.pending.add(delivery);
    }
  }

  /** Resolves when every delivery in flight has succeeded or given up (for tests). */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }

  /** Abandons deliveries in flight and pending retries. */
  async stop(): Promise<void> {
    this.abort.abort();
    await Promise.allSettled([...this.pending]);
  }

  private async deliver(url: string, headers: Record<string, string>, body: string): Promise<void> {
    const { signal } = this.abort;
    let delay = this.retry.initialDelayMs;
    for (let attempt = 1; attempt <= this.retry.attempts && !signal.aborted; attempt++) {
      let problem: string;
      try {
        const response = await fetch(url, { method: 'POST', headers, body, signal });
        // Drain the body so the connection can be reused.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return;
        problem = `HTTP ${response.status}`;
      } catch (error) {
        if (signal.aborted) return;
        problem = error instanceof Error ? error.message : String(error);
      }
      if (attempt === this.retry.attempts) {
        this.log(
          `storage-server: giving up delivering ${headers['ce-type']} for ${headers['ce-subject']} to ${url} after ${attempt} attempts (${problem})`,
        );
        return;
      }
      this.log(
        `storage-server: delivering ${headers['ce-type']} to ${url} failed (${problem}); retrying in ${delay} ms`,
      );
      await new Promise<void>((resolve) => {
        const onAbort = (): void => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        }, delay);
        signal.addEventListener('abort', onAbort, { once: true });
      });
      delay = Math.min(delay * 2, this.retry.maxDelayMs);
    }
  }
}

/**
 * A CloudEvents attribute as an HTTP header value: characters that cannot stand in a header
 * (controls such as NUL and newlines, anything outside ASCII) are percent-encoded as UTF-8, as the
 * CloudEvents HTTP binding does, and so is `%` itself so the value decodes unambiguously. Plain
 * names (spaces included) pass unchanged.
 */
export function headerSafe(value: string): string {
  return [...value]
    .map((char) => {
      // A character of a string always has a code point; 0 would be percent-encoded anyway.
      const code = char.codePointAt(0) ?? 0;
      if (code >= 0x20 && code < 0x7f && char !== '%') return char;
      return [...Buffer.from(char, 'utf8')]
        .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)
        .join('');
    })
    .join('');
}
