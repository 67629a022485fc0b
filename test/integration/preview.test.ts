/**
 * Preview-first scheduling and `image.preview` on the local storage server, the Pub/Sub and
 * Firestore emulators: the first job published holds the preview (the smallest JPEG), the job
 * writes it before anything else and it is the first variant the document records; with
 * PREVIEW_EVENT=true the image's outbox publishes `image.preview` once, whatever the duplicate
 * deliveries, before `image.ready`; without it, never. Like progressive.test.ts, the job is held
 * at its writes (storageServer.holdRequests) and the document awaited on its snapshots.
 */
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import type { EventMessage, JobMessage } from '../../shared/core/schemas.js';
import { runJob } from '../../shared/pipeline/run-job.js';
import type { ImageDoc } from '../../shared/state/image-doc.js';
import { imageDocWhen } from '../fixtures/firestore.js';
import { makePhoto } from '../fixtures/images.js';
import { pullEvents, startTestPipeline, type TestPipeline, uploadAndPullJobs } from '../fixtures/pipeline.js';

/**
 * One job per format: without preview-first, AVIF's job (its 160 px first) would come first.
 * PREVIEW=first-in-job: the inline own job is preview-inline.test.ts's.
 */
const ENV = { FANOUT_STRATEGY: 'per-format', PREVIEW: 'first-in-job' };

for (const previewEvent of [true, false]) {
  describe(`preview first in the first job, PREVIEW_EVENT=${previewEvent} (local storage, emulators)`, function () {
    this.timeout(90_000);
    let pipeline: TestPipeline;
    let seed = previewEvent ? 610 : 640;

    before(async () => {
      pipeline = await startTestPipeline({ ...ENV, PREVIEW_EVENT: String(previewEvent) });
      useDeps(pipeline.deps);
    });
    after(async () => pipeline.stop());
    afterEach(() => pipeline.storageServer.clearFaults());

    /** Uploads a new 400×300 photo; its jobs in published order (index). */
    async function uploaded(): Promise<{ id: string; jobs: JobMessage[] }> {
      const { id, jobs } = await uploadAndPullJobs(
        pipeline,
        await makePhoto({ width: 400, height: 300, seed: seed++ }),
      );
      expect(jobs.length, 'one job per format').to.equal(3);
      return { id, jobs };
    }

    const documentWhen = (id: string, ready: (doc: ImageDoc | undefined) => boolean) =>
      imageDocWhen(pipeline.deps.firestore, id, ready);

    /** The image's events, once `image.ready` has come. */
    async function eventsOf(id: string): Promise<EventMessage[]> {
      const events: EventMessage[] = [];
      for (let i = 0; i < 20 && !events.some((e) => e.type === 'image.ready'); i++)
        events.push(...(await pullEvents(pipeline.events)).filter((e) => e.imageId === id));
      return events;
    }

    it('the first job writes the smallest JPEG first, and it is the first variant recorded', async () => {
      const { id, jobs } = await uploaded();
      // AVIF's job (published first), with the preview in it; the renderer writes it first.
      expect(jobs[0]?.variants.map((v) => `${v.width} ${v.format}`)).to.deep.equal(['96 avif', '96 jpeg', '160 avif']);
      const hold = pipeline.storageServer.holdRequests({ method: 'POST', path: variantWrite(id) });
      const running = runJob(pipeline.deps, jobs[0]!);
      const { target } = await hold.arrived;
      expect(new URL(target, 'http://x').searchParams.get('name')).to.equal(`${id}/96w.jpg`);
      // The next writes wait until the first is recorded: nothing else can be recorded first.
      const next = pipeline.storageServer.holdRequests({ method: 'POST', path: variantWrite(id) });
      hold.release();
      await next.arrived;
      const early = await documentWhen(id, (doc) => (doc?.variants.length ?? 0) > 0);
      expect(early?.variants.map((v) => v.name)).to.deep.equal([`${id}/96w.jpg`]);
      next.release();
      await running;
      for (const job of jobs.slice(1)) await runJob(pipeline.deps, job);

      const events = await eventsOf(id);
      const previews = events.filter((e) => e.type === 'image.preview');
      if (!previewEvent) {
        expect(previews, 'off by default').to.deep.equal([]);
        return;
      }
      expect(previews).to.have.length(1);
      expect(previews[0]).to.include({ imageId: id, width: 96, height: 72, format: 'jpeg' });
      const url = previews[0]?.type === 'image.preview' ? previews[0].url : '';
      expect(url.endsWith(`/${id}/96w.jpg`), url).to.equal(true);
      expect(events.map((e) => e.type)).to.deep.equal(['image.preview', 'image.ready']);
      const shown = await request(url).get('').buffer(true);
      expect(shown.status, 'the URL serves the variant').to.equal(200);
    });

    it('duplicate and concurrent deliveries of every job: image.preview published once (when enabled)', async () => {
      const { id, jobs } = await uploaded();
      await Promise.all([runJob(pipeline.deps, jobs[0]!), runJob(pipeline.deps, jobs[0]!)]);
      await Promise.all(jobs.slice(1).flatMap((job) => [runJob(pipeline.deps, job), runJob(pipeline.deps, job)]));
      for (const job of jobs) await runJob(pipeline.deps, job);
      const events = await eventsOf(id);
      // Anything a lost lease left due would come within the quiet period of another pull.
      events.push(...(await pullEvents(pipeline.events, { quietMs: 1000 })).filter((e) => e.imageId === id));
      expect(events.filter((e) => e.type === 'image.preview')).to.have.length(previewEvent ? 1 : 0);
      expect(events.filter((e) => e.type === 'image.ready')).to.have.length(1);
    });
  });
}

/** The storage server's path of an object write under `{id}/` in the images bucket. */
function variantWrite(id: string): RegExp {
  return new RegExp(`/b/test-images/o\\?.*name=${id}%2F`);
}
