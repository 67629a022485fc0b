/**
 * The local stack's pure parts, without starting anything: what it provisions from the topology,
 * how ports are read from the environment, and how logs are printed.
 */
import { expect } from 'chai';
import { formatLogLine } from '../../local/log-format.js';
import { DEFAULT_PORTS, PortConfigError, portsFromEnv, PORT_VARIABLES } from '../../local/ports.js';
import { desiredSubscriptions, triggerSubscriptionName } from '../../local/provision.js';
import { METRIC_LINES } from '../../shared/core/observability.js';
import { stageFields } from '../../shared/pipeline/run-job.js';
import { topology, type SubscriptionKey } from '../../shared/core/topology.js';
import { TRACE_LOG_FIELDS } from '../../shared/cloud/trace.js';

describe('local stack parts', () => {
  describe('provisioning from shared/core/topology.json', () => {
    const endpoints = {
      resize: 'http://127.0.0.1:8082',
      cleanup: 'http://127.0.0.1:8083/',
      webhooks: 'http://127.0.0.1:8084',
    };
    const wanted = desiredSubscriptions('local-project', endpoints);

    it('creates every subscription of the topology with its settings', () => {
      for (const [key, spec] of Object.entries(topology.subscriptions) as Array<
        [SubscriptionKey, (typeof topology.subscriptions)[SubscriptionKey]]
      >) {
        const sub = wanted.find((w) => w.key === key);
        expect(sub, key).to.not.equal(undefined);
        expect(sub).to.include({
          name: spec.name,
          topic: spec.topic,
          ackDeadlineSeconds: spec.ackDeadlineSeconds,
          messageRetentionSeconds: spec.messageRetentionSeconds,
        });
        if (spec.deadLetterTopic)
          expect(sub!.deadLetterPolicy).to.deep.equal({
            topic: spec.deadLetterTopic,
            maxDeliveryAttempts: spec.maxDeliveryAttempts,
          });
        else expect(sub!.deadLetterPolicy).to.equal(undefined);
        if (spec.minimumBackoffSeconds !== undefined) {
          expect(sub!.retryPolicy).to.deep.equal({
            minimumBackoffSeconds: spec.minimumBackoffSeconds,
            maximumBackoffSeconds: spec.maximumBackoffSeconds,
          });
        }
        expect(Boolean(sub!.pushEndpoint), `${key} is a push subscription`).to.equal(Boolean(spec.push));
      }
    });

    it('points the jobs push subscription at resize with the /projects/{project}/topics/{topic} path', () => {
      const jobs = wanted.find((w) => w.key === 'jobsPush')!;
      expect(jobs.pushEndpoint).to.equal(
        `http://127.0.0.1:8082/projects/local-project/topics/${topology.topics.jobs.name}`,
      );
    });

    it('points the webhooks push subscription on the events topic at the webhooks function', () => {
      const hooks = wanted.find((w) => w.key === 'webhooksPush')!;
      expect(hooks.pushEndpoint).to.equal(
        `http://127.0.0.1:8084/projects/local-project/topics/${topology.topics.events.name}`,
      );
      expect(hooks.deadLetterPolicy).to.equal(undefined);
    });

    it('stands in for the cleanup Eventarc trigger with a push subscription on the cleanup topic', () => {
      const trigger = wanted.find((w) => w.key === 'trigger:cleanup')!;
      expect(trigger.name).to.equal(triggerSubscriptionName('cleanup'));
      expect(trigger.topic).to.equal(topology.functions.cleanup.topic);
      expect(trigger.pushEndpoint).to.equal(
        `http://127.0.0.1:8083/projects/local-project/topics/${topology.topics.cleanup.name}`,
      );
      expect(wanted).to.have.length(Object.keys(topology.subscriptions).length + 1);
    });
  });

  describe('ports from the environment', () => {
    it('defaults to 8080 for the page, 4443, 8085, 8086 and the ports after 8080', () => {
      expect(portsFromEnv({})).to.deep.equal({
        web: 8080,
        storage: 4443,
        pubsub: 8085,
        firestore: 8086,
        ingest: 8081,
        resize: 8082,
        cleanup: 8083,
        webhooks: 8084,
      });
      expect(DEFAULT_PORTS.web).to.equal(8080);
    });

    it('reads each variable; 0 means any free port', () => {
      const ports = portsFromEnv({
        PORT: '9000',
        STORAGE_PORT: '0',
        PUBSUB_PORT: ' 9085 ',
        FIRESTORE_PORT: '9086',
        INGEST_PORT: '',
        RESIZE_PORT: '9002',
        CLEANUP_PORT: '9003',
      });
      expect(ports).to.deep.equal({
        web: 9000,
        storage: 0,
        pubsub: 9085,
        firestore: 9086,
        ingest: 8081,
        resize: 9002,
        cleanup: 9003,
        webhooks: 8084,
      });
    });

    it('names the variable of a bad value', () => {
      for (const name of Object.values(PORT_VARIABLES)) {
        expect(() => portsFromEnv({ [name]: 'eighty' }), name).to.throw(PortConfigError, name);
        expect(() => portsFromEnv({ [name]: '70000' }), name).to.throw(PortConfigError, name);
      }
    });
  });

  describe('log lines', () => {
    const line = JSON.stringify({
      severity: 'INFO',
      message: 'image ready',
      time: '2026-01-02T03:04:05.000Z',
      imageId: 'ab'.repeat(16),
      job: '1/2',
      extra: { a: 1 },
    });

    it('prints structured lines as time, source, severity, message and fields', () => {
      const text = formatLogLine(line, 'resize');
      expect(text).to.match(
        /^\d\d:\d\d:\d\d resize {2}INFO {4}image ready {2}imageId=abab\S+ job=1\/2 extra=\{"a":1\}$/,
      );
    });

    it('keeps the JSON with LOG_FORMAT=json, adding the source', () => {
      expect(JSON.parse(formatLogLine(line, 'resize', { format: 'json' }))).to.deep.include({
        source: 'resize',
        message: 'image ready',
        severity: 'INFO',
      });
      expect(
        JSON.parse(formatLogLine('storage-server: created bucket x', 'storage', { format: 'json' })),
      ).to.deep.include({ source: 'storage', message: 'storage-server: created bucket x' });
    });

    it('prints job.done stage timings readably and the trace as its first 8 hex digits', () => {
      const done = JSON.stringify({
        severity: 'INFO',
        message: 'image ready',
        time: '2026-01-02T03:04:05.000Z',
        [TRACE_LOG_FIELDS.trace]: 'projects/p/traces/4bf92f3577b34da6a3ce929d0e0e4736',
        [TRACE_LOG_FIELDS.spanId]: '00f067aa0ba902b7',
        [TRACE_LOG_FIELDS.sampled]: true,
        event: METRIC_LINES.jobDone.event,
        [METRIC_LINES.jobDone.durationMs]: 512,
        [METRIC_LINES.jobDone.stages]: stageFields([
          { stage: 'decode', width: 640, ms: 41.2 },
          { stage: 'encode', width: 640, format: 'avif', ms: 212.4 },
          { stage: 'write', width: 640, format: 'avif', ms: 5.1 },
        ]),
      });
      expect(formatLogLine(done, 'resize')).to.match(
        /image ready {2}trace=4bf92f35 event=job\.done durationMs=512 stages="decode 41ms, encode avif 640 212ms, write avif 640 5ms"$/,
      );
    });

    it('prints text lines with the time and source', () => {
      expect(formatLogLine('storage-server: created bucket x\n', 'storage')).to.match(
        /^\d\d:\d\d:\d\d storage storage-server: created bucket x$/,
      );
    });
  });
});
