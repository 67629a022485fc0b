/**
 * The pipeline's vocabulary: output formats, fan-out and crop strategies, upload authentication
 * modes, quality modes. The environment schema (config.ts), the planner, the renderer and the schemas use them.
 */

/** Output formats the renderer can write. */
export const OUTPUT_FORMATS = ['avif', 'webp', 'jpeg'] as const;
/** One of {@link OUTPUT_FORMATS}. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** How the planner splits an image's variants into jobs. */
export const FANOUT_STRATEGIES = ['per-width', 'per-format', 'balanced', 'per-image'] as const;
/** One of {@link FANOUT_STRATEGIES}. */
export type FanoutStrategy = (typeof FANOUT_STRATEGIES)[number];

/** How an aspect's crop is positioned when the uploader gave no focal point (sharp's strategies). */
export const CROP_STRATEGIES = ['attention', 'entropy', 'centre'] as const;
/** One of {@link CROP_STRATEGIES}. */
export type CropStrategy = (typeof CROP_STRATEGIES)[number];

/** How the upload API authenticates (UPLOAD_AUTH). */
export const UPLOAD_AUTH_MODES = ['jwt', 'token', 'none'] as const;
/**
 * One of {@link UPLOAD_AUTH_MODES}, with what it checks: `jwt` verifies end users' OpenID Connect
 * ID tokens and, when a shared token is also set, accepts it from trusted backends.
 */
export type UploadAuth =
  | { readonly mode: 'none' }
  | { readonly mode: 'token'; readonly token: string }
  | {
      readonly mode: 'jwt';
      readonly issuer: string;
      readonly audience: string;
      readonly jwksUrl?: string;
      readonly token?: string;
    };

/** How each format's encoder quality is chosen (QUALITY_MODE): the configured one, or per image. */
export const QUALITY_MODES = ['fixed', 'auto'] as const;
/** One of {@link QUALITY_MODES}. */
export type QualityMode = (typeof QUALITY_MODES)[number];

/** What an animated GIF or WebP becomes (ANIMATION): its first frame everywhere, or animated WebP variants. */
export const ANIMATION_MODES = ['first-frame', 'keep'] as const;
/** One of {@link ANIMATION_MODES}. */
export type AnimationMode = (typeof ANIMATION_MODES)[number];

/**
 * How an image's first variant is scheduled (PREVIEW): a tiny job of its own run by the accepting
 * function where that is cheap (else as `first-in-job`), first in the first job, or in plan order.
 */
export const PREVIEW_MODES = ['inline', 'first-in-job', 'off'] as const;
/** One of {@link PREVIEW_MODES}. */
export type PreviewMode = (typeof PREVIEW_MODES)[number];

/** True for an `http://` URL whose host is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHttpUrl(url: string): boolean {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return false;
  }
  if (parsed.protocol !== 'http:') return false;
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}
