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
  description = "Per service: per-region ALB/ASG/launch template, its global name, and its accelerator or Route 53 health checks."
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
      global_dns_name = local.service_global_dns[name]
      # global_accelerator mode (null under route53)
      accelerator_arn      = try(module.routing[name].accelerator_arn, null)
      accelerator_dns_name = try(module.routing[name].accelerator_dns_name, null)
      ga_listener_arn      = try(module.routing[name].listener_arn, null)
      endpoint_group_arns = try({
        (var.primary_region)  = module.routing[name].primary_endpoint_group_arn
        (var.recovery_region) = module.routing[name].recovery_endpoint_group_arn
      }, null)
      # route53 mode (null under global_accelerator)
      route53_zone_id = try(aws_route53_zone.failover[0].zone_id, null)
      health_check_ids = try({
        (var.primary_region)  = module.dns_failover[name].primary_health_check_id
        (var.recovery_region) = module.dns_failover[name].recovery_health_check_id
      }, null)
    }
  }
}

output "database" {
  description = "Primary (writer) and cross-region replica endpoints; under database_mode = cluster also mode and cluster."
  # The instance-mode object is unchanged; cluster mode adds "mode" and "cluster" (a merge of a list of 0 or 1 objects,
  # since a conditional cannot return objects of different shapes).
  value = merge({
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
    }, [for c in [module.database.cluster] : { mode = "cluster", cluster = c } if var.database_mode == "cluster"]...
  )
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
