# Provider and Terraform version constraints, in the style of terraform-google-modules.
#
# hashicorp/google: 6.x and 7.x. Every resource and attribute used here exists in both major
# versions (checked against the provider's documentation and its Magic Modules definitions);
# nothing here needs google-beta.
# hashicorp/archive: zips the built function source (data "archive_file").
# hashicorp/time: waits for IAM propagation on the first apply (time_sleep in functions.tf).
# No provider block: this is a reusable module (count, for_each and depends_on work on it); the
# callers in examples/ configure the provider.
terraform {
  # 1.9: validations that read other values (var.functions checks resize against the ack deadline
  # of shared/core/topology.json; a public upload needs upload_auth jwt or token).
  required_version = ">= 1.9.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.0, < 8.0"
    }
    archive = {
      source  = "hashicorp/archive"
      version = ">= 2.4, < 3.0"
    }
    time = {
      source  = "hashicorp/time"
      version = ">= 0.9, < 1.0"
    }
  }
}
