variable "project_id" {
  description = "ID of the Google Cloud project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the functions and buckets."
  type        = string
  default     = "us-central1"
}

variable "domain" {
  description = "Host name the images are served from, e.g. images.example.com."
  type        = string
}

variable "upload_invoker_members" {
  description = "IAM members allowed to call the upload function, e.g. [\"user:me@example.com\"]."
  type        = list(string)
  default     = []
}
