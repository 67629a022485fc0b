# Inputs. Every variable is typed and described; where a value can be checked before any API call,
# it is validated. Names of buckets, topics and subscriptions are NOT inputs: they come from
# shared/core/topology.json (see locals.tf), the same file the code and the local stack read.

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

variable "scheduler_region" {
  description = "Region of the Cloud Scheduler job that ticks cleanup. Default (null): region. Cloud Scheduler is not available in every region, and its list grows every few months (https://cloud.google.com/scheduler/docs/locations), so it is not hard-coded here: if apply fails with \"Location ... is not found or access is unallowed\", set a nearby region of that list. The job publishes to a global topic, so any region works."
  type        = string
  default     = null

  validation {
    condition     = var.scheduler_region == null || can(regex("^[a-z]+-[a-z]+[0-9]+$", coalesce(var.scheduler_region, "us-central1")))
    error_message = "scheduler_region must be a region name such as us-central1 or europe-west1."
  }
}

variable "name_prefix" {
  description = "Prefix of the bucket names: buckets are named \"{name_prefix}-{suffix}\" with the suffixes of shared/core/topology.json (e.g. my-project-uploads). Bucket names are global, so the default is the project ID."
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

variable "serving" {
  description = "How browsers load the variants and manifests: \"bucket\" (default) lets anyone read an object of the images bucket by its exact name (roles/storage.legacyObjectReader: no listing) and manifests point at it; \"cdn\" puts a global external Application Load Balancer with Cloud CDN and a managed certificate for `domain` in front of a private images bucket; \"none\" keeps the bucket private and manifests use public_base_url (your own serving layer). The uploads bucket is never public. \"bucket\" is the default deliberately: it is the only mode that serves every manifest URL with nothing else to set up (\"cdn\" needs a domain and DNS, \"none\" a serving layer of your own). Organisations whose policies enforce public access prevention (storage.publicAccessPrevention) or domain-restricted sharing (iam.allowedPolicyMemberDomains, one of the secure-by-default policies of organisations created since May 2024) refuse its allUsers grant on the first apply: choose \"none\" (or \"cdn\", see terraform/README.md) there, or have the policy relaxed for this project."
  type        = string
  default     = "bucket"

  validation {
    condition     = contains(["bucket", "cdn", "none"], var.serving)
    error_message = "serving must be bucket, cdn or none."
  }
}

variable "domain" {
  description = "With serving = \"cdn\": the host name the images are served from (e.g. images.example.com), for the managed certificate and PUBLIC_BASE_URL. Point its A record at the cdn_ip_address output."
  type        = string
  default     = null

  validation {
    condition     = var.domain == null || can(regex("^([a-z0-9]([a-z0-9-]*[a-z0-9])?\\.)+[a-z]{2,}$", coalesce(var.domain, "example.com")))
    error_message = "domain must be a lower-case host name such as images.example.com (no scheme, no path)."
  }
  validation {
    condition     = var.serving != "cdn" || var.domain != null
    error_message = "serving = \"cdn\" needs domain (the host name of the managed certificate)."
  }
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
# Firestore (firestore.tf): the per-image state and cleanup's cursors
# ---------------------------------------------------------------------------------------------

variable "firestore_location" {
  description = "Location of the Firestore database: a region (e.g. europe-west1) or a multi-region (nam5, eur3). Default (null): the region, next to the functions. It cannot change once the database exists (a change replaces it, which delete protection refuses)."
  type        = string
  default     = null

  validation {
    condition     = var.firestore_location == null || can(regex("^([a-z]+-[a-z]+[0-9]+|nam[0-9]+|eur[0-9]+)$", coalesce(var.firestore_location, "nam5")))
    error_message = "firestore_location must be a Firestore region such as europe-west1 or a multi-region such as nam5 or eur3."
  }
}

variable "firestore_point_in_time_recovery_enablement" {
  description = "Point-in-time recovery of the Firestore database: POINT_IN_TIME_RECOVERY_ENABLED keeps 7 days of versions to read or clone from (billed as storage), POINT_IN_TIME_RECOVERY_DISABLED (default, Firestore's) only the last hour."
  type        = string
  default     = "POINT_IN_TIME_RECOVERY_DISABLED"

  validation {
    condition     = contains(["POINT_IN_TIME_RECOVERY_ENABLED", "POINT_IN_TIME_RECOVERY_DISABLED"], var.firestore_point_in_time_recovery_enablement)
    error_message = "firestore_point_in_time_recovery_enablement must be POINT_IN_TIME_RECOVERY_ENABLED or POINT_IN_TIME_RECOVERY_DISABLED."
  }
}

# ---------------------------------------------------------------------------------------------
# Functions: resources per function
# ---------------------------------------------------------------------------------------------

variable "functions" {
  description = <<-EOT
    Resources per function, keyed by the function's name in shared/core/topology.json (upload, ingest,
    resize, cleanup): memory, cpu (null: what the memory implies), timeout_seconds, min_instances,
    max_instances and concurrency (requests per instance). Each attribute left out keeps its
    default (settings.tf): upload 1Gi/"1"/60 s/0-20/4, ingest 1Gi/"1"/120 s/0-20/4,
    resize 2Gi/"2"/540 s/0-10/1 (libvips uses both vCPUs for one image, so a second concurrent
    image would only compete for them while doubling pixel memory; scale out with max_instances),
    cleanup 512Mi/null/540 s/0-1/1 (one instance, so that two runs never overlap).
    Limits: HTTP functions 3600 s, event-driven 540 s, and resize strictly below the jobs push
    subscription's ack deadline (shared/core/topology.json), so that Pub/Sub never redelivers a job
    that is still running.
  EOT
  type = map(object({
    memory          = optional(string)
    cpu             = optional(string)
    timeout_seconds = optional(number)
    min_instances   = optional(number)
    max_instances   = optional(number)
    concurrency     = optional(number)
  }))
  default = {}

  validation {
    condition     = alltrue([for key in keys(var.functions) : contains(keys(local.function_defaults), key)])
    error_message = "functions: unknown function ${join(", ", [for key in keys(var.functions) : key if !contains(keys(local.function_defaults), key)])}; the functions are ${join(", ", keys(local.function_defaults))}."
  }
  validation {
    condition     = alltrue([for key, f in var.functions : can(regex("^[0-9]+(Mi|Gi|M|G)$", coalesce(f.memory, "1Gi")))])
    error_message = "functions.<name>.memory must be a size such as 512Mi or 2Gi."
  }
  validation {
    condition = alltrue([
      for key, f in var.functions : coalesce(f.timeout_seconds, 1) >= 1 && coalesce(f.timeout_seconds, 1) <= (try(local.topology.functions[key].trigger, "http") == "http" || try(local.topology.functions[key].trigger, "") == "pubsub-push" ? 3600 : 540)
    ])
    error_message = "functions.<name>.timeout_seconds must be between 1 and 3600 for HTTP functions and 1 and 540 for event-driven ones (ingest, cleanup)."
  }
  validation {
    condition = alltrue([
      for key, f in var.functions : coalesce(f.timeout_seconds, 1) < try(local.topology.subscriptions[local.topology.functions[key].subscription].ackDeadlineSeconds, 3601)
    ])
    error_message = "functions.resize.timeout_seconds must be below the jobs push subscription's ack deadline (${local.topology.subscriptions.jobsPush.ackDeadlineSeconds} s, shared/core/topology.json): Pub/Sub would redeliver a job that is still running."
  }
  validation {
    condition = alltrue([
      for key, f in var.functions : coalesce(f.concurrency, try(local.function_defaults[key].concurrency, 1)) >= 1 && coalesce(f.concurrency, try(local.function_defaults[key].concurrency, 1)) <= 1000 && (coalesce(f.concurrency, try(local.function_defaults[key].concurrency, 1)) == 1 || try(tonumber(f.cpu != null ? f.cpu : local.function_defaults[key].cpu) >= 1, false))
    ])
    error_message = "functions.<name>.concurrency must be 1-1000, and above 1 only with cpu of at least \"1\"."
  }
  validation {
    condition = alltrue([
      for key, f in var.functions : coalesce(f.min_instances, try(local.function_defaults[key].min_instances, 0)) >= 0 && coalesce(f.max_instances, try(local.function_defaults[key].max_instances, 1)) >= 1 && coalesce(f.min_instances, try(local.function_defaults[key].min_instances, 0)) <= coalesce(f.max_instances, try(local.function_defaults[key].max_instances, 1))
    ])
    error_message = "functions.<name> needs 0 <= min_instances <= max_instances and max_instances >= 1."
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
  description = "Email of an existing service account for Cloud Build to build the functions with (build_config.service_account). Default (null): a \"{function_name_prefix}-build\" account created here with roles/logging.logWriter, roles/artifactregistry.writer and roles/storage.objectViewer conditioned to the gcf-v2-sources-* buckets into which Cloud Functions copies the source (it never reads the source bucket of this module). An account of your own gets no grant from Terraform: give it those roles (Cloud Functions docs, \"custom build service account\"), and the deploying identity roles/iam.serviceAccountUser on it."
  type        = string
  default     = null

  validation {
    condition     = var.build_service_account == null || can(regex("^[^@\\s]+@[^@\\s]+\\.iam\\.gserviceaccount\\.com$", var.build_service_account))
    error_message = "build_service_account must be a service account email (name@project.iam.gserviceaccount.com)."
  }
}

variable "iam_propagation_wait" {
  description = "How long the first apply waits after enabling the APIs and granting the service agents' and the build account's roles, before it creates the functions and their Eventarc triggers (time_sleep); with serving = \"cdn\", also between the signed URL key that brings Cloud CDN's fill agent into being and the agent's grant. IAM changes and new service agents propagate over minutes; too short a wait fails with \"Permission denied while using the Eventarc Service Agent\" or \"Service account service-...@cloud-cdn-fill.iam.gserviceaccount.com does not exist\" (apply again). Only the first apply waits."
  type        = string
  default     = "120s"

  validation {
    condition     = can(regex("^[0-9]+(s|m)$", var.iam_propagation_wait))
    error_message = "iam_propagation_wait must be a duration in seconds or minutes, such as 120s or 3m."
  }
}

variable "log_metric_wait" {
  description = "How long the first apply waits between creating the log-based metrics and creating the alert policy that reads them (time_sleep; again when the set of metrics changes). A new log-based metric reaches Cloud Monitoring minutes later, and a policy created before fails with \"Cannot find metric(s) ... it could take up to 10 minutes to become available\" (hashicorp/terraform-provider-google#11102). It runs beside the functions' builds, so it rarely lengthens the apply."
  type        = string
  default     = "10m"

  validation {
    condition     = can(regex("^[0-9]+(s|m)$", var.log_metric_wait))
    error_message = "log_metric_wait must be a duration in seconds or minutes, such as 600s or 10m."
  }
}

variable "grant_storage_agent_publisher" {
  description = "Grant the project's Cloud Storage service agent roles/pubsub.publisher on the project, which Eventarc needs to deliver the uploads bucket's events to ingest. The grant is project-wide: other Cloud Storage triggers in the project may rely on it, and `terraform destroy` removes it. Set to false when the project already grants it (managed elsewhere)."
  type        = bool
  default     = true
}

variable "function_source_dir" {
  description = "Directory with the packaged function source (dist/, shared/core/topology.json, package.json, package-lock.json), as `npm run build` writes it. Default (null): build/function-source inside this module."
  type        = string
  default     = null
}

# ---------------------------------------------------------------------------------------------
# Access to upload
# ---------------------------------------------------------------------------------------------

variable "allow_unauthenticated_upload" {
  description = "Make the upload function public (allUsers gets roles/run.invoker), for browsers and apps of end users. Off by default. A public upload must authenticate its callers itself: it needs upload_auth \"jwt\" (end users' ID tokens) or \"token\" (the shared token of upload_token_secret_id), and the plan refuses it otherwise (fail closed)."
  type        = bool
  default     = false

  validation {
    condition     = !var.allow_unauthenticated_upload || contains(["jwt", "token"], local.upload_auth)
    error_message = "allow_unauthenticated_upload = true makes upload public, and upload_auth is \"${local.upload_auth}\": anyone on the internet could upload. Set upload_auth = \"jwt\" (with jwt_issuer and jwt_audience) for end users' sign-in tokens, or upload_token_secret_id (upload_auth \"token\") for a shared bearer token."
  }
}

variable "upload_auth" {
  description = "How the upload API authenticates its callers (UPLOAD_AUTH): \"jwt\" (end users' OpenID Connect ID tokens, issued by jwt_issuer for jwt_audience; each user owns their uploads, within quotas; the shared token of upload_token_secret_id, if set, stays for trusted backends), \"token\" (the shared bearer token of upload_token_secret_id, required) or \"none\" (no check of its own: IAM, upload_invoker_members, is the only gate, so a public upload is refused). Default (null): \"token\" when upload_token_secret_id is set, \"none\" otherwise, as before this variable existed. See docs/security.md."
  type        = string
  default     = null

  validation {
    condition     = var.upload_auth == null || contains(["jwt", "token", "none"], coalesce(var.upload_auth, "none"))
    error_message = "upload_auth must be jwt, token or none (or null: token with upload_token_secret_id, none without)."
  }
  validation {
    condition     = coalesce(var.upload_auth, var.upload_token_secret_id == null ? "none" : "token") != "jwt" || (var.jwt_issuer != null && var.jwt_audience != null)
    error_message = "upload_auth = \"jwt\" needs jwt_issuer and jwt_audience: the issuer (iss) and audience (aud) the ID tokens must carry, e.g. https://securetoken.google.com/PROJECT and PROJECT for Firebase Authentication."
  }
  validation {
    condition     = coalesce(var.upload_auth, var.upload_token_secret_id == null ? "none" : "token") != "token" || var.upload_token_secret_id != null
    error_message = "upload_auth = \"token\" needs upload_token_secret_id, the Secret Manager secret holding the shared bearer token."
  }
  validation {
    condition     = coalesce(var.upload_auth, var.upload_token_secret_id == null ? "none" : "token") != "none" || var.upload_token_secret_id == null
    error_message = "upload_auth = \"none\" with upload_token_secret_id: upload refuses to start with a token it would not check. Use upload_auth = \"token\" (or \"jwt\"), or drop upload_token_secret_id."
  }
  # Here rather than on the jwt_* variables: validations that read each other form a cycle.
  validation {
    condition     = coalesce(var.upload_auth, var.upload_token_secret_id == null ? "none" : "token") == "jwt" || (var.jwt_issuer == null && var.jwt_audience == null && var.jwt_jwks_url == null)
    error_message = "jwt_issuer, jwt_audience or jwt_jwks_url is set but upload_auth is not \"jwt\": nothing would check the tokens. Set upload_auth = \"jwt\", or drop them."
  }
}

variable "jwt_issuer" {
  description = "With upload_auth = \"jwt\": the issuer of the end users' ID tokens (JWT_ISSUER, their `iss` claim), an https URL, e.g. https://securetoken.google.com/PROJECT for Firebase Authentication or https://accounts.google.com for Google Sign-In. Its signing keys are found through {issuer}/.well-known/openid-configuration unless jwt_jwks_url names them."
  type        = string
  default     = null

  validation {
    condition     = var.jwt_issuer == null || can(regex("^https://[^/?#\\s]+(/[^?#\\s]*)?$", coalesce(var.jwt_issuer, "https://x")))
    error_message = "jwt_issuer must be an https URL without query or fragment, such as https://securetoken.google.com/my-project."
  }
}

variable "jwt_audience" {
  description = "With upload_auth = \"jwt\": the audience the end users' ID tokens must name (JWT_AUDIENCE, their `aud` claim), e.g. the Firebase project ID or the OAuth client ID of your app."
  type        = string
  default     = null

  validation {
    condition     = var.jwt_audience == null || length(trimspace(coalesce(var.jwt_audience, "x"))) > 0
    error_message = "jwt_audience must not be empty."
  }
}

variable "jwt_jwks_url" {
  description = "With upload_auth = \"jwt\": where the issuer's signing keys are (JWT_JWKS_URL), an https URL. Default (null): the jwks_uri of the issuer's /.well-known/openid-configuration."
  type        = string
  default     = null

  validation {
    condition     = var.jwt_jwks_url == null || can(regex("^https://[^/?#\\s]+(/[^#\\s]*)?$", coalesce(var.jwt_jwks_url, "https://x")))
    error_message = "jwt_jwks_url must be an https URL, such as https://www.googleapis.com/service_accounts/v1/jwk/securetoken@system.gserviceaccount.com."
  }
}

variable "quotas" {
  description = "What one owner (an end user, or the trusted backends' own owner \"service\") may do per UTC day: uploads_per_day (uploads and signed URLs started, QUOTA_UPLOADS_PER_DAY), bytes_per_day (bytes uploaded, signed URLs counting their declared size, QUOTA_BYTES_PER_DAY) and open_tickets (unused, unexpired signed URLs held at once, QUOTA_OPEN_TICKETS). 0 means no limit; an attribute left out (null) keeps the code's default: with upload_auth = \"jwt\" 200 uploads, 2 GiB and 10 open tickets, otherwise no limit. Beyond a quota upload answers 429 quota_exceeded with Retry-After."
  type = object({
    uploads_per_day = optional(number)
    bytes_per_day   = optional(number)
    open_tickets    = optional(number)
  })
  default  = {}
  nullable = false

  validation {
    condition     = var.quotas.uploads_per_day == null || (coalesce(var.quotas.uploads_per_day, 0) >= 0 && coalesce(var.quotas.uploads_per_day, 0) <= 10000000 && floor(coalesce(var.quotas.uploads_per_day, 0)) == coalesce(var.quotas.uploads_per_day, 0))
    error_message = "quotas.uploads_per_day must be a whole number between 0 (no limit) and 10000000."
  }
  validation {
    condition     = var.quotas.bytes_per_day == null || (coalesce(var.quotas.bytes_per_day, 0) >= 0 && coalesce(var.quotas.bytes_per_day, 0) <= 9007199254740991 && floor(coalesce(var.quotas.bytes_per_day, 0)) == coalesce(var.quotas.bytes_per_day, 0))
    error_message = "quotas.bytes_per_day must be a whole number of bytes, 0 (no limit) or more (at most 2^53 - 1)."
  }
  validation {
    condition     = var.quotas.open_tickets == null || (coalesce(var.quotas.open_tickets, 0) >= 0 && coalesce(var.quotas.open_tickets, 0) <= 100000 && floor(coalesce(var.quotas.open_tickets, 0)) == coalesce(var.quotas.open_tickets, 0))
    error_message = "quotas.open_tickets must be a whole number between 0 (no limit) and 100000."
  }
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
  description = "ID of an existing Secret Manager secret (in project_id) holding the shared upload bearer token (at least 16 characters): required with upload_auth = \"token\", optional with \"jwt\" (trusted backends, which may act for a user with X-Upload-Owner), refused with \"none\". When set, the upload function receives it as UPLOAD_TOKEN through secret_environment_variables and its service account may access that secret only. Create the secret outside Terraform so that the token never enters the state."
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

# ---------------------------------------------------------------------------------------------
# Webhooks (docs/webhooks.md)
# ---------------------------------------------------------------------------------------------

variable "webhook_urls" {
  description = "Receivers of every event, POSTed signed per Standard Webhooks by the webhooks function (WEBHOOK_URLS): https URLs only, at most 20. Empty (default): the function acknowledges events and sends nothing. Needs webhook_secret_id."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for u in var.webhook_urls : can(regex("^https://[^/?#@\\s]+(/[^\\s]*)?$", u))])
    error_message = "Each webhook_urls entry must be an https URL (plain http is allowed only on loopback, which means nothing in a deployment)."
  }
  validation {
    condition     = length(var.webhook_urls) <= 20 && length(distinct(var.webhook_urls)) == length(var.webhook_urls)
    error_message = "webhook_urls must list at most 20 URLs, each once."
  }
  validation {
    condition     = length(var.webhook_urls) == 0 || var.webhook_secret_id != null
    error_message = "webhook_urls needs webhook_secret_id: the Secret Manager secret holding the signing secret (whsec_ + base64 of at least 16 random bytes)."
  }
}

variable "webhook_secret_id" {
  description = "ID of an existing Secret Manager secret (in project_id) holding the webhook signing secret, `whsec_` + base64 (e.g. `echo \"whsec_$(openssl rand -base64 32)\"`). The webhooks function receives it as WEBHOOK_SECRET through secret_environment_variables and its service account may access that secret only. Create the secret outside Terraform so that it never enters the state."
  type        = string
  default     = null

  validation {
    condition     = var.webhook_secret_id == null || can(regex("^[A-Za-z0-9_-]{1,255}$", var.webhook_secret_id))
    error_message = "webhook_secret_id must be a secret ID (letters, digits, _ and -), not a full resource name."
  }
}

variable "webhook_secret_version" {
  description = "Version of the webhook signing secret (a number, or \"latest\")."
  type        = string
  default     = "latest"

  validation {
    condition     = var.webhook_secret_version == "latest" || can(regex("^[1-9][0-9]*$", var.webhook_secret_version))
    error_message = "webhook_secret_version must be \"latest\" or a version number."
  }
}

variable "webhook_retry_hours" {
  description = "How long the webhooks function retries a receiver that fails or does not answer within 10 s before it publishes the event to the webhook dead-letter topic (WEBHOOK_RETRY_HOURS): 1 to 144 (the subscription keeps messages 7 days)."
  type        = number
  default     = 24

  validation {
    condition     = var.webhook_retry_hours >= 1 && var.webhook_retry_hours <= 144 && floor(var.webhook_retry_hours) == var.webhook_retry_hours
    error_message = "webhook_retry_hours must be a whole number from 1 to 144."
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
# unset so that the code's own default (shared/core/config.ts) applies; Terraform does not repeat it.
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
  description = "Base URL of variant URLs in manifests (PUBLIC_BASE_URL) with serving = \"bucket\" (null: https://storage.googleapis.com/{images bucket}) or \"none\" (required: your serving layer). With \"cdn\" it is https://{domain} and must stay null."
  type        = string
  default     = null

  validation {
    condition     = var.public_base_url == null || can(regex("^https?://", coalesce(var.public_base_url, "https://")))
    error_message = "public_base_url must be an http(s) URL."
  }
  validation {
    condition     = var.serving != "none" || var.public_base_url != null
    error_message = "serving = \"none\" needs public_base_url: manifests must point where your layer serves the images bucket."
  }
  validation {
    condition     = var.serving != "cdn" || var.public_base_url == null
    error_message = "serving = \"cdn\" sets PUBLIC_BASE_URL to https://{domain}; leave public_base_url null."
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
  description = "Further environment variables for all five functions, for settings without a variable of their own (e.g. AVIF_QUALITY, JPEG_MOZJPEG, MAX_INPUT_PIXELS). Use names from shared/core/config.ts: the code ignores any other name, and a bad value stops the function at cold start with a message naming it. Refused: names the module sets itself (use their variable: UPLOAD_AUTH is upload_auth, WIDTHS is widths, ...), so that extra_env cannot undo a validated setting, and secrets (UPLOAD_TOKEN, *_TOKEN, *_SECRET, *_PASSWORD, *_KEY, ...), which belong in Secret Manager: environment variables are in the Terraform state and visible to anyone who may view the function."
  type        = map(string)
  default     = {}
  nullable    = false

  validation {
    condition     = alltrue([for k in keys(var.extra_env) : can(regex("^[A-Z][A-Z0-9_]*$", k))])
    error_message = "extra_env keys must be environment variable names in upper case (A-Z, 0-9, _)."
  }
  validation {
    condition     = length([for k in keys(var.extra_env) : k if can(regex(local.secret_env_pattern, k))]) == 0
    error_message = "extra_env must not carry secrets (${join(", ", [for k in keys(var.extra_env) : k if can(regex(local.secret_env_pattern, k))])}): environment variables are stored in the Terraform state and shown to anyone who may view the function. Keep secrets in Secret Manager (the upload token: upload_token_secret_id)."
  }
  validation {
    condition     = length([for k in keys(var.extra_env) : k if contains(keys(local.module_env), k)]) == 0
    error_message = "extra_env sets variables the module sets itself: ${join("; ", [for k in keys(var.extra_env) : "${k} (use ${local.module_env[k]})" if contains(keys(local.module_env), k)])}."
  }
}

# ---------------------------------------------------------------------------------------------
# Runtime settings the bench shows matter for sharp
# ---------------------------------------------------------------------------------------------

variable "sharp_concurrency" {
  description = "libvips threads per image in resize (SHARP_CONCURRENCY). Default 2, the vCPUs of resize by default (functions); more threads than cores only adds contention."
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
# Cleanup schedule (defaults in shared/core/topology.json)
# ---------------------------------------------------------------------------------------------

variable "cleanup_schedule" {
  description = "Cron schedule of the Cloud Scheduler job that publishes to the cleanup topic. null: the schedule in shared/core/topology.json."
  type        = string
  default     = null

  validation {
    condition     = var.cleanup_schedule == null || length(split(" ", trimspace(coalesce(var.cleanup_schedule, "* * * * *")))) == 5
    error_message = "cleanup_schedule must be a cron expression with five fields, e.g. \"*/15 * * * *\"."
  }
}

variable "cleanup_time_zone" {
  description = "Time zone (tz database name) of the cleanup schedule. null: the time zone in shared/core/topology.json."
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
  description = "How long a signed upload URL stays valid (SIGNED_URL_TTL_SECONDS), in seconds; at most one hour (the code's limit: a URL is single-use and bound to its owner, and a shorter life bounds what a leaked one allows). null: the code's default (900)."
  type        = number
  default     = null

  validation {
    condition     = var.signed_url_ttl_seconds == null || (coalesce(var.signed_url_ttl_seconds, 60) >= 60 && coalesce(var.signed_url_ttl_seconds, 60) <= 3600 && floor(coalesce(var.signed_url_ttl_seconds, 60)) == coalesce(var.signed_url_ttl_seconds, 60))
    error_message = "signed_url_ttl_seconds must be a whole number of seconds between 60 and 3600 (one hour)."
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

# ---------------------------------------------------------------------------------------------
# Monitoring (monitoring.tf, docs/observability.md)
# ---------------------------------------------------------------------------------------------

variable "notification_channels" {
  description = "Notification channels the alert policies notify, as IDs \"projects/{project}/notificationChannels/{id}\" (create them in the console or with google_monitoring_notification_channel). Empty: the alerts still open incidents, visible in the console, but tell nobody."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.notification_channels : can(regex("^projects/[^/]+/notificationChannels/[0-9A-Za-z_-]+$", id))])
    error_message = "Each notification_channels entry must be a channel ID of the form projects/{project}/notificationChannels/{id}."
  }
}
