# Settings that depend only on the inputs and on shared/core/topology.json (no resource, no data source),
# so that the variables' validations can read them: test/terraform plans variables.tf with this
# file alone, without any provider.
locals {
  topology = jsondecode(file("${path.module}/../shared/core/topology.json"))

  # Per-function defaults; var.functions overrides any of them, attribute by attribute.
  # upload probes headers and streams to storage: little CPU, 4 requests per instance (above 1
  # needs at least 1 vCPU on gen2); 60 s, a slower upload is better retried by the client.
  # ingest reads headers and copies objects; 120 s covers moving a large direct upload.
  # resize is where sharp works: 2 GiB allows 2 vCPUs, which libvips uses for one image, so one
  # request per instance; its timeout stays below the push subscription's ack deadline.
  # cleanup lists and deletes, never decodes; one instance so that two runs never overlap.
  # Instances and concurrency come from the topology, which the local stack's admission (429
  # beyond max_instances × concurrency) reads too.
  function_sizes = {
    upload  = { memory = "1Gi", cpu = "1", timeout_seconds = 60 }
    ingest  = { memory = "1Gi", cpu = "1", timeout_seconds = 120 }
    resize  = { memory = "2Gi", cpu = "2", timeout_seconds = 540 }
    cleanup = { memory = "512Mi", cpu = null, timeout_seconds = 540 }
  }
  function_defaults = {
    for key, size in local.function_sizes : key => merge(size, {
      min_instances = 0
      max_instances = local.topology.functions[key].maxInstances
      concurrency   = local.topology.functions[key].concurrency
    })
  }

  scheduler_region = var.scheduler_region == null ? var.region : var.scheduler_region

  function_settings = {
    for key, defaults in local.function_defaults :
    key => merge(defaults, { for name, value in try(var.functions[key], {}) : name => value if value != null })
  }
}
