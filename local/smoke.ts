/**
 * `npm run smoke -- [--url URL …]`: after a deployment (or against the local stack), uploads a
 * generated image, follows it to ready and fetches every URL of its manifest, naming the likely
 * cause of a failure (IAM, upload token, CORS, serving mode). Options: `--help` ({@link USAGE}).
 */
import sharp from 'sharp';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { localDataDir, readStackState, STACK_STATE_FILE } from './stack-state.js';

export interface SmokeOptions {
  readonly url: string;
  readonly token?: string | undefined;
  /** An end user's ID token (UPLOAD_AUTH=jwt), sent as `Authorization: Bearer`. */
  readonly idToken?: string | undefined;
  /** The local stack's dev sign-in: with neither token given, an ID token for alice comes from here. */
  readonly signInUrl?: string | undefined;
  readonly identityToken?: string | undefined;
  readonly origin?: string | undefined;
  readonly timeoutMs?: number;
  /** Between status polls; default 2000 ms. */
  readonly pollMs?: number;
  /** One line per step; default: stdout. */
  readonly print?: (line: string) => void;
  readonly fetch?: typeof fetch;
}

export interface SmokeStep {
  readonly step: string;
  readonly ok: boolean;
  readonly detail: string;
  /** For a failure: what probably caused it and what to do. */
  readonly cause?: string;
}

export interface SmokeResult {
  readonly ok: boolean;
  readonly steps: SmokeStep[];
  readonly id?: string;
}

/** The manifest fields the smoke test reads. */
interface SmokeManifest {
  variants: Array<{ url: string; contentType: string; bytes: number; width: number; format: string }>;
}

/** The fields of the service's JSON answers that the smoke test reads; any of them may be absent. */
interface AnswerJson {
  readonly id?: unknown;
  readonly status?: unknown;
  readonly manifest?: SmokeManifest;
  readonly done?: unknown;
  readonly total?: unknown;
  readonly error?: { readonly code?: unknown; readonly message?: unknown; readonly details?: unknown };
  /** The local issuer's dev sign-in. */
  readonly idToken?: unknown;
}

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly json: AnswerJson | undefined;
  readonly text: string;
}

const REQUEST_TIMEOUT_MS = 30_000;

/** A JPEG that no earlier run uploaded (random noise), so that the pipeline really renders it. */
export async function smokeImage(): Promise<Buffer> {
  return sharp({
    create: {
      width: 800,
      height: 600,
      channels: 3,
      background: { r: 40, g: 110, b: 170 },
      noise: { type: 'gaussian', mean: 128, sigma: 30 },
    },
  })
    .jpeg({ quality: 85 })
    .toBuffer();
}

/** Likely cause of a refused call to upload, from its status and body. */
export function uploadCause(
  answer: Answer,
  options: Pick<SmokeOptions, 'token' | 'idToken' | 'identityToken' | 'origin'>,
): string {
  const code = answer.json?.error?.code as string | undefined;
  if (code === 'auth_unavailable')
    return "identity provider: upload could not fetch JWT_ISSUER's keys (discovery or JWKS); check JWT_ISSUER / JWT_JWKS_URL and the provider, then run again";
  if (code === 'unauthorized' && options.idToken) {
    const reason = (answer.json?.error as { details?: { reason?: string } } | undefined)?.details?.reason;
    return `ID token: upload refused --id-token (${reason ?? 'no reason given'}); pass a fresh ID token from JWT_ISSUER for JWT_AUDIENCE`;
  }
  if (code === 'unauthorized') {
    return options.token
      ? 'upload token: the function refused --token; pass the current value of the upload_token_secret_id secret (gcloud secrets versions access latest --secret …)'
      : "upload token: upload checks a bearer token (UPLOAD_AUTH=token); pass --token with the secret's value (with UPLOAD_AUTH=jwt: --id-token with an end user's ID token)";
  }
  if (code === 'forbidden_origin')
    return `CORS: ${options.origin ?? 'the Origin sent'} is not in upload_cors_origins (CORS_ORIGINS)`;
  if ((answer.status === 401 || answer.status === 403) && !answer.json) {
    return options.identityToken
      ? 'IAM: Cloud Run refused the identity token: the caller needs roles/run.invoker on upload (upload_invoker_members), or the token is for another audience/expired'
      : 'IAM: upload is private; pass --identity-token "$(gcloud auth print-identity-token)" as a member of upload_invoker_members, or set allow_unauthenticated_upload with upload_token_secret_id';
  }
  if (answer.status === 404)
    return "wrong URL: --url must be the upload_url output (the function's root), not a path under it";
  if (answer.status === 503) return 'transient: upload answered 503 (retryable); run the smoke test again in a minute';
  if (answer.status >= 500)
    return 'the function failed: read its logs (gcloud functions logs read …-upload); a configuration error names the variable';
  return `unexpected answer ${answer.status}`;
}

/** Likely cause of a manifest URL that does not load, from its status. */
export function variantCause(status: number | 'network', url: string, base: string): string {
  if (status === 'network') {
    return `serving: ${new URL(url).host} does not answer: with serving = "cdn" the domain's A record must point at cdn_ip_address and the managed certificate must be ACTIVE (up to an hour after DNS resolves)`;
  }
  if (status === 401 || status === 403) {
    return 'serving mode: the images are not readable at this URL: with serving = "bucket" allUsers needs roles/storage.legacyObjectReader on the images bucket (an organisation policy may refuse it: use serving = "cdn"); with "cdn" the Cloud CDN agent needs read; with "none" your layer must serve it';
  }
  if (status === 404)
    return `serving mode: PUBLIC_BASE_URL (${base}) does not serve the images bucket (public_base_url, or the load balancer's backend bucket)`;
  return `unexpected answer ${status}`;
}

export async function runSmoke(options: SmokeOptions): Promise<SmokeResult> {
  const doFetch = options.fetch ?? fetch;
  const print = options.print ?? ((line: string) => process.stdout.write(`${line}\n`));
  const base = options.url.replace(/\/+$/, '');
  const steps: SmokeStep[] = [];
  const record = (step: SmokeStep): SmokeStep => {
    steps.push(step);
    print(
      `${step.ok ? 'ok  ' : 'FAIL'} ${step.step.padEnd(8)} ${step.detail}${step.cause ? `\n     likely cause: ${step.cause}` : ''}`,
    );
    return step;
  };
  let idToken = options.idToken;
  const headers = (extra: Record<string, string> = {}, withOrigin = true): Record<string, string> => {
    const h: Record<string, string> = { ...extra };
    const bearer = options.token ?? idToken;
    if (bearer) h.Authorization = `Bearer ${bearer}`;
    if (options.identityToken) {
      if (bearer) h['X-Serverless-Authorization'] = `Bearer ${options.identityToken}`;
      else h.Authorization = `Bearer ${options.identityToken}`;
    }
    if (options.origin && withOrigin) h.Origin = options.origin;
    return h;
  };
  const call = async (
    method: string,
    url: string,
    init: { headers?: Record<string, string>; body?: Buffer } = {},
  ): Promise<Answer> => {
    const response = await doFetch(url, {
      method,
      headers: init.headers,
      body: init.body ? new Blob([new Uint8Array(init.body)]) : undefined,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      redirect: 'follow',
    });
    const text = await response.text();
    let json: AnswerJson | undefined;
    try {
      json = response.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as AnswerJson) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.status, headers: response.headers, json, text };
  };
  const unreachable = (step: string, url: string, error: unknown): SmokeResult => {
    record({
      step,
      ok: false,
      detail: `${url}: ${(error as Error).message}`,
      cause: 'network: the URL does not answer; is --url the upload_url output (https://…run.app)?',
    });
    return { ok: false, steps };
  };

  // 1. The function answers (GET /healthz needs no upload token; Cloud Run IAM still applies). No
  // Origin here: CORS is checked where a browser would use it, at the upload.
  const healthUrl = `${base}/healthz`;
  let health: Answer;
  try {
    health = await call('GET', healthUrl, { headers: headers({}, false) });
  } catch (error) {
    return unreachable('health', healthUrl, error);
  }
  if (health.status !== 200) {
    record({
      step: 'health',
      ok: false,
      detail: `GET ${healthUrl} ${health.status}`,
      cause: uploadCause(health, options),
    });
    return { ok: false, steps };
  }
  record({ step: 'health', ok: true, detail: `GET ${healthUrl} 200` });

  // The local stack's own issuer: sign in as alice when no credential was given.
  if (!options.token && !idToken && options.signInUrl) {
    const signIn = `${options.signInUrl}?user=alice`;
    try {
      const answer = await call('GET', signIn);
      idToken = typeof answer.json?.idToken === 'string' ? answer.json.idToken : undefined;
      if (!idToken) throw new Error(`answered ${answer.status}`);
    } catch (error) {
      return unreachable('sign-in', signIn, error);
    }
    record({ step: 'sign-in', ok: true, detail: `GET ${signIn}: an ID token for alice` });
  }

  // 2. Upload a new image.
  const image = await smokeImage();
  const uploadUrl = `${base}/uploads?filename=smoke.jpg`;
  let upload: Answer;
  try {
    upload = await call('POST', uploadUrl, { headers: headers({ 'Content-Type': 'image/jpeg' }), body: image });
  } catch (error) {
    return unreachable('upload', uploadUrl, error);
  }
  if ((upload.status !== 202 && upload.status !== 200) || typeof upload.json?.id !== 'string') {
    record({
      step: 'upload',
      ok: false,
      detail: `POST ${uploadUrl} ${upload.status} ${upload.json?.error?.code ?? ''}`.trim(),
      cause: uploadCause(upload, options),
    });
    return { ok: false, steps };
  }
  const id = upload.json.id as string;
  if (options.origin && upload.headers.get('access-control-allow-origin') !== options.origin) {
    record({
      step: 'upload',
      ok: false,
      detail: `POST ${uploadUrl} ${upload.status} without Access-Control-Allow-Origin`,
      cause: `CORS: ${options.origin} is not in upload_cors_origins (CORS_ORIGINS)`,
    });
    return { ok: false, steps, id };
  }
  record({ step: 'upload', ok: true, detail: `POST ${uploadUrl} ${upload.status} id ${id} (${image.length} bytes)` });

  // 3. Follow it to ready.
  const statusUrl = `${base}/uploads/${id}`;
  const deadline = Date.now() + (options.timeoutMs ?? 300_000);
  let manifest: SmokeManifest | undefined;
  let polls = 0;
  for (;;) {
    let status: Answer;
    try {
      status = await call('GET', statusUrl, { headers: headers() });
    } catch (error) {
      return unreachable('ready', statusUrl, error);
    }
    polls++;
    if (status.status === 200 && status.json?.status === 'ready') {
      manifest = status.json.manifest;
      break;
    }
    if (status.status === 422) {
      record({
        step: 'ready',
        ok: false,
        detail: `GET ${statusUrl} 422 ${status.json?.error?.code ?? ''}`,
        cause: `the pipeline refused the image: ${JSON.stringify(status.json?.error?.details ?? status.json?.error?.message ?? '')}`,
      });
      return { ok: false, steps, id };
    }
    if (status.status !== 202 && status.status !== 404) {
      record({
        step: 'ready',
        ok: false,
        detail: `GET ${statusUrl} ${status.status}`,
        cause: uploadCause(status, options),
      });
      return { ok: false, steps, id };
    }
    if (Date.now() >= deadline) {
      const progress = status.json
        ? `${status.json.done ?? 0}/${status.json.total ?? '?'} variants`
        : `status ${status.status}`;
      record({
        step: 'ready',
        ok: false,
        detail: `GET ${statusUrl} still ${progress} after ${polls} polls`,
        cause:
          'IAM or delivery: ingest or resize never ran or keeps failing: check their logs, the jobs dead-letter subscription, that the Pub/Sub agent may mint tokens for the invokers and that the first apply waited for IAM (iam_propagation_wait)',
      });
      return { ok: false, steps, id };
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 2000));
  }
  const variants = manifest?.variants ?? [];
  record({
    step: 'ready',
    ok: variants.length > 0,
    detail: `GET ${statusUrl} ready, ${variants.length} variants`,
    ...(variants.length ? {} : { cause: 'the manifest lists no variants' }),
  });
  if (!variants.length) return { ok: false, steps, id };

  // 4. Every URL of the manifest loads, as a browser would fetch it (no credentials).
  let allOk = true;
  for (const variant of variants) {
    const step = `${variant.width}w.${variant.format}`;
    let answer: Answer;
    try {
      const response = await doFetch(variant.url, {
        headers: options.origin ? { Origin: options.origin } : {},
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const body = new Uint8Array(await response.arrayBuffer());
      answer = { status: response.status, headers: response.headers, json: undefined, text: String(body.length) };
    } catch {
      record({
        step,
        ok: false,
        detail: `GET ${variant.url} no answer`,
        cause: variantCause('network', variant.url, base),
      });
      allOk = false;
      continue;
    }
    const type = answer.headers.get('content-type') ?? '';
    if (answer.status !== 200) {
      record({
        step,
        ok: false,
        detail: `GET ${variant.url} ${answer.status}`,
        cause: variantCause(answer.status, variant.url, base),
      });
      allOk = false;
    } else if (!type.startsWith(variant.contentType) || Number(answer.text) !== variant.bytes) {
      record({
        step,
        ok: false,
        detail: `GET ${variant.url} 200 but ${type}, ${answer.text} bytes (manifest: ${variant.contentType}, ${variant.bytes})`,
        cause: 'serving: something in front of the bucket rewrites the object (content type or size)',
      });
      allOk = false;
    } else if (options.origin && !answer.headers.get('access-control-allow-origin')) {
      record({
        step,
        ok: false,
        detail: `GET ${variant.url} 200 without Access-Control-Allow-Origin`,
        cause: `CORS: images_cors does not list ${options.origin} (only needed for fetch/XHR, not for <img>)`,
      });
      allOk = false;
    } else {
      record({
        step,
        ok: true,
        detail: `GET ${variant.url} 200 ${type} ${answer.text} bytes, cache-control: ${answer.headers.get('cache-control') ?? '-'}`,
      });
    }
  }
  return { ok: allOk, steps, id };
}

/** What `--help` prints. */
export const USAGE = `usage: npm run smoke -- [options]

Uploads a generated image, follows it to ready and fetches every URL of its manifest. Prints one
line per step and, for a failure, its likely cause. Exit code 0 when every step passed.

  --url             the upload function's URL, or the local stack's page URL; default: the page of
                    the \`npm start\` running in another terminal (recorded in .local/stack.json,
                    or in LOCAL_DATA_DIR)
  --token           the upload bearer token (UPLOAD_TOKEN) if upload checks one
  --id-token        an end user's ID token (UPLOAD_AUTH=jwt; or SMOKE_ID_TOKEN); against the
                    local stack's own issuer the smoke test signs in as alice by itself
  --identity-token  an identity token for Cloud Run IAM, for a private upload function; sent in
                    X-Serverless-Authorization with --token
  --origin          a browser origin to send (checks upload's CORS_ORIGINS and the images' CORS)
  --timeout         seconds to wait for the image to be ready (default 300)
  -h, --help        print this and exit

Against a deployment (from terraform/, with gcloud logged in as an account the function admits):
  npm run smoke -- --url "$(terraform output -raw upload_url)" \\
    --identity-token "$(gcloud auth print-identity-token)"      # upload_invoker_members
    --token "$(gcloud secrets versions access latest --secret SECRET)"   # upload_token_secret_id
More: docs/operations.md.
`;

/**
 * Parses the command line; throws with a usage message. Without --url, the page of the local
 * stack recorded in `env`'s data directory (local/stack-state.ts).
 */
export function parseSmokeArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): SmokeOptions {
  const usage = USAGE.slice(0, USAGE.indexOf('\n'));
  const values: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const match = /^--(url|token|id-token|identity-token|origin|timeout)(?:=(.*))?$/.exec(arg);
    const name = match?.[1];
    if (!match || name === undefined) throw new Error(`unknown option ${arg}\n${usage}`);
    const value = match[2] ?? argv[++i];
    if (value === undefined || value === '') throw new Error(`--${name} needs a value\n${usage}`);
    values[name] = value;
  }
  let signInUrl: string | undefined;
  if (!values.url) {
    const dataDir = localDataDir(env);
    const stack = readStackState(dataDir);
    if (!stack)
      throw new Error(
        `--url is required: no local stack is running (no live ${join(dataDir, STACK_STATE_FILE)}); start one with \`npm start\`, or give a deployment's URL\n${usage}`,
      );
    values.url = stack.webUrl;
    signInUrl = stack.auth?.signInUrl;
  }
  const idToken = values['id-token'] ?? (env.SMOKE_ID_TOKEN?.trim() || undefined);
  if (values.token && idToken) throw new Error(`give --token or --id-token, not both\n${usage}`);
  if (!/^https?:\/\//.test(values.url)) throw new Error(`--url must be an http(s) URL, got ${values.url}\n${usage}`);
  const timeout = values.timeout === undefined ? 300 : Number(values.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0) throw new Error(`--timeout must be a number of seconds\n${usage}`);
  return {
    url: values.url,
    token: values.token,
    ...(idToken ? { idToken } : {}),
    ...(signInUrl ? { signInUrl } : {}),
    identityToken: values['identity-token'],
    origin: values.origin,
    timeoutMs: timeout * 1000,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  let options: SmokeOptions;
  try {
    options = parseSmokeArgs(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`npm run smoke: ${(error as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  runSmoke(options).then(
    (result) => {
      process.stdout.write(result.ok ? 'smoke test passed\n' : 'smoke test FAILED\n');
      process.exit(result.ok ? 0 : 1);
    },
    (error: unknown) => {
      process.stderr.write(`npm run smoke: ${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
