/**
 * The environment schema: every setting the functions read, with its default, validated once at
 * cold start; the values it allows come from domain.ts. A bad value stops start-up with a message
 * naming the variable. docs/configuration.md's table is generated from this schema (`npm run docs`:
 * defaults, allowed values from the validations and their messages, descriptions), and Terraform's
 * generated environment follows it.
 */
import { z } from 'zod';
import {
  ANIMATION_MODES,
  CROP_STRATEGIES,
  FANOUT_STRATEGIES,
  OUTPUT_FORMATS,
  PREVIEW_MODES,
  QUALITY_MODES,
  isLoopbackHttpUrl,
  UPLOAD_AUTH_MODES,
  type OutputFormat,
} from './domain.js';
import { topology } from './topology.js';
import { WEBHOOK_ENV, webhookConfigProblems } from './webhook.js';

const MiB = 1024 * 1024;

/**
 * Default auto-quality targets: the luma SSIM the fixed default qualities reach at the search
 * width on the median corpus photo (`npm run bench:auto -- --scores`; docs/auto-quality.md).
 */
export const AUTO_QUALITY_TARGET_DEFAULTS: Readonly<Record<OutputFormat, number>> = {
  avif: 0.972,
  webp: 0.976,
  jpeg: 0.978,
};

/** An enumerated setting, its message listing the values. */
const oneOf = <T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { message: `must be one of ${values.join(', ')}` });

const boolean = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (min: number, max: number) =>
  z.coerce
    .number({ message: 'must be a number' })
    .int({ message: 'must be a whole number' })
    .min(min, { message: `must be at least ${min}` })
    .max(max, { message: `must be at most ${max}` });

const list = <T extends z.ZodType>(item: T) =>
  z
    .string()
    .transform((s): unknown[] => s.split(',').flatMap((p) => (p.trim() ? [p.trim()] : [])))
    .pipe(z.array(item));

const widths = list(int(16, 8192))
  .refine((ws) => ws.length > 0, { message: 'must list at least one width' })
  .refine((ws) => new Set(ws).size === ws.length, { message: 'must not repeat a width' })
  .transform((ws) => [...ws].sort((a, b) => a - b));

const formats = list(z.enum(OUTPUT_FORMATS, { message: `each must be one of ${OUTPUT_FORMATS.join(', ')}` }))
  .refine((fs) => fs.length > 0, { message: 'must list at least one format' })
  .refine((fs) => new Set(fs).size === fs.length, { message: 'must not repeat a format' });

/** `W:H` with whole numbers 1–100, e.g. `16:9`. */
const aspects = list(
  z.string().regex(/^([1-9]\d?|100):([1-9]\d?|100)$/, {
    message: 'each must be W:H with whole numbers from 1 to 100, e.g. 16:9',
  }),
).refine((as) => new Set(as).size === as.length, { message: 'must not repeat an aspect' });

/** A score such as an SSIM target: a decimal number in [min, max]. */
const score = (min: number, max: number) =>
  z.coerce
    .number({ message: 'must be a number' })
    .min(min, { message: `must be at least ${min} (an SSIM score, 1 = identical)` })
    .max(max, { message: `must be at most ${max} (an SSIM score, 1 = identical)` });

const bucket = z
  .string({ message: 'is required' })
  .regex(/^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/, { message: 'must be a valid Cloud Storage bucket name' });
/** Topic and subscription ids follow the same rule. */
const pubsubId = (kind: 'topic' | 'subscription') =>
  z.string().regex(/^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$/, { message: `must be a valid Pub/Sub ${kind} id` });
const topic = pubsubId('topic');
/** An https URL, or plain http on a loopback address (a local issuer). */
const httpsUrl = (message: string) =>
  z.url({ message }).refine((url) => url.startsWith('https://') || isLoopbackHttpUrl(url), {
    message: 'must use https (plain http only on a loopback address)',
  });

/**
 * The schema, keyed by environment variable name. `MALLOC_ARENA_MAX` is read by glibc, not by
 * the code, but is listed so that deployments set it on purpose and Terraform's checks know it.
 */
export const ENV_SCHEMA = z.object({
  // Where things are (topology.json names the variables).
  UPLOADS_BUCKET: bucket.describe('Bucket for originals (`originals/{id}`) and direct uploads (`incoming/`).'),
  IMAGES_BUCKET: bucket.describe('Bucket for variants, manifests and failure records (`{id}/...`).'),
  JOBS_TOPIC: topic.default(topology.topics.jobs.name).describe('Topic that carries resize jobs.'),
  EVENTS_TOPIC: topic
    .default(topology.topics.events.name)
    .describe('Topic that receives `image.ready` and `image.failed`.'),
  JOBS_DEAD_LETTER_SUBSCRIPTION: pubsubId('subscription')
    .default(topology.subscriptions.jobsDeadLetterCleanup.name)
    .describe('Dead-letter subscription that cleanup drains to mark dead-lettered images failed.'),
  GOOGLE_CLOUD_PROJECT: z.string().min(1).optional().describe('Project id; set by the platform in production.'),
  FIRESTORE_DATABASE: z
    .string()
    .regex(/^(\(default\)|[a-z][a-z0-9-]{2,61}[a-z0-9])$/, {
      message: 'must be a Firestore database id (4–63 lowercase letters, digits and hyphens) or (default)',
    })
    .default(topology.firestore.database.name)
    .describe('Firestore (Native mode) database holding the per-image state (`images/{id}` documents).'),
  STORAGE_API_ENDPOINT: z
    .url({ message: 'must be a URL such as http://127.0.0.1:4443' })
    .optional()
    .describe('Local storage server URL (development only); unset in production.'),
  PUBLIC_BASE_URL: z
    .url({ message: 'must be a URL' })
    .optional()
    .describe(
      'Base of variant URLs in manifests (e.g. a CDN); default `https://storage.googleapis.com/{IMAGES_BUCKET}`.',
    ),
  // What to make.
  WIDTHS: widths
    .default([320, 640, 1024, 1600, 2048])
    .describe('Variant widths in pixels, comma-separated; never enlarged past the original.'),
  FORMATS: formats.default(['avif', 'webp', 'jpeg']).describe('Output formats, comma-separated: avif, webp, jpeg.'),
  FANOUT_STRATEGY: oneOf(FANOUT_STRATEGIES)
    .default('balanced')
    .describe("How an image's variants are split into jobs: per-width, per-format, balanced, per-image."),
  ASPECTS: aspects
    .default([])
    .describe(
      'Cropped aspect ratios to make besides the uncropped variants, comma-separated W:H (e.g. `1:1,16:9`); empty: none.',
    ),
  CROP_STRATEGY: oneOf(CROP_STRATEGIES)
    .default('attention')
    .describe(
      "Where an aspect crop sits when the uploader gave no focus: attention, entropy (sharp's strategies) or centre.",
    ),
  JPEG_QUALITY: int(1, 100).default(80).describe('JPEG quality.'),
  JPEG_MOZJPEG: boolean.default(false).describe('Use mozjpeg settings for JPEG (smaller, slower).'),
  JPEG_PROGRESSIVE: boolean
    .default(true)
    .describe('Progressive JPEG: the same pixels in about 3 % fewer bytes, and a whole-image preview while it loads.'),
  WEBP_QUALITY: int(1, 100).default(80).describe('WebP quality.'),
  WEBP_EFFORT: int(0, 6).default(4).describe('WebP effort (0 fastest, 6 smallest).'),
  AVIF_QUALITY: int(1, 100).default(52).describe('AVIF quality.'),
  AVIF_EFFORT: int(0, 9).default(3).describe('AVIF effort (0 fastest, 9 smallest).'),
  AVIF_BITDEPTH: z
    .enum(['8', '10'], { message: 'must be 8 or 10' })
    .default('10')
    .transform((value): 8 | 10 => (value === '10' ? 10 : 8))
    .describe('AVIF bit depth: 10 codes the same 8-bit pixels in fewer bytes at equal quality, for more CPU.'),
  QUALITY_MODE: oneOf(QUALITY_MODES)
    .default('fixed')
    .describe(
      "How each format's quality is chosen: `fixed` (the *_QUALITY settings) or `auto` (per image, the lowest quality reaching the AUTO_QUALITY_TARGET_* score; docs/auto-quality.md).",
    ),
  AUTO_QUALITY_TARGET_AVIF: score(0.5, 0.999)
    .default(AUTO_QUALITY_TARGET_DEFAULTS.avif)
    .describe("With QUALITY_MODE=auto: the luma SSIM each image's AVIF must reach at the search width."),
  AUTO_QUALITY_TARGET_WEBP: score(0.5, 0.999)
    .default(AUTO_QUALITY_TARGET_DEFAULTS.webp)
    .describe("With QUALITY_MODE=auto: the luma SSIM each image's WebP must reach at the search width."),
  AUTO_QUALITY_TARGET_JPEG: score(0.5, 0.999)
    .default(AUTO_QUALITY_TARGET_DEFAULTS.jpeg)
    .describe("With QUALITY_MODE=auto: the luma SSIM each image's JPEG must reach at the search width."),
  AUTO_QUALITY_MAX_TRIALS: int(1, 12)
    .default(4)
    .describe('With QUALITY_MODE=auto: most trial encodes per format and job in the quality search.'),
  ANIMATION: oneOf(ANIMATION_MODES)
    .default('first-frame')
    .describe(
      'Animated GIF/WebP input: `first-frame` (every variant is the first frame) or `keep` (WebP variants animated, every frame, delays and loop kept; JPEG and AVIF stay the first frame; docs/format-limits.md).',
    ),
  PREVIEW: oneOf(PREVIEW_MODES)
    .default('inline')
    .describe("How an image's first variant is scheduled: `inline`, `first-in-job` or `off` (docs/state.md)."),
  PREVIEW_EVENT: boolean.default(false).describe("Publish `image.preview` once an image's first variant exists."),
  KEEP_METADATA: boolean
    .default(false)
    .describe('Keep EXIF, XMP and ICC metadata in variants (EXIF, GPS and XMP are stripped by default).'),
  // Limits, checked before any full decode.
  // A request to Cloud Run carries at most 32 MiB, so a larger limit could never be reached.
  MAX_UPLOAD_BYTES: int(1, 32 * MiB)
    .default(25 * MiB)
    .describe('Largest file accepted through the upload function (request body), in bytes; at most 32 MiB.'),
  MAX_INGEST_BYTES: int(1, 5 * 1024 * MiB)
    .default(200 * MiB)
    .describe(
      'Largest object ingested from `incoming/` (gcloud, console, signed-URL uploads), in bytes; also caps signed URLs.',
    ),
  SIGNED_URL_TTL_SECONDS: int(60, 3600)
    .default(900)
    .describe('How long a signed upload URL (`POST /uploads/signed-url`) stays valid, in seconds; at most one hour.'),
  MAX_INPUT_PIXELS: int(1, 1_000_000_000)
    .default(50_000_000)
    .describe('Largest accepted image, in pixels (width × height).'),
  MAX_INPUT_FRAMES: int(1, 10_000)
    .default(100)
    .describe(
      'Most frames/pages an input may declare (animated GIF/WebP, multi-page TIFF). With ANIMATION=keep, all frames of an animation together must also fit MAX_INPUT_PIXELS.',
    ),
  ALLOW_SVG: boolean.default(false).describe('Accept SVG input (rasterised by librsvg). Off: SVG is a risky format.'),
  JOB_TIME_BUDGET_SECONDS: int(1, 3600)
    .default(300)
    .describe('Longest a resize job may spend rendering before it fails for good.'),
  // upload's HTTP surface.
  CORS_ORIGINS: list(
    z.union([z.literal('*'), z.url({ message: 'each must be an origin such as https://example.com' })]),
  )
    .default([])
    .describe('Browser origins allowed to call the upload API, comma-separated, or `*`. Empty: no browser origin.'),
  UPLOAD_AUTH: oneOf(UPLOAD_AUTH_MODES)
    .default('token')
    .describe(
      "How the upload API authenticates: `jwt` (end users' OpenID Connect ID tokens from JWT_ISSUER; UPLOAD_TOKEN, if set, for trusted backends), `token` (requires UPLOAD_TOKEN) or `none` (no authentication, only when set explicitly). With `token` and no UPLOAD_TOKEN, or `jwt` without JWT_ISSUER and JWT_AUDIENCE, upload refuses to start.",
    ),
  UPLOAD_TOKEN: z
    .string()
    .min(16, { message: 'must be at least 16 characters' })
    .optional()
    .describe(
      'The shared bearer token (`Authorization: Bearer <token>`, compared in constant time): required with UPLOAD_AUTH=token, optional with `jwt` (trusted backends). Set but empty or blank (an empty secret version) is a start-up error, never "no authentication".',
    ),
  JWT_ISSUER: httpsUrl('must be an issuer URL such as https://securetoken.google.com/my-project')
    .optional()
    .describe(
      "With UPLOAD_AUTH=jwt: the ID tokens' issuer (`iss`), e.g. `https://securetoken.google.com/{project}` for Firebase Authentication.",
    ),
  JWT_AUDIENCE: z
    .string()
    .min(1)
    .optional()
    .describe(
      "With UPLOAD_AUTH=jwt: the ID tokens' audience (`aud`), e.g. the Firebase project id or the OAuth client id.",
    ),
  JWT_JWKS_URL: httpsUrl('must be a URL')
    .optional()
    .describe(
      "With UPLOAD_AUTH=jwt: where the issuer's signing keys are; default: `jwks_uri` of the issuer's `/.well-known/openid-configuration`.",
    ),
  QUOTA_UPLOADS_PER_DAY: int(0, 10_000_000)
    .optional()
    .describe(
      'Uploads and signed URLs one owner may start per UTC day; 0 = no limit. Default: 200 with jwt, 0 otherwise.',
    ),
  QUOTA_BYTES_PER_DAY: int(0, Number.MAX_SAFE_INTEGER)
    .optional()
    .describe(
      'Bytes one owner may upload per UTC day (signed URLs count their declared size); 0 = no limit. Default: 2 GiB with UPLOAD_AUTH=jwt, 0 otherwise.',
    ),
  QUOTA_OPEN_TICKETS: int(0, 100_000)
    .optional()
    .describe('Unused, unexpired signed URLs one owner may hold; 0 = no limit. Default: 10 with jwt, 0 otherwise.'),
  // cleanup.
  ORIGINAL_RETENTION_DAYS: int(0, 36500)
    .default(0)
    .describe(
      'Delete originals this many days after upload once their image is finished (ready or failed); 0 keeps them forever.',
    ),
  REDISPATCH_AFTER_MINUTES: int(1, 10080)
    .default(30)
    .describe(
      'Re-dispatch an unfinished image only after this long without any new output since its last dispatch (see docs/cleanup.md).',
    ),
  MAX_REDISPATCHES: int(0, 100).default(3).describe('Re-dispatches before an image is recorded as failed.'),
  REDISPATCH_MAX_PER_PASS: int(1, 100_000)
    .default(100)
    .describe(
      'Most images one cleanup pass dispatches again; the originals step stops there and resumes at that image next pass.',
    ),
  ORPHAN_GRACE_DAYS: int(0, 3650)
    .default(7)
    .describe('Delete outputs whose original is gone after this many days (see Cleanup).'),
  INCOMING_MAX_AGE_HOURS: int(1, 8760).default(24).describe('Delete `incoming/` objects left unprocessed this long.'),
  CLEANUP_MAX_OBJECTS: int(1, 1_000_000)
    .default(5000)
    .describe(
      'Most objects each cleanup step examines per pass; its cursor resumes there next pass (see docs/cleanup.md).',
    ),
  CLEANUP_MAX_SECONDS: int(1, 3600)
    .default(240)
    .describe('Longest one cleanup pass runs; each step gets its share and checks it between objects.'),
  DRY_RUN: boolean.default(false).describe('Cleanup only logs what it would do.'),
  // Reprocess (bring images made with an older recipe up to date; docs/state.md).
  REPROCESS: z
    .enum(['on', 'off'], { message: 'must be on or off' })
    .default('off')
    .describe(
      'Cleanup also runs the reprocess backfill (`npm run reprocess` runs it by hand); off by default: it costs CPU.',
    ),
  REPROCESS_MAX_PER_PASS: int(1, 100_000)
    .default(100)
    .describe('Most images one reprocess pass dispatches; its cursor resumes after the last one next pass.'),
  REPROCESS_CPU_SECONDS_PER_DAY: int(0, 10_000_000)
    .default(3600)
    .describe(
      "Estimated CPU-seconds the reprocess backfill may dispatch per UTC day (the bench's per-megapixel model); 0 dispatches nothing.",
    ),
  // Runtime settings that the bench shows matter.
  SHARP_CONCURRENCY: int(0, 64).default(2).describe('libvips threads per image (sharp.concurrency); 0 = one per core.'),
  SHARP_CACHE: boolean.default(false).describe('libvips operation cache; off, since every job sees a new image.'),
  MALLOC_ARENA_MAX: int(1, 64)
    .optional()
    .describe('glibc malloc arenas; read by the C library, set to 2 in deployments to cap RSS.'),
  // Signed webhooks (docs/webhooks.md).
  ...WEBHOOK_ENV,
});

/** Validated configuration, keyed by environment variable name. */
export type Config = z.infer<typeof ENV_SCHEMA>;

/** Every environment variable the schema knows. */
export const ENV_VARS: readonly string[] = Object.keys(ENV_SCHEMA.shape);

/** One row of the configuration reference (docs/configuration.md). */
export interface ConfigVariable {
  readonly name: string;
  readonly required: boolean;
  /** The default as it would be written in the environment, or undefined. */
  readonly defaultValue: string | undefined;
  readonly description: string;
}

/** The configuration reference, from the schema (`npm run docs` writes docs/configuration.md's table from it). */
export function describeConfig(): ConfigVariable[] {
  return Object.entries(ENV_SCHEMA.shape).map(([name, schema]) => {
    const parsed = schema.safeParse(undefined);
    const value = parsed.success ? parsed.data : undefined;
    return {
      name,
      required: !parsed.success,
      defaultValue: value === undefined ? undefined : Array.isArray(value) ? value.join(',') : String(value),
      description: schema.description ?? '',
    };
  });
}

/** Variables without a default, which every deployment must set. */
export const REQUIRED_ENV_VARS: readonly string[] = Object.entries(ENV_SCHEMA.shape)
  .filter(([, schema]) => !schema.safeParse(undefined).success)
  .map(([name]) => name);

/** Thrown when the environment is invalid; its message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/**
 * Validates an environment (default: `process.env`). Empty strings count as unset so that
 * `FOO=` in a shell or Terraform falls back to the default, except UPLOAD_TOKEN: an empty token
 * (e.g. an empty secret version) is an error, never "no authentication".
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const relevant: Record<string, string> = {};
  for (const name of ENV_VARS) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '') relevant[name] = value.trim();
  }
  const problems: string[] = [];
  if (env.UPLOAD_TOKEN !== undefined && env.UPLOAD_TOKEN.trim() === '') {
    problems.push(
      'UPLOAD_TOKEN is set but empty (an empty secret version?): give it a token of at least 16 characters, or unset it and set UPLOAD_AUTH=none to run without authentication',
    );
  }
  if (relevant.UPLOAD_AUTH === 'none' && relevant.UPLOAD_TOKEN !== undefined) {
    problems.push(
      'UPLOAD_TOKEN is set but UPLOAD_AUTH is none: set UPLOAD_AUTH=token to require the token, or unset UPLOAD_TOKEN',
    );
  }
  const result = ENV_SCHEMA.safeParse(relevant);
  if (!result.success) {
    problems.push(
      ...result.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? '?');
        const value = relevant[name];
        const shown = value === undefined ? 'unset' : /TOKEN|SECRET/.test(name) ? 'set' : JSON.stringify(value);
        return `${name} ${issue.message} (${shown})`;
      }),
    );
  }
  if (result.success) problems.push(...webhookConfigProblems(result.data));
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return result.data;
}

/** The public base URL for variants: PUBLIC_BASE_URL or the bucket's storage.googleapis.com URL. */
export function publicBaseUrl(config: Pick<Config, 'PUBLIC_BASE_URL' | 'IMAGES_BUCKET'>): string {
  return (config.PUBLIC_BASE_URL ?? `https://storage.googleapis.com/${config.IMAGES_BUCKET}`).replace(/\/+$/, '');
}
