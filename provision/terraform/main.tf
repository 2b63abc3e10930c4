locals {
  tags = merge({ "gameday:stack" = var.name_prefix, "managed-by" = "terraform" }, var.tags)

  services = toset(var.services)

  # The reference service needs the database and the region's queue on every instance.
  db_writer = "${module.database.address}:${module.database.port}"
}

data "aws_ssm_parameter" "ami_primary" {
  provider = aws.primary
  name     = var.ami_ssm_parameter
}

data "aws_ssm_parameter" "ami_recovery" {
  provider = aws.recovery
  name     = var.ami_ssm_parameter
}

module "network_primary" {
  source    = "./modules/network"
  providers = { aws = aws.primary }

  name       = "${var.name_prefix}-primary"
  region     = var.primary_region
  cidr_block = var.primary_vpc_cidr
  vpc_id     = var.primary_vpc_id
  subnet_ids = var.primary_subnet_ids
  app_port   = var.app_port
}

module "network_recovery" {
  source    = "./modules/network"
  providers = { aws = aws.recovery }

  name       = "${var.name_prefix}-recovery"
  region     = var.recovery_region
  cidr_block = var.recovery_vpc_cidr
  vpc_id     = var.recovery_vpc_id
  subnet_ids = var.recovery_subnet_ids
  app_port   = var.app_port
}

module "messaging_primary" {
  source    = "./modules/messaging"
  providers = { aws = aws.primary }

  name                       = "${var.name_prefix}-orders-${var.primary_region}"
  visibility_timeout_seconds = var.queue_visibility_timeout
  message_retention_seconds  = var.queue_message_retention
  create_timeout             = var.create_timeout
}

module "messaging_recovery" {
  source    = "./modules/messaging"
  providers = { aws = aws.recovery }

  name                       = "${var.name_prefix}-orders-${var.recovery_region}"
  visibility_timeout_seconds = var.queue_visibility_timeout
  message_retention_seconds  = var.queue_message_retention
  create_timeout             = var.create_timeout
}

module "database" {
  source = "./modules/database"
  providers = {
    aws.primary  = aws.primary
    aws.recovery = aws.recovery
  }

  name                = var.name_prefix
  mode                = var.database_mode
  primary_region      = var.primary_region
  recovery_region     = var.recovery_region
  primary_subnet_ids  = module.network_primary.subnet_ids
  recovery_subnet_ids = module.network_recovery.subnet_ids
  primary_sg_ids      = [module.network_primary.db_sg_id]
  recovery_sg_ids     = [module.network_recovery.db_sg_id]
  instance_class      = var.db_instance_class
  engine_version      = var.db_engine_version
  multi_az            = var.db_multi_az
  allocated_storage   = var.db_allocated_storage
  db_name             = var.db_name
  username            = var.db_username
  password            = var.db_password
  create_timeout      = var.create_timeout
  delete_timeout      = var.delete_timeout

  cluster_instance_class   = var.db_cluster_instance_class
  cluster_engine_version   = var.db_cluster_engine_version
  secondary_instance_count = var.db_secondary_instance_count
}

module "service_primary" {
  source    = "./modules/service"
  providers = { aws = aws.primary }
  for_each  = local.services

  name_prefix               = var.name_prefix
  service                   = each.key
  region                    = var.primary_region
  vpc_id                    = module.network_primary.vpc_id
  subnet_ids                = module.network_primary.subnet_ids
  alb_sg_id                 = module.network_primary.alb_sg_id
  instance_sg_id            = module.network_primary.instance_sg_id
  ami_id                    = nonsensitive(data.aws_ssm_parameter.ami_primary.value)
  instance_type             = var.instance_type
  min_size                  = var.asg_min_size
  desired_capacity          = var.asg_desired_capacity
  max_size                  = var.asg_max_size
  app_port                  = var.app_port
  health_check_path         = var.health_check_path
  health_check_interval     = var.health_check_interval
  health_check_timeout      = var.health_check_timeout
  healthy_threshold         = var.healthy_threshold
  unhealthy_threshold       = var.unhealthy_threshold
  deregistration_delay      = var.deregistration_delay
  health_check_type         = var.asg_health_check_type
  health_check_grace_period = var.asg_health_check_grace_period
  gameday_package           = var.gameday_package
  db_writer                 = local.db_writer
  db_reader                 = "${module.database.reader_address}:${module.database.port}"
  db_name                   = var.db_name
  db_username               = var.db_username
  db_password               = var.db_password
  queue_url                 = module.messaging_primary.queue_url
  create_timeout            = var.create_timeout
}

module "service_recovery" {
  source    = "./modules/service"
  providers = { aws = aws.recovery }
  for_each  = local.services

  name_prefix               = var.name_prefix
  service                   = each.key
  region                    = var.recovery_region
  vpc_id                    = module.network_recovery.vpc_id
  subnet_ids                = module.network_recovery.subnet_ids
  alb_sg_id                 = module.network_recovery.alb_sg_id
  instance_sg_id            = module.network_recovery.instance_sg_id
  ami_id                    = nonsensitive(data.aws_ssm_parameter.ami_recovery.value)
  instance_type             = var.instance_type
  min_size                  = var.asg_min_size
  desired_capacity          = var.asg_desired_capacity
  max_size                  = var.asg_max_size
  app_port                  = var.app_port
  health_check_path         = var.health_check_path
  health_check_interval     = var.health_check_interval
  health_check_timeout      = var.health_check_timeout
  healthy_threshold         = var.healthy_threshold
  unhealthy_threshold       = var.unhealthy_threshold
  deregistration_delay      = var.deregistration_delay
  health_check_type         = var.asg_health_check_type
  health_check_grace_period = var.asg_health_check_grace_period
  gameday_package           = var.gameday_package
  # Writes go to the primary's writer until a failover promotes the replica; reads stay local.
  db_writer      = local.db_writer
  db_reader      = "${module.database.replica_address}:${module.database.port}"
  db_name        = var.db_name
  db_username    = var.db_username
  db_password    = var.db_password
  queue_url      = module.messaging_recovery.queue_url
  create_timeout = var.create_timeout
}

module "routing" {
  source    = "./modules/routing"
  providers = { aws = aws.global }
  for_each  = var.routing_mode == "global_accelerator" ? local.services : toset([])

  name                  = "${var.name_prefix}-${each.key}"
  primary_region        = var.primary_region
  recovery_region       = var.recovery_region
  primary_alb_arn       = module.service_primary[each.key].alb_arn
  recovery_alb_arn      = module.service_recovery[each.key].alb_arn
  primary_traffic_dial  = var.primary_traffic_dial
  recovery_traffic_dial = var.recovery_traffic_dial
  primary_weight        = var.primary_endpoint_weight
  recovery_weight       = var.recovery_endpoint_weight
  health_check_path     = var.health_check_path
  health_check_interval = var.ga_health_check_interval
  threshold_count       = var.ga_threshold_count
}

resource "aws_route53_zone" "failover" {
  provider = aws.global
  count    = var.routing_mode == "route53" ? 1 : 0

  name          = var.route53_zone_name
  force_destroy = true

  timeouts {
    create = var.create_timeout
    delete = var.delete_timeout
  }
}

module "dns_failover" {
  source    = "./modules/dns_failover"
  providers = { aws = aws.global }
  for_each  = var.routing_mode == "route53" ? local.services : toset([])

  name                  = each.key
  zone_id               = aws_route53_zone.failover[0].zone_id
  zone_name             = var.route53_zone_name
  primary_region        = var.primary_region
  recovery_region       = var.recovery_region
  primary_alb_dns_name  = module.service_primary[each.key].alb_dns_name
  recovery_alb_dns_name = module.service_recovery[each.key].alb_dns_name
  health_check_path     = var.health_check_path
  request_interval      = var.route53_request_interval
  failure_threshold     = var.route53_failure_threshold
  record_ttl            = var.route53_record_ttl
  create_timeout        = var.create_timeout
  delete_timeout        = var.delete_timeout
}

locals {
  # the one name clients use per service, whichever routing mode is in force
  service_global_dns = {
    for name in var.services : name => (
      var.routing_mode == "route53" ? module.dns_failover[name].fqdn : module.routing[name].accelerator_dns_name
    )
  }
}

module "frontend" {
  source    = "./modules/frontend"
  providers = { aws = aws.primary }

  bucket_name = coalesce(var.frontend_bucket_name, "${var.name_prefix}-frontend-${var.primary_region}")
  service_urls = {
    for name in var.services : name => "http://${local.service_global_dns[name]}"
  }
}
