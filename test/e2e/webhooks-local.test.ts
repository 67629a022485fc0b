/**
 * Webhooks through the local stack, as `npm start` runs them with WEBHOOK_URLS and WEBHOOK_SECRET
 * in its environment: an image uploaded through the API ends in an `image.ready` POSTed, signed,
 * to a receiver on this machine (refused once, then accepted), and the page's
 * `/local/webhooks.json` shows that delivery: its status code, attempts and the answer's body.
 */
import { expect } from 'chai';
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { makePhoto } from '../fixtures/images.js';
import { close, eventually, listen } from '../helpers.js';
import { startTestStack, waitForManifest, type TestStack } from './helpers.js';

describe('local stack: webhooks', function () {
  // Generous: the stack starts two emulators' worth of clients on a loaded machine.
  this.timeout(180_000);

  const key = randomBytes(32);
  const received: Array<{ headers: Record<string, string>; body: string; status: number }> = [];
  let receiver: Server;
  let t: TestStack;
  before(async () => {
    receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        // The first attempt of each event is refused.
        const id = String(req.headers['webhook-id']);
        const status = received.some((r) => r.headers['webhook-id'] === id) ? 200 : 503;
        received.push({ headers: req.headers as Record<string, string>, body, status });
        res.writeHead(status).end(status === 200 ? 'thanks' : 'busy');
      });
    });
    const port = await listen(receiver);
    t = await startTestStack({
      env: {
        WIDTHS: '160',
        WEBHOOK_URLS: `http://127.0.0.1:${port}/hook`,
        WEBHOOK_SECRET: `whsec_${key.toString('base64')}`,
      },
    });
  });
  after(async () => {
    await t?.stop();
    await close(receiver);
  });

  it('delivers image.ready and the upload’s upload.ready signed, retries each refusal, and the page lists the deliveries', async () => {
    const photo = await makePhoto({ width: 320, height: 240, seed: 71 });
    const response = await fetch(t.stack.urls.api, {
      method: 'POST',
      body: new Uint8Array(photo),
      headers: { 'Content-Type': 'image/jpeg' },
    });
    const { imageId } = (await response.json()) as { imageId: string };
    expect(response.status).to.equal(202);
    await waitForManifest(t.stack, imageId);
    const view = await eventually(
      async () => {
        const answer = (await (await fetch(`${t.stack.urls.web}local/webhooks.json`)).json()) as {
          urls: string[];
          deliveries: Array<{
            type: string;
            imageId: string;
            state: string;
            attempts: number;
            lastStatus: number;
            lastBody: string;
          }>;
        };
        const accepted = answer.deliveries.filter((d) => d.imageId === imageId && d.state === 'accepted');
        return accepted.length >= 2 ? answer : undefined;
      },
      90_000,
      'the two accepted deliveries on the page',
    );
    const deliveries = view.deliveries.filter((d) => d.imageId === imageId);
    expect(deliveries.map((d) => d.type).sort()).to.deep.equal(['image.ready', 'upload.ready']);
    for (const delivery of deliveries)
      expect(delivery).to.include({ attempts: 2, lastStatus: 200, lastBody: 'thanks' });
    for (const type of ['image.ready', 'upload.ready']) {
      const attempts = received.filter((r) => JSON.parse(r.body).type === type);
      expect(
        attempts.map((r) => r.status),
        type,
      ).to.deep.equal([503, 200]);
      const [first, second] = attempts;
      expect(second!.headers['webhook-id']).to.equal(first!.headers['webhook-id']);
      const { 'webhook-id': id, 'webhook-timestamp': ts, 'webhook-signature': signature } = second!.headers;
      const expected = createHmac('sha256', key).update(`${id}.${ts}.${second!.body}`).digest('base64');
      expect(signature, type).to.equal(`v1,${expected}`);
      expect(JSON.parse(second!.body)).to.include({ type, imageId });
    }
  });
});
