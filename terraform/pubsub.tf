# Topics and subscriptions, all named and configured by shared/core/topology.json.
#
# - jobs: ingest/upload/cleanup publish resize jobs; resize receives them through jobsPush, a push
#   subscription owned here (an Eventarc Pub/Sub trigger cannot have a dead-letter policy).
# - jobs dead letter: jobs that failed maxDeliveryAttempts times. Two pull subscriptions keep them:
#   one that cleanup drains to mark the images failed, one for people to inspect.
# - events: image.* (ready, failed, updated, deleted, preview) and upload.* (each upload's ready,
#   failed, updated, deleted), with a pull subscription to inspect them and the webhooks push
#   subscription (below).
# - webhooks dead letter: events a webhook receiver did not accept within WEBHOOK_RETRY_HOURS,
#   published by the webhooks function; a pull subscription keeps them for people to inspect.
# - cleanup: the scheduler's tick; the cleanup function's Eventarc trigger subscribes to it.

resource "google_pubsub_topic" "this" {
  for_each = local.topology.topics

  project = var.project_id
  name    = each.value.name
  labels  = var.labels

  depends_on = [google_project_service.this]
}

# Pull subscriptions: messages stay up to messageRetentionSeconds; the subscriptions themselves
# never expire (an idle dead-letter subscription would otherwise be deleted after 31 days).
resource "google_pubsub_subscription" "pull" {
  for_each = local.pull_subscriptions

  project                    = var.project_id
  name                       = each.value.name
  topic                      = google_pubsub_topic.this[each.value.topic].id
  ack_deadline_seconds       = each.value.ackDeadlineSeconds
  message_retention_duration = "${each.value.messageRetentionSeconds}s"
  labels                     = var.labels

  expiration_policy {
    ttl = ""
  }
}

# Push subscriptions, one per topology subscription with a `push` function (jobsPush -> resize,
# webhooksPush -> webhooks), keyed by the topology's name as pull above. Pub/Sub pushes each
# message with an OIDC token of that function's invoker service account. The push path
# /projects/{project}/topics/{topic} lets functions-framework turn the wrapped push request into a
# Pub/Sub CloudEvent (so no no_wrapper block: the wrapper is what it recognises). The ack deadline
# is the push request's timeout: var.functions refuses a function timeout that is not below it,
# so a message still being handled is never delivered twice. Failed deliveries back off
# exponentially.
#
# jobsPush: after maxDeliveryAttempts a job goes to the dead-letter topic (dead_letter_policy).
# webhooksPush has no deadLetterTopic, so no dead_letter_policy: its at most 100 attempts × at
# most 600 s backoff (≈ 16.7 h) are less than the 24 h a receiver is retried. Instead messages are
# kept 7 days, and the function itself publishes an event to the webhook dead-letter topic once it
# is WEBHOOK_RETRY_HOURS old, and acknowledges it (docs/webhooks.md).
resource "google_pubsub_subscription" "push" {
  for_each = local.push_subscriptions

  project                    = var.project_id
  name                       = each.value.name
  topic                      = google_pubsub_topic.this[each.value.topic].id
  ack_deadline_seconds       = each.value.ackDeadlineSeconds
  message_retention_duration = "${each.value.messageRetentionSeconds}s"
  labels                     = var.labels

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.this[each.value.push].service_config[0].uri}/projects/${var.project_id}/topics/${google_pubsub_topic.this[each.value.topic].name}"

    oidc_token {
      service_account_email = google_service_account.invoker[each.value.push].email
      audience              = google_cloudfunctions2_function.this[each.value.push].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${each.value.minimumBackoffSeconds}s"
    maximum_backoff = "${each.value.maximumBackoffSeconds}s"
  }

  dynamic "dead_letter_policy" {
    for_each = try(each.value.deadLetterTopic, null) == null ? [] : [each.value]
    content {
      dead_letter_topic     = google_pubsub_topic.this[dead_letter_policy.value.deadLetterTopic].id
      max_delivery_attempts = dead_letter_policy.value.maxDeliveryAttempts
    }
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    # The push endpoint answers only to the invoker, and Pub/Sub must be able to mint its tokens
    # and (jobsPush) to move dead letters before the first message arrives. One list for every
    # instance: webhooksPush waiting for the dead-letter grant too costs nothing.
    google_cloud_run_service_iam_member.invoker,
    google_service_account_iam_member.pubsub_token_creator,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# Before the for_each these were two resources; a deployed stack keeps both subscriptions (and
# their backlogs) rather than destroying and recreating them. Keep these blocks: an older state
# still names the old addresses.
moved {
  from = google_pubsub_subscription.jobs_push
  to   = google_pubsub_subscription.push["jobsPush"]
}
moved {
  from = google_pubsub_subscription.webhooks_push
  to   = google_pubsub_subscription.push["webhooksPush"]
}
