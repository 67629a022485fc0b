/**
 * `npm run reprocess -- [--dry-run] [--max N]`: one pass of the reprocess backfill, against the
 * running local stack when given no settings, or against a deployment named by the environment
 * ({@link USAGE}; docs/operations.md). Prints the summary as JSON.
 */
import { parseCommandLine, refuse } from '../bench/cli.js';
import { loadConfig } from '../shared/core/config.js';
import { createDeps } from '../shared/cloud/deps.js';
import { runReprocess } from '../shared/pipeline/reprocess.js';
import { operatorEnv } from './stack-state.js';

export const USAGE = `usage: npm run reprocess -- [options]

One pass of the reprocess backfill: finds ready images made with another recipe than the
configured one (WIDTHS, FORMATS, the qualities...) and dispatches their update jobs, at most
REPROCESS_MAX_PER_PASS of them and within REPROCESS_CPU_SECONDS_PER_DAY. Prints the pass's
summary as JSON. Run --dry-run first: it prices the whole backlog and writes nothing.

  --dry-run   count and price what a pass would dispatch; dispatch and write nothing
  --max N     dispatch at most N images in this pass (instead of REPROCESS_MAX_PER_PASS)
  -h, --help  print this and exit

Against the local stack: run it with no settings while \`npm start\` runs in another terminal
(npm start records where it is in .local/stack.json, or in LOCAL_DATA_DIR).

Against a deployment: set UPLOADS_BUCKET and IMAGES_BUCKET (terraform output uploads_bucket,
images_bucket), GOOGLE_CLOUD_PROJECT, FIRESTORE_DATABASE (terraform output firestore_database)
and the recipe variables with their deployed values (WIDTHS and FORMATS from terraform's widths
and formats, and any recipe variable in its extra_env), since each image's recipe is compared
with this one. Credentials are
Application Default Credentials (\`gcloud auth application-default login\`): an account that may
read and write Firestore (roles/datastore.user) and publish to the jobs topic
(roles/pubsub.publisher). More: docs/operations.md.
`;

async function main(): Promise<void> {
  const values = parseCommandLine(
    process.argv.slice(2),
    { 'dry-run': { type: 'boolean', default: false }, max: { type: 'string' } },
    USAGE,
  );
  const max = values.max === undefined ? undefined : Number(values.max);
  if (max !== undefined && !(Number.isInteger(max) && max >= 0))
    refuse(`--max must be a whole number, got ${JSON.stringify(values.max)}`, USAGE);
  // The Pub/Sub and Firestore clients read their emulator hosts from process.env.
  Object.assign(process.env, operatorEnv('npm run reprocess'));
  const config = loadConfig();
  const deps = createDeps(max === undefined ? config : { ...config, REPROCESS_MAX_PER_PASS: max });
  const summary = await runReprocess(deps, { dryRun: values['dry-run'] });
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  await Promise.all([deps.pubsub.close(), deps.firestore.terminate()]);
}

main().catch((error: unknown) => {
  process.stderr.write(`npm run reprocess: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
