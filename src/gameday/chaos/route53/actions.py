"""Actions on Route 53 health checks: inverting the primary's check is how operators force a failover."""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from gameday.chaos import _undo
from gameday.chaos._common import ActivityFailed, client

__all__ = ["fail_over_service", "restore_service", "set_health_check_inverted"]

# Route 53 is a global service; its API is signed for us-east-1 whatever the stack's regions are.
ROUTE53_API_REGION = "us-east-1"


def _r53(configuration: Configuration, secrets: Secrets) -> Any:
    return client("route53", configuration, secrets, region=ROUTE53_API_REGION)


def _set(r53: Any, health_check_id: str, inverted: bool) -> dict[str, Any]:
    try:
        before = r53.get_health_check(HealthCheckId=health_check_id)["HealthCheck"]
    except r53.exceptions.NoSuchHealthCheck as exc:
        raise ActivityFailed(f"no Route 53 health check {health_check_id!r}") from exc
    previous = bool(before.get("HealthCheckConfig", {}).get("Inverted", False))
    if inverted and not previous:  # undo: UpdateHealthCheck Inverted=false
        _undo.before("invert_health_check", f"route53-health-check:{health_check_id}",
                     {"kind": "r53_health_check", "health_check_id": health_check_id, "inverted": previous},
                     what="health check inverted")
    r53.update_health_check(HealthCheckId=health_check_id, Inverted=inverted)
    if not inverted:
        _undo.done("r53_health_check", "rollback: health check not inverted", health_check_id=health_check_id)
    return {"health_check_id": health_check_id,
            "previous_inverted": bool(before.get("HealthCheckConfig", {}).get("Inverted", False)),
            "inverted": inverted}


def set_health_check_inverted(health_check_id: str, inverted: bool, configuration: Configuration = None,
                              secrets: Secrets = None) -> dict[str, Any]:
    """Invert (or restore) one health check; returns the previous and the new setting."""
    return _set(_r53(configuration, secrets), health_check_id, bool(inverted))


def fail_over_service(primary_health_check_id: str, configuration: Configuration = None,
                      secrets: Secrets = None) -> dict[str, Any]:
    """Report the primary record unhealthy (inverted check) so Route 53 answers with the secondary."""
    return _set(_r53(configuration, secrets), primary_health_check_id, True)


def restore_service(primary_health_check_id: str, configuration: Configuration = None,
                    secrets: Secrets = None) -> dict[str, Any]:
    """Undo fail_over_service: the primary's health check reports what it sees again."""
    return _set(_r53(configuration, secrets), primary_health_check_id, False)
