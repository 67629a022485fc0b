/**
 * terraform/ for signed webhooks (docs/webhooks.md), on HCL parsed with @cdktf/hcl2json: the
 * function comes from the topology like the others, its push subscription on the events topic has
 * the invoker's OIDC token, the topology's retry policy and no dead-letter policy (the function
 * dead-letters after WEBHOOK_RETRY_HOURS), its secret comes from Secret Manager and only it may
 * read that secret, and it may publish to the webhook dead-letter topic only.
 */
import { expect } from 'chai';
import { topology } from '../../shared/core/topology.js';
import { block, blocks, dynamicBlock, loadModule, type Body, type Module } from './hcl.js';

describe('terraform: webhooks', function () {
  let mod: Module;
  before(async function () {
    mod = await loadModule();
  });

  const resource = (type: string, name: string) => mod.resources[type]?.[name] as Body;

  it('the topology: webhooks is pushed by its own subscription on the events topic, which has no dead-letter policy', function () {
    expect(topology.functions.webhooks).to.include({ trigger: 'pubsub-push', subscription: 'webhooksPush' });
    const sub = topology.subscriptions.webhooksPush;
    expect(sub).to.include({ topic: 'events', push: 'webhooks' });
    expect(sub.deadLetterTopic, 'dead letters by age in the function, not by attempts').to.equal(undefined);
    expect(sub.maxDeliveryAttempts).to.equal(undefined);
    // 7 days of retention leave room for 24 h of retries and more.
    expect(sub.messageRetentionSeconds).to.equal(7 * 86_400);
    expect(topology.subscriptions.webhooksDeadLetterPull).to.include({ topic: 'webhooksDeadLetter' });
  });

  it('the push subscription: OIDC of the webhooks invoker, the topology retry policy, no dead_letter_policy', function () {
    // The webhooksPush instance of the push subscriptions' for_each (was: webhooks_push): each.value
    // is topology.subscriptions.webhooksPush, so each.value.push is webhooks.
    const sub = resource('google_pubsub_subscription', 'push');
    expect(sub.for_each).to.equal('${local.push_subscriptions}');
    expect(topology.subscriptions.webhooksPush.push).to.equal('webhooks');
    expect(sub.name).to.equal('${each.value.name}');
    expect(sub.topic).to.equal('${google_pubsub_topic.this[each.value.topic].id}');
    expect(sub.ack_deadline_seconds).to.equal('${each.value.ackDeadlineSeconds}');
    const push = block(sub, 'push_config');
    expect(String(push?.push_endpoint)).to.include('google_cloudfunctions2_function.this[each.value.push]');
    expect(block(push, 'oidc_token')?.service_account_email).to.equal(
      '${google_service_account.invoker[each.value.push].email}',
    );
    expect(block(sub, 'retry_policy')).to.deep.equal({
      minimum_backoff: '${each.value.minimumBackoffSeconds}s',
      maximum_backoff: '${each.value.maximumBackoffSeconds}s',
    });
    // The dead_letter_policy is dynamic, on deadLetterTopic, which webhooksPush does not have.
    expect(blocks(sub, 'dead_letter_policy')).to.deep.equal([]);
    expect(dynamicBlock(sub, 'dead_letter_policy')?.forEach).to.equal(
      '${try(each.value.deadLetterTopic, null) == null ? [] : [each.value]}',
    );
    expect(topology.subscriptions.webhooksPush).not.to.have.property('deadLetterTopic');
    expect(block(sub, 'expiration_policy')?.ttl).to.equal('');
  });

  it('WEBHOOK_SECRET from Secret Manager, for webhooks only; its account alone may read that secret', function () {
    const fn = resource('google_cloudfunctions2_function', 'this');
    const secrets = blocks(block(fn, 'service_config'), 'dynamic')
      .flatMap((d) => Object.entries(d))
      .filter(([name]) => name === 'secret_environment_variables')
      .flatMap(([, body]) => (Array.isArray(body) ? body : [body]) as Body[]);
    const webhook = secrets.find((s) => JSON.stringify(s).includes('WEBHOOK_SECRET'));
    expect(webhook, 'a dynamic secret_environment_variables for WEBHOOK_SECRET').to.exist;
    expect(String(webhook!.for_each)).to.include('each.key == "webhooks"').and.include('var.webhook_secret_id');
    const access = resource('google_secret_manager_secret_iam_member', 'webhook_secret');
    expect(access.secret_id).to.equal('${var.webhook_secret_id}');
    expect(access.role).to.equal('roles/secretmanager.secretAccessor');
    expect(access.member).to.equal('serviceAccount:${google_service_account.function["webhooks"].email}');
    expect(dynamicBlock(block(fn, 'service_config'), 'secret_environment_variables')).to.exist;
  });

  it('webhooks publishes to the webhook dead-letter topic only, and gets the receivers from var.webhook_urls', function () {
    const publishers = mod.locals.function_topic_publishers as Array<{ function: string; topic: string }>;
    expect(publishers.filter((p) => p.function === 'webhooks')).to.deep.equal([
      { function: 'webhooks', topic: 'webhooksDeadLetter' },
    ]);
    const env = mod.locals.env_webhooks as Body;
    expect(env.WEBHOOK_URLS).to.equal('${join(",", var.webhook_urls)}');
    expect(env.WEBHOOK_DEAD_LETTER_TOPIC).to.equal('${google_pubsub_topic.this["webhooksDeadLetter"].name}');
    expect(env).not.to.have.property('WEBHOOK_SECRET');
  });
});
