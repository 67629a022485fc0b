/**
 * Image lifecycle on the local stack (local storage server, real Pub/Sub emulator, the upload
 * function through functions-framework, jobs run in-process by runJob): DELETE /uploads/{id}
 * and its races with jobs in flight, and bringing images up to date when the recipe changes.
 * Races are ordered by holding one storage request (storageServer.holdRequests), not by sleeps.
 */
import { getTestServer } from '@google-cloud/functions-framework/testing';
import { expect } from 'chai';
import request from 'supertest';
import '../../functions/index.js';
import { useDeps } from '../../functions/runtime.js';
import { createDeps, type PipelineDeps } from '../../shared/cloud/deps.js';
import type { EventMessage, JobMessage, Manifest } from '../../shared/core/schemas.js';
import { imageIdOf, manifestName, originalName } from '../../shared/core/naming.js';
import { readImage } from '../../shared/state/image-doc.js';
import { recipeOf } from '../../shared/core/recipe.js';
import { runJob } from '../../shared/pipeline/run-job.js';
import { makePhoto } from '../fixtures/images.js';
import { pullEvents, pullJobs, startTestPipeline, type TestPipeline } from '../fixtures/pipeline.js';
import { serviceAsset } from '../helpers.js';

describe('image lifecycle: delete and reprocess (local storage, Pub/Sub emulator)', function () {
  this.timeout(90_000);
  let pipeline: TestPipeline;
  const server = () => request(getTestServer('upload'));
  let seed = 40;

  before(async () => {
    pipeline = await startTestPipeline({ CORS_ORIGINS: 'https://app.example' });
    useDeps(pipeline.deps);
  });
  after(async () => pipeline.stop());
  afterEach(() => pipeline.storageServer.clearFaults());

  async function names(prefix: string, bucket = 'test-images'): Promise<string[]> {
    const [files] = await pipeline.deps.storage.bucket(bucket).getFiles({ prefix });
    return files.map((f) => f.name).sort();
  }

  async function upload(bytes: Buffer, expected = 202) {
    const response = await server().post('/uploads').set('Content-Type', 'image/jpeg').send(bytes);
    expect(response.status, JSON.stringify(response.body)).to.equal(expected);
    return response;
  }

  async function jobsOf(id: string): Promise<JobMessage[]> {
    const pulled = await pullJobs(pipeline.jobs);
    return pulled.map(({ job }) => job).filter((job) => job.imageId === id);
  }

  async function runAll(jobs: readonly JobMessage[], deps: PipelineDeps = pipeline.deps) {
    for (const job of jobs) await runJob(deps, job);
  }

  async function readyImage(): Promise<{ id: string; bytes: Buffer; jobs: JobMessage[] }> {
    const bytes = await makePhoto({ width: 320, height: 240, seed: seed++ });
    const id = imageIdOf(bytes);
    await upload(bytes);
    const jobs = await jobsOf(id);
    await runAll(jobs);
    expect((await server().get(`/uploads/${serviceAsset(id)}`)).status).to.equal(200);
    return { id, bytes, jobs };
  }

  const ofImage = (events: EventMessage[], id: string) => events.filter((e) => e.imageId === id).map((e) => e.type);

  describe('DELETE /uploads/{id}', function () {
    it('removes the original, every variant, the manifest and the records; 204, then 404 everywhere; one image.deleted', async () => {
      const { id } = await readyImage();
      const manifest = (await server().get(`/uploads/${serviceAsset(id)}`)).body.manifest as {
        variants: Array<{ url: string }>;
      };
      await pullEvents(pipeline.events);

      const response = await server()
        .delete(`/uploads/${serviceAsset(id)}`)
        .set('Origin', 'https://app.example');
      expect(response.status).to.equal(204);
      expect(response.headers['access-control-allow-origin']).to.equal('https://app.example');
      expect(await names(`${id}/`)).to.deep.equal([]);
      expect(await names(originalName(id), 'test-uploads')).to.deep.equal([]);
      expect((await server().get(`/uploads/${serviceAsset(id)}`)).status).to.equal(404);
      for (const variant of manifest.variants)
        expect((await request(variant.url).get('')).status, variant.url).to.equal(404);
      // A retry finds the upload gone (404: its id is unknown now) and announces nothing more.
      expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status).to.equal(404);
      expect(ofImage(await pullEvents(pipeline.events), id)).to.deep.equal(['image.deleted']);
    });

    it('answers 404 for an unknown id and for a malformed one; the preflight allows DELETE', async () => {
      expect((await server().delete(`/uploads/${'a'.repeat(32)}`)).status).to.equal(404);
      expect((await server().delete('/uploads/nope')).status).to.equal(404);
      const preflight = await server()
        .options(`/uploads/${'a'.repeat(32)}`)
        .set('Origin', 'https://app.example')
        .set('Access-Control-Request-Method', 'DELETE');
      expect(preflight.headers['access-control-allow-methods']).to.include('DELETE');
    });

    it('concurrent deletes: one 204, the others find the upload gone (404), one image.deleted, nothing left', async () => {
      const { id } = await readyImage();
      await pullEvents(pipeline.events);
      const answers = await Promise.all([1, 2, 3, 4].map(() => server().delete(`/uploads/${serviceAsset(id)}`)));
      expect(answers.map((a) => a.status).sort()).to.deep.equal([204, 404, 404, 404]);
      expect(await names(`${id}/`)).to.deep.equal([]);
      expect(ofImage(await pullEvents(pipeline.events), id)).to.deep.equal(['image.deleted']);
    });

    it('a job whose variant write lands after the delete listed the folder leaves nothing behind and announces nothing', async () => {
      const bytes = await makePhoto({ width: 320, height: 240, seed: seed++ });
      const id = imageIdOf(bytes);
      await upload(bytes);
      const jobs = await jobsOf(id);
      // Hold the first variant write of the image; run every job; delete while it is held.
      const held = pipeline.storageServer.holdRequests({
        method: 'POST',
        path: new RegExp(`/b/test-images/o\\?.*name=${id}%2F`),
      });
      const running = runAll(jobs);
      await held.arrived;
      expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status).to.equal(204);
      held.release();
      await running;
      expect(await names(`${id}/`)).to.deep.equal([]);
      expect(await names(originalName(id), 'test-uploads')).to.deep.equal([]);
      expect((await server().get(`/uploads/${serviceAsset(id)}`)).status).to.equal(404);
      expect(ofImage(await pullEvents(pipeline.events), id)).to.deep.equal(['image.deleted']);
    });

    it('a delete while the ready image is announced (its manifest write held): nothing is left, and image.ready then image.deleted, each once and in that order', async () => {
      const bytes = await makePhoto({ width: 320, height: 240, seed: seed++ });
      const id = imageIdOf(bytes);
      await upload(bytes);
      const jobs = await jobsOf(id);
      const held = pipeline.storageServer.holdRequests({
        method: 'POST',
        path: new RegExp(`/b/test-images/o\\?.*name=${id}%2Fmanifest\\.json`),
      });
      const running = runAll(jobs);
      await held.arrived;
      // The fan-in has decided the image is ready (its transaction) and is writing manifest.json.
      expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status).to.equal(204);
      held.release();
      await running;
      expect(await names(`${id}/`)).to.deep.equal([]);
      expect(ofImage(await pullEvents(pipeline.events), id)).to.deep.equal(['image.ready', 'image.deleted']);
    });

    it('uploading the same bytes after a delete processes the image afresh (202, new jobs, image.ready)', async () => {
      const { id, bytes, jobs: before } = await readyImage();
      expect((await server().delete(`/uploads/${serviceAsset(id)}`)).status).to.equal(204);
      await pullEvents(pipeline.events);
      await upload(bytes, 202);
      const jobs = await jobsOf(id);
      expect(jobs.length).to.be.greaterThan(0);
      expect(jobs[0]!.dispatch).to.be.greaterThan(before[0]!.dispatch);
      await runAll(jobs);
      expect((await server().get(`/uploads/${serviceAsset(id)}`)).status).to.equal(200);
      expect(ofImage(await pullEvents(pipeline.events), id)).to.deep.equal(['image.ready']);
    });
  });

  describe('reprocess when the recipe changes', function () {
    /** The same collaborators with another recipe deployed: a width added and removed, AVIF dropped. */
    const changed = () =>
      createDeps({ ...pipeline.config, WIDTHS: [96, 200], FORMATS: ['webp', 'jpeg'] }, { log: pipeline.deps.log });

    it('every manifest records its recipe and its hash', async () => {
      const { id } = await readyImage();
      const manifest = (await server().get(`/uploads/${serviceAsset(id)}`)).body.manifest;
      expect(manifest.recipe).to.deep.equal(JSON.parse(JSON.stringify(recipeOf(pipeline.config))));
      expect(manifest.recipe.hash).to.match(/^[0-9a-f]{12}$/);
    });

    it('uploading the same bytes under a new recipe updates the image: missing variants made, extras removed after the new manifest, exactly one image.updated under duplicate delivery', async () => {
      const { id, bytes } = await readyImage();
      const oldHash = recipeOf(pipeline.config).hash;
      await pullEvents(pipeline.events);
      const deps = changed();
      useDeps(deps);
      try {
        const response = await upload(bytes, 202);
        expect(response.body.status).to.equal('processing');
        // A second upload while the update is in flight dispatches nothing more.
        await upload(bytes, 202);
        const jobs = await jobsOf(id);
        const deployed = recipeOf(deps.config).hash;
        expect(
          jobs.map((job) => ({ replaces: job.replaces, recipe: job.recipe?.hash })),
          'each update job replaces the old recipe with the deployed one',
        ).to.deep.equal(jobs.map(() => ({ replaces: oldHash, recipe: deployed })));
        expect(new Set(jobs.map((j) => j.job.index)).size).to.equal(jobs.length, 'one dispatch');
        // Duplicate delivery: every job twice, concurrently.
        await Promise.all([runAll(jobs, deps), runAll([...jobs].reverse(), deps)]);
        const status = await server().get(`/uploads/${serviceAsset(id)}`);
        expect(status.status).to.equal(200);
        expect(status.body.manifest.recipe.hash).to.equal(recipeOf(deps.config).hash);
        const expected = [96, 200].flatMap((w) => [`${id}/${w}w.jpg`, `${id}/${w}w.webp`]);
        expect(await names(`${id}/`)).to.deep.equal([...expected, manifestName(id)].sort(), 'no orphaned variants');
        expect(status.body.manifest.variants.map((v: { name: string }) => v.name).sort()).to.deep.equal(
          expected.sort(),
        );
        const events = (await pullEvents(pipeline.events)).filter((e) => e.imageId === id);
        expect(events.map((e) => e.type)).to.deep.equal(['image.updated']);
        expect(events[0]).to.include({ recipe: recipeOf(deps.config).hash, previousRecipe: oldHash });
        // Once up to date, the same bytes answer with the manifest again.
        expect((await upload(bytes, 200)).body.status).to.equal('ready');
      } finally {
        useDeps(pipeline.deps);
      }
    });

    it('an update keeps the aspect crops its new manifest lists: only what it no longer lists goes', async () => {
      const log = pipeline.deps.log;
      const before = createDeps({ ...pipeline.config, ASPECTS: ['1:1'] }, { log });
      const after = createDeps(
        { ...pipeline.config, ASPECTS: ['1:1'], WIDTHS: [96, 200], FORMATS: ['webp', 'jpeg'] },
        { log },
      );
      const bytes = await makePhoto({ width: 320, height: 240, seed: seed++ });
      const id = imageIdOf(bytes);
      try {
        useDeps(before);
        await upload(bytes);
        await runAll(await jobsOf(id), before);
        useDeps(after);
        await upload(bytes, 202);
        await runAll(await jobsOf(id), after);
        const manifest = (await server().get(`/uploads/${serviceAsset(id)}`)).body.manifest as Manifest;
        const crops = Object.values(manifest.aspects ?? {}).flatMap((aspect) => aspect.variants);
        expect(crops.map((v) => v.width).sort((a, b) => a - b)).to.deep.equal([96, 96, 200, 200]);
        const listed = [...manifest.variants, ...crops].map((v) => v.name);
        expect(await names(`${id}/`)).to.deep.equal([...listed, manifestName(id)].sort());
      } finally {
        useDeps(pipeline.deps);
      }
    });

    it('a stale update job (its recipe already replaced) changes nothing', async () => {
      const { id, bytes } = await readyImage();
      await pullEvents(pipeline.events);
      const deps = changed();
      useDeps(deps);
      try {
        await upload(bytes, 202);
        const jobs = await jobsOf(id);
        await runAll(jobs, deps);
        const after = await names(`${id}/`);
        // Redelivered long after: its dispatch is no longer the image's current one.
        await runAll(jobs, deps);
        expect(await names(`${id}/`)).to.deep.equal(after);
        expect(ofImage(await pullEvents(pipeline.events), id)).to.deep.equal(['image.updated']);
        expect((await readImage(pipeline.deps, id))?.recipe).to.equal(recipeOf(deps.config).hash);
      } finally {
        useDeps(pipeline.deps);
      }
    });
  });
});
