# One service's Route 53 failover routing (routing_mode = "route53"): a health check per
# region on the ALB's health path, and a PRIMARY/SECONDARY failover record pair under one
# name. Route 53 answers with the primary ALB while its health check passes and with the
# recovery ALB otherwise; failback is automatic. Unlike Global Accelerator, clients see the
# switch only when their cached answer expires (record_ttl), so keep the TTL short.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "name" {
  description = "Service name (the record's first label)."
  type        = string
}

variable "zone_id" {
  description = "Hosted zone holding the failover records."
  type        = string
}

variable "zone_name" {
  description = "Name of that hosted zone."
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

variable "primary_alb_dns_name" {
  description = "DNS name of the service's ALB in the primary region."
  type        = string
}

variable "recovery_alb_dns_name" {
  description = "DNS name of the service's ALB in the recovery region."
  type        = string
}

variable "health_check_path" {
  description = "Health check path on the ALBs."
  type        = string
}

variable "request_interval" {
  description = "Seconds between Route 53 health checks (10 or 30)."
  type        = number
}

variable "failure_threshold" {
  description = "Consecutive checks before Route 53 changes an endpoint's health (1-10)."
  type        = number
}

variable "record_ttl" {
  description = "TTL of the failover records (seconds)."
  type        = number
}

variable "create_timeout" {
  description = "Create timeout of the records (null: provider default); the sandbox's fast apply shortens it."
  type        = string
  default     = null
}

variable "delete_timeout" {
  description = "Delete timeout of the records (null: provider default)."
  type        = string
  default     = null
}

locals {
  fqdn = "${var.name}.${var.zone_name}"
  targets = {
    primary  = { region = var.primary_region, alb = var.primary_alb_dns_name, role = "PRIMARY" }
    recovery = { region = var.recovery_region, alb = var.recovery_alb_dns_name, role = "SECONDARY" }
  }
}

resource "aws_route53_health_check" "this" {
  for_each = local.targets

  type              = "HTTP"
  fqdn              = each.value.alb
  port              = 80
  resource_path     = var.health_check_path
  request_interval  = var.request_interval
  failure_threshold = var.failure_threshold

  tags = {
    Name             = "${var.name}-${each.value.region}"
    "gameday:region" = each.value.region
  }
}

resource "aws_route53_record" "this" {
  for_each = local.targets

  zone_id         = var.zone_id
  name            = local.fqdn
  type            = "CNAME"
  ttl             = var.record_ttl
  records         = [each.value.alb]
  set_identifier  = "${var.name}-${each.key}"
  health_check_id = aws_route53_health_check.this[each.key].id

  failover_routing_policy {
    type = each.value.role
  }

  # the provider waits for the change to be INSYNC; see provision/README.md, fast apply
  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }
}

output "fqdn" {
  description = "The name clients use for this service."
  value       = local.fqdn
}

output "primary_health_check_id" {
  description = "Health check of the primary region's ALB."
  value       = aws_route53_health_check.this["primary"].id
}

output "recovery_health_check_id" {
  description = "Health check of the recovery region's ALB."
  value       = aws_route53_health_check.this["recovery"].id
}
