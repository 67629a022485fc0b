# APIs the pipeline uses. They stay enabled on destroy: other workloads in the project may use
# them, and disabling an API also deletes what other tools created with it.
locals {
  services = concat(
    [
      "artifactregistry.googleapis.com",     # images built by Cloud Build for the functions
      "cloudbuild.googleapis.com",           # builds the function source with the Node.js buildpack
      "cloudfunctions.googleapis.com",       # google_cloudfunctions2_function
      "cloudresourcemanager.googleapis.com", # data "google_project" (the project number)
      "cloudscheduler.googleapis.com",       # the cleanup schedule
      "eventarc.googleapis.com",             # triggers of ingest (Cloud Storage) and cleanup (Pub/Sub)
      "firestore.googleapis.com",            # the database of the per-image state (firestore.tf)
      "iam.googleapis.com",                  # service accounts and their bindings
      "logging.googleapis.com",              # build and function logs, log-based metrics
      "monitoring.googleapis.com",           # alert policies and the dashboard (monitoring.tf)
      "pubsub.googleapis.com",               # topics and subscriptions
      "run.googleapis.com",                  # gen2 functions run as Cloud Run services
      "storage.googleapis.com",              # buckets
    ],
    var.upload_token_secret_id == null ? [] : ["secretmanager.googleapis.com"],
    var.serving == "cdn" ? ["compute.googleapis.com"] : [], # load balancer, Cloud CDN
  )
}

resource "google_project_service" "this" {
  for_each = var.enable_apis ? toset(local.services) : toset([])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
