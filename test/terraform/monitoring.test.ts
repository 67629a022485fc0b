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
import { ENV_SCHEMA } from '../../shared/core/config.js';
import { block, blocks, type Body, dynamicBlock, functionDefaults, loadModule, REPO_ROOT, type Module } from './hcl.js';
import { scratchModule } from './scratch.js';
import { type Entry, extract, matches } from './log-filter.js';

const topology = JSON.parse(readFileSync(join(REPO_ROOT, 'shared', 'core', 'topology.json'), 'utf8')) as {
  subscriptions: Record<
    string,
    { name: string; ackDeadlineSeconds?: number; maximumBackoffSeconds?: number; maxDeliveryAttempts?: number }
  >;
  functions: Record<string, unknown>;
};

interface Buckets {
  scale: number;
  growth_factor: number;
  num_finite_buckets: number;
}

describe('terraform/monitoring.tf: log-based metrics match the lines the code writes', () => {
  let mod: Module;
  let metrics: Record<
    string,
    {
      filter: string;
      value: string | null;
      labels: Record<string, string>;
      value_type: string;
      unit: string;
      buckets: Buckets | null;
    }
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
    logSource = String(mod.locals.log_source)
      .replace('${local.log_resource_type}', String(mod.locals.log_resource_type))
      .replace('${join(" OR ", local.service_names)}', functionNames.map((n) => `"${n}"`).join(' OR '));
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

  it('distribution metrics take their buckets from log_metrics; labelled ones declare their labels', () => {
    const resource = mod.resources.google_logging_metric!.this!;
    expect(String(resource.for_each)).to.equal('${local.log_metrics}');
    const buckets = dynamicBlock(resource, 'bucket_options')!;
    expect(buckets.forEach).to.equal('${each.value.buckets == null ? [] : [each.value.buckets]}');
    expect(block(buckets.content, 'exponential_buckets')).to.deep.equal({
      num_finite_buckets: '${bucket_options.value.num_finite_buckets}',
      growth_factor: '${bucket_options.value.growth_factor}',
      scale: '${bucket_options.value.scale}',
    });
    for (const [key, metric] of Object.entries(metrics))
      expect(metric.buckets === null, `${key}: buckets exactly when it is a distribution`).to.equal(
        metric.value_type !== 'DISTRIBUTION',
      );
    expect(JSON.stringify(block(resource, 'metric_descriptor'))).to.include('labels.key');
  });

  describe('histograms cover the range each value can reach (issue 24: upload→ready ended at ~20 minutes)', () => {
    const top = (b: Buckets): number => b.scale * b.growth_factor ** b.num_finite_buckets;
    const jobs = topology.subscriptions.jobsPush!;
    const defaults = (name: keyof typeof ENV_SCHEMA.shape): unknown => ENV_SCHEMA.shape[name].parse(undefined);

    it('job_duration (ms): up to the jobs subscription’s ack deadline, which resize’s timeout stays below', () => {
      expect(top(metrics.job_duration!.buckets!)).to.be.at.least(jobs.ackDeadlineSeconds! * 1000);
    });

    it('upload_to_ready (ms): every delivery of every dispatch, with the longest backoff, and the re-dispatches', () => {
      const redispatches = defaults('MAX_REDISPATCHES') as number;
      const perDispatchSeconds = jobs.maxDeliveryAttempts! * (jobs.ackDeadlineSeconds! + jobs.maximumBackoffSeconds!);
      const worstMs =
        ((1 + redispatches) * perDispatchSeconds +
          redispatches * (defaults('REDISPATCH_AFTER_MINUTES') as number) * 60) *
        1000;
      expect(worstMs, 'the worst case is hours, not minutes').to.be.greaterThan(10 * 3600 * 1000);
      expect(top(metrics.upload_to_ready!.buckets!)).to.be.at.least(worstMs);
      // The old buckets (10 ms ×1.2^64) ended at ~20 minutes: they would fail here.
      expect(top({ scale: 10, growth_factor: 1.2, num_finite_buckets: 64 })).to.be.below(worstMs);
    });

    it('image_cpu_seconds (s): one job per variant, each up to resize’s timeout on all its vCPUs', () => {
      const resize = functionDefaults(mod).resize!;
      const variants = (defaults('WIDTHS') as number[]).length * (defaults('FORMATS') as string[]).length;
      expect(top(metrics.image_cpu_seconds!.buckets!)).to.be.at.least(
        variants * Number(resize.timeout_seconds) * Number(resize.cpu),
      );
    });

    it('keeps buckets fine enough to read percentiles (growth ×1.2 at most) and starts below a second', () => {
      for (const [key, metric] of Object.entries(metrics)) {
        if (!metric.buckets) continue;
        expect(metric.buckets.growth_factor, key).to.be.within(1.01, 1.2);
        expect(metric.buckets.scale, key).to.be.at.most(metric.unit === 's' ? 0.1 : 100);
      }
      expect(mod.sources['monitoring.tf']).not.to.include('~2.7 h');
    });
  });

  it('alerts: dead letters on the inspect subscription, failure ratio from both counters, resize at max instances', () => {
    const alerts = mod.resources.google_monitoring_alert_policy!;
    expect(Object.keys(alerts).sort()).to.deep.equal(['dead_letters', 'failure_ratio', 'resize_saturated']);
    for (const alert of Object.values(alerts))
      expect(alert.notification_channels).to.equal('${var.notification_channels}');

    // Dead letters: one for_each policy, keyed by what was dead-lettered (was: dead_letters and
    // webhook_dead_letters), on the inspect subscription of each.
    const deadLetters = alerts.dead_letters!;
    expect(deadLetters.for_each).to.equal('${local.dead_letter_alerts}');
    expect(deadLetters.display_name).to.equal('${var.function_name_prefix}: dead-lettered ${each.key} waiting');
    const dead = mod.locals.dead_letter_alerts as Record<string, Record<string, string>>;
    expect(Object.keys(dead).sort()).to.deep.equal(['jobs', 'webhooks']);
    expect(String(mod.locals.dead_letter_inspect)).to.equal('${local.topology.subscriptions.jobsDeadLetterPull.name}');
    expect(topology.subscriptions.jobsDeadLetterPull).to.not.equal(undefined);
    expect(String(mod.locals.webhook_dead_letters)).to.equal(
      '${local.topology.subscriptions.webhooksDeadLetterPull.name}',
    );
    expect(dead.jobs!.subscription).to.equal('${local.dead_letter_inspect}');
    expect(dead.webhooks!.subscription).to.equal('${local.webhook_dead_letters}');
    expect(dead.jobs!.documentation).to.include('${local.dead_letter_inspect}').and.include('#dead-lettered-jobs');
    expect(dead.webhooks!.documentation)
      .to.include('${local.webhook_dead_letters}')
      .and.include('#dead-lettered-webhooks');
    const condition = block(blocks(deadLetters, 'conditions')[0], 'condition_threshold')!;
    expect(condition.filter).to.include('subscription_id="${each.value.subscription}"');
    expect(condition.filter).to.include('pubsub.googleapis.com/subscription/num_undelivered_messages');
    expect(condition.duration).to.equal('600s');
    expect(block(deadLetters, 'documentation')!.content).to.equal('${each.value.documentation}');

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

  it('moves the two dead-letter policies of earlier versions into the for_each (no destroy/create)', () => {
    const moved = (mod.other.moved ?? []).flat() as Body[];
    const keys = Object.keys(mod.locals.dead_letter_alerts as Body);
    for (const [from, key] of [
      ['dead_letters', 'jobs'],
      ['webhook_dead_letters', 'webhooks'],
    ]) {
      expect(keys, `${key} is still a key of local.dead_letter_alerts`).to.include(key);
      expect(moved, from).to.deep.include({
        from: `\${google_monitoring_alert_policy.${from}}`,
        to: `\${google_monitoring_alert_policy.dead_letters["${key}"]}`,
      });
    }
  });

  it('alert policies on log-based metrics wait for Monitoring to know them (hashicorp/terraform-provider-google#11102)', () => {
    const sleep = mod.resources.time_sleep!.log_metrics!;
    expect(sleep.create_duration).to.equal('${var.log_metric_wait}');
    // Its trigger reads the metrics: it starts after they exist, and waits again for a new one.
    expect(String((sleep.triggers as Record<string, string>).metrics)).to.include('google_logging_metric.this');
    const wait = String(mod.variables.log_metric_wait!.default);
    const seconds = Number(wait.slice(0, -1)) * (wait.endsWith('m') ? 60 : 1);
    expect(seconds, 'Monitoring says "could take up to 10 minutes"').to.be.at.least(600);
    const alerts = mod.resources.google_monitoring_alert_policy!;
    const onLogMetrics = Object.entries(alerts).filter(([, body]) =>
      /local\.(promql|user_metric)\b/.test(JSON.stringify(body.conditions)),
    );
    expect(onLogMetrics.map(([name]) => name)).to.deep.equal(['failure_ratio']);
    for (const [name, body] of onLogMetrics) expect(body.depends_on, name).to.deep.equal(['${time_sleep.log_metrics}']);
    for (const [name, body] of Object.entries(alerts).filter(([n]) => n !== 'failure_ratio'))
      expect(JSON.stringify(body.depends_on), `${name} reads no log-based metric and does not wait`).not.to.include(
        'time_sleep',
      );
  });

  it('PromQL names the monitored resource the log-based metrics are written against', () => {
    const resourceType = String(mod.locals.log_resource_type);
    // The metrics' own filter selects that resource type, so their time series carry it.
    expect(logSource).to.include(`resource.type="${resourceType}"`);
    const promql = mod.locals.promql as string;
    const template = /=> "((?:[^"\\]|\\.)*)"/.exec(String(promql))?.[1]?.replace(/\\"/g, '"');
    expect(template, String(promql)).to.be.a('string');
    const query = String(
      block(
        blocks(mod.resources.google_monitoring_alert_policy!.failure_ratio, 'conditions')[0],
        'condition_prometheus_query_language',
      )!.query,
    ).replace(/\$\{local\.promql\.([a-z_]+)\}/g, (_, key: string) =>
      template!.replace('${name}', `image_${key}`).replace('${local.log_resource_type}', resourceType),
    );
    const selectors = [...query.matchAll(/logging_googleapis_com:user_[a-z_]+(\{[^}]*\})?/g)];
    expect(selectors.length, query).to.equal(3);
    for (const m of selectors) expect(m[1], m[0]).to.equal(`{monitored_resource="${resourceType}"}`);
  });

  describe('the dashboard, as Terraform renders it (variables.tf, settings.tf and the locals it reads)', function () {
    let dashboard: { displayName: string; mosaicLayout: { columns: number; tiles: Array<Record<string, unknown>> } };

    before(function () {
      this.timeout(120_000);
      // The locals blocks of monitoring.tf as written (they read only variables, settings.tf and
      // function_names), and the dashboard's JSON expression.
      const source = mod.sources['monitoring.tf']!;
      const locals = [...source.matchAll(/^locals \{\n[\s\S]*?^\}$/gm)].map((m) => m[0]);
      expect(locals, 'two locals blocks').to.have.length(2);
      const functionNames = /^ {2}function_names = .*$/m.exec(mod.sources['locals.tf']!)?.[0];
      expect(functionNames, 'function_names in locals.tf').to.be.a('string');
      const from = source.indexOf('dashboard_json = jsonencode(');
      const json = source.slice(from + 'dashboard_json = '.length, source.indexOf('\n  })\n', from) + '\n  })'.length);
      const scratch = scratchModule('tf-dashboard', {
        'dashboard.tf': `${locals.join('\n')}\nlocals {\n${functionNames}\n}\noutput "dashboard" {\n  value = ${json}\n}\n`,
      });
      try {
        dashboard = JSON.parse(String(scratch.evaluate().dashboard)) as typeof dashboard;
      } finally {
        scratch.remove();
      }
    });

    it('charts every log-based metric, instances and CPU', function () {
      const text = JSON.stringify(dashboard);
      for (const key of Object.keys(expected))
        expect(text, key).to.include(`metric.type=\\"logging.googleapis.com/user/image_${key}\\"`);
      expect(text)
        .to.include('run.googleapis.com/container/instance_count')
        .and.include('run.googleapis.com/container/cpu/utilizations');
      expect(dashboard.mosaicLayout.tiles.map((t) => (t.widget as { title: string }).title)).to.have.length(6);
    });

    it('leaves zero positions out, as the API answers them (else a diff on every plan)', function () {
      const tiles = dashboard.mosaicLayout.tiles;
      expect(tiles.map((t) => [t.xPos ?? 0, t.yPos ?? 0])).to.deep.equal([
        [0, 0],
        [6, 0],
        [0, 4],
        [6, 4],
        [0, 8],
        [6, 8],
      ]);
      for (const [index, tile] of tiles.entries()) {
        expect(tile, `tile ${index}`).to.include({ width: 6, height: 4 });
        expect(tile.xPos, `tile ${index} xPos`).not.to.equal(0);
        expect(tile.yPos, `tile ${index} yPos`).not.to.equal(0);
      }
      expect(tiles[0]).to.not.have.any.keys('xPos', 'yPos');
      // No other zero the API would drop either.
      expect(JSON.stringify(dashboard)).not.to.match(/":0[,}]/);
    });
  });
});
