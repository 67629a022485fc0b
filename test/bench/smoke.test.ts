/**
 * The bench must not rot: a short `--quick` run (one small image, one run) through the real CLI,
 * checking that every section is in the report with sane numbers, plus the bench's own maths
 * (the K-worker model; SSIM's tests are in test/unit/ssim.test.ts). The full bench does not run here.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BenchReport } from '../../bench/report.js';
import { largerThanOriginal, timeToLast } from '../../bench/report.js';
import {
  candidateName,
  chooseCandidate,
  costPer1000,
  type MethodResult,
  meetsAnchor,
  PRICES,
  parseCandidate,
} from '../../bench/defaults.js';
import { type ImageResult, type Overall, verdictOf } from '../../bench/auto-quality.js';
import { benchConfig } from '../../bench/methods.js';
import { stratifiedSample, summariseKind, weakestKind } from '../../bench/kinds.js';
import { makePhoto, textPosingAsJpeg } from '../fixtures/images.js';

const run = promisify(execFile);
const BENCH = fileURLToPath(new URL('../../bench/run.js', import.meta.url));
const DEFAULTS = fileURLToPath(new URL('../../bench/defaults.js', import.meta.url));
const AUTO = fileURLToPath(new URL('../../bench/auto-quality.js', import.meta.url));
const PLACEHOLDER = fileURLToPath(new URL('../../bench/placeholder.js', import.meta.url));
const FIRST_PIXELS = fileURLToPath(new URL('../../bench/first-pixels.js', import.meta.url));

describe('bench', () => {
  describe('variants larger than the original (bench/report.ts)', () => {
    it("counts the anchor's, and ours written (each format's floor) or left out as resize leaves them", () => {
      const plan = [
        { width: 320, format: 'avif' as const },
        { width: 640, format: 'avif' as const },
        { width: 320, format: 'jpeg' as const },
        { width: 640, format: 'jpeg' as const },
      ];
      const ours = plan.map((v, i) => ({ ...v, bytes: [1200, 1500, 900, 1100][i]! }));
      const anchor = { variants: ours.map((o) => ({ bytes: o.bytes + 50 })) };
      expect(largerThanOriginal(1000, plan, ours, anchor)).to.deep.equal({ anchor: 3, ours: 1, oursLeftOut: 2 });
      expect(largerThanOriginal(5000, plan, ours)).to.deep.equal({ ours: 0, oursLeftOut: 0 });
    });
  });

  describe('time to the last variant with K workers', () => {
    it('is the sum for one worker and list scheduling otherwise', () => {
      expect(timeToLast([5, 3, 2], 1)).to.equal(10);
      expect(timeToLast([5, 3, 2], 2)).to.equal(5);
      expect(timeToLast([5, 3, 2], 8)).to.equal(5);
      expect(timeToLast([1, 1, 1, 1], 2)).to.equal(2);
    });
  });

  describe('npm run bench -- --quick', function () {
    // ~20 s on an idle 2-core machine, ~40 s when other suites share it; must stay under 60 s.
    this.timeout(120_000);
    let dir: string;
    let report: BenchReport;
    let markdown: string;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'bench-smoke-'));
      const corpus = join(dir, 'corpus');
      const { mkdir } = await import('node:fs/promises');
      await mkdir(corpus);
      await writeFile(join(corpus, 'photo-360x240.jpg'), await makePhoto({ width: 360, height: 240, seed: 5 }));
      await writeFile(join(corpus, 'not-an-image.jpg'), textPosingAsJpeg());
      const json = join(dir, 'report.json');
      const { stdout } = await run(
        process.execPath,
        [BENCH, '--quick', '--runs', '1', '--corpus', corpus, '--json', json, '--cache', join(dir, 'cache')],
        {
          maxBuffer: 16 * 1024 * 1024,
        },
      );
      markdown = stdout;
      report = JSON.parse(await readFile(json, 'utf8')) as BenchReport;
    });

    after(async () => {
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('prints every section as Markdown', () => {
      for (const heading of [
        '## Inputs',
        '## 1. Ours per fan-out strategy',
        '## 2–4. Ours vs the anchor',
        '### Floor breakdown',
        '### CPU per megapixel',
        '### JPEG + WebP only',
        '## 5. Bytes and quality',
        '## 6. Encoder settings',
        '## 7. Runtime settings',
        '## Targets',
        '## Closing note',
      ]) {
        expect(markdown, heading).to.include(heading);
      }
      expect(markdown).to.match(/\| \*\*overall \(1 images\)\*\* \|/);
    });

    it('records the machine and proves the encoders match render.ts', () => {
      expect(report.machine.nproc).to.be.at.least(1);
      expect(report.machine.libvips).to.match(/^\d+\.\d+/);
      expect(report.parity?.identical, report.parity?.mismatches.join('; ')).to.equal(true);
    });

    it('reports an unreadable file as a clean error row', () => {
      const bad = report.images.find((image) => image.name === 'not-an-image.jpg');
      expect(bad?.error?.code).to.equal('not_an_image');
      expect(markdown).to.include('not_an_image');
    });

    it('measures ours per strategy, the anchor and the floor with sane numbers', () => {
      const image = report.images.find((i) => i.name === 'photo-360x240.jpg')!;
      expect(image.error).to.equal(undefined);
      const main = image.main!;
      expect(main.variants).to.have.length(6); // 320 and 360 px × 3 formats
      for (const strategy of ['balanced', 'per-image', 'per-width', 'per-format'] as const) {
        const result = main.strategies[strategy]!;
        expect(result, strategy).to.not.equal(undefined);
        expect(result.median.cpuS, strategy).to.be.greaterThan(0).and.lessThan(60);
        expect(result.median.wallS, strategy).to.be.greaterThan(0).and.lessThan(60);
        expect(result.median.rssMiB, strategy).to.be.greaterThan(20).and.lessThan(2000);
        expect(result.timeToLastS['1']).to.be.at.least(result.timeToLastS['8']!);
      }
      for (const method of [main.anchor!, main.floor!]) {
        expect(method.median.cpuS).to.be.greaterThan(0).and.lessThan(60);
        expect(method.median.rssMiB).to.be.greaterThan(20).and.lessThan(2000);
      }
      expect(main.floor!.median.encodeS.avif).to.be.greaterThan(0);
      for (const ratio of [
        main.ratios!.anchorOverOursCpu,
        main.ratios!.oursOverFloorCpu,
        image.jpegWebp!.ratios!.anchorOverOursCpu,
      ]) {
        expect(ratio).to.be.greaterThan(0.2).and.lessThan(20);
      }
      expect(report.overall?.main?.images).to.equal(1);
      expect(report.overall?.jpegWebp?.images).to.equal(1);
    });

    it('reports bytes and SSIM for every variant', () => {
      const image = report.images.find((i) => i.name === 'photo-360x240.jpg')!;
      expect(image.outputs).to.have.length(6);
      for (const output of image.outputs!) expect(output.bytes).to.be.greaterThan(100);
      for (const method of ['direct', 'ours', 'anchor']) {
        const rows = image.quality!.filter((q) => q.method === method);
        expect(rows, method).to.have.length(6);
        for (const row of rows)
          expect(row.ssim, `${method} ${row.format} ${row.width}`).to.be.greaterThan(0.3).and.at.most(1);
      }
    });

    it('fills the encoder-settings table around the defaults', () => {
      const summary = report.encoders!.summary;
      expect(summary.length).to.be.at.least(30);
      expect(
        summary
          .filter((row) => row.isDefault)
          .map((row) => row.format)
          .sort(),
      ).to.deep.equal(['avif', 'jpeg', 'webp']);
      for (const row of summary) {
        expect(row.cpuMsPerMp, JSON.stringify(row)).to.be.greaterThan(0);
        expect(row.bytes).to.be.greaterThan(0);
        expect(row.meanSsim).to.be.greaterThan(0.3).and.at.most(1);
      }
      expect(summary.find((row) => row.format === 'avif' && row.effort === 2)).to.not.equal(undefined);
      expect(summary.find((row) => row.format === 'jpeg' && row.mozjpeg === true)).to.not.equal(undefined);
    });

    it('measures runtime settings in separate processes', () => {
      const rows = report.runtime!;
      expect(rows.map((row) => row.config)).to.include.members(['deployed', 'glibc-arenas', 'one-thread', 'cache-on']);
      expect(rows.filter((row) => row.config === 'deployed').map((row) => row.instances)).to.include.members([1, 4]);
      for (const row of rows) {
        expect(row.error, row.label).to.equal(undefined);
        // Both are peaks: a small image's work can stay under the warm-up's peak, never below it.
        expect(row.baselineRssKiB!, row.label).to.be.greaterThan(20 * 1024);
        expect(row.maxRssKiB!, row.label).to.be.at.least(row.baselineRssKiB!);
        expect(row.result!.cpuMs).to.be.greaterThan(0);
      }
      expect(rows.find((row) => row.config === 'one-thread')?.sharpConcurrency).to.equal(1);
    });

    it('checks every target of the issue', () => {
      expect(report.targets).to.have.length(7);
      for (const target of report.targets) expect(target.met, target.name).to.not.equal(null);
      expect(report.notes.length).to.be.at.least(5);
    });
  });
  describe('at defaults (bench/defaults.ts), smallest form', function () {
    this.timeout(120_000);

    it('prices a result from CPU-seconds, peak memory × wall and operations', () => {
      const result: MethodResult = {
        method: 'x',
        variants: 15,
        invocations: 1,
        cpuS: 10,
        wallS: 10,
        peakRssMiB: 1024,
        bytes: {},
        ssim: {},
      };
      const cost = costPer1000(result, 'anchor');
      expect(cost.compute).to.be.closeTo(1000 * (10 * PRICES.vcpuSecond + 10 * PRICES.gibSecond), 1e-9);
      expect(cost.other).to.be.closeTo(1000 * (PRICES.request + 16 * PRICES.classA + PRICES.classB), 1e-9);
      expect(costPer1000({ ...result, invocations: 3 }, 'ours').other).to.be.greaterThan(cost.other);
    });

    it('chooses the cheapest candidate that keeps bytes and SSIM per format', () => {
      const at = (cpuS: number, bytes: number, ssim: number, jpegBytes = 500): MethodResult => ({
        method: '',
        variants: 3,
        invocations: 1,
        cpuS,
        wallS: cpuS,
        peakRssMiB: 100,
        bytes: { avif: bytes, jpeg: jpegBytes },
        ssim: { avif: ssim, jpeg: 0.95 },
      });
      const anchor = at(10, 1000, 0.9);
      const candidates = [
        { candidate: parseCandidate('q50e4'), overall: at(9, 950, 0.9) },
        { candidate: parseCandidate('q50e2'), overall: at(1, 1200, 0.91) },
        { candidate: parseCandidate('q50e3'), overall: at(3, 990, 0.9) },
        { candidate: parseCandidate('q40e3'), overall: at(2, 800, 0.89) },
        { candidate: parseCandidate('AVIF_QUALITY=45+AVIF_EFFORT=3'), overall: at(2.5, 900, 0.9, 501) },
      ];
      expect(chooseCandidate(anchor, candidates)).to.deep.equal({ AVIF_QUALITY: '50', AVIF_EFFORT: '3' });
      expect(chooseCandidate(anchor, candidates.slice(1, 2))).to.equal(undefined);
      // Every format counts: 1 JPEG byte over the anchor rules the cheaper candidate out.
      expect(meetsAnchor(anchor, at(2.5, 900, 0.9, 501))).to.deep.equal({ avif: true, jpeg: false });
      expect(candidateName(parseCandidate('AVIF_BITDEPTH=10+JPEG_MOZJPEG=true'))).to.equal(
        'AVIF_BITDEPTH=10 JPEG_MOZJPEG=true',
      );
      expect(() => parseCandidate('q50')).to.throw(/neither qNNeN nor NAME=value/);
    });

    it('runs anchor and ours on one small image and reports every column', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bench-defaults-smoke-'));
      try {
        await writeFile(join(dir, 'photo-360x240.jpg'), await makePhoto({ width: 360, height: 240, seed: 5 }));
        const json = join(dir, 'defaults.json');
        const { stdout } = await run(process.execPath, [
          DEFAULTS,
          '--corpus',
          dir,
          '--only',
          'photo-360x240.jpg',
          '--candidates',
          'q50e3',
          '--json',
          json,
        ]);
        expect(stdout).to.include("## At defaults: anchor at sharp's defaults vs ours");
        expect(stdout).to.match(/butteraugli: (installed|not installed)/);
        expect(stdout).to.match(/^Chosen: /m);
        const saved = JSON.parse(await readFile(json, 'utf8')) as {
          anchor: MethodResult[];
          candidates: Array<{ images: MethodResult[] }>;
        };
        for (const result of [saved.anchor[0]!, saved.candidates[0]!.images[0]!]) {
          expect(result.variants).to.equal(6);
          expect(result.cpuS).to.be.greaterThan(0);
          expect(result.peakRssMiB).to.be.greaterThan(20);
          for (const format of ['avif', 'webp', 'jpeg']) {
            expect(result.bytes[format], format).to.be.greaterThan(100);
            expect(result.ssim[format], format).to.be.greaterThan(0.3).and.at.most(1);
          }
        }
        expect(saved.anchor[0]!.invocations).to.equal(6);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
  describe('kinds of photo (bench/kinds.ts)', function () {
    this.timeout(120_000);

    it('samples the same images of each kind every run, at most N per kind', () => {
      const images = ['a', 'b', 'c', 'd'].flatMap((n) => [
        { name: `camera/${n}.jpg`, path: '', kind: 'camera' },
        { name: `scan/${n}.png`, path: '', kind: 'scan' },
      ]);
      const sample = stratifiedSample(images, 2);
      expect(sample.filter((i) => i.kind === 'camera')).to.have.length(2);
      expect(sample.filter((i) => i.kind === 'scan')).to.have.length(2);
      expect(stratifiedSample([...images].reverse(), 2)).to.deep.equal(sample);
    });

    it('summarises a kind against the anchor and names the weakest', () => {
      const anchor = { cpuS: 8, bytes: { avif: 1000 }, ssim: { avif: 0.95 }, butteraugli: { avif: 3.5 } };
      const fast = summariseKind('camera', 2, anchor, { ...anchor, cpuS: 2, bytes: { avif: 1010 } }, ['avif']);
      const slow = summariseKind('scan', 1, anchor, { ...anchor, cpuS: 4, ssim: { avif: 0.96 } }, ['avif']);
      expect(fast.ratio).to.equal(4);
      expect(fast.bytes.avif).to.be.closeTo(0.01, 1e-9);
      expect(slow.ssim.avif).to.be.closeTo(0.01, 1e-9);
      expect(slow.butteraugli.avif).to.equal(0);
      expect(weakestKind([fast, slow])?.kind).to.equal('scan');
    });

    it('reports per kind for a corpus in kind subfolders', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bench-defaults-kinds-'));
      try {
        for (const [kind, seed] of [
          ['camera', 6],
          ['screenshot', 7],
        ] as const) {
          await mkdir(join(dir, kind));
          await writeFile(join(dir, kind, 'p.jpg'), await makePhoto({ width: 360, height: 240, seed }));
        }
        const { stdout } = await run(process.execPath, [
          DEFAULTS,
          '--corpus',
          dir,
          '--json',
          join(dir, 'defaults.json'),
        ]);
        expect(stdout).to.include('### Per kind: ours config defaults');
        expect(stdout).to.match(/^\| camera \| 1 \| [0-9.]+× \|/m);
        expect(stdout).to.match(/^\| screenshot \| 1 \| [0-9.]+× \|/m);
        expect(stdout).to.match(/^Weakest kind: (camera|screenshot) \([0-9.]+×\)\./m);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
  describe('auto-quality (bench/auto-quality.ts), smallest form', function () {
    this.timeout(120_000);

    it("judges auto against fixed: bytes saved, CPU extra and every format's mean score", () => {
      const at = (cpuS: number, bytes: number, ssim: number): Overall => ({
        cpuS,
        searchS: 0,
        bytes: { avif: bytes, webp: bytes, jpeg: bytes },
        allBytes: 3 * bytes,
        ssim: { avif: ssim, webp: ssim, jpeg: ssim },
      });
      const fixed = at(10, 1000, 0.97);
      expect(verdictOf(fixed, at(12.9, 840, 0.9695))).to.include({
        bytesMet: true,
        cpuMet: true,
        scoreMet: true,
        met: true,
      });
      expect(verdictOf(fixed, at(13.1, 840, 0.97))).to.include({ cpuMet: false, met: false });
      expect(verdictOf(fixed, at(11, 860, 0.97))).to.include({ bytesMet: false, met: false });
      expect(verdictOf(fixed, at(11, 500, 0.968))).to.include({ scoreMet: false, met: false });
      expect(verdictOf(fixed, at(11, 800, 0.97)).bytesSavedPercent).to.be.closeTo(20, 1e-9);
    });

    it('runs fixed and auto on one small image and reports every column', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bench-auto-smoke-'));
      try {
        await writeFile(join(dir, 'photo-360x240.jpg'), await makePhoto({ width: 360, height: 240, seed: 5 }));
        const json = join(dir, 'auto.json');
        const { stdout } = await run(process.execPath, [
          AUTO,
          '--corpus',
          dir,
          '--only',
          'photo-360x240.jpg',
          '--json',
          json,
        ]);
        expect(stdout).to.include('## Auto-quality: QUALITY_MODE=fixed vs auto');
        expect(stdout).to.match(/^Verdict: /m);
        const saved = JSON.parse(await readFile(json, 'utf8')) as {
          images: ImageResult[];
          verdict: { cpuExtraPercent: number };
        };
        const [image] = saved.images;
        for (const result of [image!.fixed!, image!.auto!]) {
          expect(result.variants).to.equal(6);
          expect(result.cpuS).to.be.greaterThan(0);
          for (const format of ['avif', 'webp', 'jpeg'] as const) {
            expect(result.bytes[format], format).to.be.greaterThan(100);
            expect(result.ssim[format], format).to.be.greaterThan(0.3).and.at.most(1);
            expect(result.qualities[format], format).to.be.within(1, 100);
          }
        }
        const config = benchConfig();
        expect(image!.fixed!.qualities).to.deep.equal({
          avif: config.AVIF_QUALITY,
          webp: config.WEBP_QUALITY,
          jpeg: config.JPEG_QUALITY,
        });
        for (const format of ['avif', 'webp', 'jpeg'] as const)
          expect(image!.auto!.trials[format], format).to.be.at.least(1);
        expect(saved.verdict.cpuExtraPercent).to.be.a('number');
        expect(image!.auto!.searchS).to.be.greaterThan(0);
        expect(image!.fixed!.searchS).to.equal(0);

        const scores = await run(process.execPath, [AUTO, '--corpus', dir, '--scores']);
        expect(scores.stdout).to.match(/\| photo-360x240\.jpg \| 360 \| 0\.\d{4} \/ 0\.\d{4} \/ 0\.\d{4} \|/);
        expect(scores.stdout).to.match(/\| \*\*median\*\* \|/);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('first pixels (bench/first-pixels.ts), smallest form', function () {
    this.timeout(120_000);

    /** Runs the bench with `args` (one round, 10 ms polls); its stdout and results file. */
    async function firstPixels(args: string[]): Promise<{ stdout: string; results: unknown }> {
      const dir = await mkdtemp(join(tmpdir(), 'bench-first-pixels-smoke-'));
      try {
        const out = join(dir, 'first-pixels.json');
        const { stdout } = await run(process.execPath, [
          FIRST_PIXELS,
          '--uploads',
          '1',
          '--poll',
          '10',
          ...args,
          '--out',
          out,
        ]);
        return { stdout, results: JSON.parse(await readFile(out, 'utf8')) };
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }

    it('follows one small upload per PREVIEW mode on the local stack to ready; inline answers with the smallest JPEG', async () => {
      const { stdout, results } = await firstPixels(['--size', '2400x1600', '--no-anchor']);
      for (const side of ['first-in-job', 'inline'])
        expect(stdout).to.match(
          new RegExp(
            `^\\| 3\\.8 MP JPEG \\| ${side} \\| [\\d.]+ / [\\d.]+ \\| [\\d.]+ / [\\d.]+ \\| [\\d.]+ / [\\d.]+ \\| [\\d.]+ \\| [\\d.]+ / [\\d.]+ \\| `,
            'm',
          ),
        );
      const { runs } = results as {
        runs: Array<{ side: string; firstMs: number; firstJobMs: number; readyMs: number; first: string }>;
      };
      expect(runs.map((r) => r.side)).to.have.members(['first-in-job', 'inline']);
      for (const r of runs) {
        // 4 MP: the rest of the variants take well over the poll interval after the first is listed.
        expect(r.first, 'a variant, listed before ready').to.match(/^\d+ (avif|webp|jpeg)/);
        expect(r.firstMs).to.be.at.most(r.firstJobMs);
        expect(r.firstJobMs).to.be.at.most(r.readyMs);
      }
      expect(runs.find((r) => r.side === 'first-in-job')?.first).to.equal('320 jpeg');
      const inline = runs.find((r) => r.side === 'inline');
      expect(inline?.first).to.equal('320 jpeg (in the 202)');
      expect(inline?.firstMs).to.equal(0);
    });

    it("times the anchor at sharp's default threads and at one per core, and ours' CPU, and prints the ceiling", async () => {
      const { stdout, results } = await firstPixels(['--size', '800x600', '--sides', 'inline']);
      // sharp's own default is read before the stack sets SHARP_CONCURRENCY in the same process.
      expect(stdout).to.match(/at sharp's default of \d+ libvips thread\(s\) per image here; and at \d+, one per core/);
      expect(stdout).to.match(/^\| 0\.5 MP JPEG \| inline \| ([\d.]+ \| ){4}[\d.]+× \| [\d.]+× \/ [\d.]+× \| /m);
      const { anchors } = results as {
        anchors: Array<{ anchorMs: number; anchorCpuMs: number; anchorPerCoreMs: number; oursCpuMs: number }>;
      };
      expect(anchors).to.have.length(1);
      for (const key of ['anchorMs', 'anchorCpuMs', 'anchorPerCoreMs', 'oursCpuMs'] as const)
        expect(anchors[0]![key], key).to.be.above(0);
      // Ours makes the same variants with one decode per job and cheaper AVIF: less CPU than the anchor.
      expect(anchors[0]!.oursCpuMs).to.be.below(anchors[0]!.anchorCpuMs);
    });
  });

  describe('placeholders (bench/placeholder.ts), smallest form', function () {
    this.timeout(60_000);

    it('times both methods on one small image and compares their colours and hashes', async () => {
      const dir = await mkdtemp(join(tmpdir(), 'bench-placeholder-smoke-'));
      try {
        await writeFile(join(dir, 'photo-360x240.jpg'), await makePhoto({ width: 360, height: 240, seed: 7 }));
        const { stdout } = await run(process.execPath, [PLACEHOLDER, '--corpus', dir, '--width', '160', '--runs', '2']);
        expect(stdout).to.include('## Placeholders: previous (sharp) vs JS, from the 160 px level');
        // first call ms, median ms, three colours, bins apart, ThumbHash difference
        expect(stdout).to.match(
          /^\| photo-360x240\.jpg \| 160×107×3 \| [\d.]+ \/ [\d.]+ \| [\d.]+ \/ [\d.]+ \| #[0-9a-f]{6} \/ #[0-9a-f]{6} \/ #[0-9a-f]{6} \| \d+, \d+ \| [\d.]+ \/ [\d.]+ \|$/m,
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });
});
