output "upload_url" {
  description = "URL of the upload function."
  value       = module.image_pipeline.upload_url
}

output "images_bucket" {
  description = "Bucket with the variants and manifests."
  value       = module.image_pipeline.images_bucket
}

output "public_base_url" {
  description = "Base URL of the variant URLs in manifests."
  value       = module.image_pipeline.public_base_url
}
