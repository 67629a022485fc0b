/**
 * `npm run storage-server -- [options]`: runs the local Cloud Storage server until SIGINT or
 * SIGTERM and prints its URL. Options: `--help`, or the README's "Start it".
 */
import { parseArgs } from 'node:util';
import { startStorageServer, type StorageServerOptions } from './server.js';

const USAGE = `Usage: npm run storage-server -- [--port 4443] [--host 127.0.0.1] [--dir .local/storage]
       [--auto-create-buckets] [--bucket NAME]... [--notify BUCKET=URL]... [--quiet]`;

/** Parsed command line. */
interface CliOptions {
  server: StorageServerOptions;
  notify: Array<{ bucket: string; url: string }>;
  quiet: boolean;
}

/** Parses the command line; throws an Error whose message is fit to print. */
function parseCliArgs(argv: string[]): CliOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string', default: '4443' },
      host: { type: 'string', default: '127.0.0.1' },
      dir: { type: 'string' },
      'auto-create-buckets': { type: 'boolean', default: false },
      bucket: { type: 'string', multiple: true, default: [] },
      notify: { type: 'string', multiple: true, default: [] },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`--port must be 0-65535, got ${values.port}`);
  const notify = values.notify.map((entry) => {
    const at = entry.indexOf('=');
    if (at <= 0 || at === entry.length - 1) throw new Error(`--notify takes BUCKET=URL, got ${entry}`);
    return { bucket: entry.slice(0, at), url: entry.slice(at + 1) };
  });
  const server: StorageServerOptions = {
    port,
    host: values.host,
    autoCreateBuckets: values['auto-create-buckets'],
    buckets: values.bucket,
  };
  if (values.dir) server.dir = values.dir;
  return { server, notify, quiet: values.quiet };
}

async function main(): Promise<void> {
  let options: CliOptions | 'help';
  try {
    options = parseCliArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`);
    process.exit(2);
  }
  if (options === 'help') {
    console.log(USAGE);
    return;
  }
  const { quiet } = options;
  const server = await startStorageServer({
    ...options.server,
    // Request lines are noise with --quiet; warnings (unknown routes, errors) always show.
    log: (line) => {
      if (!quiet || line.startsWith('storage-server:')) console.log(line);
    },
  });
  for (const { bucket, url } of options.notify) server.addNotification(bucket, url);
  console.log(
    `Storage server listening on ${server.url} (${options.server.dir ? `persisting to ${options.server.dir}` : 'in memory'})`,
  );
  console.log(
    `  clients: new Storage({ apiEndpoint: '${server.url}', projectId: 'demo-project' })  or  STORAGE_API_ENDPOINT=${server.url}`,
  );
  console.log(
    `  gcloud:  CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE=${server.url}/ CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true`,
  );

  let stopping = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    console.log(`Received ${signal}; stopping`);
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
