# PostgreSQL in one of two shapes (mode):
# - instance: primary (Multi-AZ unless multi_az = false) in the primary region, cross-region read replica in the
#   recovery region (replicate_source_db = primary ARN). Promotion of the replica is a drill action, not terraform's.
# - cluster: an Aurora PostgreSQL global database; primary cluster (writer + reader) in the primary region, read-only
#   secondary cluster in the recovery region (cluster.tf). Failover/switchover is a drill action, not terraform's.

terraform {
  required_providers {
    aws = {
      source                = "hashicorp/aws"
      configuration_aliases = [aws.primary, aws.recovery]
    }
  }
}

variable "name" {
  description = "Name prefix."
  type        = string
}

variable "primary_region" {
  description = "Region of the primary."
  type        = string
}

variable "recovery_region" {
  description = "Region of the replica."
  type        = string
}

variable "primary_subnet_ids" {
  description = "Subnets of the primary's subnet group."
  type        = list(string)
}

variable "recovery_subnet_ids" {
  description = "Subnets of the replica's subnet group."
  type        = list(string)
}

variable "primary_sg_ids" {
  description = "Security groups of the primary."
  type        = list(string)
}

variable "recovery_sg_ids" {
  description = "Security groups of the replica."
  type        = list(string)
}

variable "instance_class" {
  description = "Instance class."
  type        = string
}

variable "engine_version" {
  description = "PostgreSQL version."
  type        = string
}

variable "allocated_storage" {
  description = "GiB."
  type        = number
}

variable "db_name" {
  description = "Database name."
  type        = string
}

variable "username" {
  description = "Master user."
  type        = string
}

variable "password" {
  description = "Master password."
  type        = string
  sensitive   = true
}

variable "multi_az" {
  description = "Whether the primary is a Multi-AZ DB instance deployment (a synchronous standby in another AZ)."
  type        = bool
  default     = true
}

variable "mode" {
  description = "instance (Multi-AZ DB instance + cross-region read replica) or cluster (Aurora global database)."
  type        = string
  default     = "instance"

  validation {
    condition     = contains(["instance", "cluster"], var.mode)
    error_message = "mode must be \"instance\" or \"cluster\"."
  }
}

variable "create_timeout" {
  description = "Create timeout of the instances (null: provider default)."
  type        = string
  default     = null
}

variable "delete_timeout" {
  description = "Delete timeout of the instances (null: provider default)."
  type        = string
  default     = null
}

resource "aws_db_subnet_group" "primary" {
  provider = aws.primary

  name       = "${var.name}-db-${var.primary_region}"
  subnet_ids = var.primary_subnet_ids
}

resource "aws_db_subnet_group" "recovery" {
  provider = aws.recovery

  name       = "${var.name}-db-${var.recovery_region}"
  subnet_ids = var.recovery_subnet_ids
}

resource "aws_db_instance" "primary" {
  provider = aws.primary
  count    = var.mode == "instance" ? 1 : 0

  identifier              = "${var.name}-db"
  engine                  = "postgres"
  engine_version          = var.engine_version
  instance_class          = var.instance_class
  allocated_storage       = var.allocated_storage
  db_name                 = var.db_name
  username                = var.username
  password                = var.password
  multi_az                = var.multi_az
  db_subnet_group_name    = aws_db_subnet_group.primary.name
  vpc_security_group_ids  = var.primary_sg_ids
  backup_retention_period = 1 # replicas need automated backups on the source
  skip_final_snapshot     = true
  apply_immediately       = true
  deletion_protection     = false

  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }
}

resource "aws_db_instance" "replica" {
  provider = aws.recovery
  count    = var.mode == "instance" ? 1 : 0

  identifier             = "${var.name}-db-replica"
  replicate_source_db    = aws_db_instance.primary[0].arn
  instance_class         = var.instance_class
  db_subnet_group_name   = aws_db_subnet_group.recovery.name
  vpc_security_group_ids = var.recovery_sg_ids
  multi_az               = false
  skip_final_snapshot    = true
  apply_immediately      = true

  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }
}

