/**
 * Trace context parsing and propagation (shared/cloud/trace.ts): W3C traceparent, X-Cloud-Trace-Context,
 * log fields inside a trace and none outside, the outgoing attribute keeping the trace id.
 */
import { expect } from 'chai';
import { createLogger } from '../../shared/cloud/log.js';
import {
  formatTraceparent,
  parseCloudTraceContext,
  parseTraceparent,
  runWithTrace,
  traceAttributes,
  traceFromHeaders,
  TRACE_ATTRIBUTE,
  TRACE_LOG_FIELDS,
} from '../../shared/cloud/trace.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';

describe('trace context', () => {
  it('parses W3C traceparent and refuses malformed or all-zero ids', () => {
    expect(parseTraceparent(`00-${TRACE_ID}-00f067aa0ba902b7-01`)).to.deep.equal({
      traceId: TRACE_ID,
      spanId: '00f067aa0ba902b7',
      sampled: true,
    });
    expect(parseTraceparent(`00-${TRACE_ID}-00f067aa0ba902b7-00`)?.sampled).to.equal(false);
    for (const bad of [
      undefined,
      '',
      'garbage',
      `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`,
      `00-${TRACE_ID}-${'0'.repeat(16)}-01`,
      `00-${TRACE_ID}-00f067aa0ba902b7`,
    ]) {
      expect(parseTraceparent(bad), String(bad)).to.equal(undefined);
    }
  });

  it('parses X-Cloud-Trace-Context, span id decimal, with or without the options', () => {
    expect(parseCloudTraceContext(`${TRACE_ID}/1;o=1`)).to.deep.equal({
      traceId: TRACE_ID,
      spanId: '0000000000000001',
      sampled: true,
    });
    expect(parseCloudTraceContext(TRACE_ID)?.traceId).to.equal(TRACE_ID);
    expect(parseCloudTraceContext('nope/1;o=1')).to.equal(undefined);
  });

  it('prefers traceparent over X-Cloud-Trace-Context, and starts a trace when there is neither', () => {
    const headers: Record<string, string> = {
      traceparent: `00-${TRACE_ID}-00f067aa0ba902b7-01`,
      'x-cloud-trace-context': `${'1'.repeat(32)}/2;o=1`,
    };
    expect(traceFromHeaders((name) => headers[name]).traceId).to.equal(TRACE_ID);
    expect(traceFromHeaders((name) => (name === 'traceparent' ? undefined : headers[name])).traceId).to.equal(
      '1'.repeat(32),
    );
    const fresh = traceFromHeaders(() => undefined);
    expect(fresh.traceId).to.match(/^[0-9a-f]{32}$/);
    expect(traceFromHeaders(() => undefined).traceId).to.not.equal(fresh.traceId);
  });

  it('puts Cloud Logging trace fields on every line inside a trace, none outside', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({}, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)).child({
      imageId: 'x',
    });
    log.info('outside');
    await runWithTrace('my-project', parseTraceparent(`00-${TRACE_ID}-00f067aa0ba902b7-01`)!, async () => {
      await new Promise((resolve) => setImmediate(resolve));
      log.info('inside, after an await');
    });
    expect(lines[0]).to.not.have.property(TRACE_LOG_FIELDS.trace);
    expect(lines[1]).to.include({
      [TRACE_LOG_FIELDS.trace]: `projects/my-project/traces/${TRACE_ID}`,
      [TRACE_LOG_FIELDS.sampled]: true,
    });
  });

  it('publishes the trace on as a traceparent with a new span id', () => {
    expect(traceAttributes()).to.deep.equal({});
    const trace = parseTraceparent(`00-${TRACE_ID}-00f067aa0ba902b7-01`)!;
    const attributes = runWithTrace('p', trace, () => traceAttributes());
    const onward = parseTraceparent(attributes[TRACE_ATTRIBUTE]);
    expect(onward?.traceId).to.equal(TRACE_ID);
    expect(onward?.spanId).to.not.equal(trace.spanId);
    expect(formatTraceparent(trace, 'aaaaaaaaaaaaaaaa')).to.equal(`00-${TRACE_ID}-aaaaaaaaaaaaaaaa-01`);
  });
});
