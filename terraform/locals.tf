# Names, settings and environment variables, derived from one source: shared/core/topology.json, the
# file shared/core/topology.ts gives types to and the local stack runs on. Terraform does not repeat a
# single bucket suffix, topic or subscription name, or function entry point; test/terraform checks
# that it does not.

# No depends_on here: it would defer the read to apply whenever an API is added (e.g. Secret
# Manager for upload_token_secret_id), making the project number unknown and so replacing every
# binding of a service agent. The Resource Manager API answers before it is enabled here.
data "google_project" "this" {
  project_id = var.project_id
}

locals {
  name_prefix     = var.name_prefix == null ? var.project_id : var.name_prefix
  bucket_location = var.bucket_location == null ? var.region : var.bucket_location

  # Function names, which are also the names of their Cloud Run services.
  function_names = { for key, fn in local.topology.functions : key => "${var.function_name_prefix}-${key}" }

  # Functions called by Pub/Sub or Eventarc rather than by clients: each gets a dedicated invoker
  # service account that may call that function and nothing else.
  event_functions = { for key, fn in local.topology.functions : key => fn if fn.trigger != "http" }

  # Subscriptions by delivery: pull ones (no push endpoint) and push ones (jobsPush, webhooksPush),
  # each a for_each resource in pubsub.tf keyed by the topology's name.
  pull_subscriptions = { for key, sub in local.topology.subscriptions : key => sub if try(sub.push, null) == null }
  push_subscriptions = { for key, sub in local.topology.subscriptions : key => sub if try(sub.push, null) != null }
  jobs_push          = local.topology.subscriptions.jobsPush

  # Pub/Sub service agent: signs the push subscription's OIDC tokens and the Eventarc deliveries,
  # and moves dead letters. Its address is fixed by Google; google_project_service_identity would
  # name it too, but only in the google-beta provider.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"

  cleanup_schedule  = var.cleanup_schedule == null ? local.topology.schedule.cleanup.cron : var.cleanup_schedule
  cleanup_time_zone = var.cleanup_time_zone == null ? local.topology.schedule.cleanup.timeZone : var.cleanup_time_zone

  # -------------------------------------------------------------------------------------------
  # Environment variables. Every key is a name of shared/core/config.ts (ENV_SCHEMA); test/terraform
  # checks each key against ENV_VARS and that every variable without a default is set. An empty
  # value means "not set": such keys are dropped below, and the code's default applies.
  # -------------------------------------------------------------------------------------------

  # Where things are, and what to make: the same for every function, so that upload, ingest,
  # resize and cleanup always agree on the plan of an image. Buckets, topics and the Firestore
  # database go under the variable names shared/core/topology.json gives them (its `env` entries);
  # test/terraform checks each key against the topology.
  env_common = {
    UPLOADS_BUCKET       = google_storage_bucket.uploads.name
    IMAGES_BUCKET        = google_storage_bucket.images.name
    JOBS_TOPIC           = google_pubsub_topic.this["jobs"].name
    EVENTS_TOPIC         = google_pubsub_topic.this["events"].name
    FIRESTORE_DATABASE   = google_firestore_database.this.name
    GOOGLE_CLOUD_PROJECT = var.project_id
    PUBLIC_BASE_URL      = local.public_base_url
    WIDTHS               = var.widths == null ? "" : join(",", [for w in var.widths : tostring(w)])
    FORMATS              = var.formats == null ? "" : join(",", var.formats)
    FANOUT_STRATEGY      = var.fanout_strategy == null ? "" : var.fanout_strategy
    MAX_UPLOAD_BYTES     = var.max_upload_bytes == null ? "" : tostring(var.max_upload_bytes)
    MAX_INGEST_BYTES     = var.max_ingest_bytes == null ? "" : tostring(var.max_ingest_bytes)
  }

  # upload: who may call it and how much. UPLOAD_TOKEN comes from Secret Manager (functions.tf).
  # UPLOAD_AUTH is always explicit (settings.tf: upload_auth, or token/none by the token secret as
  # before), so that a token that fails to arrive stops the function instead of opening it. Quotas
  # left null keep the code's defaults (with jwt: 200 uploads, 2 GiB, 10 open tickets a day).
  env_upload = {
    UPLOAD_AUTH            = local.upload_auth
    JWT_ISSUER             = var.jwt_issuer == null ? "" : var.jwt_issuer
    JWT_AUDIENCE           = var.jwt_audience == null ? "" : var.jwt_audience
    JWT_JWKS_URL           = var.jwt_jwks_url == null ? "" : var.jwt_jwks_url
    QUOTA_UPLOADS_PER_DAY  = var.quotas.uploads_per_day == null ? "" : tostring(var.quotas.uploads_per_day)
    QUOTA_BYTES_PER_DAY    = var.quotas.bytes_per_day == null ? "" : tostring(var.quotas.bytes_per_day)
    QUOTA_OPEN_TICKETS     = var.quotas.open_tickets == null ? "" : tostring(var.quotas.open_tickets)
    CORS_ORIGINS           = join(",", var.upload_cors_origins)
    SIGNED_URL_TTL_SECONDS = var.signed_url_ttl_seconds == null ? "" : tostring(var.signed_url_ttl_seconds)
    SHARP_CONCURRENCY      = "1"
    MALLOC_ARENA_MAX       = tostring(var.malloc_arena_max)
  }

  # ingest: header probes only, one libvips thread is enough.
  env_ingest = {
    SHARP_CONCURRENCY = "1"
    MALLOC_ARENA_MAX  = tostring(var.malloc_arena_max)
  }

  # resize: the settings the bench shows matter for sharp.
  env_resize = {
    SHARP_CONCURRENCY = tostring(var.sharp_concurrency)
    SHARP_CACHE       = tostring(var.sharp_cache)
    MALLOC_ARENA_MAX  = tostring(var.malloc_arena_max)
  }

  # cleanup: retention, re-dispatch, and the dead-letter subscription it drains.
  env_cleanup = {
    JOBS_DEAD_LETTER_SUBSCRIPTION = google_pubsub_subscription.pull["jobsDeadLetterCleanup"].name
    ORIGINAL_RETENTION_DAYS       = var.original_retention_days == null ? "" : tostring(var.original_retention_days)
    INCOMING_MAX_AGE_HOURS        = var.incoming_max_age_hours == null ? "" : tostring(var.incoming_max_age_hours)
    DRY_RUN                       = var.cleanup_dry_run == null ? "" : tostring(var.cleanup_dry_run)
  }

  # webhooks: the receivers (fixed here, never taken from a request) and where events go that a
  # receiver did not accept within WEBHOOK_RETRY_HOURS. WEBHOOK_SECRET comes from Secret Manager
  # (functions.tf).
  env_webhooks = {
    WEBHOOK_URLS              = join(",", var.webhook_urls)
    WEBHOOK_DEAD_LETTER_TOPIC = google_pubsub_topic.this["webhooksDeadLetter"].name
    WEBHOOK_RETRY_HOURS       = tostring(var.webhook_retry_hours)
  }

  # extra_env first: it may not name a variable set here (its validation), and if it ever did, the
  # module's value would win.
  function_env = {
    upload   = { for k, v in merge(var.extra_env, local.env_common, local.env_upload) : k => v if v != "" }
    ingest   = { for k, v in merge(var.extra_env, local.env_common, local.env_ingest) : k => v if v != "" }
    resize   = { for k, v in merge(var.extra_env, local.env_common, local.env_resize) : k => v if v != "" }
    cleanup  = { for k, v in merge(var.extra_env, local.env_common, local.env_cleanup) : k => v if v != "" }
    webhooks = { for k, v in merge(var.extra_env, local.env_common, local.env_webhooks) : k => v if v != "" }
  }
}
