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

import dataclasses
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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


class BrokenSandbox:
    """A sandbox started with variants; runs scenarios against it, resetting between drills."""

    def __init__(self, variants: tuple[str, ...], state: Path, endpoints: Any, runs: Path) -> None:
        from gameday.pytest_plugin import _sandbox_topology

        self.variants = variants
        self.state = state
        self.endpoints = endpoints
        self.topology, self.password = _sandbox_topology(state)
        self.runs = runs
        self.drills = 0

    def status(self) -> dict[str, Any]:
        from gameday.sandbox import client

        result: dict[str, Any] = client.admin(self.endpoints, "/status")
        return result

    def drill(self, name: str, **experiment_config: Any) -> Any:
        """Run the scenario ``name`` (its SLOs as written) and return the DrillResult."""
        from gameday.drill.runner import run_drill
        from gameday.drill.scenario import find_scenario
        from gameday.sandbox import client

        scenario = find_scenario(name, SCENARIOS_DIR)
        if experiment_config:
            scenario = dataclasses.replace(
                scenario, experiment_config={**scenario.experiment_config, **experiment_config})
        if self.drills:
            client.admin(self.endpoints, "/reset", method="POST")  # back to steady state, like DrillTarget
        self.drills += 1
        return run_drill(scenario, self.endpoints, self.topology, self.runs / f"{self.drills:02d}-{name}",
                         timing="fast", password=self.password)


def _broken_sandbox(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                    *variants: str) -> Iterator[BrokenSandbox]:
    from gameday.sandbox import client

    if request.config.getoption("--target") != "sandbox":
        pytest.skip("regression tests break a local sandbox on purpose: needs --target sandbox")
    base = Path(tempfile.mkdtemp(prefix="gameday-regress-"))
    state = base / "sandbox"
    try:
        endpoints = client.up_with_retry(state, timing="fast", variants=variants)
        yield BrokenSandbox(variants, state, endpoints, tmp_path_factory.mktemp("-".join(variants)))
    finally:
        client.down(state)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def router_and_standby_broken(request: pytest.FixtureRequest,
                              tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenSandbox]:
    yield from _broken_sandbox(request, tmp_path_factory, "no-router-health", "async-standby")


@pytest.fixture(scope="module")
def replica_ignored(request: pytest.FixtureRequest,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokenSandbox]:
    yield from _broken_sandbox(request, tmp_path_factory, "ignore-replica")


def _verdict(result: Any, name: str) -> Any:
    by_name = {v.name: v for v in result.verdicts}
    assert name in by_name, f"{result.scenario}: no SLO verdict {name!r}; got {sorted(by_name)}"
    return by_name[name]


def _table(result: Any) -> str:
    return "\n".join(f"  {'PASS' if v.passed else 'FAIL'} {v.name}: {v.message}" for v in result.verdicts)


def assert_breach(result: Any, name: str, *any_of: str) -> Any:
    """The verdict ``name`` failed, and its message contains one of ``any_of``."""
    v = _verdict(result, name)
    assert not v.passed, f"{result.scenario}: {name} passed against a broken sandbox: {v.message}\n{_table(result)}"
    assert any(text in v.message for text in any_of), \
        f"{result.scenario}: {name} failed, but not with {any_of}: {v.message}\n{_table(result)}"
    return v


def assert_held(result: Any, name: str) -> None:
    v = _verdict(result, name)
    assert v.passed, f"{result.scenario}: {name} should be untouched by this variant: {v.message}\n{_table(result)}"


@pytest.mark.xdist_group("regress-router-standby")
def test_no_router_health_fails_service_failover(router_and_standby_broken: BrokenSandbox) -> None:
    """Without health checks the router keeps sending orders to its dead primary ALB."""
    sandbox = router_and_standby_broken
    result = sandbox.drill("service-failover", gameday_timeout_s=EXPERIMENT_WAIT_S)
    assert_breach(result, "must_switch.orders", "orders never switched region")
    assert_breach(result, "during_region.orders", f"expected recovery {sandbox.endpoints.recovery_region}")
    assert_breach(result, "rto.orders.read", "orders reads never recovered", "s allowed")
    # attributable: only orders lost its instances, the other services never moved
    assert_held(result, "unaffected.web.region")
    assert_held(result, "unaffected.catalog.region")


@pytest.mark.xdist_group("regress-router-standby")
def test_async_standby_loses_writes_in_database_crash(router_and_standby_broken: BrokenSandbox) -> None:
    """An asynchronous Multi-AZ standby: the crash drill must report lost acknowledged writes."""
    sandbox = router_and_standby_broken
    standbys = [n for n in sandbox.status()["database"] if n.get("role") == "standby"]
    assert standbys and all(n.get("sync_state") == "async" for n in standbys), \
        f"variant async-standby not in effect: {standbys}"
    results = []
    for _ in range(MAX_CRASH_DRILLS):
        results.append(sandbox.drill("database-crash"))
        if not _verdict(results[-1], "lost_writes").passed:
            break
    assert_breach(results[-1], "lost_writes", "lost acknowledged writes: ")
    assert "> 0 allowed" in _verdict(results[-1], "lost_writes").message


@pytest.mark.xdist_group("regress-replica")
def test_ignore_replica_fails_region_outage(replica_ignored: BrokenSandbox) -> None:
    """Recovery-region services reading from the (dark) primary region cannot serve reads."""
    result = replica_ignored.drill("region-outage", gameday_timeout_s=EXPERIMENT_WAIT_S)
    assert_breach(result, "rto.catalog.read", "catalog reads never recovered", "s allowed")
    assert_breach(result, "must_switch.catalog", "catalog never switched region")
    # attributable: web keeps no database, so it is the control that the region failover itself works
    assert_held(result, "must_switch.web")
