# Settings that depend only on the inputs and on shared/core/topology.json (no resource, no data source),
# so that the variables' validations can read them: test/terraform plans variables.tf with this
# file alone, without any provider.
locals {
  topology = jsondecode(file("${path.module}/../shared/core/topology.json"))

  # Per-function defaults; var.functions overrides any of them, attribute by attribute.
  # upload probes headers and streams to storage: little CPU, 4 requests per instance (above 1
  # needs at least 1 vCPU on gen2); 60 s, a slower upload is better retried by the client.
  # ingest reads headers and copies objects; 120 s covers moving a large direct upload.
  # resize is where sharp works: 2 GiB allows 2 vCPUs, which libvips uses for one image, so one
  # request per instance; its timeout stays below the push subscription's ack deadline.
  # cleanup lists and deletes, never decodes; one instance so that two runs never overlap.
  # Instances and concurrency come from the topology, which the local stack's admission (429
  # beyond max_instances × concurrency) reads too.
  function_sizes = {
    upload  = { memory = "1Gi", cpu = "1", timeout_seconds = 60 }
    ingest  = { memory = "1Gi", cpu = "1", timeout_seconds = 120 }
    resize  = { memory = "2Gi", cpu = "2", timeout_seconds = 540 }
    cleanup = { memory = "512Mi", cpu = null, timeout_seconds = 540 }
    # webhooks waits on receivers (10 s each, in parallel), never decodes: small, many at once; its
    # timeout stays below its push subscription's ack deadline.
    webhooks = { memory = "512Mi", cpu = "1", timeout_seconds = 30 }
  }
  function_defaults = {
    for key, size in local.function_sizes : key => merge(size, {
      min_instances = 0
      max_instances = local.topology.functions[key].maxInstances
      concurrency   = local.topology.functions[key].concurrency
    })
  }

  scheduler_region = var.scheduler_region == null ? var.region : var.scheduler_region

  # How upload authenticates (UPLOAD_AUTH): upload_auth, or what it was before that variable
  # existed: the shared token when its secret is named, IAM alone otherwise.
  upload_auth = var.upload_auth != null ? var.upload_auth : (var.upload_token_secret_id == null ? "none" : "token")

  # Environment variable names that hold secrets, which extra_env refuses (Secret Manager's job).
  secret_env_pattern = "(^|_)(TOKENS?|SECRETS?|PASSWORDS?|PASSWD|PASSPHRASE|KEYS?|CREDENTIALS?)(_|$)"

  # Every environment variable the module sets itself (the env_* maps of locals.tf), with where its
  # value comes from: extra_env may not set them, so that it cannot undo a validated setting
  # (UPLOAD_AUTH = "none" on a public upload, say). The token from Secret Manager, UPLOAD_TOKEN, is
  # refused as a secret. test/terraform checks that this is exactly the keys of the env_* maps.
  module_env = {
    UPLOADS_BUCKET                = "name_prefix (the module's uploads bucket)"
    IMAGES_BUCKET                 = "name_prefix (the module's images bucket)"
    JOBS_TOPIC                    = "shared/core/topology.json"
    EVENTS_TOPIC                  = "shared/core/topology.json"
    JOBS_DEAD_LETTER_SUBSCRIPTION = "shared/core/topology.json"
    FIRESTORE_DATABASE            = "shared/core/topology.json"
    GOOGLE_CLOUD_PROJECT          = "project_id"
    PUBLIC_BASE_URL               = "serving and public_base_url"
    WIDTHS                        = "widths"
    FORMATS                       = "formats"
    FANOUT_STRATEGY               = "fanout_strategy"
    MAX_UPLOAD_BYTES              = "max_upload_bytes"
    MAX_INGEST_BYTES              = "max_ingest_bytes"
    UPLOAD_AUTH                   = "upload_auth"
    JWT_ISSUER                    = "jwt_issuer"
    JWT_AUDIENCE                  = "jwt_audience"
    JWT_JWKS_URL                  = "jwt_jwks_url"
    QUOTA_UPLOADS_PER_DAY         = "quotas.uploads_per_day"
    QUOTA_BYTES_PER_DAY           = "quotas.bytes_per_day"
    QUOTA_OPEN_TICKETS            = "quotas.open_tickets"
    CORS_ORIGINS                  = "upload_cors_origins"
    SIGNED_URL_TTL_SECONDS        = "signed_url_ttl_seconds"
    SHARP_CONCURRENCY             = "sharp_concurrency"
    SHARP_CACHE                   = "sharp_cache"
    MALLOC_ARENA_MAX              = "malloc_arena_max"
    ORIGINAL_RETENTION_DAYS       = "original_retention_days"
    INCOMING_MAX_AGE_HOURS        = "incoming_max_age_hours"
    DRY_RUN                       = "cleanup_dry_run"
    WEBHOOK_URLS                  = "webhook_urls"
    WEBHOOK_DEAD_LETTER_TOPIC     = "shared/core/topology.json"
    WEBHOOK_RETRY_HOURS           = "webhook_retry_hours"
  }

  function_settings = {
    for key, defaults in local.function_defaults :
    key => merge(defaults, { for name, value in try(var.functions[key], {}) : name => value if value != null })
  }
}
