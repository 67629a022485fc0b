/**
 * The docs' tables that mirror code are generated (local/docs-tables.ts, `npm run docs`): each
 * file must be exactly what the generator makes of it today, and the generator must say what the
 * code says (every variable with its default, every error code with its status and class, every
 * event type with its fields).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import {
  allowedValues,
  configTable,
  errorCodesTable,
  eventsTable,
  GENERATED_BLOCKS,
  regenerate,
  type GeneratedBlock,
} from '../../local/docs-tables.js';
import { describeConfig, ENV_SCHEMA } from '../../shared/core/config.js';
import { ERROR_CODES } from '../../shared/core/errors.js';
import { EventMessageV1 } from '../../shared/core/schemas.js';
import {
  FOCUS_METADATA_KEY,
  ORIGINAL_METADATA,
  REPROCESS_BUDGET_METADATA,
  STATE_SEQ_METADATA,
  VARIANT_METADATA,
} from '../../shared/core/naming.js';
import { topology } from '../../shared/core/topology.js';

const read = (file: string) => readFileSync(new URL(`../../../${file}`, import.meta.url), 'utf8');

/** The table's rows keyed by their first cell, each row's cells trimmed. */
function rowsOf(markdown: string): Map<string, string[]> {
  const rows = new Map<string, string[]>();
  for (const line of markdown.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line
      .slice(1, -1)
      .split(/(?<!\\)\|/)
      .map((c) => c.trim());
    rows.set(cells[0]!, cells);
  }
  return rows;
}

/** The first line where two texts differ, for a failure message that points at it. */
function firstDifference(actual: string, expected: string): string {
  const a = actual.split('\n');
  const e = expected.split('\n');
  const at = a.findIndex((line, i) => line !== e[i]);
  const line = at === -1 ? a.length : at;
  return `line ${line + 1}:\n  file:      ${a[line] ?? '(end of file)'}\n  generated: ${e[line] ?? '(end of file)'}`;
}

describe('generated doc tables', () => {
  for (const file of new Set(GENERATED_BLOCKS.map((b) => b.file))) {
    it(`${file} matches what npm run docs generates from the code`, () => {
      const current = read(file);
      const fresh = regenerate(file, current, GENERATED_BLOCKS);
      expect(
        current === fresh,
        `${file} is out of date: run \`npm run docs\` and commit the result. First difference at ${firstDifference(current, fresh)}`,
      ).to.equal(true);
    });
  }

  describe('configuration table', () => {
    const rows = rowsOf(configTable());

    it('has one row per variable of ENV_SCHEMA, in its order, and no other', () => {
      expect([...rows.keys()]).to.deep.equal(Object.keys(ENV_SCHEMA.shape).map((name) => `\`${name}\``));
    });

    for (const variable of describeConfig()) {
      it(`gives ${variable.name} the schema's default and description`, () => {
        const [, defaultCell, allowed, meaning] = rows.get(`\`${variable.name}\``) ?? [];
        const expected = variable.required
          ? '**required**'
          : variable.defaultValue === undefined
            ? 'unset'
            : variable.defaultValue === ''
              ? 'empty'
              : `\`${variable.defaultValue}\``;
        expect(defaultCell, `${variable.name} default`).to.equal(expected);
        expect(allowed, `${variable.name} allowed values`).to.be.a('string').and.not.equal('');
        expect(meaning, `${variable.name} description`).to.equal(variable.description.replace(/\|/g, '\\|'));
        expect(meaning, `${variable.name} has no .describe() in ENV_SCHEMA`).to.not.equal('');
      });
    }
  });

  describe('allowed values, read from the validations', () => {
    const cases: Array<[string, z.ZodType, string]> = [
      ['a bounded whole number', z.coerce.number().int().min(1).max(100).default(80), 'a whole number from 1 to 100'],
      ['a bounded decimal', z.coerce.number().min(0.5).max(0.999), 'a number from 0.5 to 0.999'],
      ['an enum, words before numbers', z.enum(['1', '0', 'true', 'false']), 'one of `true`, `false`, `0`, `1`'],
      [
        'a regex with its message',
        z.string().regex(/^x+$/, { message: 'must be a row of x' }).optional(),
        'a row of x',
      ],
      [
        'a list of a union, with a refinement',
        z
          .string()
          .transform((s) => s.split(','))
          .pipe(z.array(z.union([z.literal('*'), z.url({ message: 'each must be an origin' })])))
          .refine((xs) => xs.length > 0, { message: 'must list one' }),
        'comma-separated, each `*` or an origin; must list one',
      ],
      ['a transformed enum', z.enum(['8', '10']).default('10').transform(Number), 'one of `8`, `10`'],
      ['a length', z.string().min(16, { message: 'must be at least 16 characters' }), 'at least 16 characters'],
    ];
    for (const [what, schema, expected] of cases) {
      it(`words ${what}`, () => expect(allowedValues(schema)).to.equal(expected));
    }

    it('refuses a kind of schema it has no wording for, instead of leaving the cell empty', () => {
      expect(() => allowedValues(z.boolean())).to.throw(/no wording for a boolean schema/);
    });
  });

  describe('error codes table', () => {
    const rows = rowsOf(errorCodesTable());

    it('has one row per code of ERROR_CODES with its status and class', () => {
      const expected = Object.entries(ERROR_CODES).map(([code, { status, kind }]) => [
        `\`${code}\``,
        String(status),
        kind,
      ]);
      const actual = [...rows.values()].map(([code, status, kind]) => [code, status, kind?.replace(/ \(.*\)$/, '')]);
      expect(actual).to.deep.equal(expected);
    });

    it('marks the one permanent code that is recorded as retryable', () => {
      const marked = [...rows.values()].filter(([, , kind]) => kind?.includes('recorded as retryable'));
      expect(marked.map(([code]) => code)).to.deep.equal(['`time_budget_exceeded`']);
    });

    it('classes internal as permanent: it answers errors classifyError calls permanent', () => {
      expect(rows.get('`internal`')?.slice(1, 3)).to.deep.equal(['500', 'permanent']);
    });
  });

  describe('events table', () => {
    it('has one row per event type, with its fields, optional ones marked', () => {
      const rows = rowsOf(eventsTable());
      expect([...rows.keys()]).to.deep.equal(EventMessageV1.options.map((o) => `\`${o.shape.type.value}\``));
      expect(rows.get('`image.failed`')?.[1]).to.equal('`imageId, code, message, retryable?, at`');
      expect(rows.get('`image.ready`')?.[1]).to.equal('`imageId, manifest: {bucket, name}, variants, at`');
    });
  });

  describe('npm run docs (local/generate-docs.ts)', () => {
    const run = (...args: string[]) =>
      spawnSync(process.execPath, [fileURLToPath(new URL('../../local/generate-docs.js', import.meta.url)), ...args], {
        encoding: 'utf8',
      });

    it('--check finds every file up to date and writes nothing', () => {
      const { status, stdout, stderr } = run('--check');
      expect(status, stdout + stderr).to.equal(0);
      expect(stdout).to.include('docs/configuration.md: up to date').and.include('docs/api.md: up to date');
    });

    it('answers --help, and refuses an unknown option with exit status 2', () => {
      expect(run('--help').stdout).to.match(/^Usage: npm run docs/);
      const unknown = run('--frobnicate');
      expect(unknown.status, unknown.stderr).to.equal(2);
      expect(unknown.stderr).to.match(/^docs: .*frobnicate/);
    });
  });

  describe('regenerate', () => {
    const block: GeneratedBlock = { file: 'x.md', name: 'demo', source: 'the test', render: () => '| a |\n| --- |' };
    const fresh =
      '# X\n\n<!-- generated:demo: npm run docs writes this table from the test; edit it there -->\n\n| a |\n| --- |\n\n<!-- /generated -->\nafter\n';

    it('replaces what is between the markers and nothing else, and is stable', () => {
      const stale = '# X\n\n<!-- generated:demo -->\n| old |\n<!-- /generated -->\nafter\n';
      expect(regenerate('x.md', stale, [block])).to.equal(fresh);
      expect(regenerate('x.md', fresh, [block])).to.equal(fresh);
    });

    it('names the file and block when markers are missing, unknown or unclosed', () => {
      expect(() => regenerate('x.md', '# X\n', [block])).to.throw(/x\.md: no <!-- generated:demo/);
      expect(() => regenerate('x.md', '<!-- generated:other -->\n<!-- /generated -->\n', [block])).to.throw(
        /x\.md: unknown generated block "other"/,
      );
      expect(() => regenerate('x.md', '<!-- generated:demo -->\n| a |\n', [block])).to.throw(/"demo" has no/);
      expect(() => regenerate('x.md', '<!-- /generated -->\n', [block])).to.throw(/without a start marker/);
    });
  });
});

describe('what the docs quote from the code', () => {
  it("docs/api.md's delivery attempts are topology.json's maxDeliveryAttempts", () => {
    const row = read('docs/api.md')
      .split('\n')
      .find((line) => line.startsWith('| Delivery attempts |'));
    expect(row, 'docs/api.md has a "Delivery attempts" row in its limits table').to.be.a('string');
    const { maxDeliveryAttempts, minimumBackoffSeconds, maximumBackoffSeconds } = topology.subscriptions.jobsPush;
    expect(row!.split('|')[2]!.trim(), 'the attempts in docs/api.md').to.equal(String(maxDeliveryAttempts));
    expect(row, 'the backoff in docs/api.md').to.include(`backoff ${minimumBackoffSeconds}–${maximumBackoffSeconds} s`);
  });

  it("docs/api.md says authentication is on by default, as UPLOAD_AUTH's default is token", () => {
    expect(ENV_SCHEMA.shape.UPLOAD_AUTH.parse(undefined), 'UPLOAD_AUTH default').to.equal('token');
    expect(read('docs/api.md')).to.include('Authentication is on by default (`UPLOAD_AUTH=token`');
  });

  it("CONTRIBUTING.md's test tiers are package.json's test:* scripts and the folders each runs", () => {
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    const fromScripts = Object.entries(scripts)
      .filter(([name]) => name.startsWith('test:'))
      .map(([name, command]) => [
        `npm run ${name}`,
        [...command.matchAll(/dist\/test\/(\w+)\//g)].map((m) => `test/${m[1]}/`),
      ]);
    const documented = read('CONTRIBUTING.md')
      .split('\n')
      .filter((line) => line.startsWith('| `npm run test:'))
      .map((line) => {
        const [script, folders] = line.split('|').slice(1, 3);
        return [script!.trim().replace(/`/g, ''), [...folders!.matchAll(/`([^`]+)`/g)].map((m) => m[1])];
      });
    expect(documented, 'CONTRIBUTING.md "Test tiers" table vs package.json').to.deep.equal(fromScripts);
  });

  it("architecture.md's data layout names every prefix, collection and metadata key of the code", () => {
    const markdown = read('docs/architecture.md');
    const start = markdown.indexOf('## Data layout');
    const layout = markdown.slice(start, markdown.indexOf('\n## ', start + 1));
    const expected = [
      ...Object.values(topology.prefixes).map((prefix) => `uploads bucket \`${prefix}`),
      ...Object.values(topology.firestore.collections).map((collection) => `Firestore \`${collection}/`),
      ...[...Object.values(ORIGINAL_METADATA), ...Object.values(VARIANT_METADATA)].map((key) => `\`${key}\``),
      ...[STATE_SEQ_METADATA, FOCUS_METADATA_KEY].map((key) => `\`${key}\``),
      ...Object.values(REPROCESS_BUDGET_METADATA).map((key) => `\`${key}\``),
    ];
    expect(
      expected.filter((entry) => !layout.includes(entry)),
      'in shared/core/naming.ts or topology.json but not in the data layout',
    ).to.deep.equal([]);
  });
});
