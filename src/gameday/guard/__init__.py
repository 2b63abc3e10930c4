"""Guardrails for real AWS: config file, identity and region allow-lists, scope, blast radius, preview."""
