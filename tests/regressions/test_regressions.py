"""The harness catches real regressions: drills against deliberately broken sandboxes must FAIL.

Each test runs one of the user's scenarios (scenarios/*.yaml, unchanged SLOs) against a sandbox
started with a ``--variant`` that breaks exactly one property, and asserts that the matching SLO
verdict fails with the matching message. The passing reference system is covered by the normal
drills (``pytest -m drill``); these are marked ``sandbox``, not ``drill``.

Two sandboxes, not three: variants combine, but only where the failures stay attributable.
``no-router-health`` and ``async-standby`` share one (service-failover never touches the
database; database-crash keeps every service in the primary region, where the router's health
checks play no part). ``ignore-replica`` gets its own: a region outage with a router that never
fails over would fail for the router's reason, hiding whether the replica reads were caught.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gameday.pytest_plugin import VariantSandbox, assert_breach, assert_held, slo_verdict, variant_sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS_DIR = REPO_ROOT / "scenarios"

# How long an experiment's own "wait until traffic moved" steps may wait (GAMEDAY_TIMEOUT_S,
# default 180 s). Against a broken system the move never happens, and 180 s is longer than the
# drill's load (service-failover: 120 s), so the chaos run would be killed and the drill would
# end as a harness error instead of an SLO breach. 30 s is 3x the scenarios' 10 s read RTO
# budget: the wait still fails on its own and the SLOs are judged from the client's timeline.
EXPERIMENT_WAIT_S = 30

# Crash drills against the async standby: loss under a crash is probabilistic (it needs an
# acknowledged commit whose WAL the standby had not received yet at the SIGKILL). The variant's
# standby trails by ASYNC_STANDBY_LAG_MS (500 ms), so at the drill's 10 writes/s about 5 acked
# writes are in flight at the crash (P(none) < 1 %); a second drill makes a miss ~1e-4.
MAX_CRASH_DRILLS = 2

pytestmark = pytest.mark.sandbox


def _broken_sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                    *variants: str) -> Iterator[VariantSandbox]:
    yield from variant_sandbox(request, tmp_path_factory.mktemp("-".join(variants)), SCENARIOS_DIR,
                               variants=variants)


@pytest.fixture(scope="module")
def router_and_standby_broken(request: pytest.FixtureRequest,
                              tmp_path_factory: pytest.TempPathFactory) -> Iterator[VariantSandbox]:
    yield from _broken_sandbox(request, tmp_path_factory, "no-router-health", "async-standby")


@pytest.fixture(scope="module")
def replica_ignored(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[VariantSandbox]:
    yield from _broken_sandbox(request, tmp_path_factory, "ignore-replica")


def test_no_router_health_fails_service_failover(router_and_standby_broken: VariantSandbox) -> None:
    """Without health checks the router keeps sending orders to its dead primary ALB."""
    sandbox = router_and_standby_broken
    result = sandbox.drill("service-failover", gameday_timeout_s=EXPERIMENT_WAIT_S)
    assert_breach(result, "must_switch.orders", "orders never switched region")
    assert_breach(result, "during_region.orders", f"expected recovery {sandbox.endpoints.recovery_region}")
    assert_breach(result, "rto.orders.read", "orders reads never recovered", "s allowed")
    # attributable: only orders lost its instances, the other services never moved
    assert_held(result, "unaffected.web.region")
    assert_held(result, "unaffected.catalog.region")


def test_async_standby_loses_writes_in_database_crash(router_and_standby_broken: VariantSandbox) -> None:
    """An asynchronous Multi-AZ standby: the crash drill must report lost acknowledged writes."""
    sandbox = router_and_standby_broken
    standbys = [n for n in sandbox.status()["database"] if n.get("role") == "standby"]
    assert standbys and all(n.get("sync_state") == "async" for n in standbys), \
        f"variant async-standby not in effect: {standbys}"
    results = []
    for _ in range(MAX_CRASH_DRILLS):
        results.append(sandbox.drill("database-crash"))
        if not slo_verdict(results[-1], "lost_writes").passed:
            break
    assert_breach(results[-1], "lost_writes", "lost acknowledged writes: ")
    assert "> 0 allowed" in slo_verdict(results[-1], "lost_writes").message


def test_ignore_replica_fails_region_outage(replica_ignored: VariantSandbox) -> None:
    """Recovery-region services reading from the (dark) primary region cannot serve reads."""
    result = replica_ignored.drill("region-outage", gameday_timeout_s=EXPERIMENT_WAIT_S)
    assert_breach(result, "rto.catalog.read", "catalog reads never recovered", "s allowed")
    assert_breach(result, "must_switch.catalog", "catalog never switched region")
    # attributable: web keeps no database, so it is the control that the region failover itself works
    assert_held(result, "must_switch.web")
