# The Cloud Functions (2nd gen), one per function of shared/core/topology.json, on Node.js 22, built from
# the packaged source (source.tf). Each runs as its own service account (iam.tf) with the
# environment generated in locals.tf from the names shared/core/config.ts reads.
#
# - upload:  HTTP, the public face (IAM or, if allowed, unauthenticated plus end users' ID tokens
#            or a bearer token: variables.tf refuses a public upload without either).
# - ingest:  Eventarc, google.cloud.storage.object.v1.finalized on the uploads bucket.
# - resize:  HTTP, called only by the jobs push subscription (pubsub.tf) with an OIDC token.
#            Its handler must be registered as a CloudEvent function (functions.cloudEvent):
#            functions-framework converts the push request into a Pub/Sub CloudEvent.
# - cleanup: Eventarc, google.cloud.pubsub.topic.v1.messagePublished on the cleanup topic.
# - webhooks: HTTP, called only by the events topic's webhooks push subscription (pubsub.tf) with an
#            OIDC token; POSTs each event, signed, to var.webhook_urls (docs/webhooks.md).

locals {
  function_runtime = "nodejs22"

  function_descriptions = {
    upload   = "Accepts image uploads (HTTP) and reports their status."
    ingest   = "Ingests objects finalized in the uploads bucket and dispatches their resize jobs."
    resize   = "Renders image variants with sharp for one job (pushed by the jobs subscription)."
    cleanup  = "Scheduled cleanup: retention, re-dispatch of stuck jobs, dead letters, orphans."
    webhooks = "POSTs each event, signed per Standard Webhooks, to the configured receivers (pushed by the webhooks subscription)."
  }

  # Eventarc triggers of the event functions, by the topology's trigger kind. A Cloud Storage
  # trigger must be in its bucket's location; a missed cleanup tick is harmless (the next one
  # comes within minutes), so it is not retried.
  event_triggers = {
    for key, fn in local.topology.functions : key => {
      region        = fn.trigger == "storage-finalize" ? lower(local.buckets[fn.bucket].location) : var.region
      event_type    = fn.trigger == "storage-finalize" ? "google.cloud.storage.object.v1.finalized" : "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic  = fn.trigger == "pubsub" ? google_pubsub_topic.this[fn.topic].id : null
      retry_policy  = fn.trigger == "storage-finalize" ? "RETRY_POLICY_RETRY" : "RETRY_POLICY_DO_NOT_RETRY"
      event_filters = fn.trigger == "storage-finalize" ? [{ attribute = "bucket", value = local.buckets[fn.bucket].name }] : []
    } if contains(["storage-finalize", "pubsub"], fn.trigger)
  }
}

resource "google_cloudfunctions2_function" "this" {
  for_each = local.topology.functions

  project     = var.project_id
  location    = var.region
  name        = local.function_names[each.key]
  description = local.function_descriptions[each.key]
  labels      = var.labels

  build_config {
    runtime         = local.function_runtime
    entry_point     = each.value.entryPoint
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.function_source.name
      }
    }
  }

  service_config {
    available_memory                 = local.function_settings[each.key].memory
    available_cpu                    = local.function_settings[each.key].cpu
    timeout_seconds                  = local.function_settings[each.key].timeout_seconds
    min_instance_count               = local.function_settings[each.key].min_instances
    max_instance_count               = local.function_settings[each.key].max_instances
    max_instance_request_concurrency = local.function_settings[each.key].concurrency
    ingress_settings                 = each.value.trigger == "http" ? "ALLOW_ALL" : var.event_functions_ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function[each.key].email
    environment_variables            = local.function_env[each.key]

    # upload only: its bearer token, from Secret Manager.
    dynamic "secret_environment_variables" {
      for_each = each.key == "upload" && var.upload_token_secret_id != null ? [var.upload_token_secret_id] : []
      content {
        key        = "UPLOAD_TOKEN"
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = var.upload_token_secret_version
      }
    }

    # webhooks only: its signing secret (whsec_ + base64), from Secret Manager.
    dynamic "secret_environment_variables" {
      for_each = each.key == "webhooks" && var.webhook_secret_id != null ? [var.webhook_secret_id] : []
      content {
        key        = "WEBHOOK_SECRET"
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = var.webhook_secret_version
      }
    }
  }

  dynamic "event_trigger" {
    for_each = contains(keys(local.event_triggers), each.key) ? [local.event_triggers[each.key]] : []
    content {
      trigger_region        = event_trigger.value.region
      event_type            = event_trigger.value.event_type
      pubsub_topic          = event_trigger.value.pubsub_topic
      retry_policy          = event_trigger.value.retry_policy
      service_account_email = google_service_account.invoker[each.key].email

      dynamic "event_filters" {
        for_each = event_trigger.value.event_filters
        content {
          attribute = event_filters.value.attribute
          value     = event_filters.value.value
        }
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.upload_token,
    google_secret_manager_secret_iam_member.webhook_secret,
    # APIs, service agents and grants, and the time they take to propagate (below).
    time_sleep.iam_propagation,
  ]
}

# depends_on orders the grants but does not wait for them: Google creates service agents (Eventarc's
# among them) when their API is enabled, and roles propagate over minutes. Without this wait the
# first apply on a new project typically fails with "Permission denied while using the Eventarc
# Service Agent" (hashicorp/terraform-provider-google#25294) or a build that may not write logs.
resource "time_sleep" "iam_propagation" {
  create_duration = var.iam_propagation_wait

  depends_on = [
    google_project_service.this,
    google_project_iam_member.build,
    # Eventarc checks these when it creates the triggers.
    google_project_iam_member.gcs_pubsub_publisher,
    google_project_iam_member.ingest_event_receiver,
    google_service_account_iam_member.pubsub_token_creator,
    # The functions' Firestore access, which Firestore caches for up to 5 minutes.
    google_project_iam_member.function_firestore,
  ]
}

# The four resources of earlier versions are the instances of the for_each: no redeploy.
moved {
  from = google_cloudfunctions2_function.upload
  to   = google_cloudfunctions2_function.this["upload"]
}
moved {
  from = google_cloudfunctions2_function.ingest
  to   = google_cloudfunctions2_function.this["ingest"]
}
moved {
  from = google_cloudfunctions2_function.resize
  to   = google_cloudfunctions2_function.this["resize"]
}
moved {
  from = google_cloudfunctions2_function.cleanup
  to   = google_cloudfunctions2_function.this["cleanup"]
}
