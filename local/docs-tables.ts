/**
 * The docs' tables that mirror code, rendered from the code itself: the configuration variables
 * (ENV_SCHEMA), the error codes (ERROR_CODES) and the event types (EventMessageV1). Each sits in
 * its Markdown file between `<!-- generated:NAME … -->` and `<!-- /generated -->`;
 * `npm run docs` (local/generate-docs.ts) rewrites those blocks and test/unit/docs-generated.test.ts
 * fails when a file differs from what this module renders.
 */
import { describeConfig, ENV_SCHEMA } from '../shared/core/config.js';
import { ERROR_CODES, isRetryableCause, type ErrorCode } from '../shared/core/errors.js';
import { EventMessageV1 } from '../shared/core/schemas.js';

/** One generated block: the file it lives in, its marker name, and its rendering. */
export interface GeneratedBlock {
  readonly file: string;
  readonly name: string;
  readonly source: string;
  readonly render: () => string;
}

/**
 * The parts of a zod 4 schema's definition (`schema._zod.def`) the rules below read. Zod documents
 * `_zod.def` for tools that walk schemas; only these fields are used.
 */
interface SchemaNode {
  readonly _zod: { readonly def: SchemaDef };
  readonly minValue?: number | null;
  readonly maxValue?: number | null;
  readonly isInt?: boolean;
  readonly description?: string;
}
interface SchemaDef {
  readonly type: string;
  readonly innerType?: SchemaNode;
  readonly in?: SchemaNode;
  readonly out?: SchemaNode;
  readonly element?: SchemaNode;
  readonly options?: readonly SchemaNode[];
  readonly shape?: Readonly<Record<string, SchemaNode>>;
  readonly entries?: Readonly<Record<string, string | number>>;
  readonly values?: readonly unknown[];
  readonly format?: string;
  readonly checks?: ReadonlyArray<{ readonly _zod: { readonly def: CheckDef } }>;
  readonly error?: () => unknown;
}
interface CheckDef {
  readonly check: string;
  readonly format?: string;
  readonly minimum?: number;
  readonly error?: () => unknown;
}

const node = (schema: unknown): SchemaNode => schema as SchemaNode;
const code = (value: unknown): string => `\`${String(value)}\``;

/** The message a validation was given (`{ message }`), without its leading "must be". */
function messageOf(def: { readonly error?: () => unknown }): string | undefined {
  const message = def.error?.();
  return typeof message === 'string' ? message.replace(/^(each )?must be /, '') : undefined;
}

/** Enum values in a readable order: words first, then numbers (JS orders integer-like keys first). */
function enumValues(entries: Readonly<Record<string, string | number>>): string[] {
  const values = Object.values(entries).map(String);
  return [...values.filter((v) => !/^\d+$/.test(v)), ...values.filter((v) => /^\d+$/.test(v))];
}

function numberRule(schema: SchemaNode): string {
  const kind = schema.isInt ? 'a whole number' : 'a number';
  const { minValue: min, maxValue: max } = schema;
  const bounded = (v: number | null | undefined): v is number => typeof v === 'number' && Number.isFinite(v);
  if (bounded(min) && bounded(max)) return `${kind} from ${min} to ${max}`;
  if (bounded(min)) return `${kind}, at least ${min}`;
  if (bounded(max)) return `${kind}, at most ${max}`;
  return kind;
}

function stringRule(def: SchemaDef): string {
  if (def.format !== undefined && def.format !== 'regex') return messageOf(def) ?? `a ${def.format}`;
  const rules = (def.checks ?? []).map(({ _zod: { def: check } }) => {
    if (check.check === 'min_length' && check.minimum !== undefined) {
      return messageOf(check) ?? (check.minimum === 1 ? 'non-empty text' : `at least ${check.minimum} characters`);
    }
    if (check.check === 'string_format') return messageOf(check) ?? `a ${check.format ?? 'formatted'} string`;
    throw new Error(`docs-tables: no wording for the string check ${check.check}`);
  });
  return rules.length === 0 ? 'any text' : rules.join(', ');
}

/**
 * What a setting accepts, in words, read from its schema: enum values, number bounds, list items,
 * and the messages its validations were given. A schema kind without wording stops the generator,
 * so a new kind of setting cannot reach the table undescribed.
 */
export function allowedValues(schema: unknown): string {
  const n = node(schema);
  const def = n._zod.def;
  const refinements = (def.checks ?? [])
    .filter(({ _zod: { def: check } }) => check.check === 'custom')
    .map(({ _zod: { def: check } }) => check.error?.())
    .filter((m): m is string => typeof m === 'string');
  const withRefinements = (rule: string) => [rule, ...refinements].join('; ');
  switch (def.type) {
    case 'default':
    case 'optional':
      return withRefinements(allowedValues(def.innerType));
    case 'pipe': {
      const out = def.out?._zod.def;
      if (out?.type === 'transform') return withRefinements(allowedValues(def.in));
      if (out?.type === 'array') return withRefinements(`comma-separated, each ${allowedValues(out.element)}`);
      return withRefinements(allowedValues(def.out));
    }
    case 'enum':
      return withRefinements(
        `one of ${enumValues(def.entries ?? {})
          .map(code)
          .join(', ')}`,
      );
    case 'literal':
      return (def.values ?? []).map(code).join(', ');
    case 'union':
      return (def.options ?? []).map(allowedValues).join(' or ');
    case 'number':
      return withRefinements(numberRule(n));
    case 'string':
      return withRefinements(stringRule(def));
    default:
      throw new Error(`docs-tables: no wording for a ${def.type} schema; add it to allowedValues`);
  }
}

/** A table cell: pipes escaped, line breaks folded. */
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ');
}

function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

/** docs/configuration.md: every variable ENV_SCHEMA reads. */
export function configTable(): string {
  const shape = ENV_SCHEMA.shape as Record<string, unknown>;
  return table(
    ['Variable', 'Default', 'Allowed', 'Meaning'],
    describeConfig().map((v) => [
      code(v.name),
      v.required
        ? '**required**'
        : v.defaultValue === undefined
          ? 'unset'
          : v.defaultValue === ''
            ? 'empty'
            : code(v.defaultValue),
      allowedValues(shape[v.name]),
      v.description,
    ]),
  );
}

/** docs/api.md: every code of ERROR_CODES with its status and class. */
export function errorCodesTable(): string {
  return table(
    ['Code', 'HTTP', 'Class', 'Meaning', 'Raised by'],
    (Object.keys(ERROR_CODES) as ErrorCode[]).map((name) => {
      const { status, kind, meaning, raisedBy } = ERROR_CODES[name];
      const recordedAsRetryable = kind === 'permanent' && isRetryableCause(name);
      return [
        code(name),
        String(status),
        recordedAsRetryable ? `${kind} (recorded as retryable)` : kind,
        meaning,
        raisedBy,
      ];
    }),
  );
}

/** A message's fields as the docs write them: `imageId, manifest: {bucket, name}, retryable?`. */
function fieldsOf(shape: Readonly<Record<string, SchemaNode>>, skip: readonly string[]): string {
  return Object.entries(shape)
    .filter(([name]) => !skip.includes(name))
    .map(([name, field]) => {
      const def = field._zod.def;
      if (def.type === 'optional') return `${name}?`;
      if (def.type === 'object' && def.shape) return `${name}: {${fieldsOf(def.shape, [])}}`;
      return name;
    })
    .join(', ');
}

/** docs/api.md: every event type of EventMessageV1, its fields and when it is published. */
export function eventsTable(): string {
  return table(
    ['type', 'fields', 'when'],
    EventMessageV1.options.map((option) => {
      const shape = node(option)._zod.def.shape ?? {};
      const type = shape.type?._zod.def.values?.[0];
      if (option.description === undefined) throw new Error(`docs-tables: event ${String(type)} has no description`);
      return [code(type), code(fieldsOf(shape, ['v', 'type'])), option.description];
    }),
  );
}

export const GENERATED_BLOCKS: readonly GeneratedBlock[] = [
  { file: 'docs/configuration.md', name: 'config', source: 'ENV_SCHEMA in shared/core/config.ts', render: configTable },
  { file: 'docs/api.md', name: 'error-codes', source: 'ERROR_CODES in shared/core/errors.ts', render: errorCodesTable },
  { file: 'docs/api.md', name: 'events', source: 'EventMessageV1 in shared/core/schemas.ts', render: eventsTable },
];

const START = /^<!-- generated:([a-z-]+)\b.*-->$/;
const END = '<!-- /generated -->';

/**
 * `markdown` with each generated block of `blocks` rendered afresh between its markers. Throws
 * when a block is missing, unknown or not closed, naming the file and the block.
 */
export function regenerate(file: string, markdown: string, blocks: readonly GeneratedBlock[]): string {
  const wanted = new Map(blocks.filter((b) => b.file === file).map((b) => [b.name, b]));
  const seen = new Set<string>();
  const out: string[] = [];
  let open: string | undefined;
  for (const line of markdown.split('\n')) {
    if (open !== undefined) {
      if (line !== END) continue;
      out.push(line);
      open = undefined;
      continue;
    }
    const start = START.exec(line);
    if (line === END) throw new Error(`${file}: ${END} without a start marker`);
    if (!start?.[1]) {
      out.push(line);
      continue;
    }
    const block = wanted.get(start[1]);
    if (!block) throw new Error(`${file}: unknown generated block "${start[1]}"`);
    if (seen.has(block.name)) throw new Error(`${file}: generated block "${block.name}" appears twice`);
    seen.add(block.name);
    open = block.name;
    out.push(`<!-- generated:${block.name}: npm run docs writes this table from ${block.source}; edit it there -->`);
    // Blank lines around the table, so that no Markdown renderer reads a marker as part of it.
    out.push('', block.render(), '');
  }
  if (open !== undefined) throw new Error(`${file}: generated block "${open}" has no ${END}`);
  const missing = [...wanted.keys()].filter((name) => !seen.has(name));
  if (missing.length > 0) throw new Error(`${file}: no <!-- generated:${missing.join(' / ')} --> block`);
  return out.join('\n');
}
