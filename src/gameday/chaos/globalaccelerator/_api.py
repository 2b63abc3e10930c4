"""The Global Accelerator client and listing helpers shared by actions and probes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gameday.chaos._common import GA_API_REGION, ActivityFailed, client


def ga_client(configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None) -> Any:
    """GA client in its API region (``gameday_ga_region``, default us-west-2), whatever ``aws_region`` is."""
    region = str((configuration or {}).get("gameday_ga_region") or GA_API_REGION)
    return client("globalaccelerator", configuration, secrets, region=region)


def endpoint_groups(ga: Any, listener_arn: str | None, accelerator_arn: str | None) -> list[dict[str, Any]]:
    """Every endpoint group of one listener, or of every listener of one accelerator."""
    if not listener_arn and not accelerator_arn:
        raise ActivityFailed("give listener_arn or accelerator_arn")
    listeners = [listener_arn] if listener_arn else [
        lst["ListenerArn"] for lst in ga.list_listeners(AcceleratorArn=accelerator_arn).get("Listeners", [])
    ]
    groups: list[dict[str, Any]] = []
    for arn in listeners:
        groups.extend(ga.list_endpoint_groups(ListenerArn=arn).get("EndpointGroups", []))
    if not groups:
        raise ActivityFailed(f"no endpoint groups under {listener_arn or accelerator_arn}")
    return groups
