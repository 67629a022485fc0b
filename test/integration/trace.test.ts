/**
 * One trace per upload, across the four functions (upload, ingest, resize, cleanup's re-dispatch),
 * run through functions-framework on the local storage server and the real Pub/Sub emulator: every
 * log line of the upload's work carries the same `logging.googleapis.com/trace`, jobs and events
 * carry it on as `googclient_traceparent`, and the job.done / image.ready lines say what it cost.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { createDeps, type PipelineDeps } from '../../shared/cloud/deps.js';
import type { JobMessage } from '../../shared/core/schemas.js';
import { imageIdOf } from '../../shared/core/naming.js';
import { METRIC_LINES } from '../../shared/core/observability.js';
import { TRACE_ATTRIBUTE, TRACE_LOG_FIELDS } from '../../shared/cloud/trace.js';
import { readImage } from '../../shared/state/image-doc.js';
import { makePhoto } from '../fixtures/images.js';
import {
  pullJobs,
  pullMessages,
  type PulledMessage,
  pushBody,
  startTestPipeline,
  TEST_PROJECT,
  type TestPipeline,
} from '../fixtures/pipeline.js';

type Line = Record<string, unknown>;
const TRACE = TRACE_LOG_FIELDS.trace;
const MIN = 60_000;
const DONE = METRIC_LINES.jobDone;
const READY = METRIC_LINES.imageReady;

function traceIdOf(traceparent: string | undefined): string | undefined {
  return traceparent?.split('-')[1];
}

describe('trace: one trace per upload across upload, ingest, resize and cleanup (local storage, Pub/Sub emulator)', function () {
  this.timeout(120_000);
  let pipeline: TestPipeline;
  const clocks: PipelineDeps[] = [];
  const resource = (traceId: string) => `projects/${TEST_PROJECT}/traces/${traceId}`;

  before(async () => {
    pipeline = await startTestPipeline({ REDISPATCH_AFTER_MINUTES: '30', MAX_REDISPATCHES: '3' });
    useDeps(pipeline.deps);
    const [deadLetterTopic] = await pipeline.pubsub.createTopic(`dead-letter-${pipeline.config.JOBS_TOPIC}`);
    await deadLetterTopic.createSubscription(pipeline.config.JOBS_DEAD_LETTER_SUBSCRIPTION);
  });
  afterEach(() => useDeps(pipeline.deps));
  after(async () => {
    await Promise.all(clocks.map((d) => d.pubsub.close()));
    await pipeline.stop();
  });

  /** Takes the lines logged since the last call. */
  function takeLogs(): Line[] {
    const lines = [...pipeline.logs];
    pipeline.clearLogs();
    return lines;
  }

  function expectAllInTrace(lines: Line[], traceId: string, what: string): void {
    expect(lines.length, `${what}: some lines`).to.be.greaterThan(0);
    const others = lines.filter((line) => line[TRACE] !== resource(traceId));
    expect(others, `${what}: lines outside trace ${traceId}`).to.deep.equal([]);
  }

  async function deliver(messages: PulledMessage[]): Promise<void> {
    for (const message of messages) {
      const response = await request(getTestServer('resize'))
        .post(`/projects/${TEST_PROJECT}/topics/${pipeline.config.JOBS_TOPIC}`)
        .send(pushBody(message));
      expect(response.status).to.equal(204);
    }
  }

  /** Runs the resize jobs, checks their lines and the events' attributes, returns the image.ready line. */
  async function resizeAll(jobs: Awaited<ReturnType<typeof pullJobs>>, traceId: string): Promise<Line> {
    for (const { message } of jobs)
      expect(traceIdOf(message.attributes[TRACE_ATTRIBUTE]), 'job attribute').to.equal(traceId);
    await deliver(jobs.map(({ message }) => message));
    const lines = takeLogs();
    expectAllInTrace(lines, traceId, 'resize');

    // One job.done per job, its stages covering what the job made and fitting inside its duration.
    const done = lines.filter((line) => line.event === DONE.event);
    expect(done).to.have.length(jobs.length);
    for (const [index, line] of done.entries()) {
      const job = jobs.find(({ job: j }) => `${j.job.index + 1}/${j.job.count}` === line.job)!.job as JobMessage;
      const stages = line[DONE.stages] as Record<string, number>;
      // A re-dispatch's job whose variants an earlier dispatch recorded (job 0 of the preview,
      // run by the upload with PREVIEW=inline) reuses them: it renders nothing.
      if (line.skipped === job.variants.length && line.written === 0) {
        expect(stages, `job ${index}: nothing rendered`).to.deep.equal({});
        continue;
      }
      const expected = ['decode'];
      for (const { width, format } of job.variants)
        expected.push(`encode ${format} ${width}`, `write ${format} ${width}`);
      expect(stages, `job ${index}`).to.include.keys(expected);
      const sum = Object.values(stages).reduce((a, b) => a + b, 0);
      for (const [stage, ms] of Object.entries(stages)) expect(ms, `job ${index} stage ${stage}`).to.be.at.least(0);
      expect(sum, 'stages sum within the job duration').to.be.at.most((line[DONE.durationMs] as number) + 1);
      expect(sum, 'stages are most of a job that rendered').to.be.greaterThan(0);
      expect(line[DONE.cpuMs] as number).to.be.greaterThan(0);
    }

    const ready = lines.filter((line) => line.event === READY.event);
    expect(ready).to.have.length(1);
    const events = await pullMessages(pipeline.events);
    expect(events.length).to.be.greaterThan(0);
    for (const event of events)
      expect(traceIdOf(event.attributes[TRACE_ATTRIBUTE]), 'event attribute').to.equal(traceId);
    return ready[0]!;
  }

  it('upload → jobs → resize → image.ready share the trace of the request’s traceparent', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const image = await makePhoto({ width: 400, height: 300, seed: 141 });
    takeLogs();
    const response = await request(getTestServer('upload'))
      .post('/uploads')
      .set('Content-Type', 'image/jpeg')
      .set('traceparent', `00-${traceId}-00f067aa0ba902b7-01`)
      .send(image);
    expect(response.status).to.equal(202);
    expectAllInTrace(takeLogs(), traceId, 'upload');
    const doc = await readImage(pipeline.deps, response.body.imageId);
    expect(traceIdOf(doc?.traceparent), 'the document keeps the upload’s trace').to.equal(traceId);

    const ready = await resizeAll(await pullJobs(pipeline.jobs), traceId);
    expect(ready.imageId).to.equal(response.body.imageId);
    expect(ready[READY.uploadToReadyMs] as number)
      .to.be.a('number')
      .and.at.least(0);
    expect(ready[READY.cpuSeconds] as number).to.be.greaterThan(0);
    expect(ready['logging.googleapis.com/trace_sampled']).to.equal(true);
  });

  it('takes X-Cloud-Trace-Context when there is no traceparent', async () => {
    const traceId = '105445aa7843bc8bf206b12000100000';
    const image = await makePhoto({ width: 300, height: 200, seed: 142 });
    takeLogs();
    const response = await request(getTestServer('upload'))
      .post('/uploads')
      .set('Content-Type', 'image/jpeg')
      .set('X-Cloud-Trace-Context', `${traceId}/1;o=1`)
      .send(image);
    expect(response.status).to.equal(202);
    expectAllInTrace(takeLogs(), traceId, 'upload');
    await resizeAll(await pullJobs(pipeline.jobs), traceId);
  });

  const ceHeaders = (id: string) => ({
    'ce-specversion': '1.0',
    'ce-type': 'google.cloud.storage.object.v1.finalized',
    'ce-source': '//storage.googleapis.com/projects/_/buckets/test-uploads',
    'ce-id': id,
    'ce-subject': `objects/${id}`,
  });

  for (const withExtension of [true, false]) {
    it(`ingest → jobs → resize share ${withExtension ? 'the CloudEvent’s traceparent extension' : 'the trace ingest starts'}`, async () => {
      const image = await makePhoto({ width: 320, height: 240, seed: withExtension ? 143 : 144 });
      const name = `incoming/trace-${withExtension}.jpg`;
      const file = pipeline.deps.storage.bucket('test-uploads').file(name);
      await file.save(image, { resumable: false, contentType: 'image/jpeg' });
      const [metadata] = await file.getMetadata();
      takeLogs();
      const traceId = withExtension ? '0af7651916cd43dd8448eb211c80319c' : undefined;
      const response = await request(getTestServer('ingest'))
        .post('/')
        .set({ ...ceHeaders(name), ...(traceId ? { 'ce-traceparent': `00-${traceId}-b7ad6b7169203331-01` } : {}) })
        .send(metadata);
      expect(response.status).to.equal(204);
      const lines = takeLogs();
      const ingestTrace = traceId ?? String(lines[0]?.[TRACE]).split('/').pop()!;
      expect(ingestTrace).to.match(/^[0-9a-f]{32}$/);
      expectAllInTrace(lines, ingestTrace, 'ingest');
      expect(
        lines.map((line) => `${String(line.event)} ${String(line.imageId)}`),
        "ingest's log lines",
      ).to.include(`ingest.accept ${imageIdOf(image)}`);
      const ready = await resizeAll(await pullJobs(pipeline.jobs), ingestTrace);
      // Upload time is the incoming object's creation.
      expect(ready[READY.uploadToReadyMs] as number).to.be.at.least(
        Date.now() - new Date(metadata.timeCreated!).getTime() - 60_000,
      );
    });
  }

  it('cleanup’s re-dispatch continues the trace stored in the image document', async () => {
    const traceId = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
    const image = await makePhoto({ width: 280, height: 210, seed: 145 });
    const response = await request(getTestServer('upload'))
      .post('/uploads')
      .set('Content-Type', 'image/jpeg')
      .set('traceparent', `00-${traceId}-00f067aa0ba902b7-00`)
      .send(image);
    expect(response.status).to.equal(202);
    await pullJobs(pipeline.jobs); // lost: nothing runs them
    takeLogs();
    const before = await readImage(pipeline.deps, response.body.imageId);
    expect(traceIdOf(before?.traceparent), 'the trace stored in the document').to.equal(traceId);

    // The real cleanup handler, on a clock past REDISPATCH_AFTER_MINUTES.
    const later = createDeps(pipeline.config, { log: pipeline.deps.log, now: () => new Date(Date.now() + 31 * MIN) });
    clocks.push(later);
    useDeps(later);
    const tick = { message: { data: Buffer.from('{}'), id: 'tick-1' } };
    const cleanup = await request(getTestServer('cleanup'))
      .post(`/projects/${TEST_PROJECT}/topics/cleanup`)
      .send(pushBody(tick.message));
    expect(cleanup.status).to.equal(204);
    const lines = takeLogs();
    const dispatched = lines.filter((line) => line.event === 'dispatch' && line.imageId === response.body.imageId);
    expect(dispatched).to.have.length(1);
    expect(dispatched[0]![TRACE]).to.equal(resource(traceId));
    // The pass itself has its own trace.
    const pass = lines.filter((line) => line.event === 'cleanup' && line.imageId === undefined);
    expect(pass.length).to.be.greaterThan(0);
    for (const line of pass) {
      expect(line[TRACE], `pass line ${line.message}`).to.be.a('string');
      expect(line[TRACE], `pass line ${line.message}`).to.not.equal(resource(traceId));
    }

    const jobs = await pullJobs(pipeline.jobs); // resize runs on the same later clock
    expect(jobs.length, 'the re-dispatch published').to.be.greaterThan(0);
    expect(jobs.map(({ job }) => `${job.imageId}#${job.dispatch}`)).to.deep.equal(
      jobs.map(() => `${response.body.imageId}#${(before?.dispatch ?? Number.NaN) + 1}`),
      'jobs of the re-dispatch',
    );
    const ready = await resizeAll(jobs, traceId);
    expect(ready[READY.uploadToReadyMs] as number, 'counted from the upload, not the re-dispatch').to.be.at.least(
      31 * MIN,
    );
  });
});
