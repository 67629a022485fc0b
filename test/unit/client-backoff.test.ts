/**
 * waitUntilReady's polling: exponential backoff with jitter, Retry-After, which errors end it, timeouts and aborts;
 * the retries it reports (onRetry), and waitUntilReadyStatus's whole ready answer.
 */
import { expect } from 'chai';
import { client, fakeFetch, jsonAnswer } from '../fixtures/client.js';

const { backoffDelay, parseRetryAfter, waitUntilReady, waitUntilReadyStatus, ApiError } = client;
const manifest = { v: 1, id: 'img1', formats: ['jpeg'], variants: [] };
const processing = (done: number) => jsonAnswer(202, { id: 'a1', status: 'processing', done, total: 4, finished: [] });
const fast = { baseUrl: 'https://api.example/', initialDelayMs: 1, maxDelayMs: 4 };

describe('client backoff', () => {
  it('doubles from the initial delay up to the cap, jittered within the upper half', () => {
    const at = (random: number) => (attempt: number) =>
      backoffDelay(attempt, { initialDelayMs: 100, maxDelayMs: 1000, random: () => random });
    expect([0, 1, 2, 3, 4, 10].map(at(0))).to.deep.equal([50, 100, 200, 400, 500, 500]);
    expect([0, 1, 2, 3, 4, 10].map(at(0.999999))).to.deep.equal([100, 200, 400, 800, 1000, 1000]);
    const spread = new Set(Array.from({ length: 50 }, () => backoffDelay(3, { initialDelayMs: 100 })));
    expect(spread.size, 'jitter spreads clients out').to.be.greaterThan(10);
  });

  it("never undercuts the server's Retry-After", () => {
    expect(backoffDelay(0, { initialDelayMs: 100, random: () => 0 }, 10_000)).to.equal(10_000);
    expect(backoffDelay(5, { initialDelayMs: 100, maxDelayMs: 1000, random: () => 0 }, 10)).to.equal(500);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('10')).to.equal(10_000);
    expect(parseRetryAfter('Sun, 06 Dec 2026 18:00:30 GMT', Date.parse('2026-12-06T18:00:00Z'))).to.equal(30_000);
    expect(parseRetryAfter(null)).to.equal(undefined);
    expect(parseRetryAfter('soon')).to.equal(undefined);
    expect(parseRetryAfter('-3')).to.equal(undefined);
  });
});

describe('client waitUntilReady', () => {
  it('polls GET /uploads/{id} through 202s, 503s and lost answers until 200, reporting progress', async () => {
    const answers = [
      () => processing(1),
      () =>
        jsonAnswer(503, { error: { code: 'unavailable', message: 'x', retryable: true } }, { 'Retry-After': '0.05' }),
      () => {
        throw new TypeError('fetch failed');
      },
      () => processing(3),
      () => jsonAnswer(200, { id: 'a1', imageId: 'img1', status: 'ready', manifest }),
    ];
    const times: number[] = [];
    const { fetch, requests } = fakeFetch((_, i) => {
      times.push(Date.now());
      return answers[i]!();
    });
    const progress: number[] = [];
    const result = await waitUntilReady('a1', {
      ...fast,
      fetch,
      idToken: 'tok',
      onProgress: (s) => progress.push(s.status === 'processing' ? (s.done ?? -1) : -1),
    });
    expect(result).to.deep.equal(manifest);
    expect(requests.map((r) => `${r.method} ${r.url}`)).to.deep.equal(
      Array(5).fill('GET https://api.example/uploads/a1'),
    );
    expect(requests[0]!.headers.get('authorization')).to.equal('Bearer tok');
    expect(progress).to.deep.equal([1, 3]);
    expect(times[2]! - times[1]!, 'waited the 503 Retry-After').to.be.at.least(45);
  });

  it('tells onRetry of each retryable failure it waits out, with the wait, and of nothing else', async () => {
    const answers = [
      () =>
        jsonAnswer(503, { error: { code: 'unavailable', message: 'x', retryable: true } }, { 'Retry-After': '0.05' }),
      () => {
        throw new TypeError('fetch failed');
      },
      () => processing(1),
      () => jsonAnswer(200, { id: 'a1', imageId: 'img1', status: 'ready', manifest }),
    ];
    const { fetch } = fakeFetch((_, i) => answers[i]!());
    const retries: Array<{ code: string; delayMs: number }> = [];
    await waitUntilReady('a1', {
      ...fast,
      fetch,
      onRetry: (error, delayMs) => retries.push({ code: error.code, delayMs }),
    });
    expect(retries.map((r) => r.code)).to.deep.equal(['unavailable', 'network_error']);
    expect(retries[0]!.delayMs, "the 503's Retry-After").to.be.at.least(50);
    expect(retries[1]!.delayMs).to.be.within(0, fast.maxDelayMs);
  });

  it("waitUntilReadyStatus resolves with the whole ready answer: the upload's filename and metadata too", async () => {
    const { fetch, requests } = fakeFetch((_, i) =>
      i === 0
        ? processing(2)
        : jsonAnswer(200, {
            id: 'a1',
            status: 'ready',
            manifest,
            filename: 'beach.jpg',
            metadata: { postId: 'p1' },
          }),
    );
    const ready = await waitUntilReadyStatus('a1', { ...fast, fetch });
    expect(ready).to.deep.equal({
      id: 'a1',
      imageId: 'a1',
      status: 'ready',
      manifest,
      filename: 'beach.jpg',
      metadata: { postId: 'p1' },
    });
    expect(requests.map((r) => r.url)).to.deep.equal(Array(2).fill('https://api.example/uploads/a1'));
  });

  it('stops at once on image_failed, even a retryable one (upload again to retry), and on 404', async () => {
    const failed = fakeFetch(() =>
      jsonAnswer(422, { error: { code: 'image_failed', message: 'gone', retryable: true, details: { cause: 'x' } } }),
    );
    const error = await waitUntilReady('a1', { ...fast, fetch: failed.fetch }).catch((e: unknown) => e);
    expect(error).to.be.instanceOf(ApiError);
    expect(error).to.deep.include({ status: 422, code: 'image_failed', retryable: true, details: { cause: 'x' } });
    expect(failed.requests).to.have.length(1);
    const missing = fakeFetch(() => jsonAnswer(404, { error: { code: 'not_found', message: 'no', retryable: false } }));
    const notFound = await waitUntilReady('a1', { ...fast, fetch: missing.fetch }).catch((e: unknown) => e);
    expect(notFound).to.deep.include({ status: 404, code: 'not_found' });
  });

  it('gives up with a timeout error when the image stays processing', async () => {
    const { fetch, requests } = fakeFetch(() => processing(0));
    const error = await waitUntilReady('a1', { ...fast, fetch, timeoutMs: 60 }).catch((e: unknown) => e);
    expect(error).to.deep.include({ code: 'timeout', retryable: true });
    expect(requests.length).to.be.greaterThan(3);
  });

  it('starts the backoff over when more variants are done', async () => {
    // Without progress the delays grow to the cap; with progress every few polls they stay short.
    const { fetch, requests } = fakeFetch((_, i) =>
      i < 12 ? processing(i) : jsonAnswer(200, { id: 'a1', status: 'ready', manifest }),
    );
    const started = Date.now();
    await waitUntilReady('a1', { baseUrl: 'https://api.example', fetch, initialDelayMs: 2, maxDelayMs: 2000 });
    expect(requests).to.have.length(13);
    expect(Date.now() - started, 'twelve 1–2 ms delays, not 2 s ones').to.be.below(1500);
  });

  it('rejects with the abort reason as soon as the signal aborts, mid-wait', async () => {
    const { fetch } = fakeFetch(() => processing(0));
    const controller = new AbortController();
    const waiting = waitUntilReady('a1', {
      baseUrl: 'https://api.example',
      fetch,
      initialDelayMs: 60_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(new Error('left the page')), 20);
    const started = Date.now();
    const error = await waiting.catch((e: unknown) => e);
    expect((error as Error).message).to.equal('left the page');
    expect(Date.now() - started).to.be.below(1000);
  });
});
