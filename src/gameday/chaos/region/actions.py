"""Region-scale faults: make a region dark or cut its inter-region link, and undo both.

Each fault is an AWS FIS experiment template (tags ``gameday:region`` / ``gameday:fault``) started
in the affected region: on AWS, FIS does the disruption; in the sandbox, the control plane hooks
FIS StartExperiment/StopExperiment and freezes the region's processes or cuts the replication link.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from gameday.chaos.region import _fis

__all__ = ["cut_inter_region_link", "heal_inter_region_link", "region_outage", "restore_region"]

REGION_OUTAGE = "region-outage"
LINK_CUT = "inter-region-link-cut"


def region_outage(region: str, duration_s: float | None = None, subnet_tags: dict[str, str] | None = None,
                  subnet_arns: list[str] | None = None, configuration: Configuration = None,
                  secrets: Secrets = None) -> dict[str, Any]:
    """Make the region dark: FIS aws:network:disrupt-connectivity (scope all) on its subnets."""
    params = {"scope": "all", "duration": _fis.iso_duration(duration_s)}
    return _fis.start(REGION_OUTAGE, region, "aws:network:disrupt-connectivity", params,
                      _fis.subnet_target(region, subnet_tags, subnet_arns), configuration, secrets)


def restore_region(region: str, configuration: Configuration = None, secrets: Secrets = None) -> list[str]:
    """Stop every running region-outage experiment of the region; returns the stopped experiment ids."""
    return _fis.stop(REGION_OUTAGE, region, configuration, secrets)


def cut_inter_region_link(region: str, other_region: str, duration_s: float | None = None,
                          subnet_tags: dict[str, str] | None = None, subnet_arns: list[str] | None = None,
                          configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Cut traffic between region and other_region (FIS route-table-disrupt-cross-region-connectivity)."""
    params = {"region": other_region, "duration": _fis.iso_duration(duration_s)}
    return _fis.start(LINK_CUT, region, "aws:network:route-table-disrupt-cross-region-connectivity", params,
                      _fis.subnet_target(region, subnet_tags, subnet_arns), configuration, secrets)


def heal_inter_region_link(region: str, configuration: Configuration = None,
                           secrets: Secrets = None) -> list[str]:
    """Stop every running inter-region link cut started from region; returns the stopped experiment ids."""
    return _fis.stop(LINK_CUT, region, configuration, secrets)
