/**
 * The local stack admits at most `maxInstances × concurrency` requests into each event function
 * and answers 429 beyond, as Cloud Run does; Pub/Sub (the real emulator) then redelivers, and
 * nothing is lost (docs/delivery.md).
 */
import { expect } from 'chai';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { admissionFromEnv, admitAtMost } from '../../local/admission.js';
import { admissionLimit, topology } from '../../shared/core/topology.js';
import { makePhoto } from '../fixtures/images.js';
import { collectEvents, startTestStack, waitForManifest, type EventCollector, type TestStack } from './helpers.js';

function get(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path: '/', method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('admission: at most maxInstances × concurrency requests at once, 429 beyond', function () {
  describe('the gate (real HTTP)', () => {
    let server: Server;
    let port: number;
    const held: Array<() => void> = [];
    let arrived: (() => void) | undefined;
    const gated = admitAtMost((_req, res) => {
      held.push(() => res.end('done'));
      arrived?.();
    }, 2);
    before(async () => {
      server = createServer(gated);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    after(() => new Promise<void>((r) => server.close(() => r())));

    it('runs two at once, answers the third 429 with a JSON error, and admits again once one finished', async () => {
      const both = new Promise<void>((resolve) => (arrived = () => held.length === 2 && resolve()));
      const first = get(port);
      const second = get(port);
      await both;
      const third = await get(port);
      expect(third.status).to.equal(429);
      expect(JSON.parse(third.body)).to.deep.include({
        error: {
          code: 'too_many_requests',
          message: 'Every instance is busy (2 requests at once); retry later.',
          retryable: true,
        },
      });
      held.shift()!();
      expect((await first).status).to.equal(200);
      const fourthArrived = new Promise<void>((resolve) => (arrived = () => resolve()));
      const fourth = get(port);
      await fourthArrived;
      for (const release of held.splice(0)) release();
      expect([(await second).status, (await fourth).status]).to.deep.equal([200, 200]);
      expect(gated.admission).to.deep.include({ limit: 2, peak: 2, admitted: 3, refused: 1, inFlight: 0 });
    });

    it('takes its limit from LOCAL_ADMIT_{FUNCTION}, refusing nonsense', () => {
      expect(admissionFromEnv({ LOCAL_ADMIT_RESIZE: '2' }, 'resize')).to.equal(2);
      expect(admissionFromEnv({}, 'resize')).to.equal(undefined);
      expect(() => admissionFromEnv({ LOCAL_ADMIT_RESIZE: 'two' }, 'resize')).to.throw(
        RangeError,
        /LOCAL_ADMIT_RESIZE/,
      );
    });
  });

  describe('the local stack', function () {
    // Refused pushes come back on Pub/Sub's backoff (10 s doubling, topology.json): a job refused
    // five times waits 310 s, which a loaded machine can reach. Upper bounds only.
    this.timeout(600_000);
    let t: TestStack;
    let events: EventCollector;
    let deadLetters: EventCollector;

    before(async () => {
      // Many small jobs at once: per-width makes 2 jobs per image.
      t = await startTestStack({
        admission: { resize: 1 },
        env: { WIDTHS: '160,320', FORMATS: 'webp,jpeg', FANOUT_STRATEGY: 'per-width' },
      });
      events = collectEvents(t.stack, t.stack.subscriptions.eventsPull);
      deadLetters = collectEvents(t.stack, t.stack.subscriptions.jobsDeadLetterPull);
    });
    after(async () => {
      await events?.close();
      await deadLetters?.close();
      await t?.stop();
    });

    it("defaults to the topology's maxInstances × concurrency per event function", async () => {
      const gates = t.stack.admission;
      expect(gates.resize.limit, 'overridden').to.equal(1);
      expect(gates.ingest.limit).to.equal(admissionLimit('ingest'));
      expect(gates.cleanup.limit).to.equal(
        topology.functions.cleanup.maxInstances * topology.functions.cleanup.concurrency,
      );
    });

    it('a burst beyond the limit sees 429, the emulator redelivers, and every image ends ready once', async () => {
      const count = 4;
      const ids: string[] = [];
      await Promise.all(
        Array.from({ length: count }, async (_, i) => {
          const image = await makePhoto({ width: 480, height: 320, seed: 9100 + i });
          const response = await fetch(t.stack.urls.api, {
            method: 'POST',
            headers: { 'Content-Type': 'image/jpeg' },
            body: image as unknown as BodyInit,
          });
          expect(response.status).to.equal(202);
          ids.push(((await response.json()) as { imageId: string }).imageId);
        }),
      );
      await Promise.all(ids.map((id) => waitForManifest(t.stack, id, 540_000)));
      const resize = t.stack.admission.resize;
      console.log(
        `      (resize admitted ${resize.admitted}, refused ${resize.refused} with 429, peak ${resize.peak} at once)`,
      );
      expect(resize.peak, 'never more than the limit at once').to.equal(1);
      expect(resize.refused, 'the emulator pushed beyond the limit and was refused').to.be.greaterThan(0);
      // Late duplicates would show as a second image.ready: wait until every image has its one.
      const readyOf = (id: string) => events.events.filter((e) => e.type === 'image.ready' && e.imageId === id).length;
      for (;;) {
        if (ids.every((id) => readyOf(id) >= 1)) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(ids.map(readyOf)).to.deep.equal(ids.map(() => 1));
      expect(events.events.filter((e) => e.type === 'image.failed')).to.deep.equal([]);
      expect(deadLetters.events, 'nothing dead-lettered').to.deep.equal([]);
    });
  });
});
