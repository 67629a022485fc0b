/**
 * The progressive status on the local storage server, the Pub/Sub and Firestore emulators: while
 * an image processes, `GET /uploads/{id}` lists the variants already finished, the first job's
 * first one as soon as it is written (recordEarlyVariant), with URLs that keep their bytes. The
 * job is held between its first and second variant writes (storageServer.holdRequests) and the
 * early record is awaited on the document's own snapshots, never by a sleep.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import type { JobMessage } from '../../shared/core/schemas.js';
import { placeholderVariantOf } from '../../shared/image/manifest.js';
import { runJob } from '../../shared/pipeline/run-job.js';
import { type ImageDoc, readImage } from '../../shared/state/image-doc.js';
import { imageDocWhen } from '../fixtures/firestore.js';
import { makePhoto } from '../fixtures/images.js';
import { startTestPipeline, type TestPipeline, uploadAndPullJobs } from '../fixtures/pipeline.js';
import { serviceAsset } from '../helpers.js';

describe('progressive status: finished variants while processing (local storage, emulators)', function () {
  this.timeout(90_000);
  let pipeline: TestPipeline;
  let seed = 250;
  const server = () => request(getTestServer('upload'));

  before(async () => {
    // One job per format: several jobs of several variants each; the preview first in the first
    // job (its early record; the inline own job is preview-inline.test.ts's).
    pipeline = await startTestPipeline({ FANOUT_STRATEGY: 'per-format', PREVIEW: 'first-in-job' });
    useDeps(pipeline.deps);
  });
  after(async () => pipeline.stop());
  afterEach(() => pipeline.storageServer.clearFaults());

  /** Uploads a new photo; its jobs, first job first. */
  async function uploaded(): Promise<{ id: string; jobs: JobMessage[] }> {
    const { id, jobs } = await uploadAndPullJobs(pipeline, await makePhoto({ width: 400, height: 300, seed: seed++ }));
    expect(jobs[0]?.variants.length, 'the first job makes several variants').to.be.greaterThan(1);
    return { id, jobs };
  }

  /**
   * Lets the image's first variant write through and holds the next one: the second hold is set
   * while the first write waits, so it catches only writes that arrive after it.
   */
  function holdAfterFirstWrite(id: string) {
    const first = pipeline.storageServer.holdRequests({ method: 'POST', path: variantWrite(id) });
    return async () => {
      const { target } = await first.arrived;
      const next = pipeline.storageServer.holdRequests({ method: 'POST', path: variantWrite(id) });
      first.release();
      return { name: new URL(target, 'http://x').searchParams.get('name') ?? '', next };
    };
  }

  const documentWhen = (id: string, ready: (doc: ImageDoc | undefined) => boolean) =>
    imageDocWhen(pipeline.deps.firestore, id, ready);

  it("lists the first job's first variant while the job still runs, at a URL whose bytes the manifest keeps", async () => {
    const { id, jobs } = await uploaded();
    const passFirst = holdAfterFirstWrite(id);
    const running = runJob(pipeline.deps, jobs[0]!);
    const { name, next } = await passFirst();
    await next.arrived;
    await documentWhen(id, (doc) => (doc?.variants.length ?? 0) > 0);

    const status = await server().get(`/uploads/${serviceAsset(id)}`);
    expect(status.status).to.equal(202);
    expect(status.body).to.include({ status: 'processing', done: 1 });
    expect(status.body.finished).to.have.length(1);
    const [early] = status.body.finished as Array<{ url: string; width: number; height: number; format: string }>;
    expect(early!.url.endsWith(`/${name}`), early!.url).to.equal(true);
    expect(early).to.have.all.keys('url', 'width', 'height', 'format');
    const shown = await request(early!.url).get('').buffer(true);
    expect(shown.status).to.equal(200);
    expect(shown.headers['cache-control']).to.include('immutable');

    next.release();
    await running;
    for (const job of jobs.slice(1)) await runJob(pipeline.deps, job);
    const ready = await server().get(`/uploads/${serviceAsset(id)}`);
    expect(ready.status).to.equal(200);
    const listed = (ready.body.manifest.variants as (typeof early)[]).find((v) => v!.url === early!.url);
    expect(listed, 'the manifest lists the early variant').to.include({ width: early!.width, height: early!.height });
    const after = await request(early!.url).get('').buffer(true);
    expect(Buffer.compare(after.body as Buffer, shown.body as Buffer), 'same bytes').to.equal(0);
  });

  it('lists every variant of the finished jobs, smallest first, and the placeholder once its job is done', async () => {
    const { id, jobs } = await uploaded();
    expect(jobs.length, 'several jobs').to.be.greaterThan(1);
    // The job that renders the placeholder's carrier first, then all but one; the last one held.
    const carrier = placeholderVariantOf(jobs[0]!.plan);
    const carries = (job: JobMessage) =>
      job.variants.some((v) => v.width === carrier?.width && v.format === carrier.format);
    const ordered = [...jobs.filter(carries), ...jobs.filter((job) => !carries(job))];
    const held = ordered.pop()!;
    for (const job of ordered) await runJob(pipeline.deps, job);
    const hold = pipeline.storageServer.holdRequests({ method: 'POST', path: variantWrite(id) });
    const running = runJob(pipeline.deps, held);
    await hold.arrived;

    const status = await server().get(`/uploads/${serviceAsset(id)}`);
    expect(status.status).to.equal(202);
    const expected = ordered.flatMap((job) => job.variants.map((v) => `${v.format} ${v.width}`)).sort();
    const listed = status.body.finished as Array<{ url: string; width: number; height: number; format: string }>;
    expect(listed.map((v) => `${v.format} ${v.width}`).sort()).to.deep.equal(expected);
    expect(listed.map((v) => v.width)).to.deep.equal(listed.map((v) => v.width).sort((a, b) => a - b));
    for (const v of listed) expect(v.height, v.url).to.be.within(1, 300);
    expect(status.body.placeholder).to.have.all.keys('color', 'thumbhash');
    hold.release();
    await running;
    expect((await server().get(`/uploads/${serviceAsset(id)}`)).status).to.equal(200);
  });

  it('a delete before the first variant is recorded early: nothing is recorded, and the status is 404', async () => {
    const { id, jobs } = await uploaded();
    const hold = pipeline.storageServer.holdRequests({ method: 'POST', path: variantWrite(id) });
    const running = runJob(pipeline.deps, jobs[0]!);
    await hold.arrived;
    expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status).to.equal(204);
    hold.release();
    const result = await running;
    expect(result.outcome).to.equal('already-finished');
    expect((await readImage(pipeline.deps, id))?.variants).to.deep.equal([]);
    expect((await server().get(`/uploads/${serviceAsset(id)}`)).status).to.equal(404);
  });

  it("a delete after the early record: the status never lists the deleted image's variants", async () => {
    const { id, jobs } = await uploaded();
    const passFirst = holdAfterFirstWrite(id);
    const running = runJob(pipeline.deps, jobs[0]!);
    const { next } = await passFirst();
    await next.arrived;
    await documentWhen(id, (doc) => (doc?.variants.length ?? 0) > 0);
    expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status).to.equal(204);
    expect((await server().get(`/uploads/${serviceAsset(id)}`)).status).to.equal(404);
    next.release();
    await running;
    expect((await readImage(pipeline.deps, id))?.variants).to.deep.equal([]);
  });
});

/** The storage server's path of an object write under `{id}/` in the images bucket. */
function variantWrite(id: string): RegExp {
  return new RegExp(`/b/test-images/o\\?.*name=${id}%2F`);
}
