# The Topology contract (docs/DESIGN.md, "Terraform outputs"): exactly these outputs.

output "regions" {
  description = "Primary and recovery region."
  value = {
    primary  = var.primary_region
    recovery = var.recovery_region
  }
}

output "routing_mode" {
  description = "How clients reach the services."
  value       = var.routing_mode
}

output "services" {
  description = "Per service: per-region ALB/ASG/launch template, and its accelerator."
  value = {
    for name in var.services : name => {
      regions = {
        (var.primary_region) = {
          alb_arn            = module.service_primary[name].alb_arn
          alb_dns_name       = module.service_primary[name].alb_dns_name
          target_group_arn   = module.service_primary[name].target_group_arn
          listener_arn       = module.service_primary[name].listener_arn
          asg_name           = module.service_primary[name].asg_name
          launch_template_id = module.service_primary[name].launch_template_id
        }
        (var.recovery_region) = {
          alb_arn            = module.service_recovery[name].alb_arn
          alb_dns_name       = module.service_recovery[name].alb_dns_name
          target_group_arn   = module.service_recovery[name].target_group_arn
          listener_arn       = module.service_recovery[name].listener_arn
          asg_name           = module.service_recovery[name].asg_name
          launch_template_id = module.service_recovery[name].launch_template_id
        }
      }
      accelerator_arn      = module.routing[name].accelerator_arn
      accelerator_dns_name = module.routing[name].accelerator_dns_name
      ga_listener_arn      = module.routing[name].listener_arn
      endpoint_group_arns = {
        (var.primary_region)  = module.routing[name].primary_endpoint_group_arn
        (var.recovery_region) = module.routing[name].recovery_endpoint_group_arn
      }
    }
  }
}

output "database" {
  description = "Primary (writer) and cross-region replica endpoints."
  value = {
    primary_identifier = module.database.primary_identifier
    primary_region     = var.primary_region
    address            = module.database.address
    port               = module.database.port
    endpoint           = module.database.endpoint
    db_name            = var.db_name
    username           = var.db_username
    replica_identifier = module.database.replica_identifier
    replica_region     = var.recovery_region
    replica_address    = module.database.replica_address
    replica_endpoint   = module.database.replica_endpoint
  }
}

output "database_password" {
  description = "Master password of the database."
  value       = var.db_password
  sensitive   = true
}

output "queues" {
  description = "SQS queue URL per region."
  value = {
    (var.primary_region)  = module.messaging_primary.queue_url
    (var.recovery_region) = module.messaging_recovery.queue_url
  }
}

output "frontend" {
  description = "Front-end website bucket."
  value = {
    bucket           = module.frontend.bucket
    website_endpoint = module.frontend.website_endpoint
  }
}
