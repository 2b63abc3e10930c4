# One service in one region: launch template (user data installs the reference service), ASG,
# ALB + target group (health check on /health) + HTTP listener.

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "name_prefix" {
  description = "Prefix of the resource names."
  type        = string
}

variable "service" {
  description = "Service name (web, orders, catalog)."
  type        = string
}

variable "region" {
  description = "Region of this copy of the service."
  type        = string
}

variable "vpc_id" {
  description = "VPC."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets in two AZs."
  type        = list(string)
}

variable "alb_sg_id" {
  description = "Security group of the ALB."
  type        = string
}

variable "instance_sg_id" {
  description = "Security group of the instances."
  type        = string
}

variable "ami_id" {
  description = "AMI of the instances."
  type        = string
}

variable "instance_type" {
  description = "Instance type."
  type        = string
}

variable "min_size" {
  description = "ASG minimum."
  type        = number
}

variable "desired_capacity" {
  description = "ASG desired capacity."
  type        = number
}

variable "max_size" {
  description = "ASG maximum."
  type        = number
}

variable "app_port" {
  description = "Port of the service on the instances."
  type        = number
}

variable "health_check_path" {
  description = "Target group health check path."
  type        = string
}

variable "health_check_interval" {
  description = "Seconds between target health checks."
  type        = number
}

variable "health_check_timeout" {
  description = "Seconds before a target health check fails."
  type        = number
}

variable "healthy_threshold" {
  description = "Successes before healthy."
  type        = number
}

variable "unhealthy_threshold" {
  description = "Failures before unhealthy."
  type        = number
}

variable "deregistration_delay" {
  description = "Draining seconds."
  type        = number
}

variable "gameday_package" {
  description = "pip requirement of the reference service."
  type        = string
}

variable "db_writer" {
  description = "HOST:PORT of the database writer."
  type        = string
}

variable "db_reader" {
  description = "HOST:PORT of the region's database reader."
  type        = string
}

variable "db_name" {
  description = "Database name."
  type        = string
}

variable "db_username" {
  description = "Database user."
  type        = string
}

variable "db_password" {
  description = "Database password (written to a root-only file on the instance)."
  type        = string
  sensitive   = true
}

variable "queue_url" {
  description = "SQS queue of the region."
  type        = string
}

variable "health_check_type" {
  description = "ASG health check type: EC2 (instance status only) or ELB (also the target group's health checks)."
  type        = string
  default     = "ELB"
}

variable "health_check_grace_period" {
  description = "Seconds after launch before the ASG acts on failed health checks."
  type        = number
  default     = 120
}

variable "create_timeout" {
  description = "Create timeout of the ALB (null: provider default)."
  type        = string
  default     = null
}

locals {
  # "eu-central-1" -> "ec1": keeps ALB / target group names under 32 characters.
  region_short = join("", [for part in split("-", var.region) : substr(part, 0, 1)])
  name         = "${var.name_prefix}-${var.service}-${local.region_short}"
}

resource "aws_launch_template" "this" {
  name_prefix            = "${local.name}-"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  update_default_version = true

  # Public IP for the boot-time pip install (the subnets do not map public IPs on launch).
  network_interfaces {
    device_index                = 0
    associate_public_ip_address = true
    security_groups             = [var.instance_sg_id]
    delete_on_termination       = true
  }

  user_data = base64encode(templatefile("${path.module}/user_data.sh.tftpl", {
    service         = var.service
    region          = var.region
    app_port        = var.app_port
    gameday_package = var.gameday_package
    db_writer       = var.db_writer
    db_reader       = var.db_reader
    db_name         = var.db_name
    db_username     = var.db_username
    db_password     = var.db_password
    queue_url       = var.queue_url
  }))

  metadata_options {
    http_tokens   = "required"
    http_endpoint = "enabled"
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name              = local.name
      "gameday:stack"   = var.name_prefix # the guardrails' scope tag (default_tags skip ASG launches)
      "gameday:service" = var.service
      "gameday:region"  = var.region
    }
  }
}

resource "aws_lb" "this" {
  name               = local.name
  load_balancer_type = "application"
  internal           = false
  security_groups    = [var.alb_sg_id]
  subnets            = var.subnet_ids

  timeouts {
    create = var.create_timeout
  }
}

resource "aws_lb_target_group" "this" {
  name                 = local.name
  port                 = var.app_port
  protocol             = "HTTP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = var.deregistration_delay

  health_check {
    enabled             = true
    path                = var.health_check_path
    protocol            = "HTTP"
    port                = "traffic-port"
    matcher             = "200"
    interval            = var.health_check_interval
    timeout             = var.health_check_timeout
    healthy_threshold   = var.healthy_threshold
    unhealthy_threshold = var.unhealthy_threshold
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}

resource "aws_autoscaling_group" "this" {
  name                      = local.name
  min_size                  = var.min_size
  desired_capacity          = var.desired_capacity
  max_size                  = var.max_size
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = [aws_lb_target_group.this.arn]
  health_check_type         = var.health_check_type
  health_check_grace_period = var.health_check_grace_period
  # Instances install the service at boot; the ALB health check, not terraform, decides readiness.
  wait_for_capacity_timeout = "0"

  launch_template {
    id      = aws_launch_template.this.id
    version = "$Latest"
  }

  tag {
    key                 = "gameday:service"
    value               = var.service
    propagate_at_launch = true
  }

  # default_tags reach "all resources except Auto Scaling Groups"
  # (https://hashicorp.com/blog/default-tags-in-the-terraform-aws-provider): the guardrails'
  # scope tag must be on the group and on the instances it launches
  tag {
    key                 = "gameday:stack"
    value               = var.name_prefix
    propagate_at_launch = true
  }
}

output "alb_arn" {
  description = "ALB ARN."
  value       = aws_lb.this.arn
}

output "alb_dns_name" {
  description = "ALB DNS name."
  value       = aws_lb.this.dns_name
}

output "target_group_arn" {
  description = "Target group ARN."
  value       = aws_lb_target_group.this.arn
}

output "listener_arn" {
  description = "HTTP listener ARN."
  value       = aws_lb_listener.http.arn
}

output "asg_name" {
  description = "Auto Scaling group name."
  value       = aws_autoscaling_group.this.name
}

output "launch_template_id" {
  description = "Launch template ID."
  value       = aws_launch_template.this.id
}
