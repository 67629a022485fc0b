# Identities and bindings, least privilege:
#
# - One runtime service account per function, with object roles on the buckets it touches,
#   publish/subscribe on the topics and subscriptions it uses, and document access to the Firestore
#   database. No project-level storage or Pub/Sub role, no primitive role.
# - One invoker service account per event-driven function (the push subscription's OIDC identity
#   for resize, the Eventarc trigger identity for ingest and cleanup), allowed to invoke that one
#   function.
# - Google's service agents get what the docs require: the Pub/Sub agent mints OIDC tokens for the
#   invokers and moves dead letters; the Cloud Storage agent publishes the bucket's events.
#
# Project-wide bindings are only those that have no narrower resource: the two Eventarc requires
# for Cloud Storage triggers (roles/eventarc.eventReceiver for ingest's trigger identity,
# roles/pubsub.publisher for the Cloud Storage service agent), the build account's log and
# Artifact Registry writers and source reader (the last one conditioned to gcf-v2-sources-*), and
# the functions' roles/datastore.user, conditioned to the pipeline's Firestore database.
# test/terraform allows exactly these.

resource "google_service_account" "function" {
  for_each = local.topology.functions

  project      = var.project_id
  account_id   = "${var.function_name_prefix}-${each.key}"
  display_name = "${local.function_names[each.key]} function"
  description  = "Runtime identity of the ${local.function_names[each.key]} function (Terraform-managed)."

  depends_on = [google_project_service.this]
}

resource "google_service_account" "invoker" {
  for_each = local.event_functions

  project      = var.project_id
  account_id   = "${var.function_name_prefix}-${each.key}-invoker"
  display_name = "${local.function_names[each.key]} invoker"
  description  = "May invoke ${local.function_names[each.key]} and nothing else: identity of its ${each.value.trigger} trigger (Terraform-managed)."

  depends_on = [google_project_service.this]
}

locals {
  buckets = {
    uploads = google_storage_bucket.uploads
    images  = google_storage_bucket.images
  }
  pipeline_buckets = { for key, bucket in local.buckets : key => bucket.name }

  # Object roles per function and bucket. objectUser = get, list, create, update metadata and
  # delete objects (no bucket settings, no IAM); objectViewer = get and list.
  function_bucket_roles = [
    # upload stores originals/{id} and stamps their dispatch metadata (create + update: objectUser),
    # and DELETE /uploads/{id} deletes the original (the image's state, its tombstone and signed-URL
    # tickets are in Firestore, firestore.tf). Conditioned to that prefix: signed URLs act
    # with upload's permissions (signed_urls.tf).
    # On images it reads manifests, records and variant lists for status, and the delete removes
    # the image's variants, manifest and error.json: objectUser (delete needs it).
    { function = "upload", bucket = "uploads", role = "roles/storage.objectUser", condition = local.upload_uploads_condition },
    { function = "upload", bucket = "images", role = "roles/storage.objectUser", condition = null },
    # ingest reads incoming/, copies it to originals/{id}, deletes it, writes error.json.
    { function = "ingest", bucket = "uploads", role = "roles/storage.objectUser", condition = null },
    { function = "ingest", bucket = "images", role = "roles/storage.objectUser", condition = null },
    # resize only reads originals; it writes variants, the manifest and error.json (its outcome
    # goes to the image's Firestore document: nothing to write in the uploads bucket).
    { function = "resize", bucket = "uploads", role = "roles/storage.objectViewer", condition = null },
    { function = "resize", bucket = "images", role = "roles/storage.objectUser", condition = null },
    # cleanup deletes expired originals, stale incoming/ objects and orphans in both buckets, and
    # re-stamps originals. Its per-step cursors are Firestore documents cleanup/{step} now, not
    # objects: nothing here is there for them.
    { function = "cleanup", bucket = "uploads", role = "roles/storage.objectUser", condition = null },
    { function = "cleanup", bucket = "images", role = "roles/storage.objectUser", condition = null },
  ]

  # Topics each function publishes to (roles/pubsub.publisher on that topic only).
  function_topic_publishers = [
    # upload dispatches jobs and announces image.deleted (a refused upload gets its 4xx, no event).
    { function = "upload", topic = "jobs" },
    { function = "upload", topic = "events" },
    { function = "ingest", topic = "jobs" },
    { function = "ingest", topic = "events" },
    { function = "resize", topic = "events" },
    { function = "cleanup", topic = "jobs" },
    { function = "cleanup", topic = "events" },
    # webhooks dead-letters what a receiver did not accept within WEBHOOK_RETRY_HOURS.
    { function = "webhooks", topic = "webhooksDeadLetter" },
  ]

  # Subscriptions a function pulls from, declared in shared/core/topology.json ("pull": function).
  function_pull_subscriptions = { for key, sub in local.pull_subscriptions : key => sub if try(sub.pull, null) != null }

  # Functions that use the Firestore database (FIRESTORE_DATABASE): all five (webhooks keeps its
  # delivery records there).
  firestore_functions = toset(["upload", "ingest", "resize", "cleanup", "webhooks"])
}

# --- Function runtime identities --------------------------------------------------------------

resource "google_storage_bucket_iam_member" "function" {
  for_each = { for b in local.function_bucket_roles : "${b.function}/${b.bucket}/${b.role}" => b }

  bucket = local.pipeline_buckets[each.value.bucket]
  role   = each.value.role
  member = "serviceAccount:${google_service_account.function[each.value.function].email}"

  dynamic "condition" {
    for_each = each.value.condition == null ? [] : [each.value.condition]
    content {
      title       = condition.value.title
      description = condition.value.description
      expression  = condition.value.expression
    }
  }
}

resource "google_pubsub_topic_iam_member" "function_publisher" {
  for_each = { for p in local.function_topic_publishers : "${p.function}/${p.topic}" => p }

  project = var.project_id
  topic   = google_pubsub_topic.this[each.value.topic].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.function[each.value.function].email}"
}

resource "google_pubsub_subscription_iam_member" "function_subscriber" {
  for_each = local.function_pull_subscriptions

  project      = var.project_id
  subscription = google_pubsub_subscription.pull[each.key].name
  role         = "roles/pubsub.subscriber"
  member       = "serviceAccount:${google_service_account.function[each.value.pull].email}"
}

# Firestore: every function reads and writes the image documents (upload records and deletes,
# ingest records and dispatches, resize records its outcome, cleanup queries and repairs, and keeps
# its cursors there). roles/datastore.user (documents and transactions; no index, database or
# export admin) on the project, since Firestore databases have no IAM policy of their own, with an
# IAM condition that limits it to this one database. Firestore documents such conditions
# (resource.name == "projects/PROJECT_ID/databases/DATABASE_ID" on datastore.user, "Configure
# per-database access permissions", https://cloud.google.com/firestore/native/docs/manage-databases);
# they are enforced for the client libraries and the REST API, not in the Cloud console.
resource "google_project_iam_member" "function_firestore" {
  for_each = local.firestore_functions

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.function[each.key].email}"

  condition {
    title       = "firestore-${google_firestore_database.this.name}-only"
    description = "The pipeline's Firestore database only"
    expression  = "resource.name == \"projects/${var.project_id}/databases/${google_firestore_database.this.name}\""
  }
}

# upload reads its bearer token, and only that secret.
resource "google_secret_manager_secret_iam_member" "upload_token" {
  count = var.upload_token_secret_id == null ? 0 : 1

  project   = var.project_id
  secret_id = var.upload_token_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function["upload"].email}"

  depends_on = [google_project_service.this]
}

# webhooks reads its signing secret, and only that secret.
resource "google_secret_manager_secret_iam_member" "webhook_secret" {
  count = var.webhook_secret_id == null ? 0 : 1

  project   = var.project_id
  secret_id = var.webhook_secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function["webhooks"].email}"

  depends_on = [google_project_service.this]
}

# --- Who may invoke the functions ----------------------------------------------------------------
# A gen2 function is served by the Cloud Run service of the same name; invoking it takes
# roles/run.invoker on that service.

resource "google_cloud_run_service_iam_member" "invoker" {
  for_each = local.event_functions

  project  = var.project_id
  location = google_cloudfunctions2_function.this[each.key].location
  service  = google_cloudfunctions2_function.this[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker[each.key].email}"
}

# upload: public only when explicitly allowed ...
resource "google_cloud_run_service_iam_member" "upload_public" {
  count = var.allow_unauthenticated_upload ? 1 : 0

  project  = var.project_id
  location = google_cloudfunctions2_function.this["upload"].location
  service  = google_cloudfunctions2_function.this["upload"].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# ... otherwise callable by the listed members only.
resource "google_cloud_run_service_iam_member" "upload_invoker" {
  for_each = toset(var.upload_invoker_members)

  project  = var.project_id
  location = google_cloudfunctions2_function.this["upload"].location
  service  = google_cloudfunctions2_function.this["upload"].name
  role     = "roles/run.invoker"
  member   = each.value
}

# Eventarc: a trigger for direct Cloud Storage events needs its identity to hold
# roles/eventarc.eventReceiver (granted on the project; the role has no narrower resource). The
# Pub/Sub trigger of cleanup does not need it.
resource "google_project_iam_member" "ingest_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.invoker["ingest"].email}"
}

# --- Google service agents -----------------------------------------------------------------------

# Cloud Storage publishes the bucket's events to a topic Eventarc creates, so its service agent
# needs roles/pubsub.publisher in the project (Eventarc's documented prerequisite). The grant is
# project-wide and other Cloud Storage triggers of the project may rely on it: destroy removes it,
# so grant_storage_agent_publisher = false leaves it to whoever manages the project. No
# depends_on on the data source, for the reason given at data.google_project.this (locals.tf).
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_project_iam_member" "gcs_pubsub_publisher" {
  count = var.grant_storage_agent_publisher ? 1 : 0

  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# The Pub/Sub service agent signs the OIDC tokens of the push subscription and of the Eventarc
# deliveries (needed explicitly for projects whose agent predates April 2021), on the invoker
# accounts only.
resource "google_service_account_iam_member" "pubsub_token_creator" {
  for_each = local.event_functions

  service_account_id = google_service_account.invoker[each.key].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

# Dead lettering: the Pub/Sub service agent publishes to the dead-letter topic and acknowledges
# the forwarded message on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  project = var.project_id
  topic   = google_pubsub_topic.this[local.jobs_push.deadLetterTopic].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  project      = var.project_id
  subscription = google_pubsub_subscription.push["jobsPush"].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}

# --- Public read of the images bucket, when it serves the variants itself (serving.tf) -----------

# Anyone may read an object whose exact name they know (a manifest or variant URL handed out by
# upload) and nothing more: roles/storage.legacyObjectReader holds storage.objects.get but not
# storage.objects.list, so nobody can list the bucket to discover other people's images
# (roles/storage.objectViewer would let them). Legacy roles are granted on buckets only, which is
# what this is, and apply with uniform bucket-level access like any other bucket role.
# test/terraform checks that no public member holds a listing role anywhere in the module.
resource "google_storage_bucket_iam_member" "images_public" {
  count = var.serving == "bucket" ? 1 : 0

  bucket = google_storage_bucket.images.name
  role   = "roles/storage.legacyObjectReader"
  member = "allUsers"

  # A change of role replaces the member (objectViewer → legacyObjectReader on upgrade): grant the
  # new role before revoking the old one, so that anonymous reads never fail in between.
  lifecycle {
    create_before_destroy = true
  }
}

# --- Cloud Build --------------------------------------------------------------------------------
# New projects build with the Compute Engine default service account, which organisations that
# enforce iam.automaticIamGrantsForDefaultServiceAccounts leave without roles: every build would
# fail. So the functions build as a service account of their own, with what the Cloud Functions
# "custom build service account" docs list: write build logs, push images to Artifact Registry
# (gcf-artifacts, created by Cloud Functions), and read the sources Cloud Functions copies into
# its own gcf-v2-sources-{number}-{region} bucket (an IAM condition keeps the read to those
# buckets). Our source bucket is read by the Cloud Functions service agent, not by the build.
resource "google_service_account" "build" {
  count = var.build_service_account == null ? 1 : 0

  project      = var.project_id
  account_id   = "${var.function_name_prefix}-build"
  display_name = "${var.function_name_prefix} functions build"
  description  = "Cloud Build identity of the ${var.function_name_prefix}-* functions (Terraform-managed)."

  depends_on = [google_project_service.this]
}

locals {
  build_service_account_email = var.build_service_account == null ? google_service_account.build[0].email : var.build_service_account
  build_service_account       = "projects/${var.project_id}/serviceAccounts/${local.build_service_account_email}"

  build_roles = {
    logs      = { role = "roles/logging.logWriter", condition = null }
    artifacts = { role = "roles/artifactregistry.writer", condition = null }
    sources = {
      role = "roles/storage.objectViewer"
      condition = {
        title      = "gcf-v2-sources buckets only"
        expression = "resource.name.startsWith(\"projects/_/buckets/gcf-v2-sources-${data.google_project.this.number}-\")"
      }
    }
  }
}

# Granted only to the account created here: a build_service_account of your own keeps the grants
# you gave it.
resource "google_project_iam_member" "build" {
  for_each = var.build_service_account == null ? local.build_roles : {}

  project = var.project_id
  role    = each.value.role
  member  = "serviceAccount:${local.build_service_account_email}"

  dynamic "condition" {
    for_each = each.value.condition == null ? [] : [each.value.condition]
    content {
      title      = condition.value.title
      expression = condition.value.expression
    }
  }
}
