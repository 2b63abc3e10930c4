# The static front end: an S3 website bucket whose page links the services' accelerators.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "bucket_name" {
  description = "Bucket name."
  type        = string
}

variable "service_urls" {
  description = "Service name => public URL shown on the page."
  type        = map(string)
}

resource "aws_s3_bucket" "this" {
  bucket        = var.bucket_name
  force_destroy = true
}

resource "aws_s3_bucket_website_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  index_document {
    suffix = "index.html"
  }

  error_document {
    key = "index.html"
  }
}

resource "aws_s3_object" "index" {
  bucket       = aws_s3_bucket.this.id
  key          = "index.html"
  content_type = "text/html"
  content = templatefile("${path.module}/index.html.tftpl", {
    service_urls = var.service_urls
  })
}

output "bucket" {
  description = "Bucket name."
  value       = aws_s3_bucket.this.bucket
}

output "website_endpoint" {
  description = "Website endpoint of the bucket."
  value       = aws_s3_bucket_website_configuration.this.website_endpoint
}
