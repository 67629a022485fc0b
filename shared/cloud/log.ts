/**
 * Structured logs for Cloud Logging: one JSON object per line on stdout, with `severity` and
 * `message` (the fields Cloud Logging parses), an event name and ids. Nothing else writes logs.
 * Inside a trace (shared/cloud/trace.ts) every line also carries Cloud Logging's trace fields.
 */
import { traceLogFields } from './trace.js';

/** Cloud Logging severities in use. */
export type Severity = 'DEBUG' | 'INFO' | 'NOTICE' | 'WARNING' | 'ERROR';

/** Fields attached to a log line; `imageId`, `jobId` and `event` are the usual ones. */
export type LogFields = Record<string, unknown>;

/** A logger writes one line per call; `child` binds fields (e.g. the function name). */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  notice(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Where lines go; tests pass an array's push to capture them. */
export type LogSink = (line: string) => void;

const SECRET_KEYS = /token|authorization|password|secret/i;

function serializable(value: unknown): unknown {
  if (value instanceof Error) {
    const withCode = value as Error & { code?: unknown };
    return {
      name: value.name,
      message: value.message,
      ...(withCode.code !== undefined ? { code: withCode.code } : {}),
    };
  }
  return value;
}

/**
 * Creates a logger. Fields whose key looks like a secret (token, authorization, password) are
 * replaced by `"[redacted]"` so a careless call cannot leak credentials into logs.
 */
export function createLogger(
  bound: LogFields = {},
  sink: LogSink = (line) => process.stdout.write(`${line}\n`),
): Logger {
  const write = (severity: Severity, message: string, fields: LogFields = {}): void => {
    const entry: Record<string, unknown> = { severity, message, time: new Date().toISOString(), ...traceLogFields() };
    for (const [key, value] of Object.entries({ ...bound, ...fields })) {
      if (value === undefined) continue;
      entry[key] = SECRET_KEYS.test(key) ? '[redacted]' : serializable(value);
    }
    sink(JSON.stringify(entry));
  };
  return {
    debug: (m, f) => write('DEBUG', m, f),
    info: (m, f) => write('INFO', m, f),
    notice: (m, f) => write('NOTICE', m, f),
    warn: (m, f) => write('WARNING', m, f),
    error: (m, f) => write('ERROR', m, f),
    child: (fields) => createLogger({ ...bound, ...fields }, sink),
  };
}

/** A logger that drops everything (for benchmarks). */
export const silentLogger: Logger = createLogger({}, () => undefined);
