/**
 * The offline provider-schema checker behind test/terraform/schema.test.ts: every argument and
 * nested block of google_*, time_* and archive_* resources and data sources against the provider's
 * schema (test/terraform/provider-schema.ts).
 */
import { parseHclStructure, type HclBody } from './hcl-structure.js';
import { loadSchema, type SchemaBlock } from './provider-schema.js';

const META_ATTRIBUTES = new Set(['count', 'for_each', 'depends_on', 'provider']);
const META_BLOCKS = new Set(['lifecycle', 'provisioner', 'connection']);

function checkBody(body: HclBody, schema: SchemaBlock, where: string, top: boolean, errors: string[]): void {
  const written = new Set<string>();
  for (const [name, line] of body.attributes) {
    if (top && META_ATTRIBUTES.has(name)) continue;
    written.add(name);
    if (schema.blocks.has(name))
      errors.push(`${where}: "${name}" is a block, written as an attribute (line ${line}): write ${name} { … }`);
    else if (!schema.attributes.has(name)) errors.push(`${where}: unknown argument "${name}" (line ${line})`);
  }
  for (const block of body.blocks) {
    if (top && META_BLOCKS.has(block.type)) continue;
    let name = block.type;
    let content = block.body;
    if (block.type === 'dynamic') {
      name = block.labels[0] ?? '';
      const inner = block.body.blocks.find((b) => b.type === 'content');
      if (!inner) {
        errors.push(`${where}: dynamic "${name}" has no content block (line ${block.line})`);
        continue;
      }
      content = inner.body;
    }
    written.add(name);
    const nested = schema.blocks.get(name);
    if (nested) checkBody(content, nested.schema, `${where}.${name}`, false, errors);
    else if (schema.attributes.has(name))
      errors.push(`${where}: "${name}" is an attribute, written as a block (line ${block.line}): write ${name} = …`);
    else errors.push(`${where}: unknown block "${name}" (line ${block.line})`);
  }
  for (const [name, attr] of schema.attributes)
    if (attr.required && !written.has(name)) errors.push(`${where}: missing required argument "${name}"`);
  for (const [name, nested] of schema.blocks)
    if (nested.required && !written.has(name)) errors.push(`${where}: missing required block "${name}"`);
}

/** Schema errors of every resource and data source of a provider we check in an HCL text. */
export function schemaErrors(text: string, file = 'snippet.tf'): string[] {
  const errors: string[] = [];
  for (const block of parseHclStructure(text).blocks) {
    if (block.type !== 'resource' && block.type !== 'data') continue;
    const [type, name] = block.labels as [string, string];
    if (!/^(google|time|archive)_/.test(type)) continue;
    const where = `${file}: ${block.type === 'data' ? 'data.' : ''}${type}.${name}`;
    const schema = loadSchema(block.type, type);
    if (!schema) {
      errors.push(`${where}: the provider has no ${block.type === 'data' ? 'data source' : 'resource'} type ${type}`);
      continue;
    }
    checkBody(block.body, schema, where, true, errors);
  }
  return errors;
}
