/**
 * One trace per upload on the local stack (`npm start`'s stack: functions-framework servers, the
 * Pub/Sub emulator's real push subscription to resize, the storage server's finalize
 * notifications to ingest): every line of one upload's work, in every function that touched it,
 * carries the trace of the request's `traceparent` (or, for an object dropped in incoming/, the
 * trace ingest started), down to the job.done and image.ready lines with their figures.
 */
import { Storage } from '@google-cloud/storage';
import { expect } from 'chai';
import { imageIdOf } from '../../shared/core/naming.js';
import { METRIC_LINES } from '../../shared/core/observability.js';
import { TRACE_LOG_FIELDS } from '../../shared/cloud/trace.js';
import { makePhoto } from '../fixtures/images.js';
import { startTestStack, waitForManifest, type CapturedLine, type TestStack } from './helpers.js';

const TRACE = TRACE_LOG_FIELDS.trace;

describe('local stack: one trace per upload across the functions', function () {
  this.timeout(180_000);
  let t: TestStack;

  before(async () => {
    t = await startTestStack({ env: { WIDTHS: '160,320' } });
  });
  after(async () => t?.stop());
  afterEach(function () {
    if (this.currentTest?.state === 'failed' && t) console.log(`Last log lines of the stack:\n${t.tail(40)}`);
  });

  const resource = (traceId: string) => `projects/${t.stack.projectId}/traces/${traceId}`;
  const linesOf = (id: string) => t.logs.filter((l) => l.entry?.imageId === id);

  async function checkTrace(id: string, traceId: string, sources: readonly string[]): Promise<CapturedLine[]> {
    await waitForManifest(t.stack, id);
    const ready = await t.waitForLog((l) => l.entry?.event === METRIC_LINES.imageReady.event && l.entry.imageId === id);
    const lines = linesOf(id);
    expect(lines.filter((l) => l.entry![TRACE] !== resource(traceId)).map((l) => l.line)).to.deep.equal([]);
    // webhooks delivers the image's events in the same trace, whenever its push arrives.
    const allowed = [...sources, 'webhooks'];
    const seen = [...new Set(lines.map((l) => l.source))];
    expect(seen).to.include.members([...sources]);
    expect(
      seen.filter((source) => !allowed.includes(source)),
      'lines of the image from another source',
    ).to.deep.equal([]);
    // Lines of the trace without an imageId (e.g. a publish) are from the same functions.
    const inTrace = t.logs.filter((l) => l.entry?.[TRACE] === resource(traceId));
    expect(
      inTrace.filter((l) => !allowed.includes(l.source)).map((l) => `${l.source}: ${l.line}`),
      'lines of the trace from another source',
    ).to.deep.equal([]);

    const done = lines.filter((l) => l.entry!.event === METRIC_LINES.jobDone.event);
    expect(done.length).to.be.greaterThan(0);
    for (const { entry } of done) {
      const stages = entry![METRIC_LINES.jobDone.stages] as Record<string, number>;
      expect(Object.keys(stages)).to.include('decode');
      expect(Object.values(stages).reduce((a, b) => a + b, 0)).to.be.at.most(
        (entry![METRIC_LINES.jobDone.durationMs] as number) + 1,
      );
    }
    expect(ready.source).to.equal('resize');
    expect(ready.entry![METRIC_LINES.imageReady.uploadToReadyMs]).to.be.a('number');
    expect(ready.entry![METRIC_LINES.imageReady.cpuSeconds]).to.be.a('number').and.greaterThan(0);
    const settled = await t.waitForLog((l) => l.entry?.event === 'webhook.settled' && l.entry.imageId === id);
    expect(settled.source).to.equal('webhooks');
    expect(settled.entry![TRACE], "the image.ready delivery continues the image's trace").to.equal(resource(traceId));
    return lines;
  }

  it('upload → resize (pushed by the emulator) → image.ready (→ webhooks) share the request’s trace', async () => {
    const traceId = 'c0ffee00c0ffee00c0ffee00c0ffee00';
    const photo = await makePhoto({ width: 480, height: 360, seed: 161 });
    const response = await fetch(t.stack.urls.api, {
      method: 'POST',
      body: new Uint8Array(photo),
      headers: { 'Content-Type': 'image/jpeg', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    expect(response.status).to.equal(202);
    await checkTrace(imageIdOf(photo), traceId, ['upload', 'resize']);
  });

  it('incoming/ → ingest → resize share the trace ingest started', async () => {
    const photo = await makePhoto({ width: 400, height: 300, seed: 162 });
    const id = imageIdOf(photo);
    const storage = new Storage({
      apiEndpoint: t.stack.urls.storage,
      projectId: t.stack.projectId,
      useAuthWithCustomEndpoint: false,
    });
    await storage
      .bucket(t.stack.buckets.uploads)
      .file('incoming/traced.jpg')
      .save(photo, { resumable: false, contentType: 'image/jpeg' });
    const accepted = await t.waitForLog((l) => l.entry?.event === 'ingest.accept' && l.entry.imageId === id, 60_000);
    const traceId = String(accepted.entry![TRACE]).split('/').pop()!;
    expect(traceId).to.match(/^[0-9a-f]{32}$/);
    await checkTrace(id, traceId, ['ingest', 'resize']);
  });
});
