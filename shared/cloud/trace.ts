/**
 * One trace per upload (docs/observability.md). The trace is taken from the incoming request
 * (`traceparent`, else `X-Cloud-Trace-Context`) or event, held for the rest of the invocation in
 * an AsyncLocalStorage so every log line carries it (shared/cloud/log.ts) and every message published
 * carries it on as a W3C `traceparent` attribute (shared/cloud/publish.ts), under the attribute name
 * @google-cloud/pubsub 5.x's OpenTelemetry support uses, so OTel-instrumented consumers join it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';

/** The message attribute carrying the W3C trace context (pubsub's `modernAttributeName`). */
export const TRACE_ATTRIBUTE = 'googclient_traceparent';
/** Cloud Logging's special fields (https://cloud.google.com/logging/docs/structured-logging). */
export const TRACE_LOG_FIELDS = {
  trace: 'logging.googleapis.com/trace',
  spanId: 'logging.googleapis.com/spanId',
  sampled: 'logging.googleapis.com/trace_sampled',
} as const;

/** A W3C trace context: 32 hex trace id, 16 hex span id (of the caller), sampled flag. */
export interface TraceContext {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const CLOUD_TRACE = /^([0-9a-f]{32})(?:\/(\d+))?(?:;o=([01]))?$/;
const ZERO_TRACE = /^0+$/;

function newSpanId(): string {
  return randomBytes(8).toString('hex');
}

/** Parses a W3C `traceparent` header value; undefined if absent or invalid. */
export function parseTraceparent(value: unknown): TraceContext | undefined {
  if (typeof value !== 'string') return undefined;
  const match = TRACEPARENT.exec(value.trim().toLowerCase());
  const [, traceId, spanId, flags] = match ?? [];
  if (!traceId || !spanId || !flags || ZERO_TRACE.test(traceId) || ZERO_TRACE.test(spanId)) return undefined;
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

/** Parses `X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1` (span id decimal); undefined if invalid. */
export function parseCloudTraceContext(value: unknown): TraceContext | undefined {
  if (typeof value !== 'string') return undefined;
  const match = CLOUD_TRACE.exec(value.trim().toLowerCase());
  const [, traceId, decimalSpanId, sampled] = match ?? [];
  if (!traceId || ZERO_TRACE.test(traceId)) return undefined;
  let spanId = newSpanId();
  if (decimalSpanId) {
    try {
      const hex = BigInt(decimalSpanId).toString(16);
      if (hex.length <= 16 && hex !== '0') spanId = hex.padStart(16, '0');
    } catch {
      // keep the fresh span id
    }
  }
  return { traceId, spanId, sampled: sampled === '1' };
}

/** A new root trace (for work that arrives without one). */
export function newTrace(): TraceContext {
  return { traceId: randomBytes(16).toString('hex'), spanId: newSpanId(), sampled: false };
}

/** The `traceparent` to send onward: same trace, a new span id for this hop. */
export function formatTraceparent(trace: TraceContext, spanId: string = newSpanId()): string {
  return `00-${trace.traceId}-${spanId}-${trace.sampled ? '01' : '00'}`;
}

/** The trace of an HTTP request's headers, else a new one. */
export function traceFromHeaders(get: (name: string) => string | undefined): TraceContext {
  return parseTraceparent(get('traceparent')) ?? parseCloudTraceContext(get('x-cloud-trace-context')) ?? newTrace();
}

interface TraceScope {
  readonly trace: TraceContext;
  /** `projects/{project}/traces/{traceId}`. */
  readonly resource: string;
}

const scope = new AsyncLocalStorage<TraceScope>();

/** Runs `work` with `trace` as the current trace; its log lines and publishes carry it. */
export function runWithTrace<T>(project: string | undefined, trace: TraceContext, work: () => T): T {
  return scope.run({ trace, resource: `projects/${project ?? 'local-project'}/traces/${trace.traceId}` }, work);
}

/** The current trace, if the caller runs inside {@link runWithTrace}. */
export function currentTrace(): TraceContext | undefined {
  return scope.getStore()?.trace;
}

/** Cloud Logging's trace fields for the current trace (empty outside one). */
export function traceLogFields(): Record<string, unknown> {
  const current = scope.getStore();
  if (!current) return {};
  return {
    [TRACE_LOG_FIELDS.trace]: current.resource,
    [TRACE_LOG_FIELDS.spanId]: current.trace.spanId,
    [TRACE_LOG_FIELDS.sampled]: current.trace.sampled,
  };
}

/** The attribute to add to a message published now (empty outside a trace). */
export function traceAttributes(): Record<string, string> {
  const trace = currentTrace();
  return trace ? { [TRACE_ATTRIBUTE]: formatTraceparent(trace) } : {};
}
