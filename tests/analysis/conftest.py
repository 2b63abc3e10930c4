"""Hypothesis profile for the analysis tests: modest example counts, no deadline (2-core box)."""

from hypothesis import HealthCheck, settings

settings.register_profile("analysis", max_examples=60, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
