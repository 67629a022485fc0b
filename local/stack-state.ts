/**
 * Where a running `npm start` is, for the operator commands (`npm run reprocess`, `npm run smoke`):
 * `npm start` writes `stack.json` into its data directory once it is up and removes it on stop, and
 * a command given no deployment (UPLOADS_BUCKET unset, no --url) runs against that stack. Pointing
 * a command at a deployment instead: docs/operations.md ("Operator commands").
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENV_VARS } from '../shared/core/config.js';
import type { LocalStack } from './stack.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The file, in the stack's data directory. */
export const STACK_STATE_FILE = 'stack.json';

/** What `npm start` records. */
export interface StackState {
  /** The `npm start` process; the file of a process that is gone is ignored. */
  readonly pid: number;
  /** The web page and upload API (`npm run smoke`'s --url). */
  readonly webUrl: string;
  /** Where things are: these win over the command's environment. */
  readonly location: Record<string, string>;
  /** The pipeline settings `npm start` was given (never UPLOAD_TOKEN): the command's environment wins. */
  readonly settings: Record<string, string>;
  /** How the upload API authenticates: UPLOAD_AUTH, and with jwt the issuer and its dev sign-in (if the stack's own). */
  readonly auth: { mode: string; issuer?: string; audience?: string; signInUrl?: string };
}

/** The data directory of `npm start` (LOCAL_DATA_DIR, default `.local` in the repository). */
export function localDataDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(REPO_ROOT, env.LOCAL_DATA_DIR?.trim() || '.local');
}

/** Records a started stack; returns the file's path. */
export function writeStackState(dataDir: string, stack: LocalStack, env: NodeJS.ProcessEnv): string {
  const settings: Record<string, string> = {};
  for (const name of ENV_VARS) {
    const value = env[name];
    if (value !== undefined && value.trim() !== '' && name !== 'UPLOAD_TOKEN') settings[name] = value;
  }
  const state: StackState = {
    pid: process.pid,
    webUrl: stack.urls.web,
    location: {
      GOOGLE_CLOUD_PROJECT: stack.projectId,
      UPLOADS_BUCKET: stack.config.UPLOADS_BUCKET,
      IMAGES_BUCKET: stack.config.IMAGES_BUCKET,
      JOBS_TOPIC: stack.config.JOBS_TOPIC,
      EVENTS_TOPIC: stack.config.EVENTS_TOPIC,
      FIRESTORE_DATABASE: stack.config.FIRESTORE_DATABASE,
      STORAGE_API_ENDPOINT: stack.urls.storage,
      PUBLIC_BASE_URL: stack.urls.images,
      PUBSUB_EMULATOR_HOST: stack.urls.pubsub,
      FIRESTORE_EMULATOR_HOST: stack.urls.firestore,
    },
    settings,
    auth: {
      mode: stack.auth.mode,
      ...(stack.auth.issuer ? { issuer: stack.auth.issuer } : {}),
      ...(stack.auth.audience ? { audience: stack.auth.audience } : {}),
      ...(stack.auth.signInUrl ? { signInUrl: stack.auth.signInUrl } : {}),
    },
  };
  const path = join(dataDir, STACK_STATE_FILE);
  writeFileSync(path, `${JSON.stringify(state, null, 2)}\n`);
  return path;
}

/** Forgets a stopped stack. */
export function removeStackState(dataDir: string): void {
  rmSync(join(dataDir, STACK_STATE_FILE), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The running stack recorded in `dataDir`, if any. */
export function readStackState(dataDir: string): StackState | undefined {
  let state: StackState;
  try {
    state = JSON.parse(readFileSync(join(dataDir, STACK_STATE_FILE), 'utf8')) as StackState;
  } catch {
    return undefined;
  }
  return typeof state.pid === 'number' && alive(state.pid) ? state : undefined;
}

/** Raised when a command has neither a deployment nor a running local stack to talk to. */
export class NoTargetError extends Error {
  constructor(command: string, dataDir: string) {
    super(
      `${command}: no deployment given (UPLOADS_BUCKET is unset) and no local stack running ` +
        `(no live ${join(dataDir, STACK_STATE_FILE)}). Start one with \`npm start\` in another terminal, ` +
        `or point the command at a deployment: \`${command} -- --help\` says how.`,
    );
    this.name = 'NoTargetError';
  }
}

/**
 * The environment an operator command runs with: `env` itself when it names a deployment
 * (UPLOADS_BUCKET set); otherwise the running local stack's, under `env`'s own settings.
 */
export function operatorEnv(command: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  if (env.UPLOADS_BUCKET?.trim()) return env;
  const dataDir = localDataDir(env);
  const state = readStackState(dataDir);
  if (!state) throw new NoTargetError(command, dataDir);
  return { ...state.settings, ...env, ...state.location };
}
