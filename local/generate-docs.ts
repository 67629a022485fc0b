/**
 * `npm run docs`: rewrites the docs' generated tables (configuration variables, error codes, event
 * types) from the code (local/docs-tables.ts), and the API's contract files (docs/openapi.json,
 * docs/schemas/; local/contract-files.ts). Run it after changing ENV_SCHEMA, ERROR_CODES, the
 * event, manifest or answer schemas; test/unit/docs-generated.test.ts and contract.test.ts fail
 * until the files match.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { contractFiles } from './contract-files.js';
import { GENERATED_BLOCKS, regenerate } from './docs-tables.js';

const USAGE = `Usage: npm run docs [-- --check]

Rewrites the tables between <!-- generated:NAME --> and <!-- /generated --> in
${[...new Set(GENERATED_BLOCKS.map((b) => b.file))].join(', ')} from the code,
and writes the contract: docs/openapi.json and the JSON Schemas under docs/schemas/.

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
  const tables = [...new Set(GENERATED_BLOCKS.map((b) => b.file))].map((file) => {
    const current = readFileSync(`${root}${file}`, 'utf8');
    return { file, current, fresh: regenerate(file, current, GENERATED_BLOCKS) };
  });
  const contract = contractFiles().map(({ file, text }) => {
    const path = `${root}${file}`;
    return { file, current: existsSync(path) ? readFileSync(path, 'utf8') : undefined, fresh: text };
  });
  let stale = 0;
  for (const { file, current, fresh } of [...tables, ...contract]) {
    const path = `${root}${file}`;
    if (fresh === current) {
      process.stdout.write(`${file}: up to date\n`);
      continue;
    }
    stale += 1;
    if (values.check) process.stdout.write(`${file}: out of date (npm run docs rewrites it)\n`);
    else {
      mkdirSync(dirname(path), { recursive: true });
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
