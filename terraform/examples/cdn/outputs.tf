output "upload_url" {
  description = "URL of the upload function."
  value       = module.image_pipeline.upload_url
}

output "public_base_url" {
  description = "Base URL of the variant URLs in manifests (https://{domain})."
  value       = module.image_pipeline.public_base_url
}

output "cdn_ip_address" {
  description = "IP address for the domain's A record."
  value       = module.image_pipeline.cdn_ip_address
}
