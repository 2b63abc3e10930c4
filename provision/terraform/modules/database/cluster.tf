# cluster mode: an Aurora PostgreSQL global database. The primary cluster (one writer, one reader) is in the primary
# region, the secondary (read-only, secondary_instance_count readers) in the recovery region. The global cluster
# carries engine and version; the secondary takes no credentials or database name (it replicates the primary's).

variable "cluster_instance_class" {
  description = "Instance class of the Aurora cluster instances (cluster mode)."
  type        = string
  default     = "db.r6g.large"

  validation {
    condition     = startswith(var.cluster_instance_class, "db.")
    error_message = "cluster_instance_class must be an RDS instance class such as \"db.r6g.large\"."
  }
}

variable "cluster_engine_version" {
  description = "Aurora PostgreSQL engine version (cluster mode); it must be one that supports global databases."
  type        = string
  default     = "16.4"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+$", var.cluster_engine_version))
    error_message = "cluster_engine_version must be an Aurora PostgreSQL major.minor version such as \"16.4\"."
  }
}

variable "secondary_instance_count" {
  description = "Reader instances of the secondary cluster (cluster mode): 1 or 2."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2], var.secondary_instance_count)
    error_message = "secondary_instance_count must be 1 or 2."
  }
}

locals {
  cluster_mode = var.mode == "cluster" ? 1 : 0
}

resource "aws_rds_global_cluster" "this" {
  provider = aws.primary
  count    = local.cluster_mode

  global_cluster_identifier = "${var.name}-global-db"
  engine                    = "aurora-postgresql"
  engine_version            = var.cluster_engine_version
  database_name             = var.db_name
  deletion_protection       = false

  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }
}

resource "aws_rds_cluster" "primary" {
  provider = aws.primary
  count    = local.cluster_mode

  cluster_identifier        = "${var.name}-db-${var.primary_region}"
  global_cluster_identifier = aws_rds_global_cluster.this[0].id
  engine                    = aws_rds_global_cluster.this[0].engine
  engine_version            = aws_rds_global_cluster.this[0].engine_version
  database_name             = var.db_name
  master_username           = var.username
  master_password           = var.password
  db_subnet_group_name      = aws_db_subnet_group.primary.name
  vpc_security_group_ids    = var.primary_sg_ids
  backup_retention_period   = 1
  skip_final_snapshot       = true
  apply_immediately         = true
  deletion_protection       = false

  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }
}

# The first instance of a cluster becomes its writer; the reader is created after it so the roles are as named.
resource "aws_rds_cluster_instance" "primary_writer" {
  provider = aws.primary
  count    = local.cluster_mode

  identifier           = "${var.name}-db-${var.primary_region}-1"
  cluster_identifier   = aws_rds_cluster.primary[0].id
  engine               = aws_rds_cluster.primary[0].engine
  engine_version       = aws_rds_cluster.primary[0].engine_version
  instance_class       = var.cluster_instance_class
  db_subnet_group_name = aws_db_subnet_group.primary.name
  promotion_tier       = 0
  apply_immediately    = true

  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }
}

resource "aws_rds_cluster_instance" "primary_reader" {
  provider = aws.primary
  count    = local.cluster_mode

  identifier           = "${var.name}-db-${var.primary_region}-2"
  cluster_identifier   = aws_rds_cluster.primary[0].id
  engine               = aws_rds_cluster.primary[0].engine
  engine_version       = aws_rds_cluster.primary[0].engine_version
  instance_class       = var.cluster_instance_class
  db_subnet_group_name = aws_db_subnet_group.primary.name
  promotion_tier       = 1
  apply_immediately    = true

  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }

  depends_on = [aws_rds_cluster_instance.primary_writer]
}

resource "aws_rds_cluster" "secondary" {
  provider = aws.recovery
  count    = local.cluster_mode

  cluster_identifier        = "${var.name}-db-${var.recovery_region}"
  global_cluster_identifier = aws_rds_global_cluster.this[0].id
  engine                    = aws_rds_global_cluster.this[0].engine
  engine_version            = aws_rds_global_cluster.this[0].engine_version
  db_subnet_group_name      = aws_db_subnet_group.recovery.name
  vpc_security_group_ids    = var.recovery_sg_ids
  skip_final_snapshot       = true
  apply_immediately         = true
  deletion_protection       = false

  # A secondary is attached once the primary has a writer instance; replication_source_identifier is set by AWS.
  lifecycle {
    ignore_changes = [replication_source_identifier]
  }

  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }

  depends_on = [aws_rds_cluster_instance.primary_writer]
}

resource "aws_rds_cluster_instance" "secondary" {
  provider = aws.recovery
  count    = local.cluster_mode * var.secondary_instance_count

  identifier           = "${var.name}-db-${var.recovery_region}-${count.index + 1}"
  cluster_identifier   = aws_rds_cluster.secondary[0].id
  engine               = aws_rds_cluster.secondary[0].engine
  engine_version       = aws_rds_cluster.secondary[0].engine_version
  instance_class       = var.cluster_instance_class
  db_subnet_group_name = aws_db_subnet_group.recovery.name
  promotion_tier       = count.index
  apply_immediately    = true

  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }
}
