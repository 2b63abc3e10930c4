"""The sandbox's steady state between drills: what it is, and putting the routing back to it.

``reset`` (the admin API) uses these after every drill; a drill's own steady-state check asks
the same questions through the AWS API and the services.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gameday.target import SANDBOX_ACCOUNT as ACCOUNT
from gameday.util.retry import wait_until

if TYPE_CHECKING:
    from gameday.provision.topology import Topology
    from gameday.sandbox.haproxy.router import GlobalRouter
    from gameday.sandbox.pg.cluster import PgCluster


def restore_dials(topology: Topology, router: GlobalRouter, dials: dict[str, dict[str, float]],
                  weights: dict[str, dict[str, int]]) -> None:
    """Dials and endpoint weights back to what the Terraform declared, in the router and the control plane."""
    from gameday.controlplane.globalaccelerator.models import ga_backends

    for name, by_region in dials.items():
        svc = topology.services[name]
        for region, percent in by_region.items():
            weight = weights[name][region]
            arn = svc.endpoint_group_arns.get(region) if topology.routing_mode != "route53" else None
            if arn is not None:
                group = ga_backends[ACCOUNT].update_endpoint_group(arn, {"TrafficDialPercentage": percent})
                for e in group.endpoints:
                    e.weight = weight
            router.set_traffic_dial(name, region, percent)
            router.set_endpoint_weight(name, region, weight)


def wait_writable(pg: PgCluster, topology: Topology, timeout: float = 30.0) -> None:
    """The primary region's writer endpoint accepts a transaction (the app's health has a grace)."""
    port = pg.writer_port(topology.primary_region)

    def writable() -> bool:
        try:
            with pg.connect(port, connect_timeout=2) as conn:
                return conn.execute("SELECT NOT pg_is_in_recovery()").fetchone() == (True,)
        except Exception:
            return False

    wait_until("the database writer to accept writes", writable, timeout=timeout, interval=0.2)


def db_steady(pg: PgCluster, topology: Topology) -> bool:
    """One writable primary (with a streaming synchronous standby if Multi-AZ) and a streaming replica.

    Roles swapped by a failover still count as steady (RDS does not fail back either); a promoted
    replica, a cut link or a node that is down does not.
    """
    try:
        nodes = pg.status()
    except Exception:
        return False
    roles = sorted(n.role for n in nodes)
    rec = [n for n in nodes if n.region == topology.recovery_region]
    want = ["primary", "replica", "standby"] if getattr(pg, "multi_az", True) else ["primary", "replica"]
    return (roles == want and pg.instance_status() == "available"
            and all(n.role != "primary" or n.region == topology.primary_region for n in nodes)
            and all(n.streaming for n in rec) and not getattr(pg, "_link_cut", False))


__all__ = ["db_steady", "restore_dials", "wait_writable"]
