/**
 * `npm run docs`: rewrites the docs' generated tables (configuration variables, error codes, event
 * types) from the code (local/docs-tables.ts). Run it after changing ENV_SCHEMA, ERROR_CODES or
 * the event schemas; test/unit/docs-generated.test.ts fails until the files match.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { GENERATED_BLOCKS, regenerate } from './docs-tables.js';

const USAGE = `Usage: npm run docs [-- --check]

Rewrites the tables between <!-- generated:NAME --> and <!-- /generated --> in
${[...new Set(GENERATED_BLOCKS.map((b) => b.file))].join(', ')} from the code.

  --check   write nothing; exit 1 when a file is out of date
  --help    this text
`;

function main(): number {
  const { values } = parseArgs({ options: { check: { type: 'boolean' }, help: { type: 'boolean' } } });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const root = fileURLToPath(new URL('../../', import.meta.url));
  let stale = 0;
  for (const file of new Set(GENERATED_BLOCKS.map((b) => b.file))) {
    const path = `${root}${file}`;
    const current = readFileSync(path, 'utf8');
    const fresh = regenerate(file, current, GENERATED_BLOCKS);
    if (fresh === current) {
      process.stdout.write(`${file}: up to date\n`);
      continue;
    }
    stale += 1;
    if (values.check) process.stdout.write(`${file}: out of date (npm run docs rewrites it)\n`);
    else {
      writeFileSync(path, fresh);
      process.stdout.write(`${file}: rewritten\n`);
    }
  }
  return values.check && stale > 0 ? 1 : 0;
}

try {
  process.exitCode = main();
} catch (error) {
  process.stderr.write(`docs: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 2;
}
