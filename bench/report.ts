/**
 * The bench's report: the data model written to the JSON file, the aggregation of raw runs into
 * medians and ratios, the targets, and the Markdown printed on stdout.
 */
import type { VariantSpec } from '../shared/core/schemas.js';
import { heightForWidth, omitAsLarger } from '../shared/image/plan.js';
import type { AnchorVariantRun, FloorRun, ParityResult, Timing } from './methods.js';
import { bytes, fixed, geomean, markdownTable, median, mibFromKib, percent, sum, times } from './stats.js';
import type { EncoderCase, EncoderRow, QualityRow, RuntimeResult } from './tasks.js';
import type { FanoutStrategy, OutputFormat } from '../shared/core/domain.js';

/** Where the numbers came from. */
export interface MachineFacts {
  nproc: number;
  cpuModel: string;
  memoryGiB: number;
  platform: string;
  node: string;
  sharp: string;
  libvips: string;
  /** 1/5/15-minute load averages when the bench started and ended (others' work competes). */
  loadAverageStart: number[];
  loadAverageEnd: number[];
}

/** How the bench was run. */
export interface BenchOptions {
  corpus?: string;
  runs: number;
  strategyRuns: number;
  quick: boolean;
  sections: Section[];
  encoderWidth: number;
  encoderImages: string[];
}

/** Parts of the bench that can be run on their own. */
export const SECTIONS = ['main', 'quality', 'encoders', 'runtime'] as const;
/** One of {@link SECTIONS}. */
export type Section = (typeof SECTIONS)[number];

/** Medians over runs. */
export interface Medians {
  cpuS: number;
  wallS: number;
  /** Peak RSS of the child process, MiB. */
  rssMiB: number;
}

/** One run of one child: what it measured and its peak RSS. */
export interface RunFacts {
  maxRssKiB: number;
  baselineRssKiB: number;
}

/** Ours with one fan-out strategy. */
export interface StrategyResult {
  strategy: FanoutStrategy;
  jobs: VariantSpec[][];
  /** Set when another strategy made exactly the same jobs and its runs are reused. */
  sameJobsAs?: FanoutStrategy;
  runs: Array<RunFacts & { jobs: Timing[] }>;
  median: Medians;
  /** Modelled time to the last variant with K parallel workers (median over runs), seconds. */
  timeToLastS: Record<string, number>;
}

/** The anchor's method. */
export interface AnchorResult {
  runs: Array<RunFacts & Timing & { variants: AnchorVariantRun[] }>;
  median: Medians;
}

/** The floor. */
export interface FloorResult {
  runs: Array<RunFacts & FloorRun>;
  median: Medians & {
    decodeS: number;
    decodeFullS: number;
    decodeToLargestS?: number;
    resizeExcludedS: number;
    encodeS: Record<OutputFormat, number>;
  };
}

/** Ratios within one configuration, by CPU and by wall time. */
export interface Ratios {
  anchorOverOursCpu: number;
  anchorOverOursWall: number;
  oursOverFloorCpu: number;
  oursOverFloorWall: number;
  /** The most any pipeline could gain over the anchor: anchor ÷ floor. */
  anchorOverFloorCpu: number;
  /** The same with ours = one job (the per-image strategy), i.e. without fan-out decodes. */
  anchorOverPerImageCpu?: number;
  perImageOverFloorCpu?: number;
}

/** One configuration (formats) measured with every method. */
export interface ConfigResult {
  formats: OutputFormat[];
  variants: VariantSpec[];
  strategies: Partial<Record<FanoutStrategy, StrategyResult>>;
  anchor?: AnchorResult;
  floor?: FloorResult;
  ratios?: Ratios;
}

/** One input image. */
export interface ImageResult {
  name: string;
  bytes: number;
  format?: string;
  width?: number;
  height?: number;
  megapixels?: number;
  frames?: number;
  hasAlpha?: boolean;
  progressive?: boolean;
  /** Why the image could not be processed (a clean error row, not a crash). */
  error?: { code: string; message: string; detail?: string };
  main?: ConfigResult;
  jpegWebp?: ConfigResult;
  /** Bytes of each output of ours (default strategy, default config), from the first run. */
  outputs?: Array<{ width: number; format: OutputFormat; bytes: number }>;
  /**
   * Variants larger than the original file (first run, default config): the anchor's, ours written
   * (each a format's smallest width, always kept) and ours left out (not written; docs/api.md).
   */
  largerThanOriginal?: { anchor?: number; ours: number; oursLeftOut: number };
  quality?: QualityRow[];
}

/** One aggregated row of the encoder-settings table. */
export interface EncoderSummary extends EncoderCase {
  isDefault: boolean;
  cpuMs: number;
  megapixels: number;
  cpuMsPerMp: number;
  bytes: number;
  meanSsim: number;
  /** Relative to the default setting of the same format. */
  cpuVsDefault: number;
  bytesVsDefault: number;
  ssimVsDefault: number;
}

/** One measured runtime configuration. */
export interface RuntimeRow {
  config: string;
  label: string;
  env: Record<string, string | null>;
  image: string;
  megapixels: number;
  instances: number;
  result?: RuntimeResult;
  sharpConcurrency?: number;
  maxRssKiB?: number;
  baselineRssKiB?: number;
  error?: { code: string; message: string };
}

/** A target from the issue, checked. */
export interface TargetCheck {
  name: string;
  target: string;
  value: string;
  met: boolean | null;
}

/** Aggregates over every image that worked. */
export interface Overall {
  images: number;
  cpuS: Record<string, number>;
  wallS: Record<string, number>;
  ratios: Ratios & { geomeanAnchorOverOursCpu: number; geomeanOursOverFloorCpu: number };
  strategies: Partial<
    Record<
      FanoutStrategy,
      { jobs: number; cpuS: number; wallS: number; timeToLastS: Record<string, number>; maxRssMiB: number }
    >
  >;
}

/** Everything the bench measured. */
export interface BenchReport {
  version: 1;
  startedAt: string;
  finishedAt: string;
  durationS: number;
  machine: MachineFacts;
  options: BenchOptions;
  /** The configuration measured (defaults from shared/core/config.ts unless overridden by env). */
  config: Record<string, unknown>;
  /** Environment of the main measurements' child processes. */
  runtimeEnv: Record<string, string | null>;
  defaultStrategy: FanoutStrategy;
  parity?: ParityResult;
  images: ImageResult[];
  overall?: { main?: Overall; jpegWebp?: Overall };
  encoders?: { images: string[]; width: number; rows: EncoderRow[]; summary: EncoderSummary[] };
  runtime?: RuntimeRow[];
  /** CPU per megapixel of encodes and decodes, from the floor (see {@link costModel}). */
  costModel?: { encodeMsPerMp: Record<string, number>; decodeMsPerMp: Record<string, number> };
  targets: TargetCheck[];
  notes: string[];
}

/** Workers K for the time-to-last-variant model. */
export const WORKER_COUNTS = [1, 2, 4, 8] as const;

/**
 * Time until the last job finishes when `jobs` (in publication order) are taken by `workers`
 * identical instances, each job starting on the first free one: list scheduling.
 */
export function timeToLast(jobWallMs: readonly number[], workers: number): number {
  const free = Array.from({ length: workers }, () => 0);
  for (const wall of jobWallMs) {
    let first = 0;
    for (let i = 1; i < free.length; i++) if ((free[i] ?? 0) < (free[first] ?? 0)) first = i;
    free[first] = (free[first] ?? 0) + wall;
  }
  return Math.max(...free);
}

/** Medians of a strategy's runs. */
export function summariseStrategy(
  strategy: FanoutStrategy,
  jobs: VariantSpec[][],
  runs: StrategyResult['runs'],
): StrategyResult {
  const timeToLastS: Record<string, number> = {};
  for (const k of WORKER_COUNTS)
    timeToLastS[k] =
      median(
        runs.map((run) =>
          timeToLast(
            run.jobs.map((j) => j.wallMs),
            k,
          ),
        ),
      ) / 1000;
  return {
    strategy,
    jobs,
    runs,
    median: {
      cpuS: median(runs.map((run) => sum(run.jobs.map((j) => j.cpuMs)))) / 1000,
      wallS: median(runs.map((run) => sum(run.jobs.map((j) => j.wallMs)))) / 1000,
      rssMiB: mibFromKib(median(runs.map((run) => run.maxRssKiB))),
    },
    timeToLastS,
  };
}

/** Medians of the anchor's runs. */
export function summariseAnchor(runs: AnchorResult['runs']): AnchorResult {
  return {
    runs,
    median: {
      cpuS: median(runs.map((r) => r.cpuMs)) / 1000,
      wallS: median(runs.map((r) => r.wallMs)) / 1000,
      rssMiB: mibFromKib(median(runs.map((r) => r.maxRssKiB))),
    },
  };
}

/** Medians of the floor's runs. */
export function summariseFloor(runs: FloorResult['runs']): FloorResult {
  const encodeS = {} as Record<OutputFormat, number>;
  for (const format of ['avif', 'webp', 'jpeg'] as const) {
    encodeS[format] =
      median(runs.map((r) => sum(r.encodes.filter((e) => e.format === format).map((e) => e.cpuMs)))) / 1000;
  }
  const toLargest = runs.flatMap((r) => (r.decodeToLargest ? [r.decodeToLargest.cpuMs] : []));
  return {
    runs,
    median: {
      cpuS: median(runs.map((r) => r.total.cpuMs)) / 1000,
      wallS: median(runs.map((r) => r.total.wallMs)) / 1000,
      rssMiB: mibFromKib(median(runs.map((r) => r.maxRssKiB))),
      decodeS: median(runs.map((r) => r.decode.cpuMs)) / 1000,
      decodeFullS: median(runs.map((r) => r.decodeFull.cpuMs)) / 1000,
      ...(toLargest.length > 0 ? { decodeToLargestS: median(toLargest) / 1000 } : {}),
      resizeExcludedS: median(runs.map((r) => r.resizes.cpuMs)) / 1000,
      encodeS,
    },
  };
}

/** Ratios of a configuration, or undefined when a method is missing. */
export function ratiosOf(result: ConfigResult, defaultStrategy: FanoutStrategy): Ratios | undefined {
  const ours = result.strategies[defaultStrategy];
  const { anchor, floor } = result;
  if (!ours || !anchor || !floor) return undefined;
  const perImage = result.strategies['per-image'];
  return {
    anchorOverOursCpu: anchor.median.cpuS / ours.median.cpuS,
    anchorOverOursWall: anchor.median.wallS / ours.median.wallS,
    oursOverFloorCpu: ours.median.cpuS / floor.median.cpuS,
    oursOverFloorWall: ours.median.wallS / floor.median.wallS,
    anchorOverFloorCpu: anchor.median.cpuS / floor.median.cpuS,
    ...(perImage
      ? {
          anchorOverPerImageCpu: anchor.median.cpuS / perImage.median.cpuS,
          perImageOverFloorCpu: perImage.median.cpuS / floor.median.cpuS,
        }
      : {}),
  };
}

/** A configuration's result with the anchor, the floor and the ratios between them and ours. */
type CompleteResult = ConfigResult & Required<Pick<ConfigResult, 'anchor' | 'floor' | 'ratios'>>;

function isComplete(result: ConfigResult | undefined): result is CompleteResult {
  return result?.ratios !== undefined && result.anchor !== undefined && result.floor !== undefined;
}

/** Sums and ratios over every image with complete results in `pick`. */
export function overallOf(
  images: readonly ImageResult[],
  pick: (image: ImageResult) => ConfigResult | undefined,
  defaultStrategy: FanoutStrategy,
): Overall | undefined {
  const complete = images.map(pick).filter(isComplete);
  if (complete.length === 0) return undefined;
  const cpuS: Record<string, number> = {};
  const wallS: Record<string, number> = {};
  const strategies: Overall['strategies'] = {};
  const allStrategies = new Set(complete.flatMap((r) => Object.keys(r.strategies) as FanoutStrategy[]));
  for (const strategy of allStrategies) {
    const results = complete.map((r) => r.strategies[strategy]);
    if (results.some((r) => r === undefined)) continue;
    const present = results as StrategyResult[];
    const timeToLastS: Record<string, number> = {};
    for (const k of WORKER_COUNTS) timeToLastS[k] = sum(present.map((r) => r.timeToLastS[k] ?? Number.NaN));
    strategies[strategy] = {
      jobs: sum(present.map((r) => r.jobs.length)),
      cpuS: sum(present.map((r) => r.median.cpuS)),
      wallS: sum(present.map((r) => r.median.wallS)),
      timeToLastS,
      maxRssMiB: Math.max(...present.map((r) => r.median.rssMiB)),
    };
  }
  // Ratios exist only where the default strategy ran, so every complete image has it.
  const ours = strategies[defaultStrategy];
  if (!ours) return undefined;
  cpuS.ours = ours.cpuS;
  wallS.ours = ours.wallS;
  if (strategies['per-image']) {
    cpuS.perImage = strategies['per-image'].cpuS;
    wallS.perImage = strategies['per-image'].wallS;
  }
  cpuS.anchor = sum(complete.map((r) => r.anchor.median.cpuS));
  wallS.anchor = sum(complete.map((r) => r.anchor.median.wallS));
  cpuS.floor = sum(complete.map((r) => r.floor.median.cpuS));
  wallS.floor = sum(complete.map((r) => r.floor.median.wallS));
  return {
    images: complete.length,
    cpuS,
    wallS,
    ratios: {
      anchorOverOursCpu: cpuS.anchor / cpuS.ours,
      anchorOverOursWall: wallS.anchor / wallS.ours,
      oursOverFloorCpu: cpuS.ours / cpuS.floor,
      oursOverFloorWall: wallS.ours / wallS.floor,
      anchorOverFloorCpu: cpuS.anchor / cpuS.floor,
      ...(cpuS.perImage !== undefined
        ? { anchorOverPerImageCpu: cpuS.anchor / cpuS.perImage, perImageOverFloorCpu: cpuS.perImage / cpuS.floor }
        : {}),
      geomeanAnchorOverOursCpu: geomean(complete.map((r) => r.ratios.anchorOverOursCpu)),
      geomeanOursOverFloorCpu: geomean(complete.map((r) => r.ratios.oursOverFloorCpu)),
    },
    strategies,
  };
}

/** Key of an encoder case, for matching rows. */
export function caseKey(setting: EncoderCase): string {
  return `${setting.format} q${setting.quality}${setting.effort !== undefined ? ` effort ${setting.effort}` : ''}${setting.mozjpeg !== undefined ? ` mozjpeg ${setting.mozjpeg ? 'on' : 'off'}` : ''}`;
}

/** Aggregates encoder rows per setting over the images, relative to each format's default. */
export function summariseEncoders(
  rows: readonly EncoderRow[],
  cases: readonly EncoderCase[],
  defaults: readonly EncoderCase[],
): EncoderSummary[] {
  const defaultKeys = new Set(defaults.map(caseKey));
  const base = cases.map((setting) => {
    const matching = rows.filter((row) => caseKey(row) === caseKey(setting));
    const cpuMs = sum(matching.map((r) => r.cpuMs));
    const megapixels = sum(matching.map((r) => (r.width * r.height) / 1e6));
    return {
      ...setting,
      isDefault: defaultKeys.has(caseKey(setting)),
      cpuMs,
      megapixels,
      cpuMsPerMp: cpuMs / megapixels,
      bytes: sum(matching.map((r) => r.bytes)),
      meanSsim: matching.length > 0 ? sum(matching.map((r) => r.ssim)) / matching.length : Number.NaN,
    };
  });
  return base.map((row) => {
    const reference = base.find((other) => other.isDefault && other.format === row.format);
    return {
      ...row,
      cpuVsDefault: reference ? row.cpuMs / reference.cpuMs : Number.NaN,
      bytesVsDefault: reference ? row.bytes / reference.bytes - 1 : Number.NaN,
      ssimVsDefault: reference ? row.meanSsim - reference.meanSsim : Number.NaN,
    };
  });
}

const FORMAT_NAMES: Record<OutputFormat, string> = { avif: 'AVIF', webp: 'WebP', jpeg: 'JPEG' };

const s = (value: number | undefined, digits = 2): string => fixed(value, digits);

function strategyOrder(
  strategies: Partial<Record<FanoutStrategy, unknown>>,
  defaultStrategy: FanoutStrategy,
): FanoutStrategy[] {
  const order: FanoutStrategy[] = ['balanced', 'per-image', 'per-width', 'per-format'];
  return [defaultStrategy, ...order.filter((x) => x !== defaultStrategy)].filter((x) => strategies[x] !== undefined);
}

function methodsTable(
  report: BenchReport,
  pick: (image: ImageResult) => ConfigResult | undefined,
  overall: Overall | undefined,
): string {
  const rows: string[][] = [];
  for (const image of report.images) {
    const result = pick(image);
    if (image.error) {
      rows.push([image.name, '–', `error: ${image.error.code}`, '', '', '', '', '', '', '', '', '']);
      continue;
    }
    const ours = result?.strategies[report.defaultStrategy];
    if (!isComplete(result) || !ours) continue;
    const perImage = result.strategies['per-image'];
    rows.push([
      image.name,
      s(image.megapixels, 1),
      s(ours.median.cpuS),
      perImage ? s(perImage.median.cpuS) : '–',
      s(result.anchor.median.cpuS),
      s(result.floor.median.cpuS),
      times(result.ratios.anchorOverOursCpu),
      times(result.ratios.oursOverFloorCpu),
      s(ours.median.wallS),
      s(result.anchor.median.wallS),
      times(result.ratios.anchorOverOursWall),
      `${s(ours.median.rssMiB, 0)} / ${s(result.anchor.median.rssMiB, 0)}`,
    ]);
  }
  if (overall) {
    rows.push([
      `**overall (${overall.images} images)**`,
      '',
      `**${s(overall.cpuS.ours)}**`,
      s(overall.cpuS.perImage),
      `**${s(overall.cpuS.anchor)}**`,
      `**${s(overall.cpuS.floor)}**`,
      `**${times(overall.ratios.anchorOverOursCpu)}**`,
      `**${times(overall.ratios.oursOverFloorCpu)}**`,
      s(overall.wallS.ours),
      s(overall.wallS.anchor),
      times(overall.ratios.anchorOverOursWall),
      '',
    ]);
    rows.push([
      'geometric mean of per-image ratios',
      '',
      '',
      '',
      '',
      '',
      times(overall.ratios.geomeanAnchorOverOursCpu),
      times(overall.ratios.geomeanOursOverFloorCpu),
      '',
      '',
      '',
      '',
    ]);
  }
  return markdownTable(
    [
      'image',
      'MP',
      `ours CPU s (${report.defaultStrategy})`,
      'ours CPU s (per-image)',
      'anchor CPU s',
      'floor CPU s',
      'anchor ÷ ours CPU',
      'ours ÷ floor CPU',
      'ours wall s',
      'anchor wall s',
      'anchor ÷ ours wall',
      'peak RSS MiB ours / anchor',
    ],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function floorTable(report: BenchReport): string {
  const rows: string[][] = [];
  for (const image of report.images) {
    const floor = image.main?.floor;
    if (!floor) continue;
    const m = floor.median;
    rows.push([
      image.name,
      s(m.decodeFullS, 3),
      m.decodeToLargestS === undefined ? '–' : s(m.decodeToLargestS, 3),
      s(m.decodeS, 3),
      s(m.encodeS.avif, 2),
      s(m.encodeS.webp, 2),
      s(m.encodeS.jpeg, 3),
      s(m.cpuS, 2),
      s(m.resizeExcludedS, 3),
    ]);
  }
  return markdownTable(
    [
      'image',
      'full decode',
      'decode to largest width',
      'decode counted',
      'AVIF encodes',
      'WebP encodes',
      'JPEG encodes',
      'floor',
      'resizes (not counted)',
    ],
    rows,
    ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

/**
 * CPU per megapixel from the floor's measurements: each encode per output MP, each full decode
 * per input MP. These are the numbers shared/image/plan.ts's cost model (FORMAT_COST_FACTORS,
 * DECODE_COST_FACTOR, in units of plain JPEG encode CPU) should follow.
 */
export function costModel(report: BenchReport): {
  encodeMsPerMp: Record<string, number>;
  decodeMsPerMp: Record<string, number>;
} {
  const encode: Record<string, { ms: number; mp: number }> = {};
  const decode: Record<string, { ms: number; mp: number }> = {};
  const large = report.images.filter((image) => (image.megapixels ?? 0) >= 0.5 && image.main?.floor);
  for (const image of large.length > 0 ? large : report.images) {
    const floor = image.main?.floor;
    if (!floor || !image.width || !image.height || image.megapixels === undefined) continue;
    const info = { width: image.width, height: image.height };
    const keys = new Set((floor.runs[0]?.encodes ?? []).map((e) => `${e.width} ${e.format}`));
    for (const key of keys) {
      const [w, format] = key.split(' ') as [string, OutputFormat];
      const width = Number(w);
      const ms = median(
        floor.runs.map((r) => r.encodes.find((e) => `${e.width} ${e.format}` === key)?.cpuMs ?? Number.NaN),
      );
      const entry = encode[format] ?? { ms: 0, mp: 0 };
      encode[format] = entry;
      entry.ms += ms;
      entry.mp += (width * heightForWidth(width, info)) / 1e6;
    }
    const kind =
      image.format === 'jpeg'
        ? image.progressive
          ? 'progressive JPEG'
          : 'baseline JPEG'
        : `${image.format?.toUpperCase()}${image.hasAlpha ? ' (alpha)' : ''}`;
    const entry = decode[kind] ?? { ms: 0, mp: 0 };
    decode[kind] = entry;
    entry.ms += floor.median.decodeFullS * 1000;
    entry.mp += image.megapixels;
  }
  const per = (table: Record<string, { ms: number; mp: number }>): Record<string, number> =>
    Object.fromEntries(Object.entries(table).map(([k, v]) => [k, v.ms / v.mp]));
  return { encodeMsPerMp: per(encode), decodeMsPerMp: per(decode) };
}

function costModelTable(report: BenchReport): string {
  const model = costModel(report);
  const jpeg = model.encodeMsPerMp.jpeg;
  const rows = [
    ...Object.entries(model.encodeMsPerMp).map(([format, ms]) => [
      `encode ${FORMAT_NAMES[format as OutputFormat]} (per output MP)`,
      fixed(ms, 1),
      jpeg ? fixed(ms / jpeg, 1) : '–',
    ]),
    ...Object.entries(model.decodeMsPerMp).map(([kind, ms]) => [
      `full decode, ${kind} (per input MP)`,
      fixed(ms, 1),
      jpeg ? fixed(ms / jpeg, 2) : '–',
    ]),
  ];
  return markdownTable(['work', 'CPU ms per MP', 'relative to JPEG encode'], rows, ['l', 'r', 'r']);
}

function strategyTables(report: BenchReport): string {
  const overall = report.overall?.main;
  const parts: string[] = [];
  if (overall) {
    const rows = strategyOrder(overall.strategies, report.defaultStrategy).flatMap((strategy) => {
      const o = overall.strategies[strategy];
      if (!o) return [];
      return [
        [
          strategy === report.defaultStrategy ? `**${strategy}** (default)` : strategy,
          String(o.jobs),
          s(o.cpuS),
          times(o.cpuS / (overall.strategies['per-image']?.cpuS ?? Number.NaN)),
          ...WORKER_COUNTS.map((k) => s(o.timeToLastS[k])),
          s(o.maxRssMiB, 0),
        ],
      ];
    });
    parts.push(
      markdownTable(
        [
          'strategy',
          'jobs',
          'CPU s (all jobs)',
          'CPU vs per-image',
          ...WORKER_COUNTS.map((k) => `last variant, K=${k} (s)`),
          'max peak RSS MiB',
        ],
        rows,
        ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
      ),
    );
  }
  const rows: string[][] = [];
  for (const image of report.images) {
    const main = image.main;
    if (!main) continue;
    for (const strategy of strategyOrder(main.strategies, report.defaultStrategy)) {
      const r = main.strategies[strategy];
      if (!r) continue;
      rows.push([
        image.name,
        strategy,
        r.jobs.map((job) => job.length).join('+'),
        s(r.median.cpuS),
        s(r.median.wallS),
        ...WORKER_COUNTS.slice(1).map((k) => s(r.timeToLastS[k])),
        s(r.median.rssMiB, 0),
        String(r.runs.length) + (r.sameJobsAs ? ` (= ${r.sameJobsAs})` : ''),
      ]);
    }
  }
  parts.push(
    markdownTable(
      [
        'image',
        'strategy',
        'variants per job',
        'CPU s',
        'wall s (K=1)',
        ...WORKER_COUNTS.slice(1).map((k) => `last variant K=${k} (s)`),
        'peak RSS MiB',
        'runs',
      ],
      rows,
      ['l', 'l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  );
  return parts.join('\n\n');
}

/** How many variants are larger than the original file: the anchor's, and ours written or left out (as resize decides). */
export function largerThanOriginal(
  originalBytes: number,
  plan: readonly VariantSpec[],
  ours: ReadonlyArray<{ width: number; format: OutputFormat; bytes: number }>,
  anchor?: { variants: ReadonlyArray<{ bytes: number }> },
): NonNullable<ImageResult['largerThanOriginal']> {
  const larger = ours.filter((o) => o.bytes > originalBytes);
  const leftOut = larger.filter((o) => omitAsLarger(o, o.bytes, originalBytes, plan)).length;
  return {
    ...(anchor ? { anchor: anchor.variants.filter((v) => v.bytes > originalBytes).length } : {}),
    ours: larger.length - leftOut,
    oursLeftOut: leftOut,
  };
}

function bytesTable(report: BenchReport): string {
  const rows: string[][] = [];
  const totals: Record<OutputFormat, number> = { avif: 0, webp: 0, jpeg: 0 };
  let originalTotal = 0;
  for (const image of report.images) {
    const outputs = image.outputs;
    if (!outputs) continue;
    originalTotal += image.bytes;
    const widths = [...new Set(outputs.map((o) => o.width))].sort((a, b) => a - b);
    for (const width of widths) {
      const cells = (['avif', 'webp', 'jpeg'] as const).map((format) =>
        bytes(outputs.find((o) => o.width === width && o.format === format)?.bytes),
      );
      rows.push([image.name, String(width), ...cells, '']);
    }
    const perFormat = (['avif', 'webp', 'jpeg'] as const).map((format) => {
      const formatBytes = sum(outputs.filter((o) => o.format === format).map((o) => o.bytes));
      totals[format] += formatBytes;
      return formatBytes;
    });
    const all = sum(perFormat);
    rows.push([
      image.name,
      '**all widths**',
      ...perFormat.map((v) => bytes(v)),
      `${bytes(all)} = ${percent(all / image.bytes - 1)} vs original ${bytes(image.bytes)}`,
    ]);
  }
  const total = totals.avif + totals.webp + totals.jpeg;
  rows.push([
    '**all images**',
    '',
    bytes(totals.avif),
    bytes(totals.webp),
    bytes(totals.jpeg),
    `${bytes(total)} vs originals ${bytes(originalTotal)} (${percent(total / originalTotal - 1)})`,
  ]);
  const larger = report.images.flatMap((image) => (image.largerThanOriginal ? [image.largerThanOriginal] : []));
  const count = (pick: (l: NonNullable<ImageResult['largerThanOriginal']>) => number | undefined) =>
    sum(larger.map((l) => pick(l) ?? 0));
  const line =
    larger.length === 0
      ? ''
      : `\n\nVariants larger than their original file: anchor ${count((l) => l.anchor)}, ours ${count((l) => l.ours)} written (each a format's smallest width, always kept) and ${count((l) => l.oursLeftOut)} left out (not written; ours' bytes above count them as the variants were encoded).`;
  return `${markdownTable(['image', 'width', 'AVIF', 'WebP', 'JPEG', 'total'], rows, ['l', 'r', 'r', 'r', 'r', 'l'])}${line}`;
}

function qualityTable(report: BenchReport): string {
  const rows: string[][] = [];
  let worst: { delta: number; where: string } | undefined;
  for (const image of report.images) {
    const quality = image.quality;
    if (!quality || quality.length === 0) continue;
    const formats = [...new Set(quality.map((q) => q.format))];
    for (const format of formats) {
      const of = (method: string): QualityRow[] => quality.filter((q) => q.format === format && q.method === method);
      const direct = of('direct');
      const ours = of('ours');
      const perImage = of('per-image');
      const anchor = of('anchor');
      const mean = (list: QualityRow[]): number =>
        list.length ? sum(list.map((q) => q.ssim)) / list.length : Number.NaN;
      const deltaOf = (list: QualityRow[]): { delta: number; width: number } =>
        list.reduce(
          (acc, q) => {
            const d = direct.find((x) => x.width === q.width);
            const delta = d ? d.ssim - q.ssim : Number.NaN;
            return delta > acc.delta ? { delta, width: q.width } : acc;
          },
          { delta: Number.NEGATIVE_INFINITY, width: 0 },
        );
      const oursDelta = deltaOf(ours);
      const perImageDelta = deltaOf(perImage);
      for (const candidate of [oursDelta, perImageDelta]) {
        if (Number.isFinite(candidate.delta) && (!worst || candidate.delta > worst.delta)) {
          worst = { delta: candidate.delta, where: `${image.name} ${FORMAT_NAMES[format]} ${candidate.width}px` };
        }
      }
      const bytesOf = (list: QualityRow[]): number => sum(list.map((q) => q.bytes));
      rows.push([
        image.name,
        FORMAT_NAMES[format],
        fixed(mean(direct), 4),
        fixed(mean(ours), 4),
        Number.isFinite(oursDelta.delta) ? `${fixed(oursDelta.delta, 4)} @${oursDelta.width}` : '–',
        Number.isFinite(perImageDelta.delta) ? `${fixed(perImageDelta.delta, 4)} @${perImageDelta.width}` : '–',
        fixed(mean(anchor), 4),
        percent(bytesOf(ours) / bytesOf(direct) - 1),
      ]);
    }
  }
  const table = markdownTable(
    [
      'image',
      'format',
      'SSIM direct resize (mean over widths)',
      `SSIM ours (${report.defaultStrategy})`,
      'worst Δ ours @width',
      'worst Δ per-image @width',
      'SSIM anchor',
      'bytes ours vs direct',
    ],
    rows,
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
  return worst
    ? `${table}\n\nLargest SSIM loss of ours against the direct resize: **${fixed(worst.delta, 4)}** (${worst.where}); target ≤ 0.002.`
    : table;
}

function encoderTable(report: BenchReport): string {
  const enc = report.encoders;
  if (!enc) return '_not run_';
  const rows = enc.summary.map((row) => [
    `${FORMAT_NAMES[row.format]}${row.isDefault ? ' **(default)**' : ''}`,
    row.format === 'jpeg'
      ? `q${row.quality}, mozjpeg ${row.mozjpeg ? 'on' : 'off'}`
      : `q${row.quality}, effort ${row.effort}`,
    fixed(row.cpuMsPerMp, 0),
    times(row.cpuVsDefault),
    bytes(row.bytes),
    percent(row.bytesVsDefault),
    fixed(row.meanSsim, 4),
    `${row.ssimVsDefault >= 0 ? '+' : ''}${fixed(row.ssimVsDefault, 4)}`,
  ]);
  return markdownTable(
    [
      'format',
      'setting',
      'CPU ms / output MP',
      'CPU vs default',
      'bytes (sum)',
      'bytes vs default',
      'mean SSIM',
      'SSIM vs default',
    ],
    rows,
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function runtimeTable(report: BenchReport): string {
  const rows = (report.runtime ?? []).map((row) => {
    const image = `${row.image} (${fixed(row.megapixels, 1)} MP)`;
    if (!row.result)
      return [row.label, image, String(row.instances), `error: ${row.error?.code ?? '?'}`, '', '', '', '', ''];
    const r = row.result;
    return [
      row.label,
      image,
      String(row.instances),
      String(row.sharpConcurrency ?? '?'),
      fixed(r.wallMs / 1000, 1),
      fixed(r.cpuMs / 1000 / row.instances, 1),
      fixed((row.instances / (r.wallMs / 1000)) * 60, 1),
      fixed(mibFromKib(row.maxRssKiB ?? Number.NaN), 0),
      fixed(mibFromKib((row.maxRssKiB ?? Number.NaN) - (row.baselineRssKiB ?? Number.NaN)), 0),
    ];
  });
  return markdownTable(
    [
      'runtime settings',
      'image',
      'instance concurrency',
      'libvips threads',
      'wall s',
      'CPU s per image',
      'images / min',
      'peak RSS MiB',
      'above idle MiB',
    ],
    rows,
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
  );
}

function errorRows(report: BenchReport): string {
  const failed = report.images.flatMap((image) => (image.error ? [{ image, error: image.error }] : []));
  if (failed.length === 0) return 'None.';
  return markdownTable(
    ['image', 'bytes', 'error code', 'message', 'detail'],
    failed.map(({ image, error }) => [image.name, bytes(image.bytes), error.code, error.message, error.detail ?? '']),
  );
}

function inputsTable(report: BenchReport): string {
  return markdownTable(
    ['image', 'format', 'size', 'MP', 'bytes', 'variants', 'notes'],
    report.images.map((image) => [
      image.name,
      image.format ?? '?',
      image.width ? `${image.width}×${image.height}` : '?',
      fixed(image.megapixels, 1),
      bytes(image.bytes),
      image.main ? String(image.main.variants.length) : '–',
      [
        image.progressive ? 'progressive' : '',
        image.hasAlpha ? 'alpha' : '',
        image.frames && image.frames > 1 ? `${image.frames} frames (first rendered)` : '',
        image.error ? `error: ${image.error.code}` : '',
      ]
        .filter(Boolean)
        .join(', '),
    ]),
    ['l', 'l', 'l', 'r', 'r', 'r', 'l'],
  );
}

/** The whole report as Markdown. */
export function renderMarkdown(report: BenchReport): string {
  const m = report.machine;
  const c = report.config;
  const out: string[] = [];
  out.push('# Image pipeline benchmark');
  out.push('');
  out.push(
    `${report.startedAt} · ${report.options.corpus ? `corpus \`${report.options.corpus}\`` : report.options.quick ? 'quick smoke run (generated image)' : 'generated photo-like images'} · ` +
      `N = ${report.options.runs} runs (medians; other strategies: ${report.options.strategyRuns}) · ${fixed(report.durationS / 60, 1)} min`,
  );
  out.push('');
  out.push(
    `Machine: ${m.nproc} × ${m.cpuModel}, ${fixed(m.memoryGiB, 0)} GiB, ${m.platform}; Node ${m.node}, sharp ${m.sharp}, libvips ${m.libvips}. ` +
      `Load average at start ${m.loadAverageStart.map((x) => x.toFixed(2)).join(' / ')}, at end ${m.loadAverageEnd.map((x) => x.toFixed(2)).join(' / ')} (other work on the machine slows wall times; CPU times are much less affected).`,
  );
  out.push('');
  out.push(
    `Config: widths ${String(c.WIDTHS)}; formats ${String(c.FORMATS)}; strategy ${String(c.FANOUT_STRATEGY)}; JPEG q${String(c.JPEG_QUALITY)} mozjpeg ${String(c.JPEG_MOZJPEG)} progressive ${String(c.JPEG_PROGRESSIVE ?? false)}; ` +
      `WebP q${String(c.WEBP_QUALITY)} effort ${String(c.WEBP_EFFORT)}; AVIF q${String(c.AVIF_QUALITY)} effort ${String(c.AVIF_EFFORT)} ${String(c.AVIF_BITDEPTH ?? 8)}-bit (4:2:0). ` +
      `Runtime of the measuring processes: ${Object.entries(report.runtimeEnv)
        .map(([k, v]) => `${k}=${v ?? 'unset'}`)
        .join(', ')}.`,
  );
  if (report.parity) {
    out.push('');
    out.push(
      report.parity.identical
        ? `Encoder parity: the bench's encoders (anchor, floor, tables) wrote byte-identical files to renderVariants for the same pixels (${report.parity.checked} checks).`
        : `**Encoder parity FAILED** (${report.parity.mismatches.join('; ')}): render.ts's encoder settings changed; bench/methods.ts must follow.`,
    );
  }
  out.push('');
  out.push('## Inputs');
  out.push('');
  out.push(inputsTable(report));
  out.push('');
  out.push('### Images that could not be processed');
  out.push('');
  out.push(errorRows(report));
  out.push('');
  out.push('## 1. Ours per fan-out strategy');
  out.push('');
  out.push(
    'Every job of `splitIntoJobs(planVariants(...), info, strategy)` through `renderVariants` (each job decodes the original once). ' +
      'CPU = sum over jobs; "last variant, K=n" = time until the last job ends when the jobs, in publication order, are taken by n instances, each running a job in its measured wall time (list scheduling).',
  );
  out.push('');
  out.push(strategyTables(report));
  out.push('');
  out.push("## 2–4. Ours vs the anchor's method vs the floor (default formats)");
  out.push('');
  out.push(
    'CPU = `process.cpuUsage()` of the measuring process (all threads), seconds, median of N runs. Anchor: one sharp pipeline per variant from the original bytes (decode, rotate, resize, encode), same encoder settings. ' +
      'Floor: one decode (the cheaper of a full decode and a decode straight to the largest width) plus each encode from already-resized pixels; resizes are not counted.',
  );
  out.push('');
  out.push(methodsTable(report, (image) => image.main, report.overall?.main));
  out.push('');
  out.push('### Floor breakdown (CPU s, medians)');
  out.push('');
  out.push(floorTable(report));
  out.push('');
  out.push('### CPU per megapixel (the cost model of shared/image/plan.ts)');
  out.push('');
  out.push(
    "From the floor's encodes and full decodes (medians; images under 0.5 MP left out, their fixed costs dominate):",
  );
  out.push('');
  out.push(costModelTable(report));
  out.push('');
  out.push('### JPEG + WebP only (`FORMATS=webp,jpeg`)');
  out.push('');
  out.push(methodsTable(report, (image) => image.jpegWebp, report.overall?.jpegWebp));
  out.push('');
  out.push('## 5. Bytes and quality');
  out.push('');
  out.push(`Bytes of ours (${report.defaultStrategy}), per format and width:`);
  out.push('');
  out.push(bytesTable(report));
  out.push('');
  out.push(
    'SSIM on luma (11×11 Gaussian window, shared/image/ssim.ts) of each variant against a direct high-quality resize of the original (full decode, no shrink-on-load, lanczos3), everything flattened onto white. ' +
      '"direct" = that resize encoded with the same settings, so Δ = SSIM(direct) − SSIM(ours) is what the cascade costs.',
  );
  out.push('');
  out.push(qualityTable(report));
  out.push('');
  out.push('## 6. Encoder settings');
  out.push('');
  if (report.encoders) {
    out.push(
      `Subset: ${report.encoders.images.join(', ')} at ${report.encoders.width} px wide (a direct high-quality resize), one run; CPU summed over the subset; SSIM as above.`,
    );
    out.push('');
  }
  out.push(encoderTable(report));
  out.push('');
  out.push('## 7. Runtime settings');
  out.push('');
  out.push(
    'Each row is a fresh process rendering all default variants of n copies of the image at once (n = instance concurrency). Peak RSS = `process.resourceUsage().maxRSS` of that process; "above idle" subtracts the process after start-up and codec warm-up.',
  );
  out.push('');
  out.push(runtimeTable(report));
  out.push('');
  out.push('## Targets');
  out.push('');
  out.push(
    markdownTable(
      ['target', 'required', 'measured', 'met'],
      report.targets.map((t) => [
        t.name,
        t.target,
        t.value,
        t.met === null ? 'not measured' : t.met ? 'yes' : '**no**',
      ]),
    ),
  );
  out.push('');
  out.push('## Closing note');
  out.push('');
  for (const note of report.notes) out.push(`- ${note}`);
  out.push('');
  return out.join('\n');
}

/** Targets of issue 6, from the report's numbers. */
export function checkTargets(
  report: BenchReport,
  memory: { image20?: RuntimeRow; image20x4?: RuntimeRow; image50?: RuntimeRow },
): TargetCheck[] {
  const main = report.overall?.main;
  const jw = report.overall?.jpegWebp;
  const targets: TargetCheck[] = [];
  targets.push({
    name: 'Overhead vs floor (CPU, overall, default variants)',
    target: 'ours ÷ floor ≤ 1.15',
    value: main ? times(main.ratios.oursOverFloorCpu) : '–',
    met: main ? main.ratios.oursOverFloorCpu <= 1.15 : null,
  });
  targets.push({
    name: 'Ahead of the anchor (CPU, overall, default variants)',
    target: 'anchor ÷ ours ≥ 1.4',
    value: main
      ? `${times(main.ratios.anchorOverOursCpu)} (the floor itself: ${times(main.ratios.anchorOverFloorCpu)})`
      : '–',
    met: main ? main.ratios.anchorOverOursCpu >= 1.4 : null,
  });
  targets.push({
    name: 'Ahead of the anchor (CPU, overall, JPEG + WebP only)',
    target: 'anchor ÷ ours ≥ 2.5',
    value: jw ? `${times(jw.ratios.anchorOverOursCpu)} (floor: ${times(jw.ratios.anchorOverFloorCpu)})` : '–',
    met: jw ? jw.ratios.anchorOverOursCpu >= 2.5 : null,
  });
  const rssTarget = (name: string, row: RuntimeRow | undefined, limitMB: number, label: string): TargetCheck => {
    const kib = row?.maxRssKiB;
    const mb = kib !== undefined ? (kib * 1024) / 1e6 : undefined;
    return {
      name,
      target: label,
      value:
        mb === undefined || kib === undefined
          ? '–'
          : `${fixed(mb, 0)} MB (${fixed(mibFromKib(kib), 0)} MiB) at ${fixed(row?.megapixels, 1)} MP`,
      met: mb === undefined ? null : mb < limitMB,
    };
  };
  targets.push(rssTarget('Memory: one 20 MP JPEG, all default variants', memory.image20, 320, '< 320 MB'));
  targets.push(rssTarget('Memory: four 20 MP JPEGs at once', memory.image20x4, 700, '< 700 MB'));
  targets.push(rssTarget('Memory: one 50 MP image, instance concurrency 1', memory.image50, 1073.741824, '< 1 GiB'));
  const deltas: number[] = [];
  for (const image of report.images) {
    const quality = image.quality ?? [];
    for (const q of quality) {
      if (q.method !== 'ours') continue;
      const direct = quality.find((d) => d.method === 'direct' && d.width === q.width && d.format === q.format);
      if (direct) deltas.push(direct.ssim - q.ssim);
    }
  }
  const worst = deltas.length ? Math.max(...deltas) : undefined;
  targets.push({
    name: 'Quality: SSIM of ours vs a direct resize (every variant)',
    target: 'within 0.002',
    value: worst === undefined ? '–' : `worst Δ ${fixed(worst, 4)}`,
    met: worst === undefined ? null : worst <= 0.002,
  });
  return targets;
}
