/**
 * Helpers for the structural Terraform tests: the root module parsed with @cdktf/hcl2json into one
 * merged JSON document, and a few readers for the expressions the tests need to follow.
 *
 * hcl2json renders a literal as JSON and any other expression as a "${...}" string; blocks are
 * arrays (a resource `google_x.y` is `resource.google_x.y[0]`, a nested block `service_config`
 * is `service_config[0]`). The tests keep to that shape rather than evaluating HCL.
 */
import { topology } from '../../shared/core/topology.js';
import { parse } from '@cdktf/hcl2json';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file runs as dist/test/terraform/hcl.js). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
/** The Terraform root module. */
export const TERRAFORM_DIR = join(REPO_ROOT, 'terraform');

/** A parsed block body. */
export type Body = Record<string, unknown>;

/** The merged configuration of a module directory. */
export interface Module {
  /** `resource[type][name]` = the resource's body. */
  readonly resources: Record<string, Record<string, Body>>;
  /** `data[type][name]` = the data source's body. */
  readonly data: Record<string, Record<string, Body>>;
  /** All `locals` blocks merged. */
  readonly locals: Body;
  /** `variables[name]` = the variable's body. */
  readonly variables: Record<string, Body>;
  /** `outputs[name]` = the output's body. */
  readonly outputs: Record<string, Body>;
  /** Other top-level blocks (terraform, provider, check), as hcl2json gives them, per file. */
  readonly other: Record<string, unknown[]>;
  /** Raw text of every .tf file, by file name. */
  readonly sources: Record<string, string>;
}

function first(value: unknown): Body {
  return (Array.isArray(value) ? value[0] : value) as Body;
}

/** Parses and merges every `*.tf` file of `dir` (not recursive). */
export async function loadModule(dir: string = TERRAFORM_DIR): Promise<Module> {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.tf'))
    .sort();
  const mod: Module = { resources: {}, data: {}, locals: {}, variables: {}, outputs: {}, other: {}, sources: {} };
  for (const file of files) {
    const text = readFileSync(join(dir, file), 'utf8');
    mod.sources[file] = text;
    const json = (await parse(file, text)) as Record<string, unknown>;
    for (const [kind, value] of Object.entries(json)) {
      if (kind === 'resource' || kind === 'data') {
        const target = kind === 'resource' ? mod.resources : mod.data;
        for (const [type, byName] of Object.entries(value as Record<string, Record<string, unknown>>)) {
          target[type] ??= {};
          for (const [name, body] of Object.entries(byName)) {
            if (target[type][name])
              throw new Error(`${kind} ${type}.${name} is declared twice (second time in ${file})`);
            target[type][name] = first(body);
          }
        }
      } else if (kind === 'locals') {
        for (const block of value as Body[]) {
          for (const [name, body] of Object.entries(block)) {
            if (name in mod.locals) throw new Error(`local.${name} is declared twice (second time in ${file})`);
            mod.locals[name] = body;
          }
        }
      } else if (kind === 'variable' || kind === 'output') {
        const target = kind === 'variable' ? mod.variables : mod.outputs;
        for (const [name, body] of Object.entries(value as Record<string, unknown>)) target[name] = first(body);
      } else {
        const others = mod.other[kind] ?? [];
        mod.other[kind] = others;
        others.push(value);
      }
    }
  }
  return mod;
}

/** Nested block `name` of a body (hcl2json: an array of one body), or undefined. */
export function block(body: Body | undefined, name: string): Body | undefined {
  const value = body?.[name];
  return value === undefined ? undefined : first(value);
}

/** All nested blocks `name` of a body. */
export function blocks(body: Body | undefined, name: string): Body[] {
  const value = body?.[name];
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]) as Body[];
}

/** A `dynamic "name"` block's `for_each` and `content`, or undefined. */
export function dynamicBlock(body: Body | undefined, name: string): { forEach: string; content: Body } | undefined {
  const dynamic = block(body, 'dynamic');
  const entry = dynamic && block(dynamic, name);
  if (!entry) return undefined;
  return { forEach: String(entry.for_each), content: block(entry, 'content')! };
}

/** Every resource as `[type, name, body]`. */
export function allResources(mod: Module): Array<[string, string, Body]> {
  return Object.entries(mod.resources).flatMap(([type, byName]) =>
    Object.entries(byName).map(([name, body]) => [type, name, body] as [string, string, Body]),
  );
}

/** The expression inside "${...}", or undefined for a literal. */
export function expr(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^\$\{([\s\S]*)\}$/.exec(value);
  return match ? match[1] : undefined;
}

/** Names of the locals an expression reads (`local.x` → `x`). */
export function localRefs(expression: string): string[] {
  return [...new Set([...expression.matchAll(/\blocal\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]!))];
}

/** Follows a value that is exactly `${local.a.b.c}` through literal locals; returns the value reached. */
export function resolveLocalPath(mod: Module, value: unknown): unknown {
  const expression = expr(value);
  if (expression === undefined) return value;
  const match = /^local\.([A-Za-z0-9_.]+)$/.exec(expression.trim());
  if (!match) return value;
  let current: unknown = mod.locals;
  for (const part of match[1]!.split('.')) {
    if (current === null || typeof current !== 'object' || !(part in (current as Body))) return value;
    current = (current as Body)[part];
  }
  return current;
}

/**
 * The environment variable names an `environment_variables` value can produce: it must read, via
 * `local.function_env.<fn>`, literal maps of locals named `env_*` (plus var.extra_env, which is
 * free-form and documented). Returns the keys of those maps and the locals read.
 */
export function envKeys(mod: Module, value: unknown): { keys: Set<string>; maps: string[]; expression: string } {
  const resolved = resolveLocalPath(mod, value);
  const expression = expr(resolved) ?? '';
  const maps = localRefs(expression).filter((name) => name.startsWith('env_'));
  const keys = new Set<string>();
  for (const name of maps) {
    const map = mod.locals[name];
    if (map === null || typeof map !== 'object' || Array.isArray(map))
      throw new Error(`local.${name} must be a literal map of environment variables`);
    for (const key of Object.keys(map as Body)) keys.add(key);
  }
  return { keys, maps, expression };
}

/**
 * The path in shared/core/topology.json a value reads, when it is exactly such a read:
 * `${local.topology.a.b}` → ['a', 'b'], also through one alias local
 * (`local.jobs_push = local.topology.subscriptions.jobsPush`, so `${local.jobs_push.name}` →
 * ['subscriptions', 'jobsPush', 'name']).
 */
export function topologyPath(mod: Module, value: unknown): string[] | undefined {
  const expression = expr(value)?.trim();
  const match = expression && /^local\.([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+)*)$/.exec(expression);
  if (!match) return undefined;
  const rest = match[2] ? match[2].slice(1).split('.') : [];
  if (match[1] === 'topology') return rest;
  const alias = expr(mod.locals[match[1]!])?.trim();
  const aliasMatch = alias && /^local\.topology((?:\.[A-Za-z0-9_]+)*)$/.exec(alias);
  if (!aliasMatch) return undefined;
  return [...(aliasMatch[1] ? aliasMatch[1].slice(1).split('.') : []), ...rest];
}

/** Reads a path in a JSON object. */
export function at(object: unknown, path: readonly string[]): unknown {
  let current = object;
  for (const part of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<string, unknown>)[part];
  }
  return current;
}

/** Defaults of an object variable's `optional(type, default)` attributes, read from its type text. */
export function optionalDefaults(typeText: string): Record<string, string | number | null> {
  const out: Record<string, string | number | null> = {};
  for (const m of typeText.matchAll(/(\w+)\s*=\s*optional\(\s*\w+\s*(?:,\s*("[^"]*"|[-0-9.]+))?\s*\)/g)) {
    const raw = m[2];
    out[m[1]!] = raw === undefined ? null : raw.startsWith('"') ? raw.slice(1, -1) : Number(raw);
  }
  return out;
}

/**
 * settings.tf's per-function defaults as Terraform computes them: sizes from `function_sizes`,
 * instances and concurrency from shared/core/topology.json (which the local stack's admission reads).
 */
export function functionDefaults(mod: Module): Record<string, Record<string, string | number | null>> {
  const sizes = mod.locals.function_sizes as Record<string, Record<string, string | number | null>>;
  return Object.fromEntries(
    Object.entries(sizes).map(([key, size]) => {
      const spec = topology.functions[key as keyof typeof topology.functions];
      return [key, { ...size, min_instances: 0, max_instances: spec.maxInstances, concurrency: spec.concurrency }];
    }),
  );
}
