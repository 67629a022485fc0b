/**
 * terraform/monitoring.tf against the code: each log-based metric's filter, evaluated by a small
 * Cloud Logging filter evaluator (the subset monitoring.tf uses), matches the log line the code
 * writes (event names and fields from shared/core/observability.ts, which shared/pipeline/run-job.ts and
 * shared/state/records.ts log with; test/integration/trace.test.ts checks the real lines carry them)
 * and nothing else; its extractors find a value there; the alerts watch what they claim to.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { METRIC_LINES } from '../../shared/core/observability.js';
import { stageFields } from '../../shared/pipeline/run-job.js';
import { block, blocks, loadModule, REPO_ROOT, type Module } from './hcl.js';
import { type Entry, extract, matches } from './log-filter.js';

const topology = JSON.parse(readFileSync(join(REPO_ROOT, 'shared', 'core', 'topology.json'), 'utf8')) as {
  subscriptions: Record<string, { name: string }>;
  functions: Record<string, unknown>;
};

describe('terraform/monitoring.tf: log-based metrics match the lines the code writes', () => {
  let mod: Module;
  let metrics: Record<
    string,
    { filter: string; value: string | null; labels: Record<string, string>; value_type: string }
  >;
  const functionNames = Object.keys(topology.functions).map((key) => `image-${key}`);
  let logSource: string;

  const entry = (service: string, payload: Record<string, unknown>): Entry => ({
    resource: { type: 'cloud_run_revision', labels: { service_name: service } },
    jsonPayload: { severity: 'INFO', message: 'x', ...payload },
  });
  // The lines as shared/pipeline/run-job.ts and shared/state/records.ts write them (keys from METRIC_LINES).
  const lines = {
    jobDone: {
      event: METRIC_LINES.jobDone.event,
      [METRIC_LINES.jobDone.durationMs]: 1234,
      [METRIC_LINES.jobDone.cpuMs]: 2100,
      [METRIC_LINES.jobDone.stages]: stageFields([{ stage: 'decode', width: 640, ms: 12 }]),
    },
    imageReady: {
      event: METRIC_LINES.imageReady.event,
      [METRIC_LINES.imageReady.uploadToReadyMs]: 4200,
      [METRIC_LINES.imageReady.cpuSeconds]: 3.2,
    },
    imageFailedRecorded: {
      event: METRIC_LINES.imageFailed.event,
      [METRIC_LINES.imageFailed.code]: 'corrupt_image',
      [METRIC_LINES.imageFailed.recorded]: true,
    },
    imageFailedRepeat: {
      event: METRIC_LINES.imageFailed.event,
      [METRIC_LINES.imageFailed.code]: 'corrupt_image',
      [METRIC_LINES.imageFailed.recorded]: false,
    },
  };
  const expected: Record<string, { line: keyof typeof lines; value?: string; labels?: Record<string, string> }> = {
    images_ready: { line: 'imageReady' },
    images_failed: { line: 'imageFailedRecorded', labels: { code: METRIC_LINES.imageFailed.code } },
    job_duration: { line: 'jobDone', value: METRIC_LINES.jobDone.durationMs },
    upload_to_ready: { line: 'imageReady', value: METRIC_LINES.imageReady.uploadToReadyMs },
    image_cpu_seconds: { line: 'imageReady', value: METRIC_LINES.imageReady.cpuSeconds },
  };

  before(async () => {
    mod = await loadModule();
    metrics = mod.locals.log_metrics as typeof metrics;
    // log_source, with this deployment's service names (function_name_prefix's default "image").
    logSource = String(mod.locals.log_source).replace(
      '${join(" OR ", local.service_names)}',
      functionNames.map((n) => `"${n}"`).join(' OR '),
    );
  });

  const resolved = (filter: string) => filter.replace('${local.log_source}', logSource);

  it('has the metrics the issue asks for, over this deployment’s functions only', () => {
    expect(Object.keys(metrics).sort()).to.deep.equal(Object.keys(expected).sort());
    expect(String(mod.locals.service_names)).to.include('local.function_names');
    for (const [key, metric] of Object.entries(metrics))
      expect(metric.filter, key).to.match(/^\$\{local\.log_source\} AND /);
    expect(matches(logSource, entry('image-resize', {}))).to.equal(true);
    expect(matches(logSource, entry('other-service', {}))).to.equal(false);
  });

  for (const [key, want] of Object.entries(expected)) {
    it(`${key}: matches the ${want.line} line, extracts its fields, and matches no other line`, () => {
      const metric = metrics[key]!;
      const filter = resolved(metric.filter);
      for (const [name, payload] of Object.entries(lines)) {
        expect(matches(filter, entry('image-resize', payload)), `${key} on ${name}`).to.equal(name === want.line);
      }
      expect(matches(filter, entry('image-upload', lines[want.line])), 'any of the functions').to.equal(true);
      if (want.value) {
        expect(metric.value_type).to.equal('DISTRIBUTION');
        expect(extract(metric.value!, entry('image-resize', lines[want.line])), metric.value!).to.be.a('number');
        expect(metric.value).to.equal(`EXTRACT(jsonPayload.${want.value})`);
      } else {
        expect(metric.value_type).to.equal('INT64');
        expect(metric.value).to.equal(null);
      }
      for (const [label, field] of Object.entries(want.labels ?? {})) {
        expect(metric.labels[label]).to.equal(`EXTRACT(jsonPayload.${field})`);
        expect(extract(metric.labels[label]!, entry('image-resize', lines[want.line]))).to.be.a('string');
      }
    });
  }

  it('the evaluator is shown to fail on a line the filter must not match', () => {
    expect(matches('jsonPayload.event="image.ready"', entry('image-resize', { event: 'image.failed' }))).to.equal(
      false,
    );
    expect(matches('jsonPayload.recorded=true', entry('image-resize', { recorded: 'true' }))).to.equal(false);
  });

  it('distribution metrics have buckets; labelled ones declare their labels', () => {
    const resource = mod.resources.google_logging_metric!.this!;
    expect(String(resource.for_each)).to.equal('${local.log_metrics}');
    expect(JSON.stringify(resource)).to.include('exponential_buckets').and.include('DISTRIBUTION');
    expect(JSON.stringify(block(resource, 'metric_descriptor'))).to.include('labels.key');
  });

  it('alerts: dead letters on the inspect subscription, failure ratio from both counters, resize at max instances', () => {
    const alerts = mod.resources.google_monitoring_alert_policy!;
    expect(Object.keys(alerts).sort()).to.deep.equal(['dead_letters', 'failure_ratio', 'resize_saturated']);
    for (const alert of Object.values(alerts))
      expect(alert.notification_channels).to.equal('${var.notification_channels}');

    expect(String(mod.locals.dead_letter_inspect)).to.equal('${local.topology.subscriptions.jobsDeadLetterPull.name}');
    expect(topology.subscriptions.jobsDeadLetterPull).to.not.equal(undefined);
    const deadLetters = block(blocks(alerts.dead_letters, 'conditions')[0], 'condition_threshold')!;
    expect(deadLetters.filter).to.include('subscription_id=\\"${local.dead_letter_inspect}\\"'.replace(/\\"/g, '"'));
    expect(deadLetters.filter).to.include('pubsub.googleapis.com/subscription/num_undelivered_messages');
    expect(deadLetters.duration).to.equal('600s');

    const ratio = block(blocks(alerts.failure_ratio, 'conditions')[0], 'condition_prometheus_query_language')!;
    expect(ratio.query)
      .to.include('${local.promql.images_failed}')
      .and.include('${local.promql.images_ready}')
      .and.include('> 0.05');
    expect(ratio.duration).to.equal('900s');

    const saturated = block(blocks(alerts.resize_saturated, 'conditions')[0], 'condition_threshold')!;
    expect(saturated.filter)
      .to.include('run.googleapis.com/container/instance_count')
      .and.include('${local.resize_service}');
    expect(String(mod.locals.resize_max)).to.equal('${local.function_settings["resize"].max_instances}');
    expect(saturated.duration).to.equal('900s');
  });

  it('the dashboard charts every log-based metric, instances and CPU', () => {
    const dashboard = String(mod.resources.google_monitoring_dashboard!.this!.dashboard_json);
    for (const key of Object.keys(expected)) {
      if (key === 'images_failed' || key === 'images_ready')
        expect(dashboard).to.include('["images_ready", "images_failed"]');
      else expect(dashboard).to.include(`local.user_metric.${key}`);
    }
    expect(dashboard)
      .to.include('run.googleapis.com/container/instance_count')
      .and.include('run.googleapis.com/container/cpu/utilizations');
  });
});
