/**
 * `npm run reprocess -- [--dry-run]`: one pass of the reprocess backfill against the configured
 * buckets (environment as for the functions: UPLOADS_BUCKET, IMAGES_BUCKET, the recipe variables,
 * REPROCESS_MAX_PER_PASS, REPROCESS_CPU_SECONDS_PER_DAY). Run the dry run first: it prices the
 * whole backlog without writing anything. Prints the summary as JSON.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../shared/core/config.js';
import { createDeps } from '../shared/cloud/deps.js';
import { runReprocess } from '../shared/pipeline/reprocess.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { 'dry-run': { type: 'boolean', default: false }, max: { type: 'string' } },
  });
  const config = loadConfig();
  const deps = createDeps(
    values.max === undefined ? config : { ...config, REPROCESS_MAX_PER_PASS: Number(values.max) },
  );
  const summary = await runReprocess(deps, { dryRun: values['dry-run'] === true });
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  await deps.pubsub.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`reprocess failed: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
