/**
 * Signed webhooks end to end on this machine: events published on the events topic reach the
 * real `webhooks` function through a real Pub/Sub emulator push subscription, which POSTs them to
 * real receiver HTTP servers. A receiver that answers 500 twice, then 200, gets exactly one
 * accepted delivery per event, every attempt with the same `webhook-id` and a signature that
 * an independent implementation (node:crypto, written here) verifies; a receiver that answers
 * 410 gets nothing after that; one that does not answer within 10 s is retried. The spacing of
 * the retries is printed. A second suite moves the clock past WEBHOOK_RETRY_HOURS: the event
 * goes to the webhook dead-letter topic and no receiver hears of it again. A third uploads an
 * image with metadata through the API: its receiver gets the signed `upload.ready` carrying it.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import type { Message } from '@google-cloud/pubsub';
import { expect } from 'chai';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { createLogger } from '../../shared/cloud/log.js';
import { publishEvent } from '../../shared/cloud/publish.js';
import type { EventMessage } from '../../shared/core/schemas.js';
import { topology } from '../../shared/core/topology.js';
import { keyOf } from '../../shared/core/webhook.js';
import { pullJobs, startTestPipeline, TEST_PROJECT } from '../fixtures/pipeline.js';
import { makePhoto } from '../fixtures/images.js';
import { runJob } from '../../shared/pipeline/run-job.js';
import request from 'supertest';
import { publicBaseUrl } from '../../shared/core/config.js';
import { Changes, close, listen } from '../helpers.js';

const KEY = randomBytes(24);
const SECRET = `whsec_${KEY.toString('base64')}`;

/** One request a receiver got. */
interface Received {
  readonly id: string;
  readonly timestamp: string;
  readonly signature: string;
  readonly body: string;
  readonly at: number;
  /** The status answered (undefined: no answer, the request was left hanging). */
  status?: number;
}

/** Standard Webhooks' v1 signature, verified with node:crypto only (not the package the function signs with). */
function verifiedIndependently(r: Received, key: Buffer): boolean {
  const expected = createHmac('sha256', key).update(`${r.id}.${r.timestamp}.${r.body}`).digest();
  return r.signature.split(' ').some((part) => {
    const [version, value] = part.split(',');
    const given = Buffer.from(value ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** A receiver on 127.0.0.1 whose answer to the n-th request (1-based) for a webhook-id is `answer(n)`. */
async function receiver(changes: Changes, answer: (n: number) => number | 'hang') {
  const received: Received[] = [];
  const hanging = new Set<ServerResponse>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = {
        id: String(req.headers['webhook-id']),
        timestamp: String(req.headers['webhook-timestamp']),
        signature: String(req.headers['webhook-signature']),
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      received.push(r);
      const reply = answer(received.filter((x) => x.id === r.id).length);
      if (reply === 'hang') hanging.add(res);
      else {
        r.status = reply;
        res.writeHead(reply, { 'content-type': 'text/plain' }).end(reply < 300 ? 'ok' : `no (${reply})`);
      }
      changes.notify();
    });
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/hook`,
    received,
    accepted: (id: string) => received.filter((r) => r.id === id && r.status !== undefined && r.status < 300),
    stop: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await close(server);
    },
  };
}

type Receiver = Awaited<ReturnType<typeof receiver>>;

/** Starts a pipeline whose config lists `urls`, the webhooks function served and pushed to by the emulator. */
async function startWebhooks(urls: string[], env: Record<string, string> = {}, changes?: Changes) {
  const suffix = `${process.pid}-${Date.now().toString(36)}`;
  const pipeline = await startTestPipeline({
    WEBHOOK_URLS: urls.join(','),
    WEBHOOK_SECRET: SECRET,
    WEBHOOK_DEAD_LETTER_TOPIC: `webhooks-dead-letter-${suffix}`,
    ...env,
  });
  // The function's log lines are kept, and wake the waiters (a settled event is a log line).
  const logs = pipeline.logs;
  const log = createLogger({}, (line) => {
    logs.push(JSON.parse(line) as Record<string, unknown>);
    changes?.notify();
  });
  const deps = { ...pipeline.deps, log };
  useDeps(deps);
  const server = getTestServer('webhooks');
  const port = await listen(server);
  const [deadLetterTopic] = await pipeline.pubsub.createTopic(pipeline.config.WEBHOOK_DEAD_LETTER_TOPIC);
  const [inspect] = await deadLetterTopic.createSubscription(`webhooks-dead-letter-inspect-${suffix}`, {
    ackDeadlineSeconds: 60,
  });
  const deadLetters: Message[] = [];
  inspect.on('message', (message: Message) => {
    deadLetters.push(message);
    message.ack();
    changes?.notify();
  });
  // As terraform/pubsub.tf: a push subscription with a retry policy and no dead-letter policy (the
  // function dead-letters by age). Backoff here is seconds, not Terraform's 10–600 s.
  const [subscription] = await pipeline.pubsub
    .topic(pipeline.config.EVENTS_TOPIC)
    .createSubscription(`webhooks-push-${suffix}`, {
      pushConfig: {
        pushEndpoint: `http://127.0.0.1:${port}/projects/${TEST_PROJECT}/topics/${pipeline.config.EVENTS_TOPIC}`,
      },
      ackDeadlineSeconds: 30,
      retryPolicy: { minimumBackoff: { seconds: 1 }, maximumBackoff: { seconds: 4 } },
    });
  return {
    pipeline,
    deps,
    logs,
    deadLetters,
    settled: () => logs.filter((l) => l.event === 'webhook.settled'),
    stop: async () => {
      await subscription.delete().catch(() => undefined);
      await inspect.close();
      await close(server);
      await pipeline.stop();
    },
  };
}

const ready = (i: number, imageId: string): EventMessage => ({
  v: 1,
  type: 'image.ready',
  imageId,
  manifest: { bucket: 'test-images', name: `${imageId}/manifest.json` },
  variants: 6 + i,
  at: new Date(Date.now() + i).toISOString(),
});

const idOf = (i: number) => `${i}`.padStart(32, 'a');

describe('webhooks: signed deliveries through the real push subscription', function () {
  // Generous: the emulator's push and backoff slow down on a loaded 2-core machine.
  this.timeout(300_000);

  const changes = new Changes();
  let flaky: Receiver;
  let gone: Receiver;
  let w: Awaited<ReturnType<typeof startWebhooks>>;
  before(async () => {
    flaky = await receiver(changes, (n) => (n <= 2 ? 500 : 200));
    gone = await receiver(changes, () => 410);
    w = await startWebhooks([flaky.url, gone.url], {}, changes);
  });
  after(async () => {
    await w?.stop();
    await Promise.all([flaky, gone].map((r) => r?.stop()));
  });

  it('500, 500, 200: one accepted delivery per event, the same webhook-id, signatures verified; 410 stops', async () => {
    const { pipeline } = w;
    const publish = (event: EventMessage) => publishEvent(pipeline.deps.pubsub, pipeline.config.EVENTS_TOPIC, event);
    const events = [ready(1, idOf(1)), ready(2, idOf(2)), ready(3, idOf(3))];
    // The first event alone: its 410 must be recorded before the others are sent.
    await publish(events[0]!);
    await changes.until('the first event settled', () => (w.settled().length >= 1 ? true : undefined), 120_000);
    await Promise.all(events.slice(1).map(publish));
    await changes.until('all three events settled', () => (w.settled().length >= 3 ? true : undefined), 240_000);

    const ids = [...new Set(flaky.received.map((r) => r.id))];
    expect(ids, 'one webhook-id per event').to.have.length(3);
    for (const id of ids) {
      const attempts = flaky.received.filter((r) => r.id === id);
      expect(
        attempts.map((r) => r.status),
        `${id}: answers`,
      ).to.deep.equal([500, 500, 200]);
      expect(flaky.accepted(id), `${id}: exactly one accepted delivery`).to.have.length(1);
      const bodies = new Set(attempts.map((r) => r.body));
      expect(bodies.size, 'every attempt carries the same body').to.equal(1);
      const event = JSON.parse([...bodies][0]!) as EventMessage;
      expect(events.map((e) => e.imageId)).to.include(event.imageId);
    }
    for (const r of [...flaky.received, ...gone.received])
      expect(verifiedIndependently(r, KEY), `signature of ${r.id}`).to.equal(true);
    expect(
      verifiedIndependently({ ...flaky.received[0]!, body: `${flaky.received[0]!.body} ` }, KEY),
      'a changed body fails',
    ).to.equal(false);
    expect(gone.received, 'after its 410, the gone receiver gets nothing more').to.have.length(1);

    // The records: three attempts at the flaky receiver, accepted; the gone receiver recorded.
    const { firestore } = pipeline.deps;
    const names = topology.firestore.collections;
    for (const id of ids) {
      const doc = await firestore.collection(names.webhookDeliveries).doc(keyOf(id, flaky.url)).get();
      expect(doc.get('state')).to.equal('accepted');
      expect(doc.get('attempts')).to.equal(3);
      expect(doc.get('lastStatus')).to.equal(200);
    }
    const goneDoc = await firestore.collection(names.webhookReceivers).doc(keyOf(gone.url)).get();
    expect(goneDoc.get('gone')).to.equal(true);

    // The figure: how far apart the attempts were.
    const spacing = ids.map((id) => {
      const at = flaky.received.filter((r) => r.id === id).map((r) => r.at);
      return at.slice(1).map((t, i) => ((t - at[i]!) / 1000).toFixed(1));
    });
    console.log(
      `      (500, 500, 200 receiver: seconds between attempts per event ${spacing.map((s) => `[${s.join(', ')}]`).join(' ')}; retry policy 1–4 s backoff)`,
    );
  });
});

describe('webhooks: a receiver that does not answer within 10 s', function () {
  this.timeout(180_000);

  const changes = new Changes();
  let slow: Receiver;
  let w: Awaited<ReturnType<typeof startWebhooks>>;
  before(async () => {
    // The first request of each event is left unanswered: the function gives up after 10 s.
    slow = await receiver(changes, (n) => (n === 1 ? 'hang' : 200));
    w = await startWebhooks([slow.url], {}, changes);
  });
  after(async () => {
    await w?.stop();
    await slow?.stop();
  });

  it('counts the timeout as a failure: the event is sent again, with the same webhook-id, and accepted once', async () => {
    const event = ready(5, idOf(5));
    const started = Date.now();
    await publishEvent(w.pipeline.deps.pubsub, w.pipeline.config.EVENTS_TOPIC, event);
    await changes.until('the event settled', () => (w.settled().length >= 1 ? true : undefined), 120_000);
    expect(slow.received).to.have.length(2);
    const [first, second] = slow.received;
    expect(second!.id).to.equal(first!.id);
    expect(slow.accepted(first!.id)).to.have.length(1);
    const timedOut = w.logs.find((l) => l.event === 'webhook.failed');
    expect(timedOut?.body).to.equal('timeout after 10000 ms');
    expect(timedOut?.ms as number).to.be.within(9_900, 12_000);
    for (const r of slow.received) expect(verifiedIndependently(r, KEY)).to.equal(true);
    console.log(
      `      (first attempt to second: ${((second!.at - first!.at) / 1000).toFixed(1)} s = the 10 s timeout + backoff; settled ${((Date.now() - started) / 1000).toFixed(1)} s after publishing)`,
    );
  });
});

describe('webhooks: a receiver that never accepts, past WEBHOOK_RETRY_HOURS', function () {
  this.timeout(180_000);

  const changes = new Changes();
  let down: Receiver;
  let w: Awaited<ReturnType<typeof startWebhooks>>;
  let offsetMs = 0;
  before(async () => {
    down = await receiver(changes, () => 503);
    w = await startWebhooks([down.url], { WEBHOOK_RETRY_HOURS: '24' }, changes);
    // The function's clock moves forward when the test says so; Pub/Sub's publishTime does not.
    useDeps({ ...w.deps, now: () => new Date(Date.now() + offsetMs) });
  });
  after(async () => {
    await w?.stop();
    await down?.stop();
  });

  it('is dead-lettered (with its webhook-id) once the message is 24 h old, and acknowledged', async () => {
    const event = ready(9, idOf(9));
    await publishEvent(w.pipeline.deps.pubsub, w.pipeline.config.EVENTS_TOPIC, event);
    await changes.until('two failed attempts', () => (down.received.length >= 2 ? true : undefined), 60_000);
    offsetMs = 24 * 3_600_000 + 60_000;
    const [dead] = await changes.until(
      'the dead letter',
      () => (w.deadLetters.length > 0 ? w.deadLetters : undefined),
      60_000,
    );
    await changes.until('the event settled', () => (w.settled().length >= 1 ? true : undefined), 60_000);
    const sent = down.received.length;
    expect(dead!.attributes['webhook-id']).to.equal(down.received[0]!.id);
    expect(dead!.attributes.receivers).to.equal(down.url);
    expect(JSON.parse(dead!.data.toString())).to.deep.equal(event);
    expect(w.logs.some((l) => l.event === 'webhook.dead_lettered')).to.equal(true);
    const doc = await w.pipeline.deps.firestore
      .collection(topology.firestore.collections.webhookDeliveries)
      .doc(keyOf(down.received[0]!.id, down.url))
      .get();
    expect(doc.get('state')).to.equal('dead-lettered');
    // Acknowledged: a further redelivery would reach the function, which would send again only
    // to a receiver not yet settled; none is, so the count stays.
    expect(down.received.length).to.equal(sent);
  });
});

describe('webhooks: an app passes its own ids with an upload and hears back', function () {
  this.timeout(180_000);

  const changes = new Changes();
  let hook: Receiver;
  let w: Awaited<ReturnType<typeof startWebhooks>>;
  before(async () => {
    hook = await receiver(changes, () => 200);
    w = await startWebhooks([hook.url], {}, changes);
  });
  after(async () => {
    await w?.stop();
    await hook?.stop();
  });

  it('an upload with metadata, made ready: one signed upload.ready for it, with its id, owner, metadata and manifest URL', async () => {
    const bytes = await makePhoto({ width: 200, height: 150, seed: 6100 });
    const accepted = await request(getTestServer('upload'))
      .post('/uploads')
      .set('X-Upload-Owner', 'auth0|42')
      .attach('file', bytes, 'post.jpg')
      .field('metadata', '{"postId":"p-77"}');
    expect(accepted.status, JSON.stringify(accepted.body)).to.equal(202);
    for (const { job } of await pullJobs(w.pipeline.jobs)) await runJob(w.deps, job);
    const uploadReady = () => hook.received.filter((r) => (JSON.parse(r.body) as EventMessage).type === 'upload.ready');
    await changes.until('upload.ready delivered', () => (uploadReady().length > 0 ? true : undefined), 120_000);
    const [delivery] = uploadReady();
    expect(verifiedIndependently(delivery!, KEY), 'signature').to.equal(true);
    expect(JSON.parse(delivery!.body)).to.deep.include({
      id: accepted.body.id,
      imageId: accepted.body.imageId,
      owner: 'auth0|42',
      metadata: { postId: 'p-77' },
      manifestUrl: `${publicBaseUrl(w.pipeline.config)}/${accepted.body.imageId}/manifest.json`,
    });
    const kinds = () => hook.received.map((r) => (JSON.parse(r.body) as EventMessage).type).sort();
    await changes.until(
      'image.ready delivered too',
      () => (kinds().includes('image.ready') ? true : undefined),
      60_000,
    );
    expect(kinds(), 'one delivery of each').to.deep.equal(['image.ready', 'upload.ready']);
  });
});
