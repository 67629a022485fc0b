/** ApiError: the API's error bodies, Retry-After, and answers that are not the API's. */
import { expect } from 'chai';
import { client, fakeFetch, jsonAnswer } from '../fixtures/client.js';

const { ApiError, getStatus, deleteUpload, listUploads } = client;
const baseUrl = 'https://api.example';

async function failureOf(answer: () => Response | never) {
  const { fetch } = fakeFetch(answer);
  return getStatus('a1', { baseUrl, fetch }).then(
    () => expect.fail('resolved'),
    (error: unknown) => error as InstanceType<typeof ApiError>,
  );
}

describe('client ApiError', () => {
  it("carries the API's code, message, retryable, details and Retry-After", async () => {
    const error = await failureOf(() =>
      jsonAnswer(
        429,
        {
          error: {
            code: 'quota_exceeded',
            message: 'Daily upload quota reached.',
            retryable: true,
            details: { limit: 100 },
          },
        },
        { 'Retry-After': '3600' },
      ),
    );
    expect(error).to.be.instanceOf(ApiError).and.instanceOf(Error);
    expect(error.name).to.equal('ApiError');
    expect(error.message).to.equal('Daily upload quota reached.');
    expect(error).to.deep.include({
      status: 429,
      code: 'quota_exceeded',
      retryable: true,
      details: { limit: 100 },
      retryAfterMs: 3_600_000,
    });
  });

  it('takes retryable from the body, and from the status when a body does not say', async () => {
    const permanent = await failureOf(() =>
      jsonAnswer(413, {
        error: { code: 'payload_too_large', message: 'big', retryable: false, details: { maxBytes: 5 } },
      }),
    );
    expect(permanent).to.deep.include({ retryable: false, details: { maxBytes: 5 } });
    const unsaid = await failureOf(() => jsonAnswer(503, { error: { code: 'unavailable', message: 'later' } }));
    expect(unsaid).to.deep.include({ code: 'unavailable', retryable: true });
  });

  it("names an answer that is not the API's bad_response (a proxy's HTML 502), retryable by status", async () => {
    const gateway = await failureOf(() => new Response('<html>Bad Gateway</html>', { status: 502 }));
    expect(gateway).to.deep.include({ status: 502, code: 'bad_response', retryable: true });
    const html404 = await failureOf(() => new Response('<html>nope</html>', { status: 404 }));
    expect(html404).to.deep.include({ status: 404, code: 'bad_response', retryable: false });
  });

  it('names a request without an answer network_error (retryable), keeping the cause', async () => {
    const cause = new TypeError('fetch failed');
    const error = await failureOf(() => {
      throw cause;
    });
    expect(error).to.deep.include({ status: 0, code: 'network_error', retryable: true });
    expect(error.cause).to.equal(cause);
  });

  it('deleteUpload sends DELETE /uploads/{id} and resolves on 204; listUploads passes limit and cursor', async () => {
    const { fetch, requests } = fakeFetch((r) =>
      r.method === 'DELETE'
        ? new Response(null, { status: 204 })
        : jsonAnswer(200, { items: [{ id: 'a1', imageId: 'i1', status: 'ready', createdAt: 'x' }], nextCursor: 'c2' }),
    );
    await deleteUpload('a/1', { baseUrl: `${baseUrl}/`, fetch, idToken: 't' });
    const page = await listUploads({ baseUrl, fetch, limit: 10, cursor: 'c1' });
    expect(page.nextCursor).to.equal('c2');
    expect(requests.map((r) => `${r.method} ${r.url} ${r.headers.get('authorization')}`)).to.deep.equal([
      'DELETE https://api.example/uploads/a%2F1 Bearer t',
      'GET https://api.example/uploads?limit=10&cursor=c1 null',
    ]);
  });

  it('allUploads follows nextCursor to the last page', async () => {
    const pages: Record<string, unknown> = {
      '': { items: [{ id: 'a' }, { id: 'b' }], nextCursor: 'p2' },
      p2: { items: [{ id: 'c' }] },
    };
    const { fetch } = fakeFetch((r) => jsonAnswer(200, pages[new URL(r.url).searchParams.get('cursor') ?? '']));
    const ids: string[] = [];
    for await (const item of client.allUploads({ baseUrl, fetch, limit: 2 })) ids.push(item.id);
    expect(ids).to.deep.equal(['a', 'b', 'c']);
  });
});
