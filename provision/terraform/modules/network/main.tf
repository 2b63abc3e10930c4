# One region's network: a VPC with public subnets in two AZs (or the caller's own VPC and
# subnets) and the three security groups of the stack (ALB, instances, database).

terraform {
  required_providers {
    aws = {
      source = "hashicorp/aws"
    }
  }
}

variable "name" {
  description = "Name prefix of the network resources."
  type        = string
}

variable "region" {
  description = "Region of this network: tags the subnets gameday:region, which the region-outage FIS template targets."
  type        = string
}

variable "cidr_block" {
  description = "CIDR of the VPC to create."
  type        = string
}

variable "vpc_id" {
  description = "Existing VPC to use instead of creating one."
  type        = string
  default     = null
}

variable "subnet_ids" {
  description = "Subnets of vpc_id (two AZs at least)."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.subnet_ids) == 0 || length(var.subnet_ids) >= 2
    error_message = "Give at least two subnets (two AZs) with vpc_id."
  }
}

variable "app_port" {
  description = "Port of the service instances."
  type        = number
}

variable "db_port" {
  description = "Port of the database."
  type        = number
  default     = 5432
}

data "aws_availability_zones" "available" {
  state = "available"
}

locals {
  create     = var.vpc_id == null
  azs        = slice(data.aws_availability_zones.available.names, 0, 2)
  vpc_id     = local.create ? aws_vpc.this[0].id : var.vpc_id
  subnet_ids = local.create ? aws_subnet.public[*].id : var.subnet_ids
}

resource "aws_vpc" "this" {
  count = local.create ? 1 : 0

  # DNS hostnames and map_public_ip_on_launch stay at their defaults: instances get public IPs
  # from the launch template, and each of those attributes costs a 10 s provider waiter.
  cidr_block = var.cidr_block
  tags       = { Name = var.name }
}

resource "aws_internet_gateway" "this" {
  count = local.create ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = var.name }
}

resource "aws_subnet" "public" {
  count = local.create ? 2 : 0

  vpc_id            = aws_vpc.this[0].id
  cidr_block        = cidrsubnet(var.cidr_block, 8, count.index)
  availability_zone = local.azs[count.index]
  tags = {
    Name             = "${var.name}-${local.azs[count.index]}"
    "gameday:region" = var.region
  }
}

resource "aws_route_table" "public" {
  count = local.create ? 1 : 0

  vpc_id = aws_vpc.this[0].id
  tags   = { Name = var.name }
}

resource "aws_route" "internet" {
  count = local.create ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count = local.create ? 2 : 0

  subnet_id      = aws_subnet.public[count.index].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_security_group" "alb" {
  name        = "${var.name}-alb"
  description = "HTTP from anywhere to the load balancers"
  vpc_id      = local.vpc_id

  ingress {
    description = "HTTP"
    from_port   = 80
    to_port     = 80
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }

  egress {
    description = "All outbound"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "instances" {
  name        = "${var.name}-instances"
  description = "Service port from the load balancers only"
  vpc_id      = local.vpc_id

  ingress {
    description     = "Service port from the ALBs"
    from_port       = var.app_port
    to_port         = var.app_port
    protocol        = "tcp"
    security_groups = [aws_security_group.alb.id]
  }

  egress {
    description = "All outbound (pip, database, SQS)"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "db" {
  name        = "${var.name}-db"
  description = "PostgreSQL from the service instances and from the other region (replication)"
  vpc_id      = local.vpc_id

  ingress {
    description     = "PostgreSQL from the instances"
    from_port       = var.db_port
    to_port         = var.db_port
    protocol        = "tcp"
    security_groups = [aws_security_group.instances.id]
  }

  egress {
    description = "All outbound"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

output "vpc_id" {
  description = "VPC of the region."
  value       = local.vpc_id
}

output "subnet_ids" {
  description = "Subnets (two AZs) used by ALBs, instances and the database."
  value       = local.subnet_ids
}

output "alb_sg_id" {
  description = "Security group of the ALBs."
  value       = aws_security_group.alb.id
}

output "instance_sg_id" {
  description = "Security group of the service instances."
  value       = aws_security_group.instances.id
}

output "db_sg_id" {
  description = "Security group of the database."
  value       = aws_security_group.db.id
}
