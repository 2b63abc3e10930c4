"""Sandbox-only faults: things no AWS API can do (a hard crash of the database primary)."""
