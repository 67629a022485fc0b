/**
 * Signed webhooks, the pure part: WEBHOOK_* validation, the webhook-id, the signed headers
 * (checked against node:crypto and against the package's own verifier), how an answer is
 * classified and what a (re)delivery still does; and one attempt against a real local server
 * (no redirect followed).
 */
import { expect } from 'chai';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { Webhook } from 'standardwebhooks';
import { type ConfigError, loadConfig } from '../../shared/core/config.js';
import { outcomeOf, planDelivery, signedHeaders, webhookIdOf } from '../../shared/core/webhook.js';
import { attempt } from '../../shared/pipeline/webhooks.js';
import { close, listen } from '../helpers.js';

const BASE = { UPLOADS_BUCKET: 'u-bucket', IMAGES_BUCKET: 'i-bucket' };
const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const SECRET = `whsec_${KEY.toString('base64')}`;

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig({ ...BASE, ...env });
    return [];
  } catch (error) {
    return (error as ConfigError).problems as string[];
  }
}

describe('webhook settings', () => {
  it('default: no receivers, 24 hours of retries, the topology dead-letter topic', () => {
    const config = loadConfig(BASE);
    expect(config.WEBHOOK_URLS).to.deep.equal([]);
    expect(config.WEBHOOK_RETRY_HOURS).to.equal(24);
    expect(config.WEBHOOK_DEAD_LETTER_TOPIC).to.equal('image-webhooks-dead-letter');
  });

  it('takes https URLs and http on loopback, comma- or space-separated, without repeats', () => {
    const config = loadConfig({
      ...BASE,
      WEBHOOK_SECRET: SECRET,
      WEBHOOK_URLS: 'https://example.com/hook, http://127.0.0.1:9000/h http://localhost:1/x,https://example.com/hook',
    });
    expect(config.WEBHOOK_URLS).to.deep.equal([
      'https://example.com/hook',
      'http://127.0.0.1:9000/h',
      'http://localhost:1/x',
    ]);
  });

  it('refuses plain http off loopback, non-URLs, and receivers without a secret', () => {
    expect(problems({ WEBHOOK_SECRET: SECRET, WEBHOOK_URLS: 'http://example.com/hook' })[0]).to.match(
      /^WEBHOOK_URLS each must use https/,
    );
    expect(problems({ WEBHOOK_SECRET: SECRET, WEBHOOK_URLS: 'not a url' })[0]).to.match(
      /^WEBHOOK_URLS each must be a URL/,
    );
    expect(problems({ WEBHOOK_URLS: 'https://example.com/hook' })).to.deep.equal([
      'WEBHOOK_SECRET is required when WEBHOOK_URLS lists a receiver (whsec_ + base64)',
    ]);
  });

  it('wants whsec_ + base64 of at least 16 bytes, and never shows the secret in the message', () => {
    for (const bad of ['0123456789abcdef0123456789', 'whsec_short', 'whsec_!!!!!!!!!!!!!!!!!!!!!!!!!!'])
      expect(problems({ WEBHOOK_SECRET: bad })).to.deep.equal([
        'WEBHOOK_SECRET must be whsec_ and at least 16 bytes of base64 (set)',
      ]);
    expect(loadConfig({ ...BASE, WEBHOOK_SECRET: SECRET }).WEBHOOK_SECRET).to.equal(SECRET);
  });

  it('retries for 1 to 144 hours', () => {
    expect(problems({ WEBHOOK_RETRY_HOURS: '0' })[0]).to.match(/at least 1/);
    expect(problems({ WEBHOOK_RETRY_HOURS: '145' })[0]).to.match(/at most 144/);
  });
});

describe('webhook ids and signatures', () => {
  it('the id is a function of the bytes: the same event, the same id', () => {
    const body = '{"v":1,"type":"image.deleted","imageId":"ab","at":"2026-01-01T00:00:00.000Z"}';
    expect(webhookIdOf(body)).to.equal(webhookIdOf(Buffer.from(body)));
    expect(webhookIdOf(body)).to.match(/^msg_[0-9a-f]{32}$/);
    expect(webhookIdOf(body)).not.to.equal(webhookIdOf(body.replace('00.000Z', '00.001Z')));
  });

  it('signs `id.timestamp.body` with HMAC-SHA256 (checked with node:crypto and with the package)', () => {
    const at = new Date('2026-12-06T18:00:00.000Z');
    const body = '{"hello":"world"}';
    const headers = signedHeaders(SECRET, 'msg_1', at, body);
    expect(headers['webhook-timestamp']).to.equal(String(at.getTime() / 1000));
    const expected = createHmac('sha256', KEY).update(`msg_1.${headers['webhook-timestamp']}.${body}`).digest('base64');
    expect(headers['webhook-signature']).to.equal(`v1,${expected}`);
    // The package's verifier rejects timestamps more than 5 minutes off: sign now for it.
    const fresh = signedHeaders(SECRET, 'msg_2', new Date(), body);
    expect(new Webhook(SECRET).verify(body, fresh)).to.deep.equal({ hello: 'world' });
  });
});

describe('webhook delivery decisions', () => {
  const r = (url: string, settled = false, gone = false) => ({ url, settled, gone });

  it('2xx accepted, 410 gone, anything else (3xx too) or no answer failed', () => {
    expect([200, 204, 299].map(outcomeOf)).to.deep.equal(['accepted', 'accepted', 'accepted']);
    expect(outcomeOf(410)).to.equal('gone');
    expect([undefined, 301, 302, 400, 404, 429, 500, 503].map(outcomeOf)).to.deep.equal(Array(8).fill('failed'));
  });

  it('a redelivery sends only to receivers that have not accepted it and are not gone', () => {
    const plan = planDelivery([r('a', true), r('b'), r('c', false, true), r('d')], 60_000, 86_400_000);
    expect(plan).to.deep.equal({ send: ['b', 'd'], deadLetter: [] });
  });

  it('once the message is as old as the retry window, the waiting receivers are dead-lettered instead', () => {
    const plan = planDelivery([r('a', true), r('b'), r('c', false, true)], 86_400_000, 86_400_000);
    expect(plan).to.deep.equal({ send: [], deadLetter: ['b'] });
    expect(planDelivery([r('a', true)], 90_000_000, 86_400_000)).to.deep.equal({ send: [], deadLetter: [] });
  });
});

describe('webhook attempt', () => {
  it('does not follow a redirect: a 302 is a failed attempt, and the target is never called', async () => {
    let targetCalls = 0;
    const server = createServer((req, res) => {
      if (req.url === '/target') targetCalls++;
      res.writeHead(req.url === '/target' ? 200 : 302, { location: '/target' }).end('moved');
    });
    const port = await listen(server);
    try {
      const result = await attempt(`http://127.0.0.1:${port}/hook`, { 'webhook-id': 'msg_x' }, '{}');
      expect(result).to.include({ outcome: 'failed', status: 302, body: 'moved' });
      expect(targetCalls).to.equal(0);
    } finally {
      await close(server);
    }
  });

  it('a refused connection is a failed attempt that says why', async () => {
    const server = createServer();
    const port = await listen(server);
    await close(server);
    const result = await attempt(`http://127.0.0.1:${port}/hook`, {}, '{}');
    expect(result.outcome).to.equal('failed');
    expect(result.body).to.match(/^no answer: ECONNREFUSED/);
  });
});
