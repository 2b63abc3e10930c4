# One service's Global Accelerator: TCP listener on 80, one endpoint group per region holding
# that region's ALB. Health checks hit the ALB's /health; see provision/README.md for how the
# traffic dials and health settings make the primary preferred and the recovery region take over.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "name" {
  description = "Accelerator name."
  type        = string
}

variable "primary_region" {
  description = "Primary region."
  type        = string
}

variable "recovery_region" {
  description = "Recovery region."
  type        = string
}

variable "primary_alb_arn" {
  description = "ALB of the service in the primary region."
  type        = string
}

variable "recovery_alb_arn" {
  description = "ALB of the service in the recovery region."
  type        = string
}

variable "primary_traffic_dial" {
  description = "Traffic dial of the primary endpoint group."
  type        = number
}

variable "recovery_traffic_dial" {
  description = "Traffic dial of the recovery endpoint group."
  type        = number
}

variable "primary_weight" {
  description = "Weight of the primary ALB endpoint (0-255)."
  type        = number
  default     = 128
}

variable "recovery_weight" {
  description = "Weight of the recovery ALB endpoint (0-255); 0: never a failover target."
  type        = number
  default     = 128
}

variable "health_check_path" {
  description = "Health check path on the ALBs."
  type        = string
}

variable "health_check_interval" {
  description = "Seconds between health checks (10 or 30)."
  type        = number
}

variable "threshold_count" {
  description = "Checks before an endpoint changes health."
  type        = number
}

resource "aws_globalaccelerator_accelerator" "this" {
  name            = var.name
  ip_address_type = "IPV4"
  enabled         = true
}

resource "aws_globalaccelerator_listener" "http" {
  accelerator_arn = aws_globalaccelerator_accelerator.this.id
  protocol        = "TCP"
  client_affinity = "NONE"

  port_range {
    from_port = 80
    to_port   = 80
  }
}

resource "aws_globalaccelerator_endpoint_group" "primary" {
  listener_arn                  = aws_globalaccelerator_listener.http.id
  endpoint_group_region         = var.primary_region
  traffic_dial_percentage       = var.primary_traffic_dial
  health_check_protocol         = "HTTP"
  health_check_port             = 80
  health_check_path             = var.health_check_path
  health_check_interval_seconds = var.health_check_interval
  threshold_count               = var.threshold_count

  endpoint_configuration {
    endpoint_id                    = var.primary_alb_arn
    weight                         = var.primary_weight
    client_ip_preservation_enabled = true
  }
}

resource "aws_globalaccelerator_endpoint_group" "recovery" {
  listener_arn                  = aws_globalaccelerator_listener.http.id
  endpoint_group_region         = var.recovery_region
  traffic_dial_percentage       = var.recovery_traffic_dial
  health_check_protocol         = "HTTP"
  health_check_port             = 80
  health_check_path             = var.health_check_path
  health_check_interval_seconds = var.health_check_interval
  threshold_count               = var.threshold_count

  endpoint_configuration {
    endpoint_id                    = var.recovery_alb_arn
    weight                         = var.recovery_weight
    client_ip_preservation_enabled = true
  }
}

output "accelerator_arn" {
  description = "Accelerator ARN."
  value       = aws_globalaccelerator_accelerator.this.id
}

output "accelerator_dns_name" {
  description = "Accelerator DNS name."
  value       = aws_globalaccelerator_accelerator.this.dns_name
}

output "listener_arn" {
  description = "Listener ARN."
  value       = aws_globalaccelerator_listener.http.id
}

output "primary_endpoint_group_arn" {
  description = "Endpoint group of the primary region."
  value       = aws_globalaccelerator_endpoint_group.primary.arn
}

output "recovery_endpoint_group_arn" {
  description = "Endpoint group of the recovery region."
  value       = aws_globalaccelerator_endpoint_group.recovery.arn
}
