# Metrics, alerts and a dashboard (docs/observability.md says what each alert means and what to do).
#
# Log-based metrics read the functions' structured log lines: `event` names and fields as
# shared/core/observability.ts lists them; test/terraform/monitoring.test.ts checks the filters against
# it. Distributions are in milliseconds (job duration, upload→ready) and seconds (CPU per image).

locals {
  # Metric names use underscores so that PromQL can name them as logging_googleapis_com:user_<name>.
  metric_prefix = replace(var.function_name_prefix, "-", "_")
  metric_names = {
    images_ready      = "${local.metric_prefix}_images_ready"
    images_failed     = "${local.metric_prefix}_images_failed"
    job_duration      = "${local.metric_prefix}_job_duration"
    upload_to_ready   = "${local.metric_prefix}_upload_to_ready"
    image_cpu_seconds = "${local.metric_prefix}_image_cpu_seconds"
  }

  # Only this deployment's functions (their Cloud Run services) count: Logging and Monitoring filters.
  service_names     = [for key in sort(keys(local.function_names)) : "\"${local.function_names[key]}\""]
  log_source        = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=(${join(" OR ", local.service_names)})"
  monitoring_source = "resource.type=\"cloud_run_revision\" AND resource.label.service_name=one_of(${join(", ", local.service_names)})"

  log_metrics = {
    images_ready = {
      description = "Images made ready (one image.ready line per image)."
      filter      = "${local.log_source} AND jsonPayload.event=\"image.ready\""
      value_type  = "INT64"
      unit        = "1"
      value       = null
      labels      = {}
    }
    images_failed = {
      description = "Images recorded as failed, by error code (the image.failed line that recorded the outcome)."
      filter      = "${local.log_source} AND jsonPayload.event=\"image.failed\" AND jsonPayload.recorded=true"
      value_type  = "INT64"
      unit        = "1"
      value       = null
      labels      = { code = "EXTRACT(jsonPayload.code)" }
    }
    job_duration = {
      description = "Wall time of each resize job, ms (job.done durationMs)."
      filter      = "${local.log_source} AND jsonPayload.event=\"job.done\""
      value_type  = "DISTRIBUTION"
      unit        = "ms"
      value       = "EXTRACT(jsonPayload.durationMs)"
      labels      = {}
    }
    upload_to_ready = {
      description = "Upload (or ingest) to image.ready, ms (image.ready uploadToReadyMs)."
      filter      = "${local.log_source} AND jsonPayload.event=\"image.ready\""
      value_type  = "DISTRIBUTION"
      unit        = "ms"
      value       = "EXTRACT(jsonPayload.uploadToReadyMs)"
      labels      = {}
    }
    image_cpu_seconds = {
      description = "Resize CPU-seconds per image, as its jobs recorded them (image.ready cpuSeconds)."
      filter      = "${local.log_source} AND jsonPayload.event=\"image.ready\""
      value_type  = "DISTRIBUTION"
      unit        = "s"
      value       = "EXTRACT(jsonPayload.cpuSeconds)"
      labels      = {}
    }
  }

  user_metric = { for key, name in local.metric_names : key => "logging.googleapis.com/user/${name}" }
  promql      = { for key, name in local.metric_names : key => "logging_googleapis_com:user_${name}" }

  dead_letter_inspect = local.topology.subscriptions.jobsDeadLetterPull.name
  resize_service      = local.function_names["resize"]
  resize_max          = local.function_settings["resize"].max_instances
}

resource "google_logging_metric" "this" {
  for_each = local.log_metrics

  project          = var.project_id
  name             = local.metric_names[each.key]
  description      = each.value.description
  filter           = each.value.filter
  value_extractor  = each.value.value
  label_extractors = each.value.labels

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = each.value.value_type
    unit        = each.value.unit

    dynamic "labels" {
      for_each = each.value.labels
      content {
        key        = labels.key
        value_type = "STRING"
      }
    }
  }

  # Milliseconds from 10 ms to ~2.7 h (seconds: 0.01 s to ~2.7 h of CPU) in 64 buckets of ×1.2.
  dynamic "bucket_options" {
    for_each = each.value.value_type == "DISTRIBUTION" ? [each.value.unit == "s" ? 0.01 : 10] : []
    content {
      exponential_buckets {
        num_finite_buckets = 64
        growth_factor      = 1.2
        scale              = bucket_options.value
      }
    }
  }

  depends_on = [google_project_service.this]
}

# Jobs that failed every delivery wait on the inspect subscription: someone should look.
resource "google_monitoring_alert_policy" "dead_letters" {
  project               = var.project_id
  display_name          = "${var.function_name_prefix}: dead-lettered jobs waiting"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "${local.dead_letter_inspect} has undelivered messages for 10 minutes"

    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${local.dead_letter_inspect}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "600s"

      aggregations {
        alignment_period   = "60s"
        per_series_aligner = "ALIGN_MAX"
      }
    }
  }

  documentation {
    content   = "Resize jobs failed ${local.jobs_push.maxDeliveryAttempts} deliveries and were dead-lettered. Cleanup marks their images failed (retryable); the copies on ${local.dead_letter_inspect} are for you. See docs/observability.md#dead-lettered-jobs."
    mime_type = "text/markdown"
  }

  depends_on = [google_project_service.this]
}

# More than 5 % of finished images failed over 15 minutes.
resource "google_monitoring_alert_policy" "failure_ratio" {
  project               = var.project_id
  display_name          = "${var.function_name_prefix}: failure ratio above 5 %"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "image.failed / (image.failed + image.ready) > 0.05 for 15 minutes"

    condition_prometheus_query_language {
      query               = "sum(rate(${local.promql.images_failed}[15m])) / (sum(rate(${local.promql.images_failed}[15m])) + sum(rate(${local.promql.images_ready}[15m]))) > 0.05"
      duration            = "900s"
      evaluation_interval = "60s"
    }
  }

  documentation {
    content   = "More than 5 % of the images finished in the last 15 minutes failed. The dashboard's failures-by-code chart names the cause. See docs/observability.md#failure-ratio."
    mime_type = "text/markdown"
  }

  depends_on = [google_logging_metric.this]
}

# resize has been at its max_instances for 15 minutes: jobs queue up and upload→ready grows.
resource "google_monitoring_alert_policy" "resize_saturated" {
  project               = var.project_id
  display_name          = "${var.function_name_prefix}: resize at max instances"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "${local.resize_service} at ${local.resize_max} instances for 15 minutes"

    condition_threshold {
      filter          = "resource.type=\"cloud_run_revision\" AND resource.labels.service_name=\"${local.resize_service}\" AND metric.type=\"run.googleapis.com/container/instance_count\""
      comparison      = "COMPARISON_GT"
      threshold_value = local.resize_max - 0.5
      duration        = "900s"

      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_MAX"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }
    }
  }

  documentation {
    content   = "resize has run at max_instances (${local.resize_max}) for 15 minutes, so jobs wait in the queue. See docs/observability.md#resize-at-max-instances."
    mime_type = "text/markdown"
  }

  depends_on = [google_project_service.this]
}

resource "google_monitoring_dashboard" "this" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "${var.function_name_prefix}: image pipeline"
    mosaicLayout = {
      columns = 12
      tiles = [for index, widget in [
        {
          title = "Throughput: images ready and failed per minute"
          xyChart = { dataSets = [
            for key in ["images_ready", "images_failed"] : {
              plotType       = "LINE"
              legendTemplate = key
              timeSeriesQuery = { timeSeriesFilter = {
                filter      = "metric.type=\"${local.user_metric[key]}\""
                aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM" }
              } }
            }
          ] }
        },
        {
          title = "Upload → ready, ms (p50, p95, p99)"
          xyChart = { dataSets = [
            for p in ["50", "95", "99"] : {
              plotType       = "LINE"
              legendTemplate = "p${p}"
              timeSeriesQuery = { timeSeriesFilter = {
                filter      = "metric.type=\"${local.user_metric.upload_to_ready}\""
                aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_${p}" }
              } }
            }
          ] }
        },
        {
          title = "Resize job duration, ms (p50, p95, p99)"
          xyChart = { dataSets = [
            for p in ["50", "95", "99"] : {
              plotType       = "LINE"
              legendTemplate = "p${p}"
              timeSeriesQuery = { timeSeriesFilter = {
                filter      = "metric.type=\"${local.user_metric.job_duration}\""
                aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_${p}" }
              } }
            }
          ] }
        },
        {
          title = "Failures by code, per minute"
          xyChart = { dataSets = [{
            plotType = "STACKED_BAR"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = "metric.type=\"${local.user_metric.images_failed}\""
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.code"] }
            } }
          }] }
        },
        {
          title = "Instances per function (resize max: ${local.resize_max})"
          xyChart = { dataSets = [{
            plotType = "LINE"
            timeSeriesQuery = { timeSeriesFilter = {
              filter      = "${local.monitoring_source} AND metric.type=\"run.googleapis.com/container/instance_count\""
              aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.labels.service_name"] }
            } }
          }] }
        },
        {
          title = "CPU utilisation per function (p95) and CPU-seconds per image (p50)"
          xyChart = { dataSets = [
            {
              plotType = "LINE"
              timeSeriesQuery = { timeSeriesFilter = {
                filter      = "${local.monitoring_source} AND metric.type=\"run.googleapis.com/container/cpu/utilizations\""
                aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_PERCENTILE_95", crossSeriesReducer = "REDUCE_MAX", groupByFields = ["resource.labels.service_name"] }
              } }
            },
            {
              plotType       = "LINE"
              legendTemplate = "CPU-seconds per image (p50)"
              targetAxis     = "Y2"
              timeSeriesQuery = { timeSeriesFilter = {
                filter      = "metric.type=\"${local.user_metric.image_cpu_seconds}\""
                aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_50" }
              } }
            },
          ] }
        },
      ] : { xPos = (index % 2) * 6, yPos = floor(index / 2) * 4, width = 6, height = 4, widget = widget }]
    }
  })

  depends_on = [google_logging_metric.this]
}
