"""Route 53 failover activities: force or undo a service's DNS failover via its health checks."""
