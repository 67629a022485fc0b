/**
 * The benches' command lines, on Node's own `util.parseArgs`: `--help`/`-h` prints the usage and
 * exits 0; an unknown option or a bad value prints the message and the usage on stderr and exits 2,
 * before anything is measured (test/bench/cli-help.test.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type ParseArgsConfig, parseArgs } from 'node:util';

/**
 * Where the benches write their JSON results by default: bench/results/, which git (and so
 * Biome, which reads .gitignore) ignores, so that a bench run leaves `npm run lint` clean.
 */
export const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

/** The default path of a bench's results file. */
export function resultsPath(name: string): string {
  return join(RESULTS_DIR, name);
}

/** Writes a results file as JSON, creating its folder. */
export async function writeResults(path: string, data: unknown): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(data, null, 2)}\n`);
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** What parseArgs returns for `options`: booleans and strings, `undefined` only without a default. */
type Values<T extends Options> = {
  -readonly [K in keyof T]:
    | (T[K]['type'] extends 'boolean' ? boolean : string)
    | (T[K] extends { default: unknown } ? never : undefined);
};

/** The values of `args` for `options` (plus `--help`); exits as above when asked or refused. */
export function parseCommandLine<const T extends Options>(
  args: readonly string[],
  options: T,
  usage: string,
): Values<T> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: [...args], options: { ...options, help: { type: 'boolean', short: 'h' } } }).values;
  } catch (error) {
    return refuse(error instanceof Error ? error.message : String(error), usage);
  }
  if (values.help === true) {
    process.stdout.write(usage);
    process.exit(0);
  }
  return values as Values<T>;
}

/** Refuses a command line: the message and the usage on stderr, exit code 2. */
export function refuse(message: string, usage: string): never {
  process.stderr.write(`${message}\n\n${usage}`);
  process.exit(2);
}
