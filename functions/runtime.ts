/**
 * The instance's collaborators, built on first use from the validated environment (a bad
 * variable fails the cold start with a message naming it). The local stack and tests inject
 * their own with {@link useDeps}.
 */
import { loadConfig } from '../shared/core/config.js';
import { createDeps, type PipelineDeps } from '../shared/cloud/deps.js';
import { configureSharp } from '../shared/image/encode.js';

let current: PipelineDeps | undefined;

/** The collaborators of this instance. */
export function getDeps(): PipelineDeps {
  if (current) return current;
  const deps = createDeps(loadConfig());
  useDeps(deps);
  return deps;
}

/** Replaces the collaborators (local stack, tests) and applies the runtime settings they carry. */
export function useDeps(deps: PipelineDeps): void {
  configureSharp({ concurrency: deps.config.SHARP_CONCURRENCY, cache: deps.config.SHARP_CACHE });
  current = deps;
}
