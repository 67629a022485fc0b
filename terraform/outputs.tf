output "upload_url" {
  description = "URL of the upload function (POST an image here; GET {url}/uploads/{id} for its status)."
  value       = google_cloudfunctions2_function.this["upload"].service_config[0].uri
}

output "function_names" {
  description = "Names of the five functions (also the names of their Cloud Run services)."
  value       = { for key, fn in google_cloudfunctions2_function.this : key => fn.name }
}

output "function_uris" {
  description = "Cloud Run URIs of the five functions."
  value       = { for key, fn in google_cloudfunctions2_function.this : key => fn.service_config[0].uri }
}

output "uploads_bucket" {
  description = "Name of the uploads bucket (originals/ and incoming/)."
  value       = google_storage_bucket.uploads.name
}

output "images_bucket" {
  description = "Name of the images bucket (variants, manifest.json, error.json)."
  value       = google_storage_bucket.images.name
}

output "public_base_url" {
  description = "Base URL of the variant and manifest URLs in manifests (PUBLIC_BASE_URL), set by serving: the bucket's storage.googleapis.com URL, https://{domain} behind Cloud CDN, or public_base_url."
  value       = local.public_base_url
}

output "cdn_ip_address" {
  description = "With serving = \"cdn\": the load balancer's IP address, for the A record of domain (the certificate is issued once it resolves there). Otherwise null."
  value       = var.serving == "cdn" ? google_compute_global_address.cdn[0].address : null
}

output "firestore_database" {
  description = "ID of the Firestore database of the per-image state (FIRESTORE_DATABASE), for tools run against the deployment (e.g. FIRESTORE_DATABASE=$(terraform output -raw firestore_database))."
  value       = google_firestore_database.this.name
}

output "source_bucket" {
  description = "Name of the bucket holding the zipped function source."
  value       = google_storage_bucket.source.name
}

output "topics" {
  description = "Pub/Sub topic names, keyed by their role in shared/core/topology.json."
  value       = { for key, topic in google_pubsub_topic.this : key => topic.name }
}

output "subscriptions" {
  description = "Pub/Sub subscription names, keyed by their role in shared/core/topology.json."
  value = merge(
    { for key, sub in google_pubsub_subscription.pull : key => sub.name },
    { for key, sub in google_pubsub_subscription.push : key => sub.name },
  )
}

output "function_service_accounts" {
  description = "Runtime service account of each function."
  value       = { for key, sa in google_service_account.function : key => sa.email }
}

output "invoker_service_accounts" {
  description = "Invoker service account of each event-driven function (push subscription or Eventarc trigger identity)."
  value       = { for key, sa in google_service_account.invoker : key => sa.email }
}

output "cleanup_schedule" {
  description = "Cron schedule and time zone of the cleanup job."
  value       = { schedule = google_cloud_scheduler_job.cleanup.schedule, time_zone = google_cloud_scheduler_job.cleanup.time_zone }
}

output "monitoring" {
  description = "The dashboard's ID and the names of the log-based metrics (metric type logging.googleapis.com/user/{name}), by key."
  value = {
    dashboard   = google_monitoring_dashboard.this.id
    log_metrics = { for key, metric in google_logging_metric.this : key => metric.name }
  }
}
