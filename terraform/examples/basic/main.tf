# The smallest deployment: every setting at its default, upload callable by the listed members.
# Run `npm ci && npm run build` in the repository root first, then here:
#   terraform init && terraform apply -var project_id=my-project -var 'upload_invoker_members=["user:me@example.com"]'
# The module configures no provider (it is a reusable module): its caller does.
provider "google" {
  project = var.project_id
  region  = var.region
}

module "image_pipeline" {
  source = "../.."

  project_id             = var.project_id
  region                 = var.region
  upload_invoker_members = var.upload_invoker_members
}
