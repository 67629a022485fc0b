/**
 * Preview-first scheduling (shared/image/preview.ts): which variant is the preview, the job that
 * holds it first under every fan-out strategy, and the renderer writing it before the cascade
 * from the job's one decode.
 */
import { expect } from 'chai';
import { FANOUT_STRATEGIES, type OutputFormat, type PreviewMode } from '../../shared/core/domain.js';
import type { VariantSpec } from '../../shared/core/schemas.js';
import { buildJobs } from '../../shared/pipeline/dispatch.js';
import { placeholderVariantOf } from '../../shared/image/manifest.js';
import { planImage, planVariants, splitIntoJobs } from '../../shared/image/plan.js';
import {
  isPreviewJob,
  jobGroups,
  previewAlone,
  previewFirst,
  previewVariantOf,
  schedulePreview,
} from '../../shared/image/preview.js';
import { renderAll, type StageTiming } from '../../shared/image/render.js';
import { benchConfig, renderOptionsFrom } from '../../bench/methods.js';
import { makePhoto } from '../fixtures/images.js';

const WIDTHS = [320, 640, 1024, 1600, 2048];
const key = (v: { width: number; format: string }) => `${v.width} ${v.format}`;

describe('preview-first scheduling', () => {
  describe('previewVariantOf', () => {
    const cases: Array<[string, { width: number; height: number }, OutputFormat[], string | undefined]> = [
      [
        'the smallest JPEG of a photo at the defaults',
        { width: 4000, height: 3000 },
        ['avif', 'webp', 'jpeg'],
        '320 jpeg',
      ],
      ['WebP when there is no JPEG (cheaper than AVIF)', { width: 4000, height: 3000 }, ['avif', 'webp'], '320 webp'],
      ['AVIF when it is the only format', { width: 4000, height: 3000 }, ['avif'], '320 avif'],
      [
        'the original width of an image narrower than every width',
        { width: 200, height: 100 },
        ['webp', 'jpeg'],
        '200 jpeg',
      ],
    ];
    for (const [what, info, formats, expected] of cases) {
      it(what, () => {
        const preview = previewVariantOf(planVariants(info, { WIDTHS, FORMATS: formats }));
        expect(preview && key(preview)).to.equal(expected);
      });
    }

    it('is never an aspect crop nor an animated variant; none without an uncropped still', () => {
      const plan: VariantSpec[] = [
        { width: 320, format: 'webp', animated: true },
        { width: 320, format: 'jpeg', aspect: '1:1' },
        { width: 640, format: 'jpeg' },
      ];
      expect(previewVariantOf(plan)).to.deep.equal({ width: 640, format: 'jpeg' });
      expect(previewVariantOf(plan.slice(0, 2))).to.equal(undefined);
    });
  });

  describe('previewFirst', () => {
    const shapes = [
      { width: 1732, height: 1155 },
      { width: 4000, height: 3000 },
      { width: 8000, height: 6000 },
      { width: 1200, height: 20000 },
    ];
    for (const strategy of FANOUT_STRATEGIES)
      for (const info of shapes)
        it(`${strategy}, ${info.width}×${info.height}: the preview in the first job in plan order, the rest as split`, () => {
          const config = { WIDTHS, FORMATS: ['avif', 'webp', 'jpeg'] as OutputFormat[], ASPECTS: [] };
          const plan = planImage(info, config).variants;
          const split = splitIntoJobs(plan, info, strategy);
          const jobs = previewFirst(split, plan);
          const preview = key(previewVariantOf(plan)!);
          expect(jobs[0]?.map(key)).to.include(preview);
          expect(
            jobs[0]?.map((v) => plan.indexOf(v)),
            'plan order',
          ).to.deep.equal(jobs[0]?.map((v) => plan.indexOf(v)).sort((a, b) => a - b));
          // Every variant still in exactly one job; without the preview, each job is as split.
          expect(jobs.flat().map(key).sort()).to.deep.equal(plan.map(key).sort());
          const without = (js: VariantSpec[][]) =>
            js.map((job) => job.filter((v) => key(v) !== preview)).filter((job) => job.length > 0);
          expect(without(jobs)).to.deep.equal(without(split));
        });

    it('drops a job the preview leaves empty (one decode fewer)', () => {
      const plan: VariantSpec[] = [
        { width: 200, format: 'avif' },
        { width: 200, format: 'jpeg' },
      ];
      expect(previewFirst([[plan[0]!], [plan[1]!]], plan)).to.deep.equal([[plan[0], plan[1]]]);
    });

    it('buildJobs puts it first with PREVIEW=first-in-job, not with off', () => {
      // per-format publishes AVIF's job first; the preview, a JPEG, joins it.
      const config = { ...benchConfig({ FANOUT_STRATEGY: 'per-format' }) };
      const original = { bucket: 'u', name: 'originals/x', generation: '1' };
      const info = { format: 'jpeg', width: 4000, height: 3000, bytes: 1, contentType: 'image/jpeg' };
      const jobs = (mode: PreviewMode) =>
        buildJobs({ ...config, PREVIEW: mode }, '0'.repeat(32), original, info, 0, new Date(0)).map((job) =>
          job.variants.map((v) => v.format),
        );
      expect(jobs('first-in-job')[0]).to.deep.equal(['avif', 'jpeg', 'avif', 'avif', 'avif', 'avif']);
      expect(jobs('first-in-job')[2], 'the JPEG job without it').to.deep.equal(['jpeg', 'jpeg', 'jpeg', 'jpeg']);
      expect(jobs('off')[0]).to.deep.equal(['avif', 'avif', 'avif', 'avif', 'avif']);
      expect(jobs('inline')[0], 'inline: a job 0 of its own').to.deep.equal(['jpeg']);
      expect(jobs('inline').slice(1)).to.deep.equal([
        ['avif', 'avif', 'avif', 'avif', 'avif'],
        ['webp', 'webp', 'webp', 'webp', 'webp'],
        ['jpeg', 'jpeg', 'jpeg', 'jpeg'],
      ]);
    });
  });

  describe('previewAlone and schedulePreview (PREVIEW=inline)', () => {
    const info = (format: string, mp: number) => ({
      format,
      width: Math.round(Math.sqrt((mp * 1e6 * 4) / 3)),
      height: Math.round(Math.sqrt((mp * 1e6 * 3) / 4)),
    });
    const cases: Array<[string, ReturnType<typeof info>, boolean]> = [
      ['a 12 MP JPEG (shrink-on-load)', info('jpeg', 12), true],
      ['a 24 MP JPEG', info('jpeg', 24), true],
      ['a 24 MP WebP', info('webp', 24), true],
      ['a 48 MP JPEG: too dear', info('jpeg', 48), false],
      ['a 12 MP PNG (no shrink-on-load, a full decode)', info('png', 12), true],
      ['a 16 MP PNG: too dear', info('png', 16), false],
      ['a 2 MP HEIC (its decoder is dear)', info('heif', 2), false],
      ['a 2 MP AVIF', info('avif', 2), false],
    ];
    for (const [what, facts, alone] of cases)
      it(`${what}: ${alone ? 'alone' : 'first in job'}`, () => {
        expect(previewAlone(facts, 'inline', false)).to.equal(alone);
        expect(previewAlone(facts, 'first-in-job', false)).to.equal(false);
      });

    it('never for an update (the page shows the ready manifest meanwhile)', () => {
      expect(previewAlone(info('jpeg', 12), 'inline', true)).to.equal(false);
    });

    it('jobGroups, what a dispatch publishes: inline, job 0 alone; for an update, unset PREVIEW or off, not', () => {
      const facts = info('jpeg', 12);
      const plan = planImage(facts, { WIDTHS, FORMATS: ['avif', 'webp', 'jpeg'], ASPECTS: [] }).variants;
      const first = (PREVIEW: PreviewMode | undefined, update: boolean) =>
        jobGroups(plan, facts, { FANOUT_STRATEGY: 'balanced', PREVIEW }, update)[0]?.map(key);
      expect(first('inline', false)).to.deep.equal(['320 jpeg']);
      for (const [mode, update] of [
        ['inline', true],
        [undefined, false],
        ['first-in-job', false],
      ] as const)
        expect(first(mode, update), `${mode}, update ${update}: in the first job, with others`)
          .to.include('320 jpeg')
          .and.have.length.above(1);
      expect(first('off', false)).to.not.include('320 jpeg');
    });

    it('not when the preview is no cheap first look: wider than 640 px, or AVIF (first in the first job instead)', () => {
      const facts = { width: 4000, height: 3000 };
      for (const [widths, formats] of [
        [[3000, 4000], ['webp']],
        [[320, 640], ['avif']],
      ] as const) {
        const plan = planImage(facts, { WIDTHS: [...widths], FORMATS: [...formats], ASPECTS: [] }).variants;
        const jobs = schedulePreview(splitIntoJobs(plan, facts, 'per-width'), plan, 'inline', true);
        expect(
          jobs.some((job) => isPreviewJob(job, plan)),
          `${widths} ${formats}`,
        ).to.equal(false);
        expect(jobs[0]?.[0] && key(jobs[0][0]), `${widths} ${formats}: the preview first`).to.equal(
          `${widths[0]} ${formats[0]}`,
        );
      }
    });

    for (const strategy of FANOUT_STRATEGIES)
      it(`${strategy}: job 0 is the preview alone, every other variant in exactly one job, no job empty`, () => {
        const facts = { width: 4000, height: 3000 };
        const plan = planImage(facts, { WIDTHS, FORMATS: ['avif', 'webp', 'jpeg'], ASPECTS: ['1:1'] }).variants;
        const split = splitIntoJobs(plan, facts, strategy);
        const jobs = schedulePreview(split, plan, 'inline', true);
        expect(jobs[0]?.map(key)).to.deep.equal(['320 jpeg']);
        expect(isPreviewJob(jobs[0] ?? [], plan)).to.equal(true);
        expect(jobs.slice(1).some((job) => isPreviewJob(job, plan) || job.length === 0)).to.equal(false);
        expect(
          jobs
            .flat()
            .map((v) => `${key(v)} ${v.aspect}`)
            .sort(),
        ).to.deep.equal(plan.map((v) => `${key(v)} ${v.aspect}`).sort());
      });
  });

  describe('renderVariants with a preview', () => {
    it('hands out the preview first, from the one decode, then every other output as before', async () => {
      const original = await makePhoto({ width: 1600, height: 1200, seed: 31 });
      const config = benchConfig({ FORMATS: 'webp,jpeg', WIDTHS: '320,640,1024' });
      const plan = planVariants({ width: 1600, height: 1200 }, config);
      const preview = previewVariantOf(plan);
      const timings: StageTiming[] = [];
      const before = await renderAll(original, plan, renderOptionsFrom(config));
      const after = await renderAll(original, plan, {
        ...renderOptionsFrom(config),
        preview,
        timings,
        placeholderFor: placeholderVariantOf(plan, ['jpeg']),
      });
      expect(before.map(key)[0], 'today: the largest first').to.equal('1024 webp');
      expect(after.map(key)[0]).to.equal('320 jpeg');
      expect(after[0]?.placeholder, 'the placeholder computed on the preview').to.have.all.keys('color', 'thumbhash');
      expect(after.map(key).sort()).to.deep.equal(before.map(key).sort());
      expect(after.find((v) => key(v) === '320 webp')?.height).to.equal(240);
      expect(
        timings.filter((t) => t.stage === 'decode'),
        'one decode',
      ).to.have.length(1);
      expect(timings.filter((t) => t.stage === 'resize').map((t) => t.width)).to.deep.equal([320, 640]);
    });

    it('at the first level itself: the preview format first at that width', async () => {
      const original = await makePhoto({ width: 300, height: 200, seed: 32 });
      const config = benchConfig({ FORMATS: 'avif,webp,jpeg' });
      const plan = planVariants({ width: 300, height: 200 }, config);
      const out = await renderAll(original, plan, { ...renderOptionsFrom(config), preview: previewVariantOf(plan) });
      expect(out.map(key)).to.deep.equal(['300 jpeg', '300 avif', '300 webp']);
    });
  });
});
