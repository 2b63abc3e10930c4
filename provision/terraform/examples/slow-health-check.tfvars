# BROKEN ON PURPOSE: the ALB target groups notice a dead instance only after minutes.
#
# Breaks: instance fault detection. Each target is checked every 30 s and needs 10 consecutive
# failures to be taken out: 30 s x 10 = 300 s during which the ALB keeps sending requests to a
# terminated instance. The values are valid for AWS (CreateTargetGroup: interval 5-300 s,
# timeout 2-120 s and below the interval, unhealthy threshold 2-10), so terraform accepts them.
# Must be caught by: the instance-termination drill (SLO rto_s: read RTO of the services).
#
#   gameday sandbox up --var-file provision/terraform/examples/slow-health-check.tfvars
#   pytest -m drill --scenario instance-termination --sandbox-var-file provision/terraform/examples/slow-health-check.tfvars
health_check_interval = 30
health_check_timeout  = 5
unhealthy_threshold   = 10
