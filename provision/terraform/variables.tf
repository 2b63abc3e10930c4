variable "primary_region" {
  description = "Region that serves traffic and holds the writable database."
  type        = string
  default     = "eu-south-1"
}

variable "recovery_region" {
  description = "Region that takes over: standby services and the cross-region read replica."
  type        = string
  default     = "eu-central-1"

  validation {
    condition     = length(var.recovery_region) > 0
    error_message = "recovery_region must be set."
  }
}

variable "global_region" {
  description = "Region of the Global Accelerator API (always us-west-2 on AWS)."
  type        = string
  default     = "us-west-2"
}

variable "name_prefix" {
  description = "Prefix of every resource name (short: ALB and target group names are limited to 32 characters)."
  type        = string
  default     = "gameday"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,11}$", var.name_prefix))
    error_message = "name_prefix must be 2-12 characters of a-z, 0-9 and '-', starting with a letter."
  }
}

variable "services" {
  description = "Services of the system; each gets a launch template, ASG, ALB and accelerator per region."
  type        = list(string)
  default     = ["web", "orders", "catalog"]

  validation {
    condition     = length(var.services) > 0 && alltrue([for s in var.services : can(regex("^[a-z][a-z0-9]{1,9}$", s))])
    error_message = "services must be 2-10 character lowercase alphanumeric names."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

# --- network -------------------------------------------------------------------------------

variable "primary_vpc_cidr" {
  description = "CIDR of the VPC created in the primary region (ignored when primary_vpc_id is set)."
  type        = string
  default     = "10.10.0.0/16"
}

variable "recovery_vpc_cidr" {
  description = "CIDR of the VPC created in the recovery region (ignored when recovery_vpc_id is set)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "primary_vpc_id" {
  description = "Bring your own VPC in the primary region (null: create one)."
  type        = string
  default     = null
}

variable "primary_subnet_ids" {
  description = "Subnets (in at least 2 AZs) of primary_vpc_id; required with it. Tag them gameday:region=<primary_region> for the region-outage drill."
  type        = list(string)
  default     = []
}

variable "recovery_vpc_id" {
  description = "Bring your own VPC in the recovery region (null: create one)."
  type        = string
  default     = null
}

variable "recovery_subnet_ids" {
  description = "Subnets (in at least 2 AZs) of recovery_vpc_id; required with it. Tag them gameday:region=<recovery_region> for the region-outage drill."
  type        = list(string)
  default     = []
}

# --- compute -------------------------------------------------------------------------------

variable "instance_type" {
  description = "EC2 instance type of the service instances."
  type        = string
  default     = "t3.micro"
}

variable "ami_ssm_parameter" {
  description = "SSM public parameter that names the AMI (Amazon Linux 2023)."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

variable "asg_min_size" {
  description = "Minimum instances per service per region."
  type        = number
  default     = 2
}

variable "asg_desired_capacity" {
  description = "Desired instances per service per region."
  type        = number
  default     = 2
}

variable "asg_max_size" {
  description = "Maximum instances per service per region."
  type        = number
  default     = 4

  validation {
    condition     = var.asg_max_size >= 1
    error_message = "asg_max_size must be at least 1."
  }
}

variable "app_port" {
  description = "Port the reference service listens on inside the instances."
  type        = number
  default     = 8080
}

variable "gameday_package" {
  description = "pip requirement that installs the reference service on the instances."
  type        = string
  default     = "gameday"
}

# --- health checks -------------------------------------------------------------------------

variable "health_check_path" {
  description = "HTTP path of the target group and accelerator health checks."
  type        = string
  default     = "/health"
}

variable "health_check_interval" {
  description = "Seconds between ALB target health checks (5-300)."
  type        = number
  default     = 10
}

variable "health_check_timeout" {
  description = "Seconds before an ALB target health check counts as failed (2-120, below the interval)."
  type        = number
  default     = 5
}

variable "healthy_threshold" {
  description = "Consecutive successes before an ALB target is healthy (2-10)."
  type        = number
  default     = 2
}

variable "unhealthy_threshold" {
  description = "Consecutive failures before an ALB target is unhealthy (2-10)."
  type        = number
  default     = 2
}

variable "deregistration_delay" {
  description = "Seconds an ALB drains a deregistering target."
  type        = number
  default     = 30
}

variable "asg_health_check_type" {
  description = "Health check type of the service Auto Scaling groups: EC2 (instance status only) or ELB (also the target group's health checks)."
  type        = string
  default     = "ELB"

  validation {
    condition     = contains(["EC2", "ELB"], var.asg_health_check_type)
    error_message = "asg_health_check_type must be \"EC2\" or \"ELB\"."
  }
}

variable "asg_health_check_grace_period" {
  description = "Seconds after an instance launches before its Auto Scaling group acts on failed health checks."
  type        = number
  default     = 120

  validation {
    condition     = var.asg_health_check_grace_period >= 0
    error_message = "asg_health_check_grace_period must be >= 0."
  }
}

# --- database ------------------------------------------------------------------------------

variable "database_mode" {
  description = "instance: a Multi-AZ RDS PostgreSQL instance and a cross-region read replica. cluster: an Aurora PostgreSQL global database (primary cluster with a writer and a reader, read-only secondary cluster in the recovery region)."
  type        = string
  default     = "instance"

  validation {
    condition     = contains(["instance", "cluster"], var.database_mode)
    error_message = "database_mode must be \"instance\" (Multi-AZ DB instance + cross-region read replica) or \"cluster\" (Aurora PostgreSQL global database)."
  }
}

variable "db_cluster_instance_class" {
  description = "Instance class of the Aurora instances (database_mode = cluster)."
  type        = string
  default     = "db.r6g.large"

  validation {
    condition     = startswith(var.db_cluster_instance_class, "db.")
    error_message = "db_cluster_instance_class must be an RDS instance class such as \"db.r6g.large\"."
  }
}

variable "db_cluster_engine_version" {
  description = "Aurora PostgreSQL version (database_mode = cluster); it must be one that supports global databases."
  type        = string
  default     = "16.4"

  validation {
    condition     = can(regex("^[0-9]+\\.[0-9]+$", var.db_cluster_engine_version))
    error_message = "db_cluster_engine_version must be an Aurora PostgreSQL major.minor version such as \"16.4\"."
  }
}

variable "db_secondary_instance_count" {
  description = "Reader instances of the secondary cluster in the recovery region (database_mode = cluster): 1 or 2."
  type        = number
  default     = 1

  validation {
    condition     = contains([1, 2], var.db_secondary_instance_count)
    error_message = "db_secondary_instance_count must be 1 or 2 (the secondary cluster's reader instances)."
  }
}

variable "db_instance_class" {
  description = "RDS instance class of the primary and the replica."
  type        = string
  default     = "db.t3.micro"
}

variable "db_engine_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "15"
}

variable "db_multi_az" {
  description = "Whether the primary database is a Multi-AZ DB instance deployment (synchronous standby in a second AZ, automatic failover)."
  type        = bool
  default     = true
}

variable "db_allocated_storage" {
  description = "GiB of storage of the primary."
  type        = number
  default     = 20
}

variable "db_name" {
  description = "Database created in the primary."
  type        = string
  default     = "gameday"
}

variable "db_username" {
  description = "Master user of the database."
  type        = string
  default     = "gameday"
}

variable "db_password" {
  description = "Master password of the database (no default: pass it via TF_VAR_db_password)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.db_password) >= 8
    error_message = "db_password must be at least 8 characters."
  }
}

# --- routing -------------------------------------------------------------------------------

variable "routing_mode" {
  description = "How clients reach the services: global_accelerator (one accelerator per service) or route53 (failover records with health checks)."
  type        = string
  default     = "global_accelerator"

  validation {
    condition     = contains(["global_accelerator", "route53"], var.routing_mode)
    error_message = "routing_mode must be \"global_accelerator\" or \"route53\"."
  }
}

variable "route53_zone_name" {
  description = "Hosted zone created for the failover records (routing_mode = route53)."
  type        = string
  default     = "gameday.example.com"
}

variable "route53_request_interval" {
  description = "Seconds between Route 53 health checks (10 or 30)."
  type        = number
  default     = 10

  validation {
    condition     = contains([10, 30], var.route53_request_interval)
    error_message = "route53_request_interval must be 10 or 30."
  }
}

variable "route53_failure_threshold" {
  description = "Consecutive Route 53 health checks before an endpoint changes health (1-10)."
  type        = number
  default     = 3

  validation {
    condition     = var.route53_failure_threshold >= 1 && var.route53_failure_threshold <= 10
    error_message = "route53_failure_threshold must be between 1 and 10."
  }
}

variable "route53_record_ttl" {
  description = "TTL (seconds) of the failover records: how long clients may keep a stale answer."
  type        = number
  default     = 30
}

variable "primary_traffic_dial" {
  description = "Traffic dial (percent) of the primary region's endpoint groups."
  type        = number
  default     = 100
}

variable "recovery_traffic_dial" {
  description = "Traffic dial (percent) of the recovery region's endpoint groups (see provision/README.md). Global Accelerator ignores it when it fails over."
  type        = number
  default     = 100
}

variable "primary_endpoint_weight" {
  description = "Weight (0-255) of the primary region's ALB in its endpoint group; 0 takes it out of routing."
  type        = number
  default     = 128

  validation {
    condition     = var.primary_endpoint_weight >= 0 && var.primary_endpoint_weight <= 255
    error_message = "primary_endpoint_weight must be between 0 and 255."
  }
}

variable "recovery_endpoint_weight" {
  description = "Weight (0-255) of the recovery region's ALB in its endpoint group; 0 means Global Accelerator never fails over to it."
  type        = number
  default     = 128

  validation {
    condition     = var.recovery_endpoint_weight >= 0 && var.recovery_endpoint_weight <= 255
    error_message = "recovery_endpoint_weight must be between 0 and 255."
  }
}

variable "ga_health_check_interval" {
  description = "Seconds between Global Accelerator health checks (10 or 30)."
  type        = number
  default     = 10

  validation {
    condition     = contains([10, 30], var.ga_health_check_interval)
    error_message = "ga_health_check_interval must be 10 or 30."
  }
}

variable "ga_threshold_count" {
  description = "Consecutive health checks before Global Accelerator changes an endpoint's health (1-10)."
  type        = number
  default     = 3
}

# --- messaging -----------------------------------------------------------------------------

variable "queue_visibility_timeout" {
  description = "SQS visibility timeout in seconds."
  type        = number
  default     = 30
}

variable "queue_message_retention" {
  description = "SQS message retention in seconds."
  type        = number
  default     = 345600
}

# --- front end -----------------------------------------------------------------------------

variable "frontend_bucket_name" {
  description = "Name of the S3 website bucket (null: <name_prefix>-frontend-<primary_region>)."
  type        = string
  default     = null
}

# --- apply speed ---------------------------------------------------------------------------

variable "create_timeout" {
  description = <<-EOT
    Create timeout of the resources whose provider waiters are slow (ALB, RDS, SQS, Route 53), e.g. "5s".
    null keeps the provider defaults (use null on real AWS). The sandbox sets a short value and
    then untaints + re-applies; see provision/README.md ("Fast apply against the sandbox").
  EOT
  type        = string
  default     = null
}

variable "delete_timeout" {
  description = "Delete timeout of the RDS instances (60 s fixed waiter each) and Route 53 records, e.g. \"5s\"; null = provider default."
  type        = string
  default     = null
}
