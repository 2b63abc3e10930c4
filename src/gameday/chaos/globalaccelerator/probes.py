"""Probes on Global Accelerator endpoint groups."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from gameday.chaos.globalaccelerator._api import ga_client

__all__ = ["describe_endpoint_group", "endpoint_health", "traffic_dial"]


def describe_endpoint_group(endpoint_group_arn: str, configuration: Configuration = None,
                            secrets: Secrets = None) -> dict[str, Any]:
    """Describe one endpoint group (region, traffic dial, health check settings, endpoints)."""
    ga = ga_client(configuration, secrets)
    return dict(ga.describe_endpoint_group(EndpointGroupArn=endpoint_group_arn)["EndpointGroup"])


def traffic_dial(endpoint_group_arn: str, configuration: Configuration = None,
                 secrets: Secrets = None) -> float:
    """Current traffic dial percentage (0-100) of one endpoint group."""
    group = describe_endpoint_group(endpoint_group_arn, configuration, secrets)
    return float(group.get("TrafficDialPercentage", 100.0))


def endpoint_health(endpoint_group_arn: str, configuration: Configuration = None,
                    secrets: Secrets = None) -> dict[str, str]:
    """Health state of each endpoint of a group as GA sees it: endpoint id -> HEALTHY/UNHEALTHY/INITIAL."""
    group = describe_endpoint_group(endpoint_group_arn, configuration, secrets)
    return {str(e.get("EndpointId")): str(e.get("HealthState", "INITIAL"))
            for e in group.get("EndpointDescriptions", [])}
