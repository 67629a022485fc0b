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
  log_resource_type = "cloud_run_revision"
  service_names     = [for key in sort(keys(local.function_names)) : "\"${local.function_names[key]}\""]
  log_source        = "resource.type=\"${local.log_resource_type}\" AND resource.labels.service_name=(${join(" OR ", local.service_names)})"
  monitoring_source = "resource.type=\"${local.log_resource_type}\" AND resource.label.service_name=one_of(${join(", ", local.service_names)})"

  log_metrics = {
    images_ready = {
      description = "Images made ready (one image.ready line per image)."
      filter      = "${local.log_source} AND jsonPayload.event=\"image.ready\""
      value_type  = "INT64"
      unit        = "1"
      value       = null
      labels      = {}
      buckets     = null
    }
    images_failed = {
      description = "Images recorded as failed, by error code (the image.failed line that recorded the outcome)."
      filter      = "${local.log_source} AND jsonPayload.event=\"image.failed\" AND jsonPayload.recorded=true"
      value_type  = "INT64"
      unit        = "1"
      value       = null
      labels      = { code = "EXTRACT(jsonPayload.code)" }
      buckets     = null
    }
    job_duration = {
      description = "Wall time of each resize job, ms (job.done durationMs)."
      filter      = "${local.log_source} AND jsonPayload.event=\"job.done\""
      value_type  = "DISTRIBUTION"
      unit        = "ms"
      value       = "EXTRACT(jsonPayload.durationMs)"
      labels      = {}
      # 10 ms to ~20 min: a job ends by resize's timeout, below the jobs subscription's 600 s ack deadline.
      buckets = { scale = 10, growth_factor = 1.2, num_finite_buckets = 64 }
    }
    upload_to_ready = {
      description = "Upload (or ingest) to image.ready, ms (image.ready uploadToReadyMs)."
      filter      = "${local.log_source} AND jsonPayload.event=\"image.ready\""
      value_type  = "DISTRIBUTION"
      unit        = "ms"
      value       = "EXTRACT(jsonPayload.uploadToReadyMs)"
      labels      = {}
      # 100 ms to ~60 h: one dispatch can take 25 deliveries of up to 600 s each with up to 600 s of
      # backoff between them (~8.3 h), and cleanup re-dispatches an image up to 3 times.
      buckets = { scale = 100, growth_factor = 1.2, num_finite_buckets = 80 }
    }
    image_cpu_seconds = {
      description = "Resize CPU-seconds per image, as its jobs recorded them (image.ready cpuSeconds)."
      filter      = "${local.log_source} AND jsonPayload.event=\"image.ready\""
      value_type  = "DISTRIBUTION"
      unit        = "s"
      value       = "EXTRACT(jsonPayload.cpuSeconds)"
      labels      = {}
      # 0.01 s to ~26 h of CPU: up to one job per variant, each up to resize's timeout on its vCPUs.
      buckets = { scale = 0.01, growth_factor = 1.2, num_finite_buckets = 88 }
    }
  }

  user_metric = { for key, name in local.metric_names : key => "logging.googleapis.com/user/${name}" }
  # A log-based metric can be written against several monitored resource types, so PromQL must
  # name one ("Mapping Cloud Monitoring metrics to PromQL": the monitored_resource label).
  promql = {
    for key, name in local.metric_names :
    key => "logging_googleapis_com:user_${name}{monitored_resource=\"${local.log_resource_type}\"}"
  }

  dead_letter_inspect  = local.topology.subscriptions.jobsDeadLetterPull.name
  webhook_dead_letters = local.topology.subscriptions.webhooksDeadLetterPull.name
  resize_service       = local.function_names["resize"]
  resize_max           = local.function_settings["resize"].max_instances

  # The dead_letters alert policies, by what was dead-lettered.
  dead_letter_alerts = {
    jobs = {
      subscription  = local.dead_letter_inspect
      documentation = "Resize jobs failed ${local.topology.subscriptions.jobsPush.maxDeliveryAttempts} deliveries and were dead-lettered. Cleanup marks their images failed (retryable); the copies on ${local.dead_letter_inspect} are for you. See docs/observability.md#dead-lettered-jobs."
    }
    webhooks = {
      subscription  = local.webhook_dead_letters
      documentation = "A webhook receiver did not accept some events for ${var.webhook_retry_hours} hours; they were dead-lettered for it. The copies on ${local.webhook_dead_letters} name the receivers (attribute receivers). See docs/observability.md#dead-lettered-webhooks."
    }
  }
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

  # Buckets of ×1.2 (a percentile read off them is within 20 %), over the range each value can
  # reach (log_metrics); values past the last bucket only count as "more than".
  dynamic "bucket_options" {
    for_each = each.value.buckets == null ? [] : [each.value.buckets]
    content {
      exponential_buckets {
        num_finite_buckets = bucket_options.value.num_finite_buckets
        growth_factor      = bucket_options.value.growth_factor
        scale              = bucket_options.value.scale
      }
    }
  }

  depends_on = [google_project_service.this]
}

# A new log-based metric reaches Monitoring minutes after Logging created it: an alert policy on it
# created sooner fails with "Error 404: Cannot find metric(s) that match type = ... If a metric was
# created recently, it could take up to 10 minutes to become available"
# (hashicorp/terraform-provider-google#11102). depends_on only orders the calls, so the policies
# that read log-based metrics wait; a new metric (a change of the set) waits again.
resource "time_sleep" "log_metrics" {
  create_duration = var.log_metric_wait

  triggers = {
    metrics = join(",", sort([for metric in google_logging_metric.this : metric.name]))
  }
}

# Dead letters waiting on an inspect subscription: someone should look. One policy per kind, keyed
# by what was dead-lettered (the key is also in the display name): jobs that failed every delivery,
# and events a webhook receiver did not accept within WEBHOOK_RETRY_HOURS (the receiver has been
# down or refusing for that long).
resource "google_monitoring_alert_policy" "dead_letters" {
  for_each = local.dead_letter_alerts

  project               = var.project_id
  display_name          = "${var.function_name_prefix}: dead-lettered ${each.key} waiting"
  combiner              = "OR"
  notification_channels = var.notification_channels

  conditions {
    display_name = "${each.value.subscription} has undelivered messages for 10 minutes"

    condition_threshold {
      filter          = "resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${each.value.subscription}\" AND metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\""
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
    content   = each.value.documentation
    mime_type = "text/markdown"
  }

  depends_on = [google_project_service.this]
}

# Before the for_each these were two resources: the policies (and their incident history) stay.
# Keep these blocks: an older state still names the old addresses.
moved {
  from = google_monitoring_alert_policy.dead_letters
  to   = google_monitoring_alert_policy.dead_letters["jobs"]
}
moved {
  from = google_monitoring_alert_policy.webhook_dead_letters
  to   = google_monitoring_alert_policy.dead_letters["webhooks"]
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

  depends_on = [time_sleep.log_metrics]
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
    displayName  = "${var.function_name_prefix}: image pipeline"
    mosaicLayout = { columns = 12, tiles = local.dashboard_tiles }
  })

  depends_on = [google_logging_metric.this]
}

# The dashboard's charts, two to a row, 6 of its 12 columns wide and 4 rows high.
locals {
  percentile_charts = [
    { metric = "upload_to_ready", title = "Upload → ready, ms (p50, p95, p99)" },
    { metric = "job_duration", title = "Resize job duration, ms (p50, p95, p99)" },
  ]

  single_series_charts = [
    {
      title       = "Failures by code, per minute"
      plot_type   = "STACKED_BAR"
      filter      = "metric.type=\"${local.user_metric.images_failed}\""
      aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_RATE", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["metric.label.code"] }
    },
    {
      title       = "Instances per function (resize max: ${local.resize_max})"
      plot_type   = "LINE"
      filter      = "${local.monitoring_source} AND metric.type=\"run.googleapis.com/container/instance_count\""
      aggregation = { alignmentPeriod = "60s", perSeriesAligner = "ALIGN_MAX", crossSeriesReducer = "REDUCE_SUM", groupByFields = ["resource.labels.service_name"] }
    },
  ]

  dashboard_widgets = concat([
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
    }], [
    for chart in local.percentile_charts : {
      title = chart.title
      xyChart = { dataSets = [
        for p in ["50", "95", "99"] : {
          plotType       = "LINE"
          legendTemplate = "p${p}"
          timeSeriesQuery = { timeSeriesFilter = {
            filter      = "metric.type=\"${local.user_metric[chart.metric]}\""
            aggregation = { alignmentPeriod = "300s", perSeriesAligner = "ALIGN_DELTA", crossSeriesReducer = "REDUCE_PERCENTILE_${p}" }
          } }
        }
      ] }
    }], [
    for chart in local.single_series_charts : {
      title = chart.title
      xyChart = { dataSets = [{
        plotType        = chart.plot_type
        timeSeriesQuery = { timeSeriesFilter = { filter = chart.filter, aggregation = chart.aggregation } }
      }] }
    }], [
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
  ])

  # The API leaves out a position of 0 when it answers, so a tile that names one differs from
  # what Google returns on every plan (hashicorp/terraform-provider-google#7242): zero positions
  # are left out here too.
  dashboard_tiles = [
    for index, widget in local.dashboard_widgets : merge(
      { width = 6, height = 4, widget = widget },
      index % 2 == 0 ? {} : { xPos = 6 },
      floor(index / 2) == 0 ? {} : { yPos = floor(index / 2) * 4 },
    )
  ]
}
