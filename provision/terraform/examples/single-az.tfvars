# BROKEN ON PURPOSE: the primary database runs without a Multi-AZ standby.
#
# Breaks: database high availability. With no standby, RDS can only recover a crashed
# single-AZ instance in place (restart or host replacement), which takes minutes, not a failover
# to a synchronous standby in another AZ.
# Must be caught by: the database-crash drill (SLO write_rto_s.orders, or lost_writes).
#
#   gameday sandbox up --var-file provision/terraform/examples/single-az.tfvars
#   pytest -m drill --scenario database-crash --sandbox-var-file provision/terraform/examples/single-az.tfvars
db_multi_az = false
