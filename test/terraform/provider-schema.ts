/**
 * Provider schemas, read offline from the CDKTF provider packages (devDependencies):
 * @cdktf/provider-google 16.12.1 is generated from hashicorp/google 6.50.0, @cdktf/provider-time
 * and @cdktf/provider-archive from those providers. Each resource's `index.js` lists, for the
 * resource and every nested block, its arguments and whether each is a block
 * (`synthesizeHclAttributes()` and the `…ToHclTerraform(struct)` functions); `index.d.ts` says which
 * are required (config interface properties without `?`). Only arguments one may set are there:
 * computed-only attributes are not, so writing one is an unknown argument, as in `terraform validate`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './hcl.js';

export interface SchemaBlock {
  readonly attributes: Map<string, { required: boolean }>;
  readonly blocks: Map<string, { required: boolean; schema: SchemaBlock }>;
}

export const PROVIDER_PACKAGES: Record<string, string> = {
  google: '@cdktf/provider-google',
  time: '@cdktf/provider-time',
  archive: '@cdktf/provider-archive',
};

/** The package directory of a resource (`kind` resource) or data source type. */
export function schemaDirectory(kind: 'resource' | 'data', type: string): string {
  const provider = type.split('_')[0]!;
  const pkg = PROVIDER_PACKAGES[provider];
  if (!pkg) throw new Error(`no schema package for provider "${provider}" (${type})`);
  const name = kind === 'data' ? `data-${type}` : type.slice(provider.length + 1);
  return join(REPO_ROOT, 'node_modules', pkg, 'lib', name.replace(/_/g, '-'));
}

/** The text of a `{ … }` starting at `open` (the index of `{`). */
function braced(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '{') depth++;
    else if (text[i] === '}' && --depth === 0) return text.slice(open, i + 1);
  }
  throw new Error('unbalanced braces in generated code');
}

function attrsObject(js: string, from: number): string {
  const at = js.indexOf('const attrs = {', from);
  if (at < 0) throw new Error('no attrs in generated code');
  return braced(js, at + 'const attrs = '.length);
}

/** `snake_name` → required, for a d.ts interface. */
function requiredness(dts: string, interfaceName: string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  const start = new RegExp(`export interface ${interfaceName}\\b[^{]*\\{`).exec(dts);
  if (!start) return out;
  const body = braced(dts, start.index + start[0].length - 1);
  let last = 0;
  for (const m of body.matchAll(/readonly (\w+)(\?)?:/g)) {
    const doc = body.slice(last, m.index);
    last = m.index! + m[0].length;
    const anchors = [...doc.matchAll(/#(\w+) \w+#\w+\}/g)];
    const snake = anchors.length
      ? anchors[anchors.length - 1]![1]!
      : m[1]!.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    out.set(snake, m[2] !== '?');
  }
  return out;
}

const cache = new Map<string, SchemaBlock>();

/** The schema of a resource or data source type, or undefined when the provider has no such type. */
export function loadSchema(kind: 'resource' | 'data', type: string): SchemaBlock | undefined {
  const key = `${kind}.${type}`;
  if (cache.has(key)) return cache.get(key);
  const dir = schemaDirectory(kind, type);
  if (!existsSync(join(dir, 'index.js'))) {
    const pkgDir = join(dir, '..', '..');
    if (!existsSync(pkgDir))
      throw new Error(`${pkgDir} is missing: run npm ci (the schema packages are devDependencies)`);
    return undefined;
  }
  const js = readFileSync(join(dir, 'index.js'), 'utf8');
  const dts = readFileSync(join(dir, 'index.d.ts'), 'utf8');

  const build = (attrs: string, interfaceName: string): SchemaBlock => {
    const required = requiredness(dts, interfaceName);
    const schema: SchemaBlock = { attributes: new Map(), blocks: new Map() };
    for (const m of attrs.matchAll(/(\w+): \{\s*value: ([\s\S]*?),\s*isBlock: (true|false),/g)) {
      const [, name, value, isBlock] = m as unknown as [string, string, string, string];
      const isRequired = required.get(name) ?? false;
      if (isBlock === 'true') {
        const fn = /(?<![.\w])([a-z]\w*)ToHclTerraform\b/.exec(value)?.[1];
        if (!fn) throw new Error(`${type}: no nested function for block ${name}`);
        const at = js.indexOf(`function ${fn}ToHclTerraform(struct) {`);
        if (at < 0) throw new Error(`${type}: ${fn}ToHclTerraform not found`);
        schema.blocks.set(name, {
          required: isRequired,
          schema: build(attrsObject(js, at), fn[0]!.toUpperCase() + fn.slice(1)),
        });
      } else {
        schema.attributes.set(name, { required: isRequired });
      }
    }
    return schema;
  };

  const top = js.indexOf('synthesizeHclAttributes() {');
  if (top < 0) throw new Error(`${type}: no synthesizeHclAttributes in ${dir}`);
  const configName = /export interface (\w+Config) extends cdktf\.TerraformMetaArguments/.exec(dts)?.[1];
  if (!configName) throw new Error(`${type}: no config interface in ${dir}`);
  const schema = build(attrsObject(js, top), configName);
  cache.set(key, schema);
  return schema;
}
