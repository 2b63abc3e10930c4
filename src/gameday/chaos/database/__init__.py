"""PostgreSQL activities: roles, writability, replication lag, record counts, replica promotion."""
