# Variants served by a global external Application Load Balancer with Cloud CDN on your domain;
# the images bucket stays private. Run `npm ci && npm run build` in the repository root first:
#   terraform init && terraform apply -var project_id=my-project -var domain=images.example.com
# then point the domain's A record at the cdn_ip_address output.
provider "google" {
  project = var.project_id
  region  = var.region
}

module "image_pipeline" {
  source = "../.."

  project_id             = var.project_id
  region                 = var.region
  upload_invoker_members = var.upload_invoker_members
  serving                = "cdn"
  domain                 = var.domain
}
