"""Each region's real Prometheus scrapes its region, follows the instances, and alerts on a dark peer.

One sandbox (real processes): both Prometheus servers have every target ``up``, their service targets
are exactly the instances the controller runs, an instance terminated through the EC2 API leaves
discovery and its replacement joins; then the primary region goes dark (the FIS region-outage fault)
and the recovery region's Prometheus keeps scraping and fires RegionUnreachable and ReplicaLagHigh.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from gameday.chaos._common import ActivityFailed
from gameday.chaos.monitoring.probes import alerts_firing, query
from gameday.sandbox import client
from gameday.sandbox.monitoring import Cadence
from gameday.sandbox.timing import get_profile
from gameday.target import Endpoints
from gameday.util.retry import wait_until

pytestmark = pytest.mark.sandbox

JOBS = {"service", "alb", "database", "prometheus", "peer_region"}


@pytest.fixture
def sandbox(gameday_sandbox: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoints]:
    for k, v in gameday_sandbox.aws_env().items():
        monkeypatch.setenv(k, v)
    yield gameday_sandbox
    client.admin(gameday_sandbox, "/reset", method="POST")


def _conf(ep: Endpoints) -> dict[str, Any]:
    return {"gameday_prometheus_urls": ep.prometheus}


def _running(ep: Endpoints, region: str) -> set[str]:
    return {i["id"] for i in client.admin(ep, "/status")["instances"]
            if i["region"] == region and i["state"] == "running"}


def _scraped(ep: Endpoints, region: str) -> dict[str, float]:
    return {r["labels"]["instance_id"]: r["value"] for r in query('up{job="service"}', region, _conf(ep))}


def _all_up(ep: Endpoints, region: str) -> bool:
    results = query("up", region, _conf(ep))
    return {r["labels"]["job"] for r in results} >= JOBS and all(r["value"] == 1 for r in results)


def _follows_controller(ep: Endpoints, region: str) -> bool:
    scraped = _scraped(ep, region)
    return set(scraped) == _running(ep, region) and all(v == 1 for v in scraped.values())


def test_prometheus_per_region_follows_instances_and_alerts_on_region_outage(sandbox: Endpoints) -> None:
    from gameday.chaos.region.actions import region_outage, restore_region

    primary, recovery = sandbox.primary_region, sandbox.recovery_region
    conf = _conf(sandbox)
    timing = get_profile(client.admin(sandbox, "/status")["timing"])
    cadence = Cadence.of(timing)
    assert set(sandbox.prometheus) == {primary, recovery}
    for region in (primary, recovery):
        wait_until(f"every target of {region}'s Prometheus up", lambda r=region: _all_up(sandbox, r), timeout=60)
        wait_until(f"{region}'s service targets = the instances running there",
                   lambda r=region: _follows_controller(sandbox, r), timeout=30)
        roles = {r["labels"]["role"] for r in query("gameday_db_node_role", region, conf)}
        assert roles == ({"primary", "standby"} if region == primary else {"replica"}), (region, roles)
        assert query("sum(haproxy_backend_active_servers{proxy=\"targets\"})", region, conf)[0]["value"] >= 1
        assert query("sum(gameday_http_requests_total)", region, conf)[0]["value"] > 0

    # discovery follows the control plane: a terminated instance leaves, its replacement joins
    ec2 = boto3.client("ec2", region_name=recovery, endpoint_url=sandbox.aws_endpoint_url,
                       aws_access_key_id="test", aws_secret_access_key="test")
    victim = sorted(_scraped(sandbox, recovery))[0]
    before = set(_scraped(sandbox, recovery))
    ec2.terminate_instances(InstanceIds=[victim])
    wait_until("the terminated instance gone from discovery",
               lambda: victim not in _scraped(sandbox, recovery), timeout=30)
    wait_until("its replacement discovered and up",
               lambda: len(set(_scraped(sandbox, recovery)) - before) >= 1 and _follows_controller(sandbox, recovery),
               timeout=60)

    assert not [a for a in alerts_firing(recovery, conf) if a["name"] == "RegionUnreachable"]
    t_fault = time.monotonic()
    region_outage(region=primary, configuration={"aws_region": primary})
    try:
        # first moment each expected alert is seen firing on the recovery region's Prometheus
        want = {("RegionUnreachable", primary), ("ReplicaLagHigh", recovery)}
        first: dict[tuple[str, str], float] = {}

        def fired() -> bool:
            now = time.monotonic()
            for a in alerts_firing(recovery, conf):
                first.setdefault((a["name"], str(a["labels"].get("region"))), now - t_fault)
            return want <= set(first)

        wait_until(f"{sorted(want)} firing in {recovery}", fired, timeout=60, interval=0.1)
        time_to_alert = first[("RegionUnreachable", primary)]
        print(f"time-to-alert RegionUnreachable: {time_to_alert:.2f} s, "
              f"ReplicaLagHigh: {first[('ReplicaLagHigh', recovery)]:.2f} s")
        # the recovery region's services stay up (they read their local replica)
        assert not [a for a in alerts_firing(recovery, conf)
                    if a["name"] in ("ServiceDown", "InstanceDown") and a["labels"].get("region") == recovery]
        # the recovery region keeps scraping its own targets: fresh samples, still up
        fresh = query('time() - timestamp(up{job=~"service|alb|database"})', recovery, conf)
        assert fresh and all(r["value"] < 3 * cadence.scrape_s + cadence.timeout_s for r in fresh), fresh
        assert all(r["value"] == 1 for r in query('up{job=~"service|alb|database"}', recovery, conf))
        # the dark region's own Prometheus is as dark as the region
        with pytest.raises(ActivityFailed, match="unreachable"):
            query("up", primary, conf)
        # the rule's `for` (2 min, scaled), a scrape timeout and two evaluations; a loaded host gets 3x
        bound = timing.s(120.0) + cadence.timeout_s + 2 * cadence.evaluation_s
        assert time_to_alert < 3 * bound, (time_to_alert, bound)
    finally:
        restore_region(region=primary, configuration={"aws_region": primary})
