/**
 * The Requirements, Inputs and Outputs tables of terraform/README.md, in terraform-docs' markdown
 * table format, generated from versions.tf, variables.tf and outputs.tf. They sit between
 * terraform-docs' own markers (BEGIN_TF_DOCS / END_TF_DOCS), so `terraform-docs markdown table
 * --output-file README.md .` can take over. test/terraform/docs.test.ts compares them;
 * `node dist/test/terraform/docs.js --write` (after `npm run build`) rewrites them.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { block, expr, loadModule, TERRAFORM_DIR, type Body, type Module } from './hcl.js';

export const README = join(TERRAFORM_DIR, 'README.md');
export const BEGIN = '<!-- BEGIN_TF_DOCS -->';
export const END = '<!-- END_TF_DOCS -->';

const escapeName = (name: string): string => name.replace(/_/g, '\\_');
/** A table cell: pipes escaped, line breaks as <br> (terraform-docs does the same). */
const cell = (text: string): string => text.trim().replace(/\|/g, '\\|').replace(/\r?\n/g, '<br>');

/** A value as HCL (terraform-docs writes defaults in HCL syntax). */
function hcl(value: unknown, indent = ''): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return expr(value) ?? JSON.stringify(value);
  if (typeof value !== 'object') return JSON.stringify(value);
  const inner = `${indent}  `;
  if (Array.isArray(value))
    return value.length ? `[\n${value.map((v) => `${inner}${hcl(v, inner)}`).join(',\n')}\n${indent}]` : '[]';
  const entries = Object.entries(value as Body);
  if (!entries.length) return '{}';
  const width = Math.max(...entries.map(([k]) => k.length));
  return `{\n${entries.map(([k, v]) => `${inner}${k.padEnd(width)} = ${hcl(v, inner)}`).join('\n')}\n${indent}}`;
}

/** Inline code for one line, a <pre> block (lines joined by <br>) for several. */
function code(text: string): string {
  return text.includes('\n') ? `<pre>${cell(text)}</pre>` : `\`${text}\``;
}

export function requirementsTable(mod: Module): string {
  const terraform = (mod.other.terraform ?? []).flat() as Body[];
  const version = terraform.map((t) => t.required_version).find(Boolean) as string;
  const providers = (terraform.map((t) => block(t, 'required_providers')).find(Boolean) ?? {}) as Record<
    string,
    { version: string }
  >;
  const rows = [
    `| <a name="requirement_terraform"></a> [terraform](#requirement\\_terraform) | ${version} |`,
    ...Object.keys(providers)
      .sort()
      .map(
        (name) =>
          `| <a name="requirement_${name}"></a> [${escapeName(name)}](#requirement\\_${escapeName(name)}) | ${providers[name]!.version} |`,
      ),
  ];
  return ['## Requirements', '', '| Name | Version |', '|------|---------|', ...rows].join('\n');
}

export function inputsTable(mod: Module): string {
  const names = Object.keys(mod.variables).sort((a, b) => {
    const ra = 'default' in mod.variables[a]! ? 1 : 0;
    const rb = 'default' in mod.variables[b]! ? 1 : 0;
    return ra - rb || a.localeCompare(b);
  });
  const rows = names.map((name) => {
    const v = mod.variables[name]!;
    const type = expr(v.type) ?? String(v.type);
    const required = !('default' in v);
    const defaultCell = required ? 'n/a' : code(hcl(v.default));
    return `| <a name="input_${name}"></a> [${escapeName(name)}](#input\\_${escapeName(name)}) | ${cell(String(v.description ?? ''))} | ${code(type)} | ${defaultCell} | ${required ? 'yes' : 'no'} |`;
  });
  return [
    '## Inputs',
    '',
    '| Name | Description | Type | Default | Required |',
    '|------|-------------|------|---------|:--------:|',
    ...rows,
  ].join('\n');
}

export function outputsTable(mod: Module): string {
  const rows = Object.keys(mod.outputs)
    .sort()
    .map(
      (name) =>
        `| <a name="output_${name}"></a> [${escapeName(name)}](#output\\_${escapeName(name)}) | ${cell(String(mod.outputs[name]!.description ?? ''))} |`,
    );
  return ['## Outputs', '', '| Name | Description |', '|------|-------------|', ...rows].join('\n');
}

/** Everything between the markers, as terraform-docs would write it. */
export async function generatedDocs(): Promise<string> {
  const mod = await loadModule(TERRAFORM_DIR);
  return `${BEGIN}\n${requirementsTable(mod)}\n\n${inputsTable(mod)}\n\n${outputsTable(mod)}\n${END}`;
}

/** The part of terraform/README.md between the markers (markers included), or undefined. */
export function documentedDocs(readme: string): string | undefined {
  const start = readme.indexOf(BEGIN);
  const end = readme.indexOf(END);
  return start < 0 || end < start ? undefined : readme.slice(start, end + END.length);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1] && process.argv.includes('--write')) {
  const readme = readFileSync(README, 'utf8');
  const current = documentedDocs(readme);
  if (!current) throw new Error(`${README} has no ${BEGIN} … ${END} section`);
  writeFileSync(README, readme.replace(current, await generatedDocs()));
  process.stdout.write(`wrote the tables of ${README}\n`);
}
