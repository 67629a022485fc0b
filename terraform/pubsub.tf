# Topics and subscriptions, all named and configured by shared/core/topology.json.
#
# - jobs: ingest/upload/cleanup publish resize jobs; resize receives them through jobsPush, a push
#   subscription owned here (an Eventarc Pub/Sub trigger cannot have a dead-letter policy).
# - jobs dead letter: jobs that failed maxDeliveryAttempts times. Two pull subscriptions keep them:
#   one that cleanup drains to mark the images failed, one for people to inspect.
# - events: image.ready / image.failed / image.updated / image.deleted, with a pull subscription to
#   inspect them and the webhooks push subscription (below).
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

# jobs -> resize. Pub/Sub pushes each job to the function with an OIDC token of the resize invoker
# service account. The push path /projects/{project}/topics/{topic} lets functions-framework turn
# the wrapped push request into a Pub/Sub CloudEvent (so no no_wrapper block: the wrapper is what
# it recognises). The ack deadline is the push request's timeout: var.functions refuses a resize
# timeout that is not below it, so a job still running is never delivered twice. Failed deliveries back off
# exponentially; after maxDeliveryAttempts the job goes to the dead-letter topic.
resource "google_pubsub_subscription" "jobs_push" {
  project                    = var.project_id
  name                       = local.jobs_push.name
  topic                      = google_pubsub_topic.this[local.jobs_push.topic].id
  ack_deadline_seconds       = local.jobs_push.ackDeadlineSeconds
  message_retention_duration = "${local.jobs_push.messageRetentionSeconds}s"
  labels                     = var.labels

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.this[local.jobs_push.push].service_config[0].uri}/projects/${var.project_id}/topics/${google_pubsub_topic.this[local.jobs_push.topic].name}"

    oidc_token {
      service_account_email = google_service_account.invoker["resize"].email
      audience              = google_cloudfunctions2_function.this[local.jobs_push.push].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${local.jobs_push.minimumBackoffSeconds}s"
    maximum_backoff = "${local.jobs_push.maximumBackoffSeconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.this[local.jobs_push.deadLetterTopic].id
    max_delivery_attempts = local.jobs_push.maxDeliveryAttempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    # The push endpoint answers only to the invoker, and Pub/Sub must be able to mint its tokens
    # and to move dead letters before the first job arrives.
    google_cloud_run_service_iam_member.invoker,
    google_service_account_iam_member.pubsub_token_creator,
    google_pubsub_topic_iam_member.dead_letter_publisher,
  ]
}

# events -> webhooks. Like jobs_push: an OIDC token of the webhooks invoker service account, the
# wrapped push request that functions-framework turns into a Pub/Sub CloudEvent, a function timeout
# below the ack deadline. No dead_letter_policy: its at most 100 attempts × at most 600 s backoff
# (≈ 16.7 h) are less than the 24 h a receiver is retried. Instead messages are kept 7 days, retried
# with backoff from 10 s to 600 s, and the function itself publishes an event to the webhook
# dead-letter topic once it is WEBHOOK_RETRY_HOURS old, and acknowledges it (docs/webhooks.md).
resource "google_pubsub_subscription" "webhooks_push" {
  project                    = var.project_id
  name                       = local.webhooks_push.name
  topic                      = google_pubsub_topic.this[local.webhooks_push.topic].id
  ack_deadline_seconds       = local.webhooks_push.ackDeadlineSeconds
  message_retention_duration = "${local.webhooks_push.messageRetentionSeconds}s"
  labels                     = var.labels

  push_config {
    push_endpoint = "${google_cloudfunctions2_function.this[local.webhooks_push.push].service_config[0].uri}/projects/${var.project_id}/topics/${google_pubsub_topic.this[local.webhooks_push.topic].name}"

    oidc_token {
      service_account_email = google_service_account.invoker["webhooks"].email
      audience              = google_cloudfunctions2_function.this[local.webhooks_push.push].service_config[0].uri
    }
  }

  retry_policy {
    minimum_backoff = "${local.webhooks_push.minimumBackoffSeconds}s"
    maximum_backoff = "${local.webhooks_push.maximumBackoffSeconds}s"
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_service_iam_member.invoker,
    google_service_account_iam_member.pubsub_token_creator,
  ]
}
