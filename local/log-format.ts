/**
 * Readable terminal lines for the local stack's logs: the functions' structured JSON (what Cloud
 * Logging parses in production) becomes `time source SEVERITY message key=value...`; text lines
 * from the storage server and the emulator get the same time and source columns.
 */
import { METRIC_LINES } from '../shared/core/observability.js';
import { TRACE_LOG_FIELDS } from '../shared/cloud/trace.js';
import type { LogSource } from './stack.js';

/** How `npm start` prints logs: `pretty` (default) or `json` (the raw lines, with the source added). */
export type LogFormat = 'pretty' | 'json';

const HIDDEN_FIELDS = new Set(['severity', 'message', 'time', 'component']);

const COLORS: Record<string, string> = {
  DEBUG: '\x1b[90m',
  INFO: '\x1b[32m',
  NOTICE: '\x1b[36m',
  WARNING: '\x1b[33m',
  ERROR: '\x1b[31m',
};
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

function value(v: unknown): string {
  if (typeof v === 'string') return /[\s="]/.test(v) || v === '' ? JSON.stringify(v) : v;
  return JSON.stringify(v);
}

/** `job.done`'s stage timings as `decode 41ms, encode avif 640 212ms, ...`. */
function stages(v: Record<string, unknown>): string {
  return JSON.stringify(
    Object.entries(v)
      .map(([stage, ms]) => `${stage} ${Math.round(Number(ms))}ms`)
      .join(', '),
  );
}

/** The trace fields shortened to `trace=` the first 8 hex digits: enough to tell uploads apart. */
function readableFields(entry: Record<string, unknown>): Array<[string, string]> {
  const fields: Array<[string, string]> = [];
  for (const [key, v] of Object.entries(entry)) {
    if (
      HIDDEN_FIELDS.has(key) ||
      v === undefined ||
      key === TRACE_LOG_FIELDS.spanId ||
      key === TRACE_LOG_FIELDS.sampled
    )
      continue;
    const text = String(v);
    if (key === TRACE_LOG_FIELDS.trace)
      fields.push(['trace', text.slice(text.lastIndexOf('/') + 1, text.lastIndexOf('/') + 9)]);
    else if (key === METRIC_LINES.jobDone.stages && v && typeof v === 'object')
      fields.push([key, stages(v as Record<string, unknown>)]);
    else fields.push([key, value(v)]);
  }
  return fields;
}

function clock(date: Date): string {
  return date.toTimeString().slice(0, 8);
}

/** Formats one log line for a terminal. */
export function formatLogLine(
  line: string,
  source: LogSource,
  options: { format?: LogFormat; color?: boolean } = {},
): string {
  let entry: Record<string, unknown> | undefined;
  if (line.startsWith('{')) {
    try {
      entry = JSON.parse(line) as Record<string, unknown>;
    } catch {
      entry = undefined;
    }
  }
  if (options.format === 'json') {
    return entry
      ? JSON.stringify({ source, ...entry })
      : JSON.stringify({ source, severity: 'INFO', message: line.trimEnd() });
  }
  const color = options.color ?? false;
  const paint = (code: string, text: string) => (color ? `${code}${text}${RESET}` : text);
  const time = entry && typeof entry.time === 'string' ? new Date(entry.time) : new Date();
  const head = `${paint(DIM, clock(time))} ${paint(DIM, source.padEnd(7))}`;
  if (!entry) return `${head} ${line.trimEnd()}`;
  const severity = String(entry.severity ?? 'INFO');
  const fields = readableFields(entry)
    .map(([key, v]) => `${paint(DIM, `${key}=`)}${v}`)
    .join(' ');
  return `${head} ${paint(COLORS[severity] ?? '', severity.padEnd(7))} ${String(entry.message ?? '')}${fields ? `  ${fields}` : ''}`;
}
