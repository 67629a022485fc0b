# Signed-URL uploads (docs/signed-urls.md): POST /uploads/signed-url answers a V4 signed URL with
# which a client PUTs one object, incoming/{ticket}/{filename}, straight into the uploads bucket;
# ingest takes it from there as it takes any incoming/ object.
#
# - Signing: upload signs with its own service account through IAM signBlob (no key files), which
#   takes roles/iam.serviceAccountTokenCreator on that account itself, and on nothing else.
# - What a URL can do is what its signer may do: upload gets object creation under incoming/ by
#   a binding with an IAM condition (google_storage_bucket_iam_member supports `condition` on
#   buckets with uniform bucket-level access, as all of ours are). The signature itself binds the
#   method, the object name, the content type and the size range.
# - Browsers PUT cross-origin: the uploads bucket's CORS policy (storage.tf) admits the upload
#   API's own origins (upload_cors_origins), for PUT only.

locals {
  upload_service_account = google_service_account.function["upload"]

  # Object names in IAM conditions are "projects/_/buckets/{bucket}/objects/{name}".
  incoming_objects = "projects/_/buckets/${google_storage_bucket.uploads.name}/objects/${local.topology.prefixes.incoming}"

  # upload's object rights on the uploads bucket outside incoming/: the prefix it writes, plus
  # bucket-level calls (listing, e.g. a long-expired ticket's object still in incoming/), which
  # IAM checks against the bucket resource. Tickets themselves are Firestore documents.
  upload_uploads_condition = {
    title       = "upload-prefixes"
    description = "upload writes and deletes originals; signed URLs get incoming/ only."
    expression = join(" || ", concat(
      ["resource.type == \"storage.googleapis.com/Bucket\""],
      [for p in [local.topology.prefixes.originals] :
      "resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.uploads.name}/objects/${p}\")"],
    ))
  }

  # CORS rules of the uploads bucket: browser PUTs from the upload API's origins, with the
  # headers a signed URL binds (Content-Type, x-goog-content-length-range, x-goog-if-generation-match).
  uploads_cors = length(var.upload_cors_origins) == 0 ? [] : [{
    origins          = var.upload_cors_origins
    methods          = ["PUT"]
    response_headers = ["Content-Type", "x-goog-content-length-range", "x-goog-if-generation-match", "ETag"]
    max_age_seconds  = var.signed_url_cors_max_age_seconds
  }]
}

# signBlob as itself: the token creator role on its own account only.
resource "google_service_account_iam_member" "upload_signs_as_itself" {
  service_account_id = local.upload_service_account.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:${local.upload_service_account.email}"
}

# Signed URLs create objects as upload: allowed under incoming/ only.
resource "google_storage_bucket_iam_member" "upload_signed_incoming" {
  bucket = google_storage_bucket.uploads.name
  role   = "roles/storage.objectCreator"
  member = "serviceAccount:${local.upload_service_account.email}"

  condition {
    title       = "incoming-only"
    description = "Signed-URL uploads create objects under incoming/ and nowhere else."
    expression  = "resource.name.startsWith(\"${local.incoming_objects}\")"
  }
}

# signBlob is a method of the IAM Service Account Credentials API. Kept enabled on destroy, like
# the APIs of apis.tf.
resource "google_project_service" "iamcredentials" {
  count = var.enable_apis ? 1 : 0

  project            = var.project_id
  service            = "iamcredentials.googleapis.com"
  disable_on_destroy = false
}
