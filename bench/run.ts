/**
 * `npm run bench`: measures the production code path (shared/image/render.ts, as the resize function
 * calls it) side by side with the anchor's method and the floor, each configuration in a fresh
 * child process (child.ts). Options: `npm run bench -- --help` ({@link USAGE}); what is measured
 * and the results: docs/performance.md.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, platform, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import type { Config } from '../shared/core/config.js';
import { PipelineError } from '../shared/core/errors.js';
import type { VariantSpec } from '../shared/core/schemas.js';
import type { ImageSize } from '../shared/image/plan.js';
import { probeImage, probeLimitsFromConfig } from '../shared/image/probe.js';
import {
  corpusImages,
  DEFAULT_CACHE_DIR,
  generated,
  generatedSet,
  GENERATED_SET,
  QUICK_RUNTIME_SET,
  QUICK_SET,
  RUNTIME_SET,
  type BenchImage,
} from './images.js';
import { benchConfig, jobsFor, variantsFor } from './methods.js';
import { resultsPath, writeResults } from './cli.js';
import {
  caseKey,
  checkTargets,
  costModel,
  largerThanOriginal,
  overallOf,
  ratiosOf,
  renderMarkdown,
  SECTIONS,
  summariseAnchor,
  summariseEncoders,
  summariseFloor,
  summariseStrategy,
  type AnchorResult,
  type BenchOptions,
  type BenchReport,
  type EncoderSummary,
  type ConfigResult,
  type FloorResult,
  type ImageResult,
  type RuntimeRow,
  type Section,
  type StrategyResult,
} from './report.js';
import { fixed, mibFromKib, percent, times } from './stats.js';
import { ANSWER_MARKER, type ChildAnswer, type EncoderCase, type Task } from './tasks.js';
import { FANOUT_STRATEGIES, type FanoutStrategy, type OutputFormat } from '../shared/core/domain.js';

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url));

/** Terraform's default for MALLOC_ARENA_MAX (terraform/variables.tf, malloc_arena_max). */
const DEPLOYED_MALLOC_ARENA_MAX = '2';

/** A child that runs longer than this is killed and reported as an error. */
const CHILD_TIMEOUT_MS = 20 * 60 * 1000;

interface Args extends BenchOptions {
  json: string;
  only: string[];
  cacheDir: string;
  keep: boolean;
}

/** What `--help` prints. */
const USAGE = `usage: npm run bench -- [options]

Measures ours (shared/image/render.ts), the anchor's method and the floor on the same images.
Markdown goes to stdout, progress to stderr, everything measured to the JSON file.

Options:
  --corpus DIR          images to measure (default: generated photo-like images)
  --runs N              runs per measurement, medians reported (default 3; --quick: 1)
  --strategy-runs N     runs of the non-default fan-out strategies (default 1: they only differ
                        from the default in how many decodes they pay; raise it for tighter numbers)
  --json FILE           where to write the JSON report (default bench/results/bench-results.json)
  --quick               smoke run: one small generated image, one run, small runtime images
  --sections LIST       ${SECTIONS.join(',')} (default: all)
  --only NAMES          comma-separated image names to keep
  --encoder-images LIST images for the encoder-settings table (default: up to three, chosen by kind)
  --encoder-width PX    width the encoder table encodes at (default 1024; --quick: 160)
  --cache DIR           cache of generated images (default: the OS temp directory)
  --keep                keep the temporary directory of encoded outputs
  --from-json FILE      only print the Markdown of a saved JSON report (targets and closing note
                        recomputed); with --write, also save it back to FILE
  -h, --help            print this and exit

Pipeline variables override the defaults (e.g. AVIF_EFFORT=3 npm run bench). See docs/performance.md.
`;

/** Prints the usage and exits 0. */
function help(): never {
  process.stdout.write(USAGE);
  process.exit(0);
}

function usage(message: string): never {
  process.stderr.write(`${message}\n${USAGE}`);
  process.exit(2);
}

/** `map.get(key)` for a key the bench put there itself; a miss is a bug in the bench, said loudly. */
function required<K, V>(map: ReadonlyMap<K, V>, key: K): V {
  const value = map.get(key);
  if (value === undefined) throw new Error(`bench: nothing recorded for ${String(key)}`);
  return value;
}

/** Parses the command line. */
export function parseArgs(argv: readonly string[]): Args {
  const values = new Map<string, string>();
  const flags = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') help();
    if (!arg.startsWith('--')) usage(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (['quick', 'keep'].includes(name)) {
      flags.add(name);
      continue;
    }
    if (
      ![
        'corpus',
        'runs',
        'strategy-runs',
        'json',
        'sections',
        'only',
        'encoder-images',
        'encoder-width',
        'cache',
      ].includes(name)
    )
      usage(`unknown option --${name}`);
    const value = inline ?? argv[++i];
    if (value === undefined) usage(`--${name} needs a value`);
    values.set(name, value);
  }
  const quick = flags.has('quick');
  const positive = (name: string, fallback: number): number => {
    const raw = values.get(name);
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) usage(`--${name} must be a whole number ≥ 1`);
    return n;
  };
  const list = (name: string): string[] =>
    (values.get(name) ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const sections = list('sections');
  for (const section of sections)
    if (!(SECTIONS as readonly string[]).includes(section)) usage(`unknown section ${section}`);
  const runs = positive('runs', quick ? 1 : 3);
  const corpus = values.get('corpus');
  return {
    ...(corpus !== undefined ? { corpus: resolve(corpus) } : {}),
    runs,
    strategyRuns: Math.min(runs, positive('strategy-runs', 1)),
    quick,
    sections: (sections.length ? sections : [...SECTIONS]) as Section[],
    encoderWidth: positive('encoder-width', quick ? 160 : 1024),
    encoderImages: list('encoder-images'),
    json: resolve(values.get('json') ?? resultsPath('bench-results.json')),
    only: list('only'),
    cacheDir: resolve(values.get('cache') ?? DEFAULT_CACHE_DIR),
    keep: flags.has('keep'),
  };
}

const started = Date.now();
function log(line: string): void {
  const elapsed = Math.round((Date.now() - started) / 1000);
  process.stderr.write(
    `[bench ${String(Math.floor(elapsed / 60)).padStart(2, '0')}:${String(elapsed % 60).padStart(2, '0')}] ${line}\n`,
  );
}

/** Environment changes for a child: a value sets, null removes. */
type EnvChanges = Record<string, string | null>;

/** Runs one task in a fresh child process. */
function runChild<K extends Task['kind']>(
  task: Extract<Task, { kind: K }>,
  envChanges: EnvChanges,
): Promise<ChildAnswer<K>> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [name, value] of Object.entries(envChanges)) {
    if (value === null) delete env[name];
    else env[name] = value;
  }
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [CHILD, JSON.stringify(task)], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = stdout.split('\n').find((l) => l.startsWith(ANSWER_MARKER));
      if (line) {
        resolvePromise(JSON.parse(line.slice(ANSWER_MARKER.length)) as ChildAnswer<K>);
        return;
      }
      const why = signal ? `killed by ${signal}` : `exit code ${code}`;
      resolvePromise({
        ok: false,
        error: { code: 'child_failed', message: `${why}: ${stderr.trim().split('\n').slice(-3).join(' / ')}` },
      });
    });
  });
}

/** Facts about this machine. */
function machineFacts(): BenchReport['machine'] {
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: totalmem() / 1024 ** 3,
    platform: `${platform()} ${release()}`,
    node: process.versions.node,
    sharp: sharp.versions.sharp ?? '?',
    libvips: sharp.versions.vips,
    loadAverageStart: loadavg(),
    loadAverageEnd: [],
  };
}

/** Probes an input as the upload path does; a rejection becomes the image's error row. */
async function probe(image: BenchImage, config: Config): Promise<ImageResult & { info?: ImageSize }> {
  const data = await readFile(image.path);
  const result: ImageResult & { info?: ImageSize } = { name: image.name, bytes: data.length };
  try {
    const probed = await probeImage(data, probeLimitsFromConfig(config));
    const metadata = await sharp(data, { limitInputPixels: false }).metadata();
    Object.assign(result, {
      format: probed.format,
      width: probed.width,
      height: probed.height,
      megapixels: (probed.width * probed.height) / 1e6,
      frames: probed.frames,
      hasAlpha: probed.hasAlpha,
      progressive: metadata.isProgressive === true,
      info: { width: probed.width, height: probed.height },
    });
  } catch (error) {
    const code = error instanceof PipelineError ? error.code : 'bench_error';
    const message = error instanceof Error ? error.message : String(error);
    // The probe hides libvips' own words from clients; the bench shows them.
    const detail = await sharp(data, { limitInputPixels: false })
      .metadata()
      .then(() => undefined)
      .catch((e: unknown) => (e instanceof Error ? e.message.split('\n')[0] : String(e)));
    result.error = { code, message, ...(detail ? { detail } : {}) };
  }
  return result;
}

const sameJobs = (a: VariantSpec[][], b: VariantSpec[][]): boolean => JSON.stringify(a) === JSON.stringify(b);

/** Picks up to three encoder-table images of different kinds: baseline JPEG, PNG, anything else. */
function pickEncoderImages(
  images: ReadonlyArray<ImageResult & { info?: ImageSize }>,
  width: number,
  names: readonly string[],
): Array<ImageResult & { info: ImageSize }> {
  const usable = images.filter(
    (image): image is ImageResult & { info: ImageSize } => image.info !== undefined && !image.error,
  );
  if (names.length > 0) return usable.filter((image) => names.includes(image.name));
  const wide = usable.filter((image) => image.info.width >= width);
  const pool = wide.length > 0 ? wide : usable;
  const bySize = [...pool].sort((a, b) => (a.megapixels ?? 0) - (b.megapixels ?? 0));
  const kinds: Array<(image: ImageResult) => boolean> = [
    (image) => image.format === 'jpeg' && !image.progressive,
    (image) => image.format === 'png',
    (image) => !(image.format === 'jpeg' && !image.progressive) && image.format !== 'png',
  ];
  const picked: Array<ImageResult & { info: ImageSize }> = [];
  for (const kind of kinds) {
    const found = bySize.find((image) => kind(image) && !picked.includes(image));
    if (found) picked.push(found);
  }
  return picked.length > 0 ? picked : bySize.slice(0, 1);
}

/** The encoder-settings grid of issue 6: AVIF effort 2–6, WebP effort 4–6, JPEG mozjpeg on/off. */
function encoderCases(config: Config): { cases: EncoderCase[]; defaults: EncoderCase[] } {
  const cases: EncoderCase[] = [];
  for (const effort of [2, 3, 4, 5, 6])
    for (const quality of [40, 50, 60]) cases.push({ format: 'avif', quality, effort });
  for (const effort of [4, 5, 6]) for (const quality of [75, 80, 85]) cases.push({ format: 'webp', quality, effort });
  for (const mozjpeg of [false, true])
    for (const quality of [75, 80, 85]) cases.push({ format: 'jpeg', quality, mozjpeg });
  const defaults: EncoderCase[] = [
    { format: 'avif', quality: config.AVIF_QUALITY, effort: config.AVIF_EFFORT },
    { format: 'webp', quality: config.WEBP_QUALITY, effort: config.WEBP_EFFORT },
    { format: 'jpeg', quality: config.JPEG_QUALITY, mozjpeg: config.JPEG_MOZJPEG },
  ];
  for (const d of defaults) if (!cases.some((c) => caseKey(c) === caseKey(d))) cases.push(d);
  const order: OutputFormat[] = ['avif', 'webp', 'jpeg'];
  cases.sort(
    (a, b) =>
      order.indexOf(a.format) - order.indexOf(b.format) ||
      (a.effort ?? 0) - (b.effort ?? 0) ||
      Number(a.mozjpeg ?? 0) - Number(b.mozjpeg ?? 0) ||
      a.quality - b.quality,
  );
  return { cases, defaults };
}

/** A runtime configuration of section 7. */
interface RuntimeConfig {
  id: string;
  label: string;
  env: EnvChanges;
  instances: number[];
}

function runtimeConfigs(config: Config, quick: boolean): RuntimeConfig[] {
  const threads = String(config.SHARP_CONCURRENCY);
  const configs: RuntimeConfig[] = [
    {
      id: 'deployed',
      label: `deployed: SHARP_CONCURRENCY=${threads}, MALLOC_ARENA_MAX=${DEPLOYED_MALLOC_ARENA_MAX}, cache off`,
      env: { SHARP_CONCURRENCY: threads, MALLOC_ARENA_MAX: DEPLOYED_MALLOC_ARENA_MAX, SHARP_CACHE: 'false' },
      instances: [1, 2, 4],
    },
    {
      id: 'glibc-arenas',
      label: `SHARP_CONCURRENCY=${threads}, MALLOC_ARENA_MAX unset (glibc default), cache off`,
      env: { SHARP_CONCURRENCY: threads, MALLOC_ARENA_MAX: null, SHARP_CACHE: 'false' },
      instances: [1, 2, 4],
    },
    {
      id: 'one-thread',
      label: `SHARP_CONCURRENCY=1, MALLOC_ARENA_MAX=${DEPLOYED_MALLOC_ARENA_MAX}, cache off`,
      env: { SHARP_CONCURRENCY: '1', MALLOC_ARENA_MAX: DEPLOYED_MALLOC_ARENA_MAX, SHARP_CACHE: 'false' },
      instances: [1, 2],
    },
    {
      id: 'cache-on',
      label: `SHARP_CONCURRENCY=${threads}, MALLOC_ARENA_MAX=${DEPLOYED_MALLOC_ARENA_MAX}, cache on (sharp's default)`,
      env: { SHARP_CONCURRENCY: threads, MALLOC_ARENA_MAX: DEPLOYED_MALLOC_ARENA_MAX, SHARP_CACHE: 'true' },
      instances: [1],
    },
  ];
  // The smoke run only needs every row kind: the memory targets' rows (1 and 4 at once) and one per setting.
  return quick ? configs.map((c) => ({ ...c, instances: c.id === 'deployed' ? [1, 4] : [1] })) : configs;
}

/** Measures one configuration (formats) of one image with every method, run by run. */
class ImageMeasurements {
  readonly strategyRuns = new Map<FanoutStrategy, StrategyResult['runs']>();
  readonly anchorRuns: AnchorResult['runs'] = [];
  readonly floorRuns: FloorResult['runs'] = [];
  readonly jobs = new Map<FanoutStrategy, VariantSpec[][]>();
  /** Strategy → the strategy whose identical jobs it reuses. */
  readonly alias = new Map<FanoutStrategy, FanoutStrategy>();
  error?: { code: string; message: string };
  outputs?: Array<{ width: number; format: OutputFormat; bytes: number }>;

  constructor(
    readonly variants: VariantSpec[],
    readonly strategies: FanoutStrategy[],
    info: ImageSize,
    config: Config,
  ) {
    for (const strategy of strategies) {
      const jobs = jobsFor(info, config, strategy);
      const twin = [...this.jobs.entries()].find(([, other]) => sameJobs(other, jobs));
      this.jobs.set(strategy, jobs);
      if (twin) this.alias.set(strategy, twin[0]);
    }
  }

  result(config: Config, defaultStrategy: FanoutStrategy): ConfigResult {
    const strategies: ConfigResult['strategies'] = {};
    for (const strategy of this.strategies) {
      const source = this.alias.get(strategy) ?? strategy;
      const runs = this.strategyRuns.get(source);
      if (!runs || runs.length === 0) continue;
      strategies[strategy] = {
        ...summariseStrategy(strategy, required(this.jobs, strategy), runs),
        ...(source !== strategy ? { sameJobsAs: source } : {}),
      };
    }
    const result: ConfigResult = {
      formats: config.FORMATS,
      variants: this.variants,
      strategies,
      ...(this.anchorRuns.length ? { anchor: summariseAnchor(this.anchorRuns) } : {}),
      ...(this.floorRuns.length ? { floor: summariseFloor(this.floorRuns) } : {}),
    };
    const ratios = ratiosOf(result, defaultStrategy);
    if (ratios) result.ratios = ratios;
    return result;
  }
}

async function main(): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) help();
  const fromJson = process.argv.indexOf('--from-json');
  if (fromJson >= 0) {
    // Re-prints the Markdown of a saved report (e.g. after a change to the report's layout).
    const path = process.argv[fromJson + 1];
    if (!path) usage('--from-json needs a file');
    const saved = JSON.parse(await readFile(path, 'utf8')) as BenchReport;
    const env = Object.fromEntries(
      Object.entries(saved.config).map(([k, v]) => [k, Array.isArray(v) ? v.join(',') : String(v)]),
    );
    if (saved.overall?.main) saved.costModel = costModel(saved);
    conclude(saved, benchConfig(env));
    if (process.argv.includes('--write')) await writeFile(path, `${JSON.stringify(saved, null, 2)}\n`);
    process.stdout.write(renderMarkdown(saved));
    return;
  }
  const args = parseArgs(process.argv.slice(2));
  const startedAt = new Date();
  const machine = machineFacts();
  const config = benchConfig(process.env);
  const defaultStrategy = config.FANOUT_STRATEGY;
  const runtimeEnv: EnvChanges = {
    SHARP_CONCURRENCY: String(config.SHARP_CONCURRENCY),
    SHARP_CACHE: String(config.SHARP_CACHE),
    MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? DEPLOYED_MALLOC_ARENA_MAX,
  };
  const jwEnv: EnvChanges = { ...runtimeEnv, FORMATS: 'webp,jpeg' };
  const jwConfig = benchConfig({ ...process.env, FORMATS: 'webp,jpeg' });
  const work = await mkdtemp(join(tmpdir(), 'bench-run-'));
  log(
    `machine: ${machine.nproc} × ${machine.cpuModel}; load ${machine.loadAverageStart.map((x) => x.toFixed(2)).join(' ')}; outputs in ${work}`,
  );

  // Inputs.
  let inputs: BenchImage[] = args.corpus
    ? await corpusImages(args.corpus)
    : await generatedSet(args.quick ? QUICK_SET : GENERATED_SET, args.cacheDir, log);
  if (args.only.length) inputs = inputs.filter((image) => args.only.includes(image.name));
  if (inputs.length === 0) usage('no images to measure');
  const images = await Promise.all(inputs.map((image) => probe(image, config)));
  const paths = new Map(inputs.map((image) => [image.name, image.path]));
  for (const image of images)
    if (image.error)
      log(
        `${image.name}: ${image.error.code} (${image.error.detail ?? image.error.message}); reported as an error row`,
      );

  const report: BenchReport = {
    version: 1,
    startedAt: startedAt.toISOString(),
    finishedAt: '',
    durationS: 0,
    machine,
    options: {
      ...(args.corpus ? { corpus: args.corpus } : {}),
      runs: args.runs,
      strategyRuns: args.strategyRuns,
      quick: args.quick,
      sections: args.sections,
      encoderWidth: args.encoderWidth,
      encoderImages: args.encoderImages,
    },
    config: Object.fromEntries(
      [
        'WIDTHS',
        'FORMATS',
        'FANOUT_STRATEGY',
        'JPEG_QUALITY',
        'JPEG_MOZJPEG',
        'WEBP_QUALITY',
        'WEBP_EFFORT',
        'AVIF_QUALITY',
        'AVIF_EFFORT',
        'KEEP_METADATA',
        'MAX_INPUT_PIXELS',
        'SHARP_CONCURRENCY',
        'SHARP_CACHE',
      ].map((k) => [k, config[k as keyof Config]]),
    ),
    runtimeEnv,
    defaultStrategy,
    images: images.map(({ info: _info, ...rest }) => rest),
    targets: [],
    notes: [],
  };

  // Encoder parity: the bench's anchor and floor must encode exactly as render.ts does.
  const parityImages = await Promise.all([
    generated(
      { name: 'parity-160x120-orientation6.jpg', width: 120, height: 160, format: 'jpeg', orientation: 6, seed: 41 },
      args.cacheDir,
    ),
    generated(
      { name: 'parity-120x80-alpha.png', width: 120, height: 80, format: 'png', alpha: true, seed: 42 },
      args.cacheDir,
    ),
  ]);
  const parity = await runChild(
    { kind: 'parity', images: parityImages.map(({ name, path }) => ({ name, path })) },
    runtimeEnv,
  );
  if (parity.ok) {
    report.parity = parity.result;
    log(
      parity.result.identical
        ? `encoder parity: identical (${parity.result.checked} checks)`
        : `ENCODER PARITY FAILED: ${parity.result.mismatches.join('; ')}`,
    );
  } else log(`encoder parity check failed to run: ${parity.error.message}`);

  // Sections 1–5: ours per strategy, anchor, floor, for the default formats and JPEG + WebP.
  const measured = new Map<string, { main: ImageMeasurements; jw: ImageMeasurements }>();
  const ok = images.filter(
    (image): image is ImageResult & { info: ImageSize } => image.info !== undefined && !image.error,
  );
  const strategies: FanoutStrategy[] = [defaultStrategy, ...FANOUT_STRATEGIES.filter((s) => s !== defaultStrategy)];
  for (const image of ok) {
    measured.set(image.name, {
      main: new ImageMeasurements(variantsFor(image.info, config), strategies, image.info, config),
      jw: new ImageMeasurements(
        variantsFor(image.info, jwConfig),
        [jwConfig.FANOUT_STRATEGY, 'per-image'],
        image.info,
        jwConfig,
      ),
    });
  }
  const outputDir = (image: string, method: string): string =>
    join(work, 'outputs', image.replace(/[^a-z0-9.-]+/gi, '_'), method);

  if (args.sections.includes('main')) {
    let step = 0;
    const perRun = (run: number): number =>
      [...measured.values()].reduce(
        (n, m) =>
          n +
          2 +
          (run < args.strategyRuns ? m.main.strategies.filter((s) => !m.main.alias.has(s)).length : 1) +
          2 +
          m.jw.strategies.filter((s) => !m.jw.alias.has(s)).length,
        0,
      );
    const total = Array.from({ length: args.runs }, (_, run) => perRun(run)).reduce((a, b) => a + b, 0);
    const describe = (answer: ChildAnswer, cpuMs: number, wallMs: number): string =>
      answer.ok
        ? `CPU ${fixed(cpuMs / 1000)} s, wall ${fixed(wallMs / 1000)} s, peak RSS ${fixed(mibFromKib(answer.maxRssKiB), 0)} MiB`
        : `error ${answer.error.code}: ${answer.error.message}`;

    for (let run = 0; run < args.runs; run++) {
      for (const image of ok) {
        const path = required(paths, image.name);
        const m = required(measured, image.name);
        for (const [which, set, env] of [
          ['main', m.main, runtimeEnv],
          ['jw', m.jw, jwEnv],
        ] as const) {
          if (set.error) continue;
          const label = which === 'main' ? '' : ' [jpeg+webp]';
          const strategiesThisRun = set.strategies.filter(
            (s) => !set.alias.has(s) && (which === 'jw' || run < args.strategyRuns || s === defaultStrategy),
          );
          for (const strategy of strategiesThisRun) {
            const save = run === 0 && which === 'main' && (strategy === defaultStrategy || strategy === 'per-image');
            const answer = await runChild(
              {
                kind: 'ours',
                image: path,
                info: image.info,
                jobs: required(set.jobs, strategy),
                ...(save ? { saveDir: outputDir(image.name, strategy) } : {}),
              },
              env,
            );
            step++;
            if (!answer.ok) {
              set.error = answer.error;
              log(
                `(${step}/${total}) run ${run + 1} ${image.name}${label} ours ${strategy}: ${describe(answer, 0, 0)}`,
              );
              break;
            }
            const jobs = answer.result.jobs.map(({ wallMs, cpuMs }) => ({ wallMs, cpuMs }));
            const runs = set.strategyRuns.get(strategy) ?? [];
            runs.push({ jobs, maxRssKiB: answer.maxRssKiB, baselineRssKiB: answer.baselineRssKiB });
            set.strategyRuns.set(strategy, runs);
            if (run === 0 && which === 'main' && strategy === defaultStrategy) set.outputs = answer.result.outputs;
            log(
              `(${step}/${total}) run ${run + 1} ${image.name}${label} ours ${strategy} (${jobs.length} jobs): ${describe(
                answer,
                jobs.reduce((s, j) => s + j.cpuMs, 0),
                jobs.reduce((s, j) => s + j.wallMs, 0),
              )}`,
            );
          }
          if (set.error) continue;
          const anchor = await runChild(
            {
              kind: 'anchor',
              image: path,
              info: image.info,
              variants: set.variants,
              ...(run === 0 && which === 'main' ? { saveDir: outputDir(image.name, 'anchor') } : {}),
            },
            env,
          );
          step++;
          log(
            `(${step}/${total}) run ${run + 1} ${image.name}${label} anchor: ${anchor.ok ? describe(anchor, anchor.result.cpuMs, anchor.result.wallMs) : describe(anchor, 0, 0)}`,
          );
          if (!anchor.ok) {
            set.error = anchor.error;
            continue;
          }
          set.anchorRuns.push({ ...anchor.result, maxRssKiB: anchor.maxRssKiB, baselineRssKiB: anchor.baselineRssKiB });
          const floor = await runChild(
            {
              kind: 'floor',
              image: path,
              info: image.info,
              variants: set.variants,
              ...(run === 0 && which === 'main' ? { saveDir: outputDir(image.name, 'direct') } : {}),
            },
            env,
          );
          step++;
          log(
            `(${step}/${total}) run ${run + 1} ${image.name}${label} floor: ${floor.ok ? describe(floor, floor.result.total.cpuMs, floor.result.total.wallMs) : describe(floor, 0, 0)}`,
          );
          if (!floor.ok) {
            set.error = floor.error;
            continue;
          }
          set.floorRuns.push({ ...floor.result, maxRssKiB: floor.maxRssKiB, baselineRssKiB: floor.baselineRssKiB });
        }
      }
    }
    for (const image of report.images) {
      const m = measured.get(image.name);
      if (!m) continue;
      if (m.main.error) image.error = m.main.error;
      else {
        image.main = m.main.result(config, defaultStrategy);
        if (m.main.outputs) {
          image.outputs = m.main.outputs;
          image.largerThanOriginal = largerThanOriginal(
            image.bytes,
            m.main.variants,
            m.main.outputs,
            m.main.anchorRuns[0],
          );
        }
      }
      if (!m.jw.error) image.jpegWebp = m.jw.result(jwConfig, jwConfig.FANOUT_STRATEGY);
    }
    const main = overallOf(report.images, (image) => image.main, defaultStrategy);
    const jw = overallOf(report.images, (image) => image.jpegWebp, jwConfig.FANOUT_STRATEGY);
    report.overall = { ...(main ? { main } : {}), ...(jw ? { jpegWebp: jw } : {}) };
  }

  // Section 5: quality of the first run's outputs.
  if (args.sections.includes('quality') && args.sections.includes('main')) {
    for (const image of report.images) {
      const info = ok.find((x) => x.name === image.name)?.info;
      if (!info || !image.main) continue;
      const dirs: Record<string, string> = {
        direct: outputDir(image.name, 'direct'),
        ours: outputDir(image.name, defaultStrategy),
        anchor: outputDir(image.name, 'anchor'),
      };
      if (defaultStrategy !== 'per-image' && !image.main.strategies['per-image']?.sameJobsAs)
        dirs['per-image'] = outputDir(image.name, 'per-image');
      const answer = await runChild(
        { kind: 'quality', image: required(paths, image.name), info, variants: image.main.variants, dirs },
        runtimeEnv,
      );
      if (answer.ok) image.quality = answer.result.rows;
      log(
        `quality ${image.name}: ${answer.ok ? `${answer.result.rows.length} SSIM values` : `error ${answer.error.message}`}`,
      );
    }
  }

  // Section 6: encoder settings on a subset.
  if (args.sections.includes('encoders')) {
    const subset = pickEncoderImages(images, args.encoderWidth, args.encoderImages);
    const { cases, defaults } = encoderCases(config);
    log(`encoder table: ${cases.length} settings × ${subset.map((i) => i.name).join(', ')} at ${args.encoderWidth} px`);
    const answer = await runChild(
      {
        kind: 'encoders',
        images: subset.map((image) => ({ name: image.name, path: required(paths, image.name), info: image.info })),
        width: args.encoderWidth,
        cases,
      },
      runtimeEnv,
    );
    if (answer.ok) {
      report.encoders = {
        images: subset.map((i) => i.name),
        width: args.encoderWidth,
        rows: answer.result.rows,
        summary: summariseEncoders(answer.result.rows, cases, defaults),
      };
    } else log(`encoder table failed: ${answer.error.message}`);
  }

  // Section 7: runtime settings.
  if (args.sections.includes('runtime')) {
    const set = args.quick ? QUICK_RUNTIME_SET : RUNTIME_SET;
    const image20 = await generated(set.image20, args.cacheDir, log);
    const image50 = await generated(set.image50, args.cacheDir, log);
    const image50p = await generated(set.image50p, args.cacheDir, log);
    const rows: RuntimeRow[] = [];
    const plan: Array<{
      config: RuntimeConfig;
      image: BenchImage;
      spec: { width: number; height: number };
      instances: number;
    }> = [];
    const configs = runtimeConfigs(config, args.quick);
    for (const rc of configs)
      for (const instances of rc.instances) plan.push({ config: rc, image: image20, spec: set.image20, instances });
    for (const rc of configs.slice(0, args.quick ? 1 : 2))
      plan.push({ config: rc, image: image50, spec: set.image50, instances: 1 });
    for (const rc of configs.slice(0, 1)) plan.push({ config: rc, image: image50p, spec: set.image50p, instances: 1 });
    for (const [i, item] of plan.entries()) {
      const info = { width: item.spec.width, height: item.spec.height };
      const answer = await runChild(
        { kind: 'runtime', image: item.image.path, info, instances: item.instances },
        item.config.env,
      );
      const row: RuntimeRow = {
        config: item.config.id,
        label: item.config.label,
        env: item.config.env,
        image: item.image.name,
        megapixels: (info.width * info.height) / 1e6,
        instances: item.instances,
        ...(answer.ok
          ? {
              result: answer.result,
              sharpConcurrency: answer.sharpConcurrency,
              maxRssKiB: answer.maxRssKiB,
              baselineRssKiB: answer.baselineRssKiB,
            }
          : { error: answer.error }),
      };
      rows.push(row);
      log(
        `(${i + 1}/${plan.length}) runtime ${item.config.id} ${row.image} ×${item.instances}: ` +
          (answer.ok
            ? `wall ${fixed(answer.result.wallMs / 1000, 1)} s, CPU ${fixed(answer.result.cpuMs / 1000, 1)} s, peak RSS ${fixed(mibFromKib(answer.maxRssKiB), 0)} MiB`
            : `error ${answer.error.message}`),
      );
    }
    report.runtime = rows;
  }

  report.machine.loadAverageEnd = loadavg();
  report.finishedAt = new Date().toISOString();
  report.durationS = (Date.now() - startedAt.getTime()) / 1000;
  if (report.overall?.main) report.costModel = costModel(report);
  conclude(report, config);

  await writeResults(args.json, report);
  process.stdout.write(renderMarkdown(report));
  log(`JSON report: ${args.json}`);
  if (args.keep) log(`encoded outputs kept in ${work}`);
  else await rm(work, { recursive: true, force: true });
}

/**
 * The memory targets' rows: the deployed settings' 20 MP image alone and 4 at once, and the
 * worst of the 50 MP images alone. The first runtime image is the 20 MP one.
 */
function memoryRows(report: BenchReport): { image20?: RuntimeRow; image20x4?: RuntimeRow; image50?: RuntimeRow } {
  const deployed = (report.runtime ?? []).filter((row) => row.config === 'deployed' && row.maxRssKiB !== undefined);
  const image20 = report.runtime?.[0]?.image;
  const large = deployed
    .filter((row) => row.image !== image20 && row.instances === 1)
    .sort((a, b) => (b.maxRssKiB ?? 0) - (a.maxRssKiB ?? 0));
  const rows: { image20?: RuntimeRow; image20x4?: RuntimeRow; image50?: RuntimeRow } = {};
  const one = deployed.find((row) => row.image === image20 && row.instances === 1);
  const four = deployed.find((row) => row.image === image20 && row.instances === 4);
  if (one) rows.image20 = one;
  if (four) rows.image20x4 = four;
  if (large[0]) rows.image50 = large[0];
  return rows;
}

/** Targets and closing note from the numbers. */
function conclude(report: BenchReport, config: Config): void {
  report.targets = checkTargets(report, memoryRows(report));
  report.notes = closingNotes(report, config);
}

/** The closing note: overall ratios, peak RSS and the defaults with what the numbers say. */
function closingNotes(report: BenchReport, config: Config): string[] {
  const notes: string[] = [];
  const main = report.overall?.main;
  const jw = report.overall?.jpegWebp;
  if (main) {
    notes.push(
      `Overall CPU (default variants, ${main.images} images): ours (${report.defaultStrategy}) ${fixed(main.cpuS.ours)} s, anchor ${fixed(main.cpuS.anchor)} s, floor ${fixed(main.cpuS.floor)} s → ` +
        `anchor ÷ ours **${times(main.ratios.anchorOverOursCpu)}**, ours ÷ floor **${times(main.ratios.oursOverFloorCpu)}**` +
        (main.ratios.perImageOverFloorCpu !== undefined
          ? ` (one job per image: ${times(main.ratios.anchorOverPerImageCpu)} and ${times(main.ratios.perImageOverFloorCpu)})`
          : '') +
        `. No pipeline can beat the anchor by more than anchor ÷ floor = ${times(main.ratios.anchorOverFloorCpu)} with these encoder settings.`,
    );
  }
  if (jw) {
    notes.push(
      `JPEG + WebP only: anchor ÷ ours **${times(jw.ratios.anchorOverOursCpu)}** (ours = ${config.FANOUT_STRATEGY}), ours ÷ floor ${times(jw.ratios.oursOverFloorCpu)}` +
        (jw.ratios.anchorOverPerImageCpu !== undefined
          ? `; one job per image: anchor ÷ ours ${times(jw.ratios.anchorOverPerImageCpu)}`
          : '') +
        '.',
    );
  }
  const rss = (id: string, image: string | undefined, instances: number): RuntimeRow | undefined =>
    report.runtime?.find(
      (r) => r.config === id && r.image === image && r.instances === instances && r.maxRssKiB !== undefined,
    );
  const runtime = report.runtime ?? [];
  const image20 = runtime[0]?.image;
  const others = [...new Set(runtime.map((r) => r.image).filter((name) => name !== image20))];
  const image50 = others[0];
  const image50p = others[1];
  if (runtime.length) {
    const mib = (row: RuntimeRow | undefined): string =>
      row?.maxRssKiB ? `${fixed(mibFromKib(row.maxRssKiB), 0)} MiB` : '–';
    notes.push(
      `Peak RSS (deployed runtime settings): one ${fixed(runtime[0]?.megapixels, 1)} MP JPEG ${mib(rss('deployed', image20, 1))}, ` +
        `4 at once ${mib(rss('deployed', image20, 4))} (with glibc's default arenas: ${mib(rss('glibc-arenas', image20, 4))}), ` +
        `one ${fixed(runtime.find((r) => r.image === image50)?.megapixels, 1)} MP baseline JPEG ${mib(rss('deployed', image50, 1))}` +
        (image50p ? `, progressive ${mib(rss('deployed', image50p, 1))}` : '') +
        '.',
    );
    const t = (row: RuntimeRow | undefined): number =>
      row?.result ? (row.instances / (row.result.wallMs / 1000)) * 60 : Number.NaN;
    const cpuPer = (row: RuntimeRow | undefined): number =>
      row?.result ? row.result.cpuMs / 1000 / row.instances : Number.NaN;
    notes.push(
      `SHARP_CONCURRENCY=${config.SHARP_CONCURRENCY}: ${fixed(t(rss('deployed', image20, 1)), 1)} images/min and ${fixed(cpuPer(rss('deployed', image20, 1)), 1)} CPU s per image at instance concurrency 1, ` +
        `vs ${fixed(t(rss('one-thread', image20, 1)), 1)} images/min (${fixed(cpuPer(rss('one-thread', image20, 1)), 1)} CPU s) with one thread; ` +
        `two images at once: ${fixed(t(rss('deployed', image20, 2)), 1)} images/min with ${config.SHARP_CONCURRENCY} threads each, ${fixed(t(rss('one-thread', image20, 2)), 1)} with one.`,
    );
    const on = rss('cache-on', image20, 1);
    const off = rss('deployed', image20, 1);
    if (on && off)
      notes.push(
        `SHARP_CACHE=${config.SHARP_CACHE}: with libvips' cache on, one image peaks ${fixed(mibFromKib((on.maxRssKiB ?? Number.NaN) - (off.maxRssKiB ?? Number.NaN)), 0)} MiB higher and uses ${percent(cpuPer(on) / cpuPer(off) - 1)} CPU.`,
      );
  }
  if (main) {
    const s = main.strategies;
    const d = s[report.defaultStrategy];
    const one = s['per-image'];
    if (d && one) {
      notes.push(
        `FANOUT_STRATEGY=${report.defaultStrategy}: ${d.jobs} jobs for ${main.images} images cost ${percent(d.cpuS / one.cpuS - 1)} CPU over one job per image, and the last variant is ready after ` +
          `${fixed(d.timeToLastS[4])} s (sum over images, K=4 instances) instead of ${fixed(one.timeToLastS[4])} s` +
          (s['per-width']
            ? `; per-width: ${percent(s['per-width'].cpuS / one.cpuS - 1)} CPU, ${fixed(s['per-width'].timeToLastS[4])} s`
            : '') +
          (s['per-format']
            ? `; per-format: ${percent(s['per-format'].cpuS / one.cpuS - 1)} CPU, ${fixed(s['per-format'].timeToLastS[4])} s`
            : '') +
          '.',
      );
    }
  }
  const enc = report.encoders?.summary;
  if (enc) {
    const find = (format: OutputFormat, pred: (r: EncoderSummary) => boolean) =>
      enc.find((r) => r.format === format && pred(r));
    const avifDefault = find('avif', (r) => r.isDefault);
    const avif2 = find('avif', (r) => r.effort === 2 && r.quality === config.AVIF_QUALITY);
    const avif6 = find('avif', (r) => r.effort === 6 && r.quality === config.AVIF_QUALITY);
    if (avifDefault && avif2 && avif6) {
      notes.push(
        `AVIF q${config.AVIF_QUALITY} effort ${config.AVIF_EFFORT} (default): effort 2 uses ${times(avif2.cpuVsDefault)} its CPU for ${percent(avif2.bytesVsDefault)} bytes (SSIM ${fixed(avif2.ssimVsDefault, 4)}); ` +
          `effort 6 uses ${times(avif6.cpuVsDefault)} for ${percent(avif6.bytesVsDefault)} bytes (SSIM ${fixed(avif6.ssimVsDefault, 4)}).`,
      );
    }
    const webp6 = find('webp', (r) => r.effort === 6 && r.quality === config.WEBP_QUALITY);
    if (webp6)
      notes.push(
        `WebP q${config.WEBP_QUALITY} effort ${config.WEBP_EFFORT} (default): effort 6 uses ${times(webp6.cpuVsDefault)} the CPU for ${percent(webp6.bytesVsDefault)} bytes (SSIM ${fixed(webp6.ssimVsDefault, 4)}).`,
      );
    const moz = find('jpeg', (r) => r.mozjpeg === !config.JPEG_MOZJPEG && r.quality === config.JPEG_QUALITY);
    if (moz)
      notes.push(
        `JPEG q${config.JPEG_QUALITY} mozjpeg ${config.JPEG_MOZJPEG ? 'on' : 'off'} (default): mozjpeg ${moz.mozjpeg ? 'on' : 'off'} uses ${times(moz.cpuVsDefault)} the CPU for ${percent(moz.bytesVsDefault)} bytes (SSIM ${fixed(moz.ssimVsDefault, 4)}).`,
      );
  }
  const missed = report.targets.filter((t) => t.met === false);
  notes.push(
    missed.length === 0
      ? 'Every measured target is met.'
      : `Targets missed: ${missed.map((t) => `${t.name} (${t.value}; ${t.target})`).join('; ')}.`,
  );
  return notes;
}

await main();
