# Source packaging. `npm run build` compiles the TypeScript and assembles the deployable package in
# build/function-source (local/package-functions.ts): dist/functions, dist/shared,
# shared/core/topology.json, and a package.json + package-lock.json with the runtime dependencies only
# and no build script, so Cloud Build's Node.js buildpack just runs `npm ci`.
#
# The archive's MD5 is part of the object name: a code change uploads a new object, which changes
# build_config.source of every function and so rebuilds and redeploys them; an unchanged build
# produces the same archive (the archive provider zeroes file times) and changes nothing.

locals {
  function_source_dir = var.function_source_dir == null ? "${path.module}/build/function-source" : var.function_source_dir
}

data "archive_file" "function_source" {
  type             = "zip"
  source_dir       = local.function_source_dir
  output_path      = "${path.module}/build/function-source.zip"
  output_file_mode = "0644"

  lifecycle {
    precondition {
      condition     = fileexists("${local.function_source_dir}/package.json") && fileexists("${local.function_source_dir}/dist/functions/index.js")
      error_message = "No packaged function source in ${local.function_source_dir}. Run `npm ci && npm run build` in the repository root first."
    }
  }
}

resource "google_storage_bucket_object" "function_source" {
  name         = "function-source-${data.archive_file.function_source.output_md5}.zip"
  bucket       = google_storage_bucket.source.name
  source       = data.archive_file.function_source.output_path
  content_type = "application/zip"
}
