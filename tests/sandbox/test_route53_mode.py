"""The Route 53 routing variant, end to end: the same Terraform with ``routing_mode = "route53"``.

Failover records and health checks are created through the AWS API (moto's Route 53), the
sandbox's global router takes its health settings from them, inverting the primary's health
check (how operators force a Route 53 failover) moves exactly that service, and the unchanged
service-failover drill passes with its own SLOs under this routing.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.sandbox


class Route53Sandbox:
    def __init__(self, state: Path, endpoints: Any) -> None:
        from gameday.pytest_plugin import _sandbox_topology

        self.state = state
        self.endpoints = endpoints
        self.topology, self.password = _sandbox_topology(state)

    def served_by(self, service: str) -> str:
        with urllib.request.urlopen(self.endpoints.services[service] + "/health", timeout=3) as r:
            return str(r.headers["X-Gameday-Region"])

    def regions_now(self) -> dict[str, str]:
        return {s: self.served_by(s) for s in sorted(self.endpoints.services)}


@pytest.fixture(scope="module")
def r53(request: pytest.FixtureRequest) -> Iterator[Route53Sandbox]:
    from gameday.sandbox import client

    if request.config.getoption("--target") != "sandbox":
        pytest.skip("starts its own local sandbox: needs --target sandbox")
    base = Path(tempfile.mkdtemp(prefix="gameday-r53-"))
    try:
        endpoints = client.up_with_retry(base / "sandbox", timing="fast", routing_mode="route53")
        yield Route53Sandbox(base / "sandbox", endpoints)
    finally:
        client.down(base / "sandbox")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def aws_env(r53: Route53Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from gameday.target import SANDBOX_CREDENTIALS

    for k, v in SANDBOX_CREDENTIALS.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AWS_ENDPOINT_URL", r53.endpoints.aws_endpoint_url)


def test_failover_records_and_health_checks_come_from_terraform(r53: Route53Sandbox, aws_env: None) -> None:
    import boto3

    from gameday.chaos.route53 import probes

    topo = r53.topology
    assert topo.routing_mode == "route53"
    api = boto3.client("route53", region_name="us-east-1")
    for name, svc in topo.services.items():
        assert svc.accelerator_arn == "" and svc.global_dns_name == f"{name}.gameday.example.com"
        records = probes.failover_records(svc.route53_zone_id, svc.global_dns_name)
        assert [r["role"] for r in records] == ["PRIMARY", "SECONDARY"]
        for rec, region in zip(records, topo.regions, strict=True):
            assert rec["targets"] == [svc.regions[region].alb_dns_name]
            assert rec["health_check_id"] == svc.health_check_ids[region]
            cfg = api.get_health_check(HealthCheckId=rec["health_check_id"])["HealthCheck"]["HealthCheckConfig"]
            assert (cfg["Type"], cfg["ResourcePath"], cfg["FullyQualifiedDomainName"]) == \
                ("HTTP", "/health", svc.regions[region].alb_dns_name)
    assert set(r53.regions_now().values()) == {topo.primary_region}


def test_inverting_the_primary_health_check_moves_only_that_service(r53: Route53Sandbox, aws_env: None) -> None:
    from gameday.chaos.route53 import actions, probes
    from gameday.sandbox.events import read_events

    topo = r53.topology
    hc = topo.services["orders"].health_check_ids[topo.primary_region]
    try:
        assert actions.fail_over_service(hc)["inverted"] is True
        assert probes.health_check_inverted(hc) is True
        deadline = time.monotonic() + 10
        while r53.served_by("orders") != topo.recovery_region and time.monotonic() < deadline:
            time.sleep(0.1)
        assert r53.regions_now() == {"catalog": topo.primary_region, "orders": topo.recovery_region,
                                     "web": topo.primary_region}
    finally:
        actions.restore_service(hc)
    deadline = time.monotonic() + 10
    while r53.served_by("orders") != topo.primary_region and time.monotonic() < deadline:
        time.sleep(0.1)
    assert r53.served_by("orders") == topo.primary_region
    events = r53.state / "events.jsonl"
    changes = read_events(events, "route53_health_check_changed")[-2:]
    assert [(e["service"], e["inverted"]) for e in changes] == [("orders", True), ("orders", False)]
    # clients keep the cached answer for the record's TTL (30 s, scaled by the fast profile) both ways
    ttl = changes[0]["clients_follow_after_s"]
    assert ttl == pytest.approx(30 * 0.02)
    followed = [e for e in read_events(events, "dns_answer_followed") if e["service"] == "orders"][-2:]
    assert [(e["from_region"], e["to_region"]) for e in followed] == \
        [(topo.primary_region, topo.recovery_region), (topo.recovery_region, topo.primary_region)]
    for change, follow in zip(changes, followed, strict=True):
        assert follow["mono"] - change["mono"] >= ttl - 0.05, (change, follow)


def test_service_failover_drill_passes_under_route53_routing(r53: Route53Sandbox, tmp_path: Path) -> None:
    """The unchanged scenario and experiment: only the router's health settings come from Route 53."""
    from gameday.drill.runner import run_drill
    from gameday.drill.scenario import find_scenario
    from gameday.pytest_plugin import skip_if_inconclusive

    scenario = find_scenario("service-failover", REPO_ROOT / "scenarios")
    result = run_drill(scenario, r53.endpoints, r53.topology, tmp_path / "drill", timing="fast",
                       password=r53.password)
    skip_if_inconclusive(result)
    table = "\n".join(f"  {'PASS' if v.passed else 'FAIL'} {v.name}: {v.message}" for v in result.verdicts)
    assert result.verdicts and all(v.passed for v in result.verdicts), table
