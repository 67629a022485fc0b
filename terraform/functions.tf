# The four Cloud Functions (2nd gen), on Node.js 22, built from the packaged source (source.tf).
# Entry points come from shared/topology.json; each function runs as its own service account
# (iam.tf) with the environment generated in locals.tf from the names shared/config.ts reads.
#
# - upload:  HTTP, the public face (IAM or, if allowed, unauthenticated plus a bearer token).
# - ingest:  Eventarc, google.cloud.storage.object.v1.finalized on the uploads bucket.
# - resize:  HTTP, called only by the jobs push subscription (pubsub.tf) with an OIDC token.
#            Its handler must be registered as a CloudEvent function (functions.cloudEvent):
#            functions-framework converts the push request into a Pub/Sub CloudEvent.
# - cleanup: Eventarc, google.cloud.pubsub.topic.v1.messagePublished on the cleanup topic.

locals {
  function_runtime = "nodejs22"
}

resource "google_cloudfunctions2_function" "upload" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.upload
  description = "Accepts image uploads (HTTP) and reports their status."
  labels      = var.labels

  build_config {
    runtime         = local.function_runtime
    entry_point     = local.topology.functions.upload.entryPoint
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.function_source.name
      }
    }
  }

  service_config {
    available_memory                 = var.upload_function.memory
    available_cpu                    = var.upload_function.cpu
    timeout_seconds                  = var.upload_function.timeout_seconds
    min_instance_count               = var.upload_function.min_instances
    max_instance_count               = var.upload_function.max_instances
    max_instance_request_concurrency = var.upload_function.concurrency
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function["upload"].email
    environment_variables            = local.function_env.upload

    dynamic "secret_environment_variables" {
      for_each = var.upload_token_secret_id == null ? [] : [var.upload_token_secret_id]
      content {
        key        = "UPLOAD_TOKEN"
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = var.upload_token_secret_version
      }
    }
  }

  depends_on = [
    google_project_service.this,
    google_secret_manager_secret_iam_member.upload_token,
  ]
}

resource "google_cloudfunctions2_function" "ingest" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.ingest
  description = "Ingests objects finalized in the uploads bucket and dispatches their resize jobs."
  labels      = var.labels

  build_config {
    runtime         = local.function_runtime
    entry_point     = local.topology.functions.ingest.entryPoint
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.function_source.name
      }
    }
  }

  service_config {
    available_memory                 = var.ingest_function.memory
    available_cpu                    = var.ingest_function.cpu
    timeout_seconds                  = var.ingest_function.timeout_seconds
    min_instance_count               = var.ingest_function.min_instances
    max_instance_count               = var.ingest_function.max_instances
    max_instance_request_concurrency = var.ingest_function.concurrency
    ingress_settings                 = var.event_functions_ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function["ingest"].email
    environment_variables            = local.function_env.ingest
  }

  event_trigger {
    # A Cloud Storage trigger must be in the bucket's location.
    trigger_region        = lower(google_storage_bucket.uploads.location)
    event_type            = "google.cloud.storage.object.v1.finalized"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.invoker["ingest"].email
    event_filters {
      attribute = "bucket"
      value     = google_storage_bucket.uploads.name
    }
  }

  depends_on = [
    google_project_service.this,
    # Eventarc checks these when it creates the trigger.
    google_project_iam_member.gcs_pubsub_publisher,
    google_project_iam_member.ingest_event_receiver,
    google_service_account_iam_member.pubsub_token_creator,
  ]
}

resource "google_cloudfunctions2_function" "resize" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.resize
  description = "Renders image variants with sharp for one job (pushed by the jobs subscription)."
  labels      = var.labels

  build_config {
    runtime         = local.function_runtime
    entry_point     = local.topology.functions.resize.entryPoint
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.function_source.name
      }
    }
  }

  service_config {
    available_memory                 = var.resize_function.memory
    available_cpu                    = var.resize_function.cpu
    timeout_seconds                  = var.resize_function.timeout_seconds
    min_instance_count               = var.resize_function.min_instances
    max_instance_count               = var.resize_function.max_instances
    max_instance_request_concurrency = var.resize_function.concurrency
    ingress_settings                 = var.event_functions_ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function["resize"].email
    environment_variables            = local.function_env.resize
  }

  depends_on = [google_project_service.this]
}

resource "google_cloudfunctions2_function" "cleanup" {
  project     = var.project_id
  location    = var.region
  name        = local.function_names.cleanup
  description = "Scheduled cleanup: retention, re-dispatch of stuck jobs, dead letters, orphans."
  labels      = var.labels

  build_config {
    runtime         = local.function_runtime
    entry_point     = local.topology.functions.cleanup.entryPoint
    service_account = local.build_service_account
    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.function_source.name
      }
    }
  }

  service_config {
    available_memory                 = var.cleanup_function.memory
    available_cpu                    = var.cleanup_function.cpu
    timeout_seconds                  = var.cleanup_function.timeout_seconds
    min_instance_count               = var.cleanup_function.min_instances
    max_instance_count               = var.cleanup_function.max_instances
    max_instance_request_concurrency = var.cleanup_function.concurrency
    ingress_settings                 = var.event_functions_ingress
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.function["cleanup"].email
    environment_variables            = local.function_env.cleanup
  }

  event_trigger {
    trigger_region = var.region
    event_type     = "google.cloud.pubsub.topic.v1.messagePublished"
    pubsub_topic   = google_pubsub_topic.this[local.topology.functions.cleanup.topic].id
    # A missed tick is harmless: the next one comes within minutes.
    retry_policy          = "RETRY_POLICY_DO_NOT_RETRY"
    service_account_email = google_service_account.invoker["cleanup"].email
  }

  depends_on = [
    google_project_service.this,
    google_service_account_iam_member.pubsub_token_creator,
  ]
}

# A public upload endpoint without the function's own token check accepts images from anyone.
check "public_upload_has_token" {
  assert {
    condition     = !var.allow_unauthenticated_upload || var.upload_token_secret_id != null
    error_message = "allow_unauthenticated_upload is true but upload_token_secret_id is not set: anyone on the internet can upload. Set upload_token_secret_id so that upload checks a bearer token."
  }
}
