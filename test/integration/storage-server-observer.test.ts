/**
 * The storage server's request observer: tests wait for a request to arrive, or hold it there,
 * to order a race by the event itself instead of by a sleep.
 */
import { Storage, type Bucket } from '@google-cloud/storage';
import { expect } from 'chai';
import { startStorageServer, type StorageServer } from '../../local/storage-server/index.js';

describe('storage server: request observer (waitForRequest, holdRequests, recordRequests)', function () {
  let server: StorageServer;
  let bucket: Bucket;

  before(async () => {
    server = await startStorageServer({ buckets: ['observed'] });
    bucket = new Storage({ apiEndpoint: server.url, projectId: 'demo-project' }).bucket('observed');
    await bucket.file('held.txt').save('held', { resumable: false });
    await bucket.file('free.txt').save('free', { resumable: false });
  });
  after(async () => server?.stop());

  it('waitForRequest resolves with the matching request once it arrives, not before', async () => {
    const seen = server.waitForRequest({ method: 'GET', path: /free\.txt\?alt=media/ });
    let resolved = false;
    void seen.then(() => (resolved = true));
    await bucket.file('held.txt').download();
    expect(resolved, 'another request does not match').to.equal(false);
    await bucket.file('free.txt').download();
    expect(await seen).to.deep.include({ method: 'GET' });
    expect((await seen).target).to.match(/free\.txt\?alt=media/);
  });

  it('holdRequests keeps a matching request waiting until released; others pass meanwhile', async () => {
    const hold = server.holdRequests({ method: 'GET', path: 'held.txt?alt=media' });
    let finished = false;
    const download = bucket
      .file('held.txt')
      .download()
      .then(([data]) => {
        finished = true;
        return data.toString();
      });
    const arrived = await hold.arrived;
    expect(arrived.target).to.include('held.txt');
    // A request that arrived after the held one is answered while it still waits.
    expect((await bucket.file('free.txt').download())[0].toString()).to.equal('free');
    expect(finished, 'the held download has not finished').to.equal(false);
    hold.release();
    expect(await download).to.equal('held');
  });

  it('a hold catches only `times` requests; admin requests never match', async () => {
    const hold = server.holdRequests({ path: 'free.txt' }, 1);
    const first = bucket.file('free.txt').download();
    await hold.arrived;
    expect(
      (await fetch(`${server.url}/_admin/faults`, { method: 'DELETE' })).ok,
      'admin passes a catch-all hold',
    ).to.equal(true);
    expect((await bucket.file('free.txt').download())[0].toString(), 'the second request is not held').to.equal('free');
    hold.release();
    expect((await first)[0].toString()).to.equal('free');
  });

  it('a hold of 2 has them all once both arrived, and holds both until released', async () => {
    const hold = server.holdRequests({ method: 'GET', path: /(held|free)\.txt\?alt=media/ }, 2);
    const finished: string[] = [];
    const downloads = ['held.txt', 'free.txt'].map((name) =>
      bucket
        .file(name)
        .download()
        .then(([data]) => finished.push(data.toString())),
    );
    const all = await hold.all;
    expect(all.map((r) => r.target.match(/(held|free)\.txt/)?.[0]).sort()).to.deep.equal(['free.txt', 'held.txt']);
    expect(finished, 'both still held').to.deep.equal([]);
    hold.release();
    await Promise.all(downloads);
    expect(finished.sort()).to.deep.equal(['free', 'held']);
  });

  it('waitForRequest fails after its timeout, naming what it waited for', async () => {
    const error = await server.waitForRequest({ method: 'DELETE', path: 'never' }, 50).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).to.match(/no DELETE request matching never within 50 ms/);
  });

  it('stop() releases held requests instead of waiting for the test', async () => {
    const own = await startStorageServer({ buckets: ['stopping'] });
    const file = new Storage({ apiEndpoint: own.url, projectId: 'demo-project', retryOptions: { autoRetry: false } })
      .bucket('stopping')
      .file('x.txt');
    await file.save('x', { resumable: false });
    const hold = own.holdRequests({ method: 'GET', path: 'x.txt' });
    const download = file.download().then(
      () => 'answered',
      () => 'dropped',
    );
    await hold.arrived;
    await own.stop();
    expect(await download).to.be.oneOf(['answered', 'dropped']);
  });

  it('recordRequests records every request without holding it, until stop()', async () => {
    const recording = server.recordRequests();
    await bucket.file('free.txt').getMetadata();
    await bucket.file('free.txt').download();
    recording.stop();
    await bucket.file('free.txt').getMetadata();
    expect(recording.requests.map((r) => r.method)).to.deep.equal(['GET', 'GET']);
    expect(recording.requests[1]?.target).to.match(/free\.txt\?alt=media/);
  });
});
