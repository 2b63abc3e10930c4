# One region's SQS queue (orders publishes, catalog consumes).

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "name" {
  description = "Queue name."
  type        = string
}

variable "visibility_timeout_seconds" {
  description = "Visibility timeout."
  type        = number
}

variable "message_retention_seconds" {
  description = "Message retention."
  type        = number
}

variable "create_timeout" {
  description = "Create timeout (null: provider default)."
  type        = string
  default     = null
}

resource "aws_sqs_queue" "this" {
  name                       = var.name
  visibility_timeout_seconds = var.visibility_timeout_seconds
  message_retention_seconds  = var.message_retention_seconds
  receive_wait_time_seconds  = 2

  timeouts {
    create = var.create_timeout
  }
}

output "queue_url" {
  description = "Queue URL."
  value       = aws_sqs_queue.this.url
}

output "queue_arn" {
  description = "Queue ARN."
  value       = aws_sqs_queue.this.arn
}
