# How browsers load the variants and manifests (var.serving), and the base URL manifests use:
#
# - bucket (default): anyone may read an object of the images bucket by its exact name, never list
#   it (iam.tf, images_public: roles/storage.legacyObjectReader; public access prevention
#   "inherited"), manifests point at https://storage.googleapis.com/{bucket}
#   unless public_base_url names a layer in front of it. The uploads bucket stays private.
#   Organisations that enforce public access prevention or domain-restricted sharing refuse it
#   (terraform/README.md, "First-apply errors").
# - cdn: a global external Application Load Balancer with a backend bucket and Cloud CDN in front
#   of the images bucket, which stays private (prevention enforced): Cloud CDN's fill service
#   agent reads it. A Google-managed certificate for `domain`, HTTP redirected to HTTPS; manifests
#   point at https://{domain}. Point the domain's A record at the `cdn_ip_address` output; the
#   certificate is issued once DNS resolves to it (up to an hour).
# - none: private, for those who serve through their own layer: manifests use public_base_url.
#
# Variants carry Cache-Control "public, max-age=31536000, immutable" (set by the code), which the
# CDN honours (USE_ORIGIN_HEADERS).

locals {
  cdn_count = var.serving == "cdn" ? 1 : 0

  public_base_url = (
    var.serving == "cdn" ? "https://${var.domain}" :
    var.serving == "bucket" && var.public_base_url == null ? "https://storage.googleapis.com/${google_storage_bucket.images.name}" :
    var.public_base_url
  )

  # Cloud CDN fills its cache from a private bucket as this service agent (Cloud CDN docs, "Using
  # signed URLs", configure permissions).
  cdn_service_agent = "serviceAccount:service-${data.google_project.this.number}@cloud-cdn-fill.iam.gserviceaccount.com"
  cdn_name          = "${var.function_name_prefix}-images"

  # A managed certificate cannot change its domains, so a new `domain` needs a new certificate,
  # created (under a name of its own) before the old one is detached and deleted.
  cdn_certificate_name = var.domain == null ? null : "${local.cdn_name}-${substr(sha256(var.domain), 0, 8)}"
}

resource "google_compute_backend_bucket" "images" {
  count = local.cdn_count

  project     = var.project_id
  name        = local.cdn_name
  description = "Cloud CDN in front of ${google_storage_bucket.images.name} (variants and manifests)."
  bucket_name = google_storage_bucket.images.name
  enable_cdn  = true

  cdn_policy {
    cache_mode = "USE_ORIGIN_HEADERS"
  }

  depends_on = [google_project_service.this]
}

# Google creates the fill agent (service-N@cloud-cdn-fill) the first time a signed URL key is added
# to a backend in the project, not when Compute is enabled or a backend bucket is created (Cloud CDN
# docs, "Using signed URLs", configure permissions): granting it before then fails with "Service
# account ... does not exist", on every apply. This key is here to bring the agent into being; the
# pipeline signs no URL with it. Its value is random (uuid(), read once: ignore_changes keeps it
# from changing on every plan) and kept in the state, like every signed URL key.
resource "google_compute_backend_bucket_signed_url_key" "cdn_fill_agent" {
  count = local.cdn_count

  project        = var.project_id
  name           = "${local.cdn_name}-fill-agent"
  backend_bucket = google_compute_backend_bucket.images[0].name
  # 16 bytes (96 random bits), base64url: the 128-bit key the API takes.
  key_value = replace(replace(base64encode(substr(base64sha256(uuid()), 0, 16)), "+", "-"), "/", "_")

  lifecycle {
    ignore_changes = [key_value]
  }
}

# Service agents appear asynchronously: the grant waits as the functions do for theirs.
resource "time_sleep" "cdn_fill_agent" {
  count = local.cdn_count

  create_duration = var.iam_propagation_wait

  depends_on = [google_compute_backend_bucket_signed_url_key.cdn_fill_agent]
}

resource "google_storage_bucket_iam_member" "cdn_reader" {
  count = local.cdn_count

  bucket = google_storage_bucket.images.name
  role   = "roles/storage.objectViewer"
  member = local.cdn_service_agent

  depends_on = [time_sleep.cdn_fill_agent]
}

resource "google_compute_global_address" "cdn" {
  count = local.cdn_count

  project = var.project_id
  name    = local.cdn_name

  depends_on = [google_project_service.this]
}

resource "google_compute_managed_ssl_certificate" "cdn" {
  count = local.cdn_count

  project = var.project_id
  name    = local.cdn_certificate_name

  managed {
    domains = [var.domain]
  }

  # The HTTPS proxy uses the certificate: deleting it first fails (resourceInUseByAnotherResource).
  lifecycle {
    create_before_destroy = true
  }

  depends_on = [google_project_service.this]
}

resource "google_compute_url_map" "cdn" {
  count = local.cdn_count

  project         = var.project_id
  name            = local.cdn_name
  default_service = google_compute_backend_bucket.images[0].id
}

resource "google_compute_target_https_proxy" "cdn" {
  count = local.cdn_count

  project          = var.project_id
  name             = local.cdn_name
  url_map          = google_compute_url_map.cdn[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.cdn[0].id]
}

resource "google_compute_global_forwarding_rule" "https" {
  count = local.cdn_count

  project               = var.project_id
  name                  = "${local.cdn_name}-https"
  target                = google_compute_target_https_proxy.cdn[0].id
  ip_address            = google_compute_global_address.cdn[0].id
  port_range            = "443"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}

# HTTP answers with a redirect to HTTPS only.
resource "google_compute_url_map" "http_redirect" {
  count = local.cdn_count

  project = var.project_id
  name    = "${local.cdn_name}-http-redirect"

  default_url_redirect {
    https_redirect         = true
    redirect_response_code = "MOVED_PERMANENTLY_DEFAULT"
    strip_query            = false
  }
}

resource "google_compute_target_http_proxy" "http_redirect" {
  count = local.cdn_count

  project = var.project_id
  name    = "${local.cdn_name}-http-redirect"
  url_map = google_compute_url_map.http_redirect[0].id
}

resource "google_compute_global_forwarding_rule" "http" {
  count = local.cdn_count

  project               = var.project_id
  name                  = "${local.cdn_name}-http"
  target                = google_compute_target_http_proxy.http_redirect[0].id
  ip_address            = google_compute_global_address.cdn[0].id
  port_range            = "80"
  load_balancing_scheme = "EXTERNAL_MANAGED"
}
