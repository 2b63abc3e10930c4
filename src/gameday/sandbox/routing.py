"""What the global router takes from the control plane: endpoint groups, Route 53 checks and records.

The router plays Global Accelerator (or Route 53 failover records) with the settings the
Terraform declared, read from the control-plane models the daemon runs in-process. Each
endpoint group keeps its own health-check settings; the dials start at the declared values.
"""

from __future__ import annotations

from typing import Any

from gameday.errors import SandboxError
from gameday.sandbox.haproxy import ELB_HEALTH_PATH, HealthCheck
from gameday.sandbox.timing import TimingProfile
from gameday.target import SANDBOX_ACCOUNT as ACCOUNT

# Global Accelerator does not document a health-check timeout for HTTP checks of its own; the
# sandbox times a check out after at most 5 s (never after the next check is due).
GA_CHECK_TIMEOUT_S = 5.0
# "Route 53 ... must be able to establish a TCP connection with the endpoint within four seconds"
# and receive the HTTP status "within two seconds after connecting" (docs.aws.amazon.com/Route53/
# latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html): 4 s, the longer bound.
ROUTE53_CHECK_TIMEOUT_S = 4.0


def endpoint_group(arn: str) -> Any:
    """The Global Accelerator endpoint group model (our emulation) for ``arn``."""
    from gameday.controlplane.globalaccelerator.models import ga_backends

    group = ga_backends[ACCOUNT].endpoint_groups.get(arn)
    if group is None:
        raise SandboxError(f"Global Accelerator endpoint group {arn} is not in the control plane "
                           "(was the Terraform applied with routing_mode = global_accelerator?)")
    return group


def endpoint_weight(group: Any) -> int:
    """Weight of the group's (one) ALB endpoint; no endpoint at all counts as 0 (nothing to route to)."""
    return max((int(e.weight) for e in group.endpoints), default=0)


def ga_health(group: Any, timing: TimingProfile) -> HealthCheck:
    """How the router checks one endpoint group's ALB: ELB's target health, at the group's cadence.

    For ALB endpoints Global Accelerator takes the health from Elastic Load Balancing ("For
    Network Load Balancer and Application Load Balancer endpoints, configure health check
    settings on the Elastic Load Balancing console", docs.aws.amazon.com/global-accelerator/
    latest/dg/about-endpoint-groups.html), so the group's path and protocol do not apply: the
    check asks the ALB whether any target is healthy (``ELB_HEALTH_PATH``). How fast GA learns a
    change of ELB health is not documented; the pessimistic reading keeps the group's own cadence
    on top of ELB's detection: ``ThresholdCount`` consecutive checks, one every
    ``HealthCheckIntervalSeconds`` (docs.aws.amazon.com/global-accelerator/latest/api/
    API_CreateEndpointGroup.html), the same threshold both ways.
    """
    interval = float(group.health_check_interval_seconds or 30)
    threshold = int(group.threshold_count or 3)
    return HealthCheck(path=ELB_HEALTH_PATH, interval_s=timing.interval(interval),
                       timeout_s=timing.timeout(min(interval, GA_CHECK_TIMEOUT_S)),
                       healthy_threshold=threshold, unhealthy_threshold=threshold)


def route53_health_check(hc_id: str) -> Any:
    from moto.route53.models import route53_backends

    return route53_backends[ACCOUNT]["aws"].health_checks.get(hc_id)


def route53_health(hc_id: str, timing: TimingProfile) -> HealthCheck:
    """One region's Route 53 health check: ``RequestInterval`` x ``FailureThreshold``, both ways."""
    r53 = route53_health_check(hc_id)
    if r53 is None:
        raise SandboxError(f"Route 53 health check {hc_id} is not in the control plane")
    interval = float(getattr(r53, "request_interval", 30) or 30)
    threshold = int(getattr(r53, "failure_threshold", 3) or 3)
    path = getattr(r53, "resource_path", None) or "/health"
    return HealthCheck(path="/health" if path == "/" else path, interval_s=timing.interval(interval),
                       timeout_s=timing.timeout(min(interval, ROUTE53_CHECK_TIMEOUT_S)),
                       healthy_threshold=threshold, unhealthy_threshold=threshold)


def route53_ttl(zone_id: str, name: str) -> float:
    """TTL (s) of a service's failover records: how long clients keep a stale answer."""
    from moto.route53.models import route53_backends

    zone = route53_backends[ACCOUNT]["aws"].zones.get(zone_id.split("/")[-1])
    ttls = [float(rr.ttl) for rr in (zone.rrsets if zone else [])
            if rr.name.rstrip(".") == name.rstrip(".") and rr.failover and rr.ttl is not None]
    if not ttls:
        raise SandboxError(f"no Route 53 failover records for {name} in zone {zone_id}")
    return max(ttls)


__all__ = ["endpoint_group", "endpoint_weight", "ga_health", "route53_health", "route53_health_check", "route53_ttl"]
