# BROKEN ON PURPOSE: the recovery region's Global Accelerator endpoint groups get a traffic
# dial of 0.
#
# Breaks: regional failover as the sandbox models it (a recovery endpoint group dialled to 0
# is drained and takes no failover traffic; see provision/README.md).
# Must be caught by: the region-outage drill (SLOs must_switch, during_region, rto_s).
#
# Caveat: AWS documents that failover to another endpoint group ignores the traffic dial
# ("for this failover, Global Accelerator ignores the traffic dial setting", Global
# Accelerator developer guide, "How failover works for unhealthy endpoints"). Under that reading
# real AWS would still fail over; the variant then only shows the sandbox's stricter model.
#
#   gameday sandbox up --var-file provision/terraform/examples/no-recovery-traffic.tfvars
#   pytest -m drill --scenario region-outage --sandbox-var-file provision/terraform/examples/no-recovery-traffic.tfvars
recovery_traffic_dial = 0
