# The cleanup tick: Cloud Scheduler publishes a small message to the cleanup topic on the schedule
# of shared/core/topology.json (or cleanup_schedule / cleanup_time_zone), and the cleanup function's
# Eventarc trigger receives it. Cloud Scheduler publishes as its own service agent, whose
# predefined role already allows publishing to topics in the project. Cloud Scheduler is not in
# every region: scheduler_region (default: region) places the job; the topic is global.
resource "google_cloud_scheduler_job" "cleanup" {
  project     = var.project_id
  region      = local.scheduler_region
  name        = local.function_names.cleanup
  description = "Runs the ${local.function_names.cleanup} function by publishing to ${google_pubsub_topic.this[local.topology.functions.cleanup.topic].name}."
  schedule    = local.cleanup_schedule
  time_zone   = local.cleanup_time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.this[local.topology.functions.cleanup.topic].id
    data       = base64encode(jsonencode({ source = "cloud-scheduler", job = local.function_names.cleanup }))
    attributes = {
      origin = "cloud-scheduler"
    }
  }

  depends_on = [google_project_service.this]
}
