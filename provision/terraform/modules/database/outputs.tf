# The same names in both modes (callers wire writer/reader endpoints without knowing the mode); in cluster mode the
# "primary" is the primary cluster's writer endpoint and the "replica" the secondary cluster's reader endpoint.

locals {
  instance_mode = var.mode == "instance"
}

output "primary_identifier" {
  description = "Identifier of the primary instance, or of the primary cluster."
  value       = local.instance_mode ? one(aws_db_instance.primary[*].identifier) : one(aws_rds_cluster.primary[*].cluster_identifier)
}

output "address" {
  description = "Hostname of the writer: the primary instance, or the primary cluster's writer endpoint."
  value       = local.instance_mode ? one(aws_db_instance.primary[*].address) : one(aws_rds_cluster.primary[*].endpoint)
}

output "reader_address" {
  description = "Hostname for reads in the primary region: the primary instance, or the primary cluster's reader endpoint."
  value       = local.instance_mode ? one(aws_db_instance.primary[*].address) : one(aws_rds_cluster.primary[*].reader_endpoint)
}

output "port" {
  description = "Port of every endpoint."
  value       = local.instance_mode ? one(aws_db_instance.primary[*].port) : one(aws_rds_cluster.primary[*].port)
}

output "endpoint" {
  description = "host:port of the writer."
  value = (local.instance_mode ? one(aws_db_instance.primary[*].endpoint) :
  "${one(aws_rds_cluster.primary[*].endpoint)}:${one(aws_rds_cluster.primary[*].port)}")
}

output "replica_identifier" {
  description = "Identifier of the replica instance, or of the secondary cluster."
  value       = local.instance_mode ? one(aws_db_instance.replica[*].identifier) : one(aws_rds_cluster.secondary[*].cluster_identifier)
}

output "replica_address" {
  description = "Hostname for reads in the recovery region: the replica, or the secondary cluster's reader endpoint."
  value       = local.instance_mode ? one(aws_db_instance.replica[*].address) : one(aws_rds_cluster.secondary[*].reader_endpoint)
}

output "replica_endpoint" {
  description = "host:port of replica_address."
  value = (local.instance_mode ? one(aws_db_instance.replica[*].endpoint) :
  "${one(aws_rds_cluster.secondary[*].reader_endpoint)}:${one(aws_rds_cluster.secondary[*].port)}")
}

output "cluster" {
  description = "cluster mode: the global cluster and both member clusters' endpoints (null in instance mode)."
  value = local.instance_mode ? null : {
    global_cluster_id = one(aws_rds_global_cluster.this[*].global_cluster_identifier)
    primary = {
      identifier      = one(aws_rds_cluster.primary[*].cluster_identifier)
      region          = var.primary_region
      writer_endpoint = one(aws_rds_cluster.primary[*].endpoint)
      reader_endpoint = one(aws_rds_cluster.primary[*].reader_endpoint)
      instances       = [one(aws_rds_cluster_instance.primary_writer[*].identifier), one(aws_rds_cluster_instance.primary_reader[*].identifier)]
    }
    secondary = {
      identifier      = one(aws_rds_cluster.secondary[*].cluster_identifier)
      region          = var.recovery_region
      writer_endpoint = one(aws_rds_cluster.secondary[*].endpoint)
      reader_endpoint = one(aws_rds_cluster.secondary[*].reader_endpoint)
      instances       = aws_rds_cluster_instance.secondary[*].identifier
    }
  }
}
