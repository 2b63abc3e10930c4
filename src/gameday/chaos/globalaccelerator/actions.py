"""Actions on Global Accelerator traffic dials: shift or restore a service's traffic between regions."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from gameday.chaos import _undo
from gameday.chaos._common import ActivityFailed
from gameday.chaos.globalaccelerator._api import endpoint_groups, ga_client

__all__ = ["fail_over_service", "restore_service", "set_traffic_dial"]


def _set(ga: Any, arn: str, pct: float) -> dict[str, Any]:
    if not 0 <= float(pct) <= 100:
        raise ActivityFailed(f"traffic_dial_percentage must be within 0..100, got {pct}")
    before = ga.describe_endpoint_group(EndpointGroupArn=arn)["EndpointGroup"]
    previous = float(before.get("TrafficDialPercentage", 100.0))
    if previous != float(pct):  # undo: UpdateEndpointGroup back to the old dial
        _undo.before("set_traffic_dial", arn, {"kind": "ga_dial", "endpoint_group_arn": arn,
                                               "traffic_dial_percentage": previous},
                     what=f"traffic dial {previous:g} -> {float(pct):g}", region=before.get("EndpointGroupRegion"))
    after = ga.update_endpoint_group(EndpointGroupArn=arn, TrafficDialPercentage=float(pct))["EndpointGroup"]
    return {"endpoint_group_arn": arn, "region": after.get("EndpointGroupRegion"),
            "previous": float(before.get("TrafficDialPercentage", 100.0)),
            "traffic_dial_percentage": float(after.get("TrafficDialPercentage", pct))}


def set_traffic_dial(endpoint_group_arn: str, traffic_dial_percentage: float,
                     configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Set one endpoint group's traffic dial; returns the previous and the new value."""
    return _set(ga_client(configuration, secrets), endpoint_group_arn, traffic_dial_percentage)


def fail_over_service(to_region: str, listener_arn: str | None = None, accelerator_arn: str | None = None,
                      configuration: Configuration = None, secrets: Secrets = None) -> list[dict[str, Any]]:
    """Send a service's traffic to to_region: that region's groups dial 100, every other region's 0."""
    ga = ga_client(configuration, secrets)
    groups = endpoint_groups(ga, listener_arn, accelerator_arn)
    if not any(g.get("EndpointGroupRegion") == to_region for g in groups):
        raise ActivityFailed(f"no endpoint group in region {to_region} "
                             f"under {listener_arn or accelerator_arn}")
    # Raise the target first so there is never a moment with every dial at 0.
    ordered = sorted(groups, key=lambda g: g.get("EndpointGroupRegion") != to_region)
    return [_set(ga, g["EndpointGroupArn"], 100.0 if g.get("EndpointGroupRegion") == to_region else 0.0)
            for g in ordered]


def restore_service(listener_arn: str | None = None, accelerator_arn: str | None = None,
                    traffic_dial_percentage: float = 100.0, configuration: Configuration = None,
                    secrets: Secrets = None) -> list[dict[str, Any]]:
    """Put every endpoint group of a service back to traffic_dial_percentage (the design's 100)."""
    ga = ga_client(configuration, secrets)
    out = [_set(ga, g["EndpointGroupArn"], traffic_dial_percentage)
           for g in endpoint_groups(ga, listener_arn, accelerator_arn)]
    for g in out:
        _undo.done("ga_dial", "rollback: restore_service", endpoint_group_arn=g["endpoint_group_arn"])
    return out
