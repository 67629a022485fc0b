# This directory is a root module (`cd terraform && terraform apply`), so it configures the
# provider itself. examples/basic calls it as a module, which works because nothing here uses
# count or for_each at the module level.
provider "google" {
  project = var.project_id
  region  = var.region
}
