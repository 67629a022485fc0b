/**
 * Notifications: the storage server's CloudEvents reach a real Functions Framework CloudEvent
 * function (served by `getTestServer` on a real port), which sees them as it would see
 * Eventarc's: type, source, subject, and the object resource as `data`.
 */
import type { Server } from 'node:http';
import { expect } from 'chai';
import { Storage, type Bucket } from '@google-cloud/storage';
import * as functions from '@google-cloud/functions-framework';
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { CloudEvent } from '@google-cloud/functions-framework';
import { startStorageServer, type StorageServer } from '../../local/storage-server/index.js';
import { Changes, listen } from '../helpers.js';

interface ObjectData {
  bucket: string;
  name: string;
  generation: string;
  size: string;
  md5Hash?: string;
  contentType: string;
}

/** Events the function has received, and a way to wait for the next ones. */
class Inbox {
  readonly events: Array<CloudEvent<ObjectData>> = [];
  /** How many deliveries to fail (the function throws, so the framework answers 500). */
  failNext = 0;
  private readonly changes = new Changes();

  receive(event: CloudEvent<ObjectData>): void {
    this.events.push(event);
    this.changes.notify();
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('simulated function failure');
    }
  }

  /** Resolves once `count` events have arrived in total; fails after `timeoutMs`. */
  async waitFor(count: number, timeoutMs = 5_000): Promise<Array<CloudEvent<ObjectData>>> {
    return this.changes.until(
      `${count} events (got ${this.events.length})`,
      () => (this.events.length >= count ? this.events : undefined),
      timeoutMs,
    );
  }
}

describe('storage server: Eventarc-style notifications', function () {
  const inbox = new Inbox();
  let functionServer: Server;
  let functionUrl: string;
  let server: StorageServer;
  let bucket: Bucket;
  const log: string[] = [];

  before(async () => {
    functions.cloudEvent<ObjectData>('storageServerNotificationProbe', (event: CloudEvent<ObjectData>) =>
      inbox.receive(event),
    );
    functionServer = getTestServer('storageServerNotificationProbe');
    functionUrl = `http://127.0.0.1:${await listen(functionServer)}/`;
    server = await startStorageServer({
      buckets: ['events'],
      log: (line) => log.push(line),
      notificationRetry: { attempts: 4, initialDelayMs: 20, maxDelayMs: 100 },
    });
    bucket = new Storage({ apiEndpoint: server.url, projectId: 'demo-project' }).bucket('events');
  });

  after(async () => {
    await server?.stop();
    await new Promise<void>((resolve) => functionServer?.close(() => resolve()));
  });

  beforeEach(() => {
    inbox.events.length = 0;
    inbox.failNext = 0;
    server.removeNotifications('events');
  });

  it('a finalize CloudEvent reaches a functions-framework CloudEvent function', async () => {
    server.addNotification('events', functionUrl);
    await bucket.file('incoming/photo 1.jpg').save('jpeg bytes', { contentType: 'image/jpeg' });
    const [event] = await inbox.waitFor(1);
    expect(event!.type).to.equal('google.cloud.storage.object.v1.finalized');
    expect(event!.source).to.equal('//storage.googleapis.com/projects/_/buckets/events');
    expect(event!.subject).to.equal('objects/incoming/photo 1.jpg');
    expect(event!.specversion).to.equal('1.0');
    expect(event!.id).to.be.a('string').and.not.empty;
    expect(Date.parse(event!.time!)).to.be.a('number').and.not.NaN;
    expect(event!.data).to.include({
      bucket: 'events',
      name: 'incoming/photo 1.jpg',
      size: '10',
      contentType: 'image/jpeg',
    });
    expect(event!.data!.generation).to.equal((await bucket.file('incoming/photo 1.jpg').getMetadata())[0].generation);
  });

  it('a failed delivery is retried with the same id until the function succeeds', async () => {
    server.addNotification('events', functionUrl);
    inbox.failNext = 2;
    // The framework prints the function's errors; these two are expected.
    const printError = console.error;
    console.error = () => undefined;
    let events: Array<CloudEvent<ObjectData>>;
    try {
      await bucket.file('retried.txt').save('x');
      events = await inbox.waitFor(3);
    } finally {
      console.error = printError;
    }
    expect(new Set(events.map((e) => e.id)).size).to.equal(1);
    expect(
      events.map((e) => e.data?.name),
      'the object each delivery names',
    ).to.deep.equal(events.map(() => 'retried.txt'));
    expect(log.filter((line) => line.includes('retrying in'))).to.have.length(2);
  });

  it('delete subscribers get deletes, including the generation an overwrite replaced; finalize-only subscribers do not', async () => {
    server.addNotification('events', functionUrl, { events: ['delete'] });
    const file = bucket.file('replaced.txt');
    await file.save('first');
    const firstGeneration = file.metadata.generation;
    await file.save('second');
    const [overwritten] = await inbox.waitFor(1);
    expect(overwritten!.type).to.equal('google.cloud.storage.object.v1.deleted');
    expect(overwritten!.data!.generation).to.equal(firstGeneration);
    await file.delete();
    const events = await inbox.waitFor(2);
    expect(events[1]!.type).to.equal('google.cloud.storage.object.v1.deleted');
    expect(events[1]!.data!.generation).to.equal(file.metadata.generation);
    expect(events).to.have.length(2);
  });

  it('copies announce their destination; removed notifications stop delivery', async () => {
    server.addNotification('events', functionUrl);
    await bucket.file('copy-source.txt').save('s');
    await bucket.file('copy-source.txt').copy('copy-destination.txt');
    const events = await inbox.waitFor(2);
    expect(events.map((e) => e.subject).sort()).to.deep.equal([
      'objects/copy-destination.txt',
      'objects/copy-source.txt',
    ]);

    server.removeNotifications('events');
    await bucket.file('unannounced.txt').save('quiet');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(inbox.events).to.have.length(2);
  });
});
