/**
 * A small Cloud Logging filter evaluator, the subset terraform/monitoring.tf uses: filters of
 * `a=b AND c=("x" OR "y")` terms and `EXTRACT(jsonPayload.x)` extractors on a log entry.
 * Used by test/terraform/monitoring.test.ts.
 */

/** A log entry as Cloud Logging stores a function's structured line. */
export interface Entry {
  resource: { type: string; labels: Record<string, string> };
  jsonPayload: Record<string, unknown>;
}

function valueAt(entry: Entry, path: string): unknown {
  let value: unknown = entry;
  for (const part of path.split('.')) value = (value as Record<string, unknown> | undefined)?.[part];
  return value;
}

function literal(text: string): unknown {
  if (text === 'true' || text === 'false') return text === 'true';
  if (/^-?\d+(\.\d+)?$/.test(text)) return Number(text);
  const quoted = /^"(.*)"$/.exec(text);
  if (!quoted) throw new Error(`unsupported value ${text}`);
  return quoted[1];
}

/** Evaluates `a=b AND c=("x" OR "y") AND ...` (the only forms monitoring.tf uses) on an entry. */
export function matches(filter: string, entry: Entry): boolean {
  return filter.split(' AND ').every((term) => {
    const m = /^([\w.]+)=(.+)$/.exec(term.trim());
    if (!m) throw new Error(`unsupported filter term: ${term}`);
    const actual = valueAt(entry, m[1]!);
    const expected = m[2]!.trim();
    if (expected.startsWith('(')) return expected.slice(1, -1).split(' OR ').map(literal).includes(actual);
    return actual === literal(expected);
  });
}

/** `EXTRACT(jsonPayload.x)` on an entry. */
export function extract(extractor: string, entry: Entry): unknown {
  const m = /^EXTRACT\(([\w.]+)\)$/.exec(extractor);
  if (!m) throw new Error(`unsupported extractor ${extractor}`);
  return valueAt(entry, m[1]!);
}
