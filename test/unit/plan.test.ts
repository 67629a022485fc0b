import { expect } from 'chai';
import sharp from 'sharp';
import type { VariantSpec } from '../../shared/core/schemas.js';
import {
  isFormatFloor,
  omitAsLarger,
  DECODE_COST_FACTOR,
  estimateDecodeCost,
  DECODE_COST_FACTORS,
  estimateJobCost,
  estimateVariantCost,
  EXCEEDS_FORMAT_LIMIT,
  FORMAT_COST_FACTORS,
  FORMAT_LIMITS,
  heightForWidth,
  MAX_BALANCED_JOBS,
  MAX_FANOUT_DECODE_OVERHEAD,
  planImage,
  planVariants,
  splitIntoJobs,
  targetWidths,
  type ImageSize,
} from '../../shared/image/plan.js';
import { FANOUT_STRATEGIES, OUTPUT_FORMATS, type FanoutStrategy, type OutputFormat } from '../../shared/core/domain.js';

const DEFAULT_WIDTHS = [320, 640, 1024, 1600, 2048];
const DEFAULT_FORMATS: OutputFormat[] = ['avif', 'webp', 'jpeg'];
const config = { WIDTHS: DEFAULT_WIDTHS, FORMATS: DEFAULT_FORMATS };
const key = (variant: VariantSpec): string => `${variant.width}.${variant.format}`;

const megapixelsOf = (size: { width: number; height: number }) => (size.width * size.height) / 1_000_000;

describe('plan', () => {
  describe('targetWidths', () => {
    const cases: Array<[string, number, number[], number[]]> = [
      ['a 20 MP photo gets every width', 5472, DEFAULT_WIDTHS, DEFAULT_WIDTHS],
      ['a 1200 px image gets the smaller widths and itself', 1200, DEFAULT_WIDTHS, [320, 640, 1024, 1200]],
      ['an image exactly at a width gets that width once', 1024, DEFAULT_WIDTHS, [320, 640, 1024]],
      ['an image exactly at the largest width', 2048, DEFAULT_WIDTHS, DEFAULT_WIDTHS],
      ['an image narrower than every width gets only itself', 200, DEFAULT_WIDTHS, [200]],
      ['a one-pixel image', 1, DEFAULT_WIDTHS, [1]],
      ['unsorted configured widths', 700, [640, 320, 1024], [320, 640, 700]],
      ['an image between widths', 321, [320, 640], [320, 321]],
      ['an image wider than every width', 3000, [320], [320]],
    ];
    for (const [what, original, widths, expected] of cases) {
      it(`${what}: ${original} px → ${expected.join(', ')}`, () => {
        expect(targetWidths(original, widths)).to.deep.equal(expected);
      });
    }
  });

  describe('heightForWidth', () => {
    const cases: Array<[number, ImageSize, number]> = [
      [320, { width: 1000, height: 667 }, 213],
      [1000, { width: 1000, height: 667 }, 667],
      [320, { width: 5472, height: 3648 }, 213],
      [1600, { width: 5472, height: 3648 }, 1067],
      [100, { width: 10_000, height: 10 }, 1], // never zero
      [320, { width: 50_000, height: 1 }, 1], // 0.0064 rounds to 0: still 1
      [200, { width: 200, height: 400 }, 400],
    ];
    for (const [width, original, expected] of cases) {
      it(`${width} px wide from ${original.width}×${original.height} is ${expected} tall`, () => {
        expect(heightForWidth(width, original)).to.equal(expected);
      });
    }
  });

  describe('planVariants', () => {
    it('plans every width in every format, widths ascending, formats in configured order', () => {
      expect(
        planVariants({ width: 1200, height: 800 }, { WIDTHS: [320, 640, 2048], FORMATS: ['webp', 'jpeg'] }),
      ).to.deep.equal([
        { width: 320, format: 'webp' },
        { width: 320, format: 'jpeg' },
        { width: 640, format: 'webp' },
        { width: 640, format: 'jpeg' },
        { width: 1200, format: 'webp' },
        { width: 1200, format: 'jpeg' },
      ]);
    });

    it('plans 15 variants for a large photo with the defaults', () => {
      expect(planVariants({ width: 5472, height: 3648 }, config)).to.have.length(15);
    });

    it('plans with the upright width (portrait phone photos)', () => {
      expect(planVariants({ width: 300, height: 400 }, config).map(key)).to.deep.equal([
        '300.avif',
        '300.webp',
        '300.jpeg',
      ]);
    });
  });

  describe('costs', () => {
    it('orders formats by encode cost: AVIF ≫ WebP > JPEG', () => {
      expect(FORMAT_COST_FACTORS.avif).to.be.above(4 * FORMAT_COST_FACTORS.webp);
      expect(FORMAT_COST_FACTORS.webp).to.be.above(FORMAT_COST_FACTORS.jpeg);
      expect(Object.keys(FORMAT_COST_FACTORS).sort()).to.deep.equal([...OUTPUT_FORMATS].sort());
    });

    const info = { width: 4000, height: 3000 };
    const cases: Array<[VariantSpec, number]> = [
      [{ width: 2000, format: 'jpeg' }, 3 * FORMAT_COST_FACTORS.jpeg],
      [{ width: 2000, format: 'webp' }, 3 * FORMAT_COST_FACTORS.webp],
      [{ width: 1000, format: 'avif' }, 0.75 * FORMAT_COST_FACTORS.avif],
    ];
    for (const [variant, expected] of cases) {
      it(`costs ${key(variant)} of 4000×3000 as its megapixels × factor`, () => {
        expect(estimateVariantCost(variant, info)).to.be.closeTo(expected, 1e-9);
      });
    }

    it('charges every job one decode of the whole original', () => {
      expect(estimateDecodeCost(info)).to.be.closeTo(12 * DECODE_COST_FACTOR, 1e-9);
      expect(estimateJobCost([], info)).to.equal(estimateDecodeCost(info));
      const variants: VariantSpec[] = [
        { width: 2000, format: 'jpeg' },
        { width: 1000, format: 'avif' },
      ];
      expect(estimateJobCost(variants, info)).to.be.closeTo(
        estimateDecodeCost(info) + estimateVariantCost(variants[0]!, info) + estimateVariantCost(variants[1]!, info),
        1e-9,
      );
    });
  });

  describe('splitIntoJobs', () => {
    const images: Array<[string, ImageSize]> = [
      ['a 20 MP photo', { width: 5472, height: 3648 }],
      ['a 4 MP photo', { width: 2560, height: 1600 }],
      ['a 1200 px image', { width: 1200, height: 800 }],
      ['a portrait phone photo', { width: 3024, height: 4032 }],
      ['a thumbnail', { width: 200, height: 150 }],
    ];
    const formatSets: OutputFormat[][] = [DEFAULT_FORMATS, ['jpeg'], ['webp', 'avif']];

    for (const strategy of FANOUT_STRATEGIES) {
      for (const [what, info] of images) {
        for (const formats of formatSets) {
          it(`${strategy}: ${what} in ${formats.join('+')} puts every variant in exactly one non-empty job, deterministically`, () => {
            const variants = planVariants(info, { WIDTHS: DEFAULT_WIDTHS, FORMATS: formats });
            const jobs = splitIntoJobs(variants, info, strategy);
            expect(jobs.length).to.be.at.least(1);
            for (const job of jobs) expect(job).to.not.be.empty;
            expect(jobs.flat().map(key).sort()).to.deep.equal(variants.map(key).sort());
            expect(splitIntoJobs(variants, info, strategy)).to.deep.equal(jobs);
            expect(splitIntoJobs([...variants], { ...info }, strategy)).to.deep.equal(jobs);
          });
        }
      }
    }

    it('returns no jobs for no variants', () => {
      for (const strategy of FANOUT_STRATEGIES)
        expect(splitIntoJobs([], { width: 100, height: 100 }, strategy)).to.deep.equal([]);
    });

    const info = { width: 5472, height: 3648 };
    const variants = planVariants(info, config);
    const shape = (jobs: VariantSpec[][]): string[] => jobs.map((job) => job.map(key).join(' '));

    const fixed: Array<[FanoutStrategy, string[]]> = [
      ['per-image', [variants.map(key).join(' ')]],
      ['per-width', DEFAULT_WIDTHS.map((w) => `${w}.avif ${w}.webp ${w}.jpeg`)],
      ['per-format', DEFAULT_FORMATS.map((f) => DEFAULT_WIDTHS.map((w) => `${w}.${f}`).join(' '))],
    ];
    for (const [strategy, expected] of fixed) {
      it(`${strategy} groups a 20 MP photo's 15 variants as documented`, () => {
        expect(shape(splitIntoJobs(variants, info, strategy))).to.deep.equal(expected);
      });
    }

    it('keeps plan order inside each job', () => {
      const order = new Map(variants.map((variant, index) => [key(variant), index]));
      for (const strategy of FANOUT_STRATEGIES) {
        for (const job of splitIntoJobs(variants, info, strategy)) {
          const indexes = job.map((variant) => order.get(key(variant))!);
          expect(indexes, strategy).to.deep.equal([...indexes].sort((a, b) => a - b));
        }
      }
    });

    describe('balanced', () => {
      // A 2.5 MP photo: large enough that its AVIF encodes dwarf one more decode, so it splits.
      const photo = { width: 1920, height: 1280 };
      const photoVariants = planVariants(photo, { WIDTHS: DEFAULT_WIDTHS, FORMATS: DEFAULT_FORMATS });
      const makespan = (jobs: VariantSpec[][]): number => Math.max(...jobs.map((job) => estimateJobCost(job, photo)));

      it('splits a 2.5 MP photo into a few jobs, heaviest first, no slower than any other strategy', () => {
        const jobs = splitIntoJobs(photoVariants, photo, 'balanced');
        expect(jobs.length).to.be.within(2, MAX_BALANCED_JOBS);
        const costs = jobs.map((job) => estimateJobCost(job, photo));
        expect(costs).to.deep.equal([...costs].sort((a, b) => b - a));
        for (const strategy of ['per-image', 'per-width', 'per-format'] as const) {
          expect(makespan(jobs), strategy).to.be.at.most(makespan(splitIntoJobs(photoVariants, photo, strategy)));
        }
      });

      it('gives the biggest variant a job of its own when it dominates', () => {
        const jobs = splitIntoJobs(photoVariants, photo, 'balanced');
        expect(shape(jobs)[0]).to.equal('1920.avif');
      });

      it('reaches the lower bound: the decode plus the biggest variant', () => {
        const biggest = Math.max(...photoVariants.map((variant) => estimateVariantCost(variant, photo)));
        expect(makespan(splitIntoJobs(photoVariants, photo, 'balanced'))).to.be.closeTo(
          estimateDecodeCost(photo) + biggest,
          1e-9,
        );
      });

      it('keeps same-width variants together when balance allows', () => {
        const jobs = splitIntoJobs(photoVariants, photo, 'balanced');
        expect(jobs.length).to.be.above(1);
        const jobOf = (width: number, format: OutputFormat): number =>
          jobs.findIndex((job) => job.some((v) => v.width === width && v.format === format));
        for (const width of [320, 640, 1024, 1600]) {
          expect(jobOf(width, 'webp'), `${width} webp`).to.equal(jobOf(width, 'avif'));
          expect(jobOf(width, 'jpeg'), `${width} jpeg`).to.equal(jobOf(width, 'avif'));
        }
      });

      // Shapes of the shared corpus and the bench's generated photos: [name, width, height, jobs
      // with AVIF + WebP + JPEG, jobs with WebP + JPEG only].
      const shapes: Array<[string, number, number, string, string]> = [
        // Past ~15 MP one more decode costs more than 15 % of the (effort-3) AVIF encodes: one job.
        ['16.8 MP square WebP', 4096, 4096, '10+5', '10'],
        ['17.9 MP landscape JPEG', 5640, 3172, '15', '10'],
        ['20 MP photo', 5472, 3648, '15', '10'],
        ['2.5 MP photo', 1920, 1280, '1+3+11', '10'],
        ['1000 px image', 1000, 872, '1+8', '6'],
        ['2 MP portrait (issue 13 saw its WebP + JPEG split in two jobs)', 1200, 1700, '1+3+8', '8'],
        ['512 px image', 512, 512, '1+5', '4'],
        ['14×25 px GIF', 14, 25, '1+2', '2'],
        ['49.8 MP photo (its decode is dearer: fewer jobs)', 8640, 5760, '15', '10'],
      ];
      for (const [what, width, height, withAvif, jpegWebp] of shapes) {
        it(`packs a ${what} as ${withAvif} variants per job with AVIF and keeps WebP + JPEG in one job`, () => {
          const size = { width, height };
          const counts = (formats: OutputFormat[]) =>
            splitIntoJobs(planVariants(size, { WIDTHS: DEFAULT_WIDTHS, FORMATS: formats }), size, 'balanced')
              .map((job) => job.length)
              .join('+');
          expect(counts(DEFAULT_FORMATS)).to.equal(withAvif);
          expect(counts(['webp', 'jpeg'])).to.equal(jpegWebp);
        });
      }

      it('prices a HEIC’s decode at its own factor: fewer jobs than a JPEG of its size, never more than 15 % in extra decodes', () => {
        const heic = { width: 4032, height: 3024, format: 'heif' };
        const jpeg = { width: 4032, height: 3024, format: 'jpeg' };
        expect(estimateDecodeCost(heic)).to.be.closeTo(megapixelsOf(heic) * DECODE_COST_FACTORS.heif!, 1e-9);
        expect(estimateDecodeCost(jpeg)).to.be.closeTo(megapixelsOf(jpeg) * DECODE_COST_FACTOR, 1e-9);
        const jobsOf = (info: typeof heic) =>
          splitIntoJobs(planVariants(info, { WIDTHS: DEFAULT_WIDTHS, FORMATS: DEFAULT_FORMATS }), info, 'balanced');
        // The 12 MP iPhone shape: two jobs as a JPEG, one as a HEIC (a second HEIC decode is ~1.3 CPU s).
        expect(jobsOf(jpeg).length, 'as a JPEG').to.equal(2);
        expect(jobsOf(heic).length, 'as a HEIC').to.equal(1);
        for (const [, width, height] of shapes) {
          const size = { width, height, format: 'heif' };
          const all = planVariants(size, { WIDTHS: DEFAULT_WIDTHS, FORMATS: DEFAULT_FORMATS });
          const extra = (splitIntoJobs(all, size, 'balanced').length - 1) * estimateDecodeCost(size);
          expect(extra, `${width}×${height} HEIC`).to.be.at.most(
            MAX_FANOUT_DECODE_OVERHEAD * estimateJobCost(all, size) + 1e-9,
          );
        }
      });

      it(`never adds more than ${MAX_FANOUT_DECODE_OVERHEAD * 100}% of an image's estimated work in extra decodes`, () => {
        for (const [, width, height] of shapes) {
          const size = { width, height };
          for (const formats of [DEFAULT_FORMATS, ['webp', 'jpeg'] as OutputFormat[], ['avif'] as OutputFormat[]]) {
            const all = planVariants(size, { WIDTHS: DEFAULT_WIDTHS, FORMATS: formats });
            const jobs = splitIntoJobs(all, size, 'balanced');
            const work = estimateJobCost(all, size);
            expect(
              (jobs.length - 1) * estimateDecodeCost(size),
              `${width}×${height} ${formats.join(',')}`,
            ).to.be.at.most(MAX_FANOUT_DECODE_OVERHEAD * work + 1e-9);
          }
        }
      });

      it('makes one job when there is nothing to balance', () => {
        const single = [{ width: 320, format: 'jpeg' as const }];
        expect(splitIntoJobs(single, info, 'balanced')).to.deep.equal([single]);
        const jpegs = planVariants(info, { WIDTHS: DEFAULT_WIDTHS, FORMATS: ['jpeg'] });
        expect(splitIntoJobs(jpegs, info, 'balanced').length).to.be.at.most(2);
      });

      const targets: Array<[number, number]> = [
        [1, 1],
        [2, 2],
        [4, 4],
        [6, 6],
        [40, 15], // never more jobs than variants
        [0, 1], // never fewer than one
        [2.7, 2],
      ];
      for (const [target, expected] of targets) {
        it(`honours targetJobs ${target} → ${expected} job(s)`, () => {
          const jobs = splitIntoJobs(variants, info, 'balanced', target);
          expect(jobs).to.have.length(expected);
          expect(jobs.flat().map(key).sort()).to.deep.equal(variants.map(key).sort());
        });
      }

      it('spreads load evenly when asked for more jobs than the bound needs', () => {
        const jobs = splitIntoJobs(variants, info, 'balanced', 2);
        const costs = jobs.map((job) => estimateJobCost(job, info));
        expect(Math.max(...costs) / Math.min(...costs)).to.be.below(1.2);
      });
    });
  });

  describe("shapes within each format's limits", () => {
    /** The encoders' own limits, written out (not read from FORMAT_LIMITS) and checked against sharp below. */
    const MAX: Record<OutputFormat, number> = { avif: 16384, webp: 16383, jpeg: 65500 };
    const fits = (format: OutputFormat, width: number, height: number) => width <= MAX[format] && height <= MAX[format];

    it('has one table of limits, and it says what sharp itself does: a 1 px thick image at each limit encodes, one pixel more does not', async function () {
      this.timeout(30_000);
      expect(
        Object.fromEntries(OUTPUT_FORMATS.map((f) => [f, [FORMAT_LIMITS[f].maxWidth, FORMAT_LIMITS[f].maxHeight]])),
      ).to.deep.equal(Object.fromEntries(OUTPUT_FORMATS.map((f) => [f, [MAX[f], MAX[f]]])));
      const encode = (format: OutputFormat, width: number, height: number) =>
        sharp({ create: { width, height, channels: 3, background: '#336699' } })
          .toFormat(format, format === 'avif' ? { effort: 0, chromaSubsampling: '4:2:0' } : {})
          .toBuffer({ resolveWithObject: true });
      for (const format of OUTPUT_FORMATS) {
        const { maxWidth, maxHeight } = FORMAT_LIMITS[format];
        expect((await encode(format, maxWidth, 1)).info.width, `${format} ${maxWidth}×1`).to.equal(maxWidth);
        expect((await encode(format, 1, maxHeight)).info.height, `${format} 1×${maxHeight}`).to.equal(maxHeight);
        for (const [width, height] of [
          [maxWidth + 1, 1],
          [1, maxHeight + 1],
        ] as const) {
          const error = await encode(format, width, height).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(error, `${format} ${width}×${height} must be refused by sharp`).to.be.instanceOf(Error);
        }
        // The smallest and odd sizes are fine too (AVIF pads its 4:2:0 chroma).
        for (const [width, height] of [
          [1, 1],
          [1, 2],
          [3, 5],
        ] as const) {
          expect((await encode(format, width, height)).info).to.include({ width, height });
        }
      }
    });

    const v = (width: number, ...formats: OutputFormat[]) => formats.map((format) => ({ width, format }));
    const o = (width: number, height: number, ...formats: OutputFormat[]) =>
      formats.map((format) => ({ width, height, format, reason: EXCEEDS_FORMAT_LIMIT }));
    const shapes: Array<[string, ImageSize, VariantSpec[], ReturnType<typeof o>]> = [
      [
        'a 1080×20000 long screenshot: WebP and AVIF stop at 884 px (16,370 px tall), JPEG goes to the full width',
        { width: 1080, height: 20000 },
        [
          ...v(320, 'avif', 'webp', 'jpeg'),
          ...v(640, 'avif', 'webp', 'jpeg'),
          ...v(884, 'avif', 'webp'),
          ...v(1024, 'jpeg'),
          ...v(1080, 'jpeg'),
        ],
        [...o(1024, 18963, 'avif', 'webp'), ...o(1080, 20000, 'avif', 'webp')],
      ],
      ['a 20000×1080 panorama: every width', { width: 20000, height: 1080 }, every(DEFAULT_WIDTHS), []],
      ['a 1×50000 line: JPEG only', { width: 1, height: 50000 }, v(1, 'jpeg'), o(1, 50000, 'avif', 'webp')],
      ['a 50000×1 line: every width, 1 px tall', { width: 50000, height: 1 }, every(DEFAULT_WIDTHS), []],
      ['a 16384×1 line: every width', { width: 16384, height: 1 }, every(DEFAULT_WIDTHS), []],
      [
        'a 16385×16385 square (refused by the pixel cap, not by the planner)',
        { width: 16385, height: 16385 },
        every(DEFAULT_WIDTHS),
        [],
      ],
      [
        'a 1×16384 line: AVIF and JPEG, not WebP',
        { width: 1, height: 16384 },
        v(1, 'avif', 'jpeg'),
        o(1, 16384, 'webp'),
      ],
      ['a 1×65500 line: JPEG at its limit', { width: 1, height: 65500 }, v(1, 'jpeg'), o(1, 65500, 'avif', 'webp')],
      ['a 1×65501 line: nothing at all', { width: 1, height: 65501 }, [], o(1, 65501, 'avif', 'webp', 'jpeg')],
      [
        'a 600×20000 strip narrower than the widths: WebP/AVIF at the widest that fits',
        { width: 600, height: 20000 },
        [...v(320, 'avif', 'webp', 'jpeg'), ...v(491, 'avif', 'webp'), ...v(600, 'jpeg')],
        o(600, 20000, 'avif', 'webp'),
      ],
    ];
    function every(widths: number[]): VariantSpec[] {
      return widths.flatMap((width) => v(width, 'avif', 'webp', 'jpeg'));
    }
    for (const [what, size, variants, omitted] of shapes) {
      it(`plans ${what}`, () => {
        expect(planImage(size, config)).to.deep.equal({ variants, omitted });
        expect(planVariants(size, config)).to.deep.equal(variants);
        for (const { width, format } of variants)
          expect(fits(format, width, heightForWidth(width, size)), `${width} px ${format}`).to.equal(true);
      });
    }

    it('plans within the limits for any shape: every configured pair is made or omitted, and each format gets the widest width that fits', () => {
      let seed = 7;
      const random = () => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31;
        return seed / 2 ** 31;
      };
      for (let i = 0; i < 3000; i++) {
        const long = Math.ceil(random() ** 0.3 * 200_000);
        const short = Math.ceil(random() ** 3 * 3000);
        const size = random() < 0.5 ? { width: short, height: long } : { width: long, height: short };
        const { variants, omitted } = planImage(size, config);
        const label = `${size.width}×${size.height}`;
        for (const { width, format } of variants)
          expect(fits(format, width, heightForWidth(width, size)), `${label}: ${width} px ${format}`).to.equal(true);
        for (const format of DEFAULT_FORMATS) {
          for (const width of targetWidths(size.width, DEFAULT_WIDTHS)) {
            const ok = fits(format, width, heightForWidth(width, size));
            expect(
              variants.some((x) => x.width === width && x.format === format),
              `${label}: ${width} px ${format} made`,
            ).to.equal(ok);
            expect(
              omitted.some((x) => x.width === width && x.format === format),
              `${label}: ${width} px ${format} omitted`,
            ).to.equal(!ok);
          }
          const widest = Math.max(0, ...variants.filter((x) => x.format === format).map((x) => x.width));
          if (widest < Math.min(size.width, Math.max(...DEFAULT_WIDTHS))) {
            expect(
              fits(format, widest + 1, heightForWidth(widest + 1, size)),
              `${label}: ${format} could go wider than ${widest}`,
            ).to.equal(false);
          }
        }
      }
    });
  });
  describe('variants larger than the original', () => {
    const plan: VariantSpec[] = [
      { width: 320, format: 'avif' },
      { width: 320, format: 'jpeg' },
      { width: 640, format: 'avif' },
      { width: 640, format: 'jpeg' },
      { width: 1024, format: 'webp' },
      { width: 640, format: 'jpeg', aspect: '1:1' },
      { width: 1024, format: 'jpeg', aspect: '1:1' },
    ];

    it("keeps each format's smallest width in each frame (the floor)", () => {
      expect(plan.map((v) => isFormatFloor(v, plan))).to.deep.equal([true, true, false, false, true, true, false]);
    });

    it('leaves out only a larger variant that is not a floor', () => {
      const [avif320, , avif640, , webp1024, , square1024] = plan as [VariantSpec, ...VariantSpec[]];
      expect(omitAsLarger(avif640!, 1001, 1000, plan)).to.equal(true);
      expect(omitAsLarger(avif640!, 1000, 1000, plan), 'equal size is kept').to.equal(false);
      expect(omitAsLarger(avif320, 5000, 1000, plan), 'floor').to.equal(false);
      expect(omitAsLarger(webp1024!, 5000, 1000, plan), 'only width of its format').to.equal(false);
      expect(omitAsLarger(square1024!, 5000, 1000, plan)).to.equal(true);
    });
  });
});
