# Inputs. Every variable is typed and described; where a value can be checked before any API call,
# it is validated. Names of buckets, topics and subscriptions are NOT inputs: they come from
# shared/topology.json (see locals.tf), the same file the code and the local stack read.

# ---------------------------------------------------------------------------------------------
# Project and naming
# ---------------------------------------------------------------------------------------------

variable "project_id" {
  description = "ID of the Google Cloud project to deploy into (it must exist and have billing enabled)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "region" {
  description = "Region for the functions, the Eventarc triggers and the Cloud Scheduler job (and the buckets, unless bucket_location is set)."
  type        = string
  default     = "us-central1"

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+$", var.region))
    error_message = "region must be a region name such as us-central1 or europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of the bucket names: buckets are named \"{name_prefix}-{suffix}\" with the suffixes of shared/topology.json (e.g. my-project-uploads). Bucket names are global, so the default is the project ID."
  type        = string
  default     = null

  validation {
    condition = var.name_prefix == null || (
      can(regex("^[a-z0-9][a-z0-9-]*[a-z0-9]$", var.name_prefix)) &&
      length(coalesce(var.name_prefix, "xx")) <= 50 &&
      !startswith(coalesce(var.name_prefix, "xx"), "goog") &&
      !strcontains(coalesce(var.name_prefix, "xx"), "google")
    )
    error_message = "name_prefix must be 2-50 lowercase letters, digits or hyphens, start and end with a letter or digit, and must not begin with \"goog\" or contain \"google\" (Cloud Storage bucket naming rules)."
  }
}

variable "bucket_location" {
  description = "Location of the uploads, images and source buckets. Default (null): the region, which keeps the Cloud Storage trigger of ingest in the same location as its bucket, as Eventarc requires."
  type        = string
  default     = null
}

variable "function_name_prefix" {
  description = "Prefix of the function names (\"{prefix}-upload\", ...) and of the service account IDs (\"{prefix}-resize\", \"{prefix}-resize-invoker\", ...)."
  type        = string
  default     = "image"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,8}[a-z0-9]$", var.function_name_prefix))
    error_message = "function_name_prefix must be 2-10 lowercase letters, digits or hyphens, start with a letter and end with a letter or digit (service account IDs are limited to 30 characters)."
  }
}

variable "labels" {
  description = "Labels added to the buckets, topics, subscriptions and functions."
  type        = map(string)
  default     = {}
}

variable "enable_apis" {
  description = "Enable the APIs the pipeline needs with google_project_service (they are never disabled on destroy). Set to false when the project is managed elsewhere."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete the buckets together with the images in them. Off by default: destroying a deployment must not silently delete its data."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Storage
# ---------------------------------------------------------------------------------------------

variable "incoming_max_age_days" {
  description = "Lifecycle rule on the uploads bucket: objects under the `incoming/` prefix (direct uploads that ingest never moved) are deleted after this many days. A backstop: cleanup already removes them after INCOMING_MAX_AGE_HOURS."
  type        = number
  default     = 2

  validation {
    condition     = var.incoming_max_age_days >= 1 && floor(var.incoming_max_age_days) == var.incoming_max_age_days
    error_message = "incoming_max_age_days must be a whole number of days, at least 1."
  }
}

variable "images_public_read" {
  description = "Grant allUsers read access (roles/storage.objectViewer) to the images bucket so that variant URLs work in browsers. Off by default: the bucket is private and public access prevention is enforced."
  type        = bool
  default     = false
}

variable "images_cors" {
  description = "CORS rules of the images bucket (for pages that fetch manifests or variants with fetch/XHR). Each rule lists origins; methods, response headers and max age have defaults."
  type = list(object({
    origins          = list(string)
    methods          = optional(list(string), ["GET", "HEAD"])
    response_headers = optional(list(string), ["Content-Type"])
    max_age_seconds  = optional(number, 3600)
  }))
  default = []

  validation {
    condition     = alltrue([for rule in var.images_cors : length(rule.origins) > 0])
    error_message = "Every images_cors rule must list at least one origin."
  }
}

# ---------------------------------------------------------------------------------------------
# Functions: resources per function
# ---------------------------------------------------------------------------------------------

variable "upload_function" {
  description = <<-EOT
    Resources of the upload function (HTTP). It probes image headers only and streams the body to
    Cloud Storage, so it needs little CPU: 1 GiB memory with 1 vCPU holds 4 concurrent requests of
    up to MAX_UPLOAD_BYTES each (a per-instance concurrency above 1 requires at least 1 vCPU on
    Cloud Functions gen2). Timeout 60 s: an upload that takes longer is better retried by the client.
  EOT
  type = object({
    memory          = optional(string, "1Gi")
    cpu             = optional(string, "1")
    timeout_seconds = optional(number, 60)
    min_instances   = optional(number, 0)
    max_instances   = optional(number, 20)
    concurrency     = optional(number, 4)
  })
  default = {}

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.upload_function.memory))
    error_message = "upload_function.memory must be a size such as 512Mi or 1Gi."
  }
  validation {
    condition     = var.upload_function.timeout_seconds >= 1 && var.upload_function.timeout_seconds <= 3600
    error_message = "upload_function.timeout_seconds must be between 1 and 3600 (the limit for HTTP functions)."
  }
  validation {
    condition     = var.upload_function.concurrency >= 1 && var.upload_function.concurrency <= 1000 && (var.upload_function.concurrency == 1 || try(tonumber(var.upload_function.cpu) >= 1, false))
    error_message = "upload_function.concurrency must be 1-1000, and above 1 only with cpu of at least \"1\"."
  }
  validation {
    condition     = var.upload_function.min_instances >= 0 && var.upload_function.max_instances >= 1 && var.upload_function.min_instances <= var.upload_function.max_instances
    error_message = "upload_function needs 0 <= min_instances <= max_instances and max_instances >= 1."
  }
}

variable "ingest_function" {
  description = <<-EOT
    Resources of the ingest function (Cloud Storage finalize on the uploads bucket). It reads the
    original's header with sharp, plans the jobs and publishes them; it never decodes the full
    image, so 1 GiB with 1 vCPU and 4 concurrent events is ample. Timeout 120 s covers moving a
    large direct upload from incoming/ to originals/. Event-driven functions allow at most 540 s.
  EOT
  type = object({
    memory          = optional(string, "1Gi")
    cpu             = optional(string, "1")
    timeout_seconds = optional(number, 120)
    min_instances   = optional(number, 0)
    max_instances   = optional(number, 20)
    concurrency     = optional(number, 4)
  })
  default = {}

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.ingest_function.memory))
    error_message = "ingest_function.memory must be a size such as 512Mi or 1Gi."
  }
  validation {
    condition     = var.ingest_function.timeout_seconds >= 1 && var.ingest_function.timeout_seconds <= 540
    error_message = "ingest_function.timeout_seconds must be between 1 and 540 (the limit for event-driven functions)."
  }
  validation {
    condition     = var.ingest_function.concurrency >= 1 && var.ingest_function.concurrency <= 1000 && (var.ingest_function.concurrency == 1 || try(tonumber(var.ingest_function.cpu) >= 1, false))
    error_message = "ingest_function.concurrency must be 1-1000, and above 1 only with cpu of at least \"1\"."
  }
  validation {
    condition     = var.ingest_function.min_instances >= 0 && var.ingest_function.max_instances >= 1 && var.ingest_function.min_instances <= var.ingest_function.max_instances
    error_message = "ingest_function needs 0 <= min_instances <= max_instances and max_instances >= 1."
  }
}

variable "resize_function" {
  description = <<-EOT
    Resources of the resize function (fed by the jobs push subscription), where sharp does the
    work. 2 GiB memory allows 2 vCPUs on Cloud Functions gen2, and libvips already uses both cores
    for one image, so per-instance concurrency is 1: a second concurrent image would only compete
    for the same cores while doubling the decoded-pixel memory (AVIF encoding of a large original
    is the peak). Scale out with max_instances instead. Timeout 540 s, at most 600: the push
    subscription's ack deadline is set to min(600, timeout) so that Pub/Sub never redelivers a job
    that is still running. Defaults to be confirmed by the bench.
  EOT
  type = object({
    memory          = optional(string, "2Gi")
    cpu             = optional(string, "2")
    timeout_seconds = optional(number, 540)
    min_instances   = optional(number, 0)
    max_instances   = optional(number, 10)
    concurrency     = optional(number, 1)
  })
  default = {}

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.resize_function.memory))
    error_message = "resize_function.memory must be a size such as 2Gi or 4Gi."
  }
  validation {
    condition     = var.resize_function.timeout_seconds >= 10 && var.resize_function.timeout_seconds <= 600
    error_message = "resize_function.timeout_seconds must be between 10 and 600: the push subscription's ack deadline (at most 600 s) must cover a whole job."
  }
  validation {
    condition     = var.resize_function.concurrency >= 1 && var.resize_function.concurrency <= 1000 && (var.resize_function.concurrency == 1 || try(tonumber(var.resize_function.cpu) >= 1, false))
    error_message = "resize_function.concurrency must be 1-1000, and above 1 only with cpu of at least \"1\"."
  }
  validation {
    condition     = var.resize_function.min_instances >= 0 && var.resize_function.max_instances >= 1 && var.resize_function.min_instances <= var.resize_function.max_instances
    error_message = "resize_function needs 0 <= min_instances <= max_instances and max_instances >= 1."
  }
}

variable "cleanup_function" {
  description = <<-EOT
    Resources of the cleanup function (fed by the cleanup topic on a schedule). It lists and
    deletes objects and re-dispatches stuck jobs, never decodes images: 512 MiB with the CPU that
    memory implies (cpu = null). One instance at a time (max_instances = 1) so that two scheduled
    runs never work on the same objects; timeout 540 s, the limit for event-driven functions
    (CLEANUP_MAX_SECONDS, default 240, bounds one run well inside it).
  EOT
  type = object({
    memory          = optional(string, "512Mi")
    cpu             = optional(string)
    timeout_seconds = optional(number, 540)
    min_instances   = optional(number, 0)
    max_instances   = optional(number, 1)
    concurrency     = optional(number, 1)
  })
  default = {}

  validation {
    condition     = can(regex("^[0-9]+(Mi|Gi|M|G)$", var.cleanup_function.memory))
    error_message = "cleanup_function.memory must be a size such as 512Mi or 1Gi."
  }
  validation {
    condition     = var.cleanup_function.timeout_seconds >= 1 && var.cleanup_function.timeout_seconds <= 540
    error_message = "cleanup_function.timeout_seconds must be between 1 and 540 (the limit for event-driven functions)."
  }
  validation {
    condition     = var.cleanup_function.concurrency >= 1 && var.cleanup_function.concurrency <= 1000 && (var.cleanup_function.concurrency == 1 || try(tonumber(var.cleanup_function.cpu) >= 1, false))
    error_message = "cleanup_function.concurrency must be 1-1000, and above 1 only with cpu of at least \"1\"."
  }
  validation {
    condition     = var.cleanup_function.min_instances >= 0 && var.cleanup_function.max_instances >= 1 && var.cleanup_function.min_instances <= var.cleanup_function.max_instances
    error_message = "cleanup_function needs 0 <= min_instances <= max_instances and max_instances >= 1."
  }
}

variable "event_functions_ingress" {
  description = "Ingress setting of ingest, resize and cleanup, which only Eventarc and Pub/Sub call. ALLOW_INTERNAL_ONLY (default) accepts those Google services in the same project and refuses the internet; IAM (roles/run.invoker) applies in every case."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.event_functions_ingress)
    error_message = "event_functions_ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "build_service_account" {
  description = "Email of a service account for Cloud Build to build the functions with (build_config.service_account). Default (null): the project's default build service account. A custom one needs roles/logging.logWriter, roles/artifactregistry.writer and read access to the source objects; Terraform does not grant these, to keep project-wide storage roles out of this configuration."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^[^@\\s]+@[^@\\s]+\\.iam\\.gserviceaccount\\.com$", var.build_service_account))
    error_message = "build_service_account must be a service account email (name@project.iam.gserviceaccount.com)."
  }
}

variable "function_source_dir" {
  description = "Directory with the packaged function source (dist/, shared/topology.json, package.json, package-lock.json), as `npm run build` writes it. Default (null): build/function-source inside this module."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# Access to upload
# ---------------------------------------------------------------------------------------------

variable "allow_unauthenticated_upload" {
  description = "Make the upload function public (allUsers gets roles/run.invoker). Off by default. When on, set upload_token_secret_id as well so that the function's own bearer-token check protects it; Terraform warns otherwise."
  type        = bool
  default     = false
}

variable "upload_invoker_members" {
  description = "IAM members (user:, group:, serviceAccount:, domain:) allowed to call the upload function when it is not public. allUsers and allAuthenticatedUsers are refused here: use allow_unauthenticated_upload."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for m in var.upload_invoker_members :
      can(regex("^(user|group|serviceAccount|domain|principal|principalSet):.+", m))
    ])
    error_message = "Each upload_invoker_members entry must be an IAM member such as user:alice@example.com or serviceAccount:app@project.iam.gserviceaccount.com (allUsers/allAuthenticatedUsers only through allow_unauthenticated_upload)."
  }
}

variable "upload_token_secret_id" {
  description = "ID of an existing Secret Manager secret (in project_id) holding the upload bearer token (at least 16 characters). When set, the upload function receives it as UPLOAD_TOKEN through secret_environment_variables and its service account may access that secret only. Create the secret outside Terraform so that the token never enters the state."
  type        = string
  default     = null

  validation {
    condition     = var.upload_token_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.upload_token_secret_id))
    error_message = "upload_token_secret_id must be a secret ID (letters, digits, _ and -), not a full resource name."
  }
}

variable "upload_token_secret_version" {
  description = "Version of the upload token secret (a number, or \"latest\"). A pinned number is safer: a new version only takes effect when the function is redeployed with it."
  type        = string
  default     = "latest"

  validation {
    condition     = var.upload_token_secret_version == "latest" || can(regex("^[1-9][0-9]*$", var.upload_token_secret_version))
    error_message = "upload_token_secret_version must be \"latest\" or a version number."
  }
}

variable "upload_cors_origins" {
  description = "Origins allowed to call the upload function from a browser (CORS_ORIGINS). Empty: no CORS headers (server-to-server use only)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.upload_cors_origins : o == "*" || can(regex("^https?://[^/]+$", o))])
    error_message = "Each upload_cors_origins entry must be \"*\" or an origin such as https://example.com (no path)."
  }
}

# ---------------------------------------------------------------------------------------------
# Pipeline settings passed to the functions as environment variables. null leaves the variable
# unset so that the code's own default (shared/config.ts) applies; Terraform does not repeat it.
# ---------------------------------------------------------------------------------------------

variable "widths" {
  description = "Variant widths in pixels (WIDTHS). null: the code's default."
  type        = list(number)
  default     = null

  validation {
    condition     = var.widths == null || (length(coalesce(var.widths, [1])) > 0 && alltrue([for w in coalesce(var.widths, [16]) : w >= 16 && w <= 8192 && floor(w) == w]))
    error_message = "widths must list whole numbers between 16 and 8192."
  }
}

variable "formats" {
  description = "Output formats (FORMATS): any of avif, webp, jpeg. null: the code's default."
  type        = list(string)
  default     = null

  validation {
    condition     = var.formats == null || (length(coalesce(var.formats, ["jpeg"])) > 0 && alltrue([for f in coalesce(var.formats, ["jpeg"]) : contains(["avif", "webp", "jpeg"], f)]))
    error_message = "formats must list one or more of avif, webp, jpeg."
  }
}

variable "fanout_strategy" {
  description = "How ingest splits an image's variants into jobs (FANOUT_STRATEGY): per-width, per-format, balanced or per-image. null: the code's default."
  type        = string
  default     = null

  validation {
    condition     = var.fanout_strategy == null || contains(["per-width", "per-format", "balanced", "per-image"], coalesce(var.fanout_strategy, "balanced"))
    error_message = "fanout_strategy must be per-width, per-format, balanced or per-image."
  }
}

variable "max_upload_bytes" {
  description = "Largest upload accepted (MAX_UPLOAD_BYTES). At most 32 MiB: Cloud Run (and so Cloud Functions gen2) refuses larger HTTP/1 request bodies. null: the code's default."
  type        = number
  default     = null

  validation {
    condition     = var.max_upload_bytes == null || (coalesce(var.max_upload_bytes, 1) >= 1 && coalesce(var.max_upload_bytes, 1) <= 33554432)
    error_message = "max_upload_bytes must be between 1 and 33554432 (32 MiB)."
  }
}

variable "public_base_url" {
  description = "Base URL of variant URLs in manifests (PUBLIC_BASE_URL), e.g. a CDN in front of the images bucket. null: https://storage.googleapis.com/{images bucket}."
  type        = string
  default     = null

  validation {
    condition     = var.public_base_url == null || can(regex("^https?://", coalesce(var.public_base_url, "https://")))
    error_message = "public_base_url must be an http(s) URL."
  }
}

variable "original_retention_days" {
  description = "Days cleanup keeps originals after their variants are done (ORIGINAL_RETENTION_DAYS; 0 keeps them forever). null: the code's default."
  type        = number
  default     = null
}

variable "incoming_max_age_hours" {
  description = "Hours after which cleanup deletes abandoned direct uploads under incoming/ (INCOMING_MAX_AGE_HOURS). null: the code's default. Keep it below incoming_max_age_days x 24, the lifecycle backstop."
  type        = number
  default     = null
}

variable "cleanup_dry_run" {
  description = "Make cleanup log what it would delete or re-dispatch without doing it (DRY_RUN). null: the code's default (off)."
  type        = bool
  default     = null
}

variable "extra_env" {
  description = "Further environment variables for all four functions, for settings without a variable of their own (e.g. AVIF_QUALITY, JPEG_MOZJPEG, MAX_INPUT_PIXELS). Use names from shared/config.ts: the code ignores any other name, and a bad value stops the function at cold start with a message naming it. Values here override the generated ones."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.extra_env) : can(regex("^[A-Z][A-Z0-9_]*$", k))])
    error_message = "extra_env keys must be environment variable names in upper case (A-Z, 0-9, _)."
  }
}

# ---------------------------------------------------------------------------------------------
# Runtime settings the bench shows matter for sharp
# ---------------------------------------------------------------------------------------------

variable "sharp_concurrency" {
  description = "libvips threads per image in resize (SHARP_CONCURRENCY). Default 2, the vCPUs of the default resize_function; more threads than cores only adds contention."
  type        = number
  default     = 2

  validation {
    condition     = var.sharp_concurrency >= 0 && var.sharp_concurrency <= 64 && floor(var.sharp_concurrency) == var.sharp_concurrency
    error_message = "sharp_concurrency must be a whole number between 0 and 64 (0 lets libvips choose)."
  }
}

variable "sharp_cache" {
  description = "Keep libvips' operation cache on (SHARP_CACHE). Off by default: every job reads a different image, so the cache only holds memory."
  type        = bool
  default     = false
}

variable "malloc_arena_max" {
  description = "glibc malloc arenas (MALLOC_ARENA_MAX) for upload, ingest and resize. Default 2: with glibc's default of 8 per core, libvips' worker threads fragment memory and the resident size of a sharp process keeps growing."
  type        = number
  default     = 2

  validation {
    condition     = var.malloc_arena_max >= 1 && var.malloc_arena_max <= 64 && floor(var.malloc_arena_max) == var.malloc_arena_max
    error_message = "malloc_arena_max must be a whole number between 1 and 64."
  }
}

# ---------------------------------------------------------------------------------------------
# Cleanup schedule (defaults in shared/topology.json)
# ---------------------------------------------------------------------------------------------

variable "cleanup_schedule" {
  description = "Cron schedule of the Cloud Scheduler job that publishes to the cleanup topic. null: the schedule in shared/topology.json."
  type        = string
  default     = null

  validation {
    condition     = var.cleanup_schedule == null || length(split(" ", trimspace(coalesce(var.cleanup_schedule, "* * * * *")))) == 5
    error_message = "cleanup_schedule must be a cron expression with five fields, e.g. \"*/15 * * * *\"."
  }
}

variable "cleanup_time_zone" {
  description = "Time zone (tz database name) of the cleanup schedule. null: the time zone in shared/topology.json."
  type        = string
  default     = null

  validation {
    condition     = var.cleanup_time_zone == null || can(regex("^[A-Za-z]+(/[A-Za-z0-9_+-]+)*$", coalesce(var.cleanup_time_zone, "Etc/UTC")))
    error_message = "cleanup_time_zone must be a tz database name such as Etc/UTC or Europe/Berlin."
  }
}

# ---------------------------------------------------------------------------------------------
# Signed-URL uploads (signed_urls.tf, docs/signed-urls.md)
# ---------------------------------------------------------------------------------------------

variable "max_ingest_bytes" {
  description = "Largest object ingested from incoming/ (MAX_INGEST_BYTES), including signed-URL uploads, whose URLs never allow more. null: the code's default (200 MiB)."
  type        = number
  default     = null

  validation {
    condition     = var.max_ingest_bytes == null || (coalesce(var.max_ingest_bytes, 1) >= 1 && coalesce(var.max_ingest_bytes, 1) <= 5368709120 && floor(coalesce(var.max_ingest_bytes, 1)) == coalesce(var.max_ingest_bytes, 1))
    error_message = "max_ingest_bytes must be a whole number between 1 and 5368709120 (5 GiB)."
  }
}

variable "signed_url_ttl_seconds" {
  description = "How long a signed upload URL stays valid (SIGNED_URL_TTL_SECONDS), in seconds; at most 7 days, V4 signing's limit. null: the code's default (900)."
  type        = number
  default     = null

  validation {
    condition     = var.signed_url_ttl_seconds == null || (coalesce(var.signed_url_ttl_seconds, 60) >= 60 && coalesce(var.signed_url_ttl_seconds, 60) <= 604800 && floor(coalesce(var.signed_url_ttl_seconds, 60)) == coalesce(var.signed_url_ttl_seconds, 60))
    error_message = "signed_url_ttl_seconds must be a whole number of seconds between 60 and 604800 (7 days)."
  }
}

variable "signed_url_cors_max_age_seconds" {
  description = "How long browsers may cache the uploads bucket's CORS preflight for signed-URL PUTs (the bucket admits upload_cors_origins), in seconds."
  type        = number
  default     = 3600

  validation {
    condition     = var.signed_url_cors_max_age_seconds >= 0 && var.signed_url_cors_max_age_seconds <= 86400 && floor(var.signed_url_cors_max_age_seconds) == var.signed_url_cors_max_age_seconds
    error_message = "signed_url_cors_max_age_seconds must be a whole number of seconds between 0 and 86400."
  }
}
