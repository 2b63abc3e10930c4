# BROKEN ON PURPOSE: the recovery region's ALBs get a weight of 0 in their Global Accelerator
# endpoint groups.
#
# Breaks: regional failover. Global Accelerator fails over only "to a healthy endpoint with a
# weight greater than zero in another endpoint group" (Global Accelerator developer guide, "How
# failover works for unhealthy endpoints"), so with the primary region down there is nowhere to
# go. (A recovery *traffic dial* of 0 would not break it: "for this failover, Global Accelerator
# ignores the traffic dial setting", same page; the sandbox follows that.)
# Must be caught by: the region-outage drill (SLOs must_switch, during_region, rto_s).
#
#   gameday sandbox up --var-file provision/terraform/examples/no-recovery-traffic.tfvars
#   pytest -m drill --scenario region-outage --sandbox-var-file provision/terraform/examples/no-recovery-traffic.tfvars
recovery_endpoint_weight = 0
