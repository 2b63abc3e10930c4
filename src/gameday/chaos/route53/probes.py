"""Probes on Route 53 failover: a health check's configuration and the record set of a service."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from gameday.chaos.route53.actions import _r53

__all__ = ["failover_records", "health_check_inverted"]


def health_check_inverted(health_check_id: str, configuration: Configuration = None,
                          secrets: Secrets = None) -> bool:
    """Whether a health check is inverted (a forced failover still in force)."""
    hc = _r53(configuration, secrets).get_health_check(HealthCheckId=health_check_id)["HealthCheck"]
    return bool(hc.get("HealthCheckConfig", {}).get("Inverted", False))


def failover_records(hosted_zone_id: str, name: str, configuration: Configuration = None,
                     secrets: Secrets = None) -> list[dict[str, Any]]:
    """The failover record set of one name: role (PRIMARY/SECONDARY), target and health check id."""
    r53 = _r53(configuration, secrets)
    fqdn = name.rstrip(".") + "."
    out: list[dict[str, Any]] = []
    pages = r53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=hosted_zone_id)
    for page in pages:
        for rs in page.get("ResourceRecordSets", []):
            if rs.get("Name") == fqdn and rs.get("Failover"):
                out.append({"role": rs["Failover"], "set_identifier": rs.get("SetIdentifier"),
                            "targets": [r["Value"] for r in rs.get("ResourceRecords", [])],
                            "health_check_id": rs.get("HealthCheckId")})
    return sorted(out, key=lambda r: r["role"])
