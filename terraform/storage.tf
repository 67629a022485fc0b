# Buckets. Names are "{name_prefix}-{suffix}" with the suffixes of shared/core/topology.json; all use
# uniform bucket-level access (IAM only, no object ACLs).

# uploads: originals/{id} (stored by upload and ingest) and incoming/ (direct uploads that ingest
# picks up). Never public. A lifecycle rule deletes incoming/ objects nobody moved, and aborts
# multipart uploads left behind by interrupted clients.
resource "google_storage_bucket" "uploads" {
  project                     = var.project_id
  name                        = "${local.name_prefix}-${local.topology.buckets.uploads.suffix}"
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  lifecycle_rule {
    condition {
      age            = var.incoming_max_age_days
      matches_prefix = [local.topology.prefixes.incoming]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  # Browsers PUT signed-URL uploads straight to the bucket (signed_urls.tf).
  dynamic "cors" {
    for_each = local.uploads_cors
    content {
      origin          = cors.value.origins
      method          = cors.value.methods
      response_header = cors.value.response_headers
      max_age_seconds = cors.value.max_age_seconds
    }
  }

  depends_on = [google_project_service.this]
}

# images: {id}/{width}w.{ext} variants, {id}/manifest.json and {id}/error.json. With serving =
# "bucket" (default) allUsers may read objects (iam.tf) and prevention is left to the
# organisation policy ("inherited"); with "cdn" or "none" it is private, prevention enforced.
resource "google_storage_bucket" "images" {
  project                     = var.project_id
  name                        = "${local.name_prefix}-${local.topology.buckets.images.suffix}"
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = var.serving == "bucket" ? "inherited" : "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  dynamic "cors" {
    for_each = var.images_cors
    content {
      origin          = cors.value.origins
      method          = cors.value.methods
      response_header = cors.value.response_headers
      max_age_seconds = cors.value.max_age_seconds
    }
  }

  depends_on = [google_project_service.this]
}

# source: the zipped function code (source.tf). Cloud Build reads it when a function is built.
resource "google_storage_bucket" "source" {
  project                     = var.project_id
  name                        = "${local.name_prefix}-gcf-source"
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  depends_on = [google_project_service.this]
}
