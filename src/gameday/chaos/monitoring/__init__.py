"""Probes on each region's Prometheus: instant PromQL queries and the alerts firing now."""
