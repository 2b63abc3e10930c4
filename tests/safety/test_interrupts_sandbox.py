"""Interrupted drills, a halted drill and the kill switch, against one real sandbox.

Each drill runs as a real ``pytest`` subprocess sharing the sandbox through ``--reuse-sandbox``
and is interrupted at a point; afterwards the sandbox must be in steady state (exactly one
writable primary, no FIS experiment running, no open undo entry) with no drill process left.
The full matrix is ``benchmarks/bench_interrupts.py``.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from gameday import resources
from gameday.safety import trials, undolog
from gameday.safety.guard import StopCondition
from gameday.safety.replay import Target, check_steady

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest) -> Iterator[Path]:
    from gameday.sandbox import client

    if request.config.getoption("--target") != "sandbox":
        pytest.skip("needs --target sandbox")
    base = Path(tempfile.mkdtemp(prefix="gameday-safety-"))
    state = base / "sandbox"
    try:
        client.up_with_retry(state, timing="fast")
        yield state
    finally:
        client.down(state)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize(("scenario", "sig", "point"), [
    ("region-outage", "SIGINT", "fault"),
    ("region-outage", "pgrp-SIGINT", "promotion"),
    ("service-failover", "SIGTERM", "rollback"),
    ("database-failover", "pytest-timeout", "fault"),
])
def test_interrupted_drill_rolls_back(sandbox: Path, tmp_path: Path, scenario: str, sig: str, point: str) -> None:
    res = trials.run_trial(scenario, sig, point, sandbox, tmp_path / "reports")
    print(f"{scenario} {sig} at {point}: exit {res.exit_code}, {res.seconds} s")
    if not res.interrupted:  # the drill ended before the point: nothing was interrupted
        if "INCONCLUSIVE" in res.stderr_tail:
            pytest.skip(f"the drill ended INCONCLUSIVE before the {point} point (host starved): "
                        f"{res.stderr_tail[-300:]}")
        pytest.fail(f"the drill ended (exit {res.exit_code}) before reaching the {point} point:\n{res.stderr_tail}")
    assert res.exit_code not in (None, 0), res.stderr_tail
    import json

    [cleanup] = [json.loads(c.read_text()) for c in (tmp_path / "reports").glob("**/cleanup.json")]
    if sig == "pytest-timeout":  # pytest.fail raised inside the test: an exception, not a signal
        assert "Timeout (>3600.0s) from pytest-timeout" in res.stderr_tail, res.stderr_tail
        assert cleanup["interrupted"] is None and cleanup["steady"], cleanup
    else:
        want = "SIGINT" if sig.endswith("SIGINT") else sig
        assert cleanup["interrupted"] == want and cleanup["steady"], cleanup  # written by the harness itself
    print(f"  undone: {cleanup['undone']}, cleanup {cleanup['cleanup_s']} s")
    assert not res.problems, f"{res.problems}\n{res.stderr_tail}"
    assert not res.leftovers, res.leftovers


@pytest.mark.parametrize("load_workers", [0, 2], ids=["one-locust", "two-locust-workers"])
def test_stop_condition_halts_within_a_second(sandbox: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              load_workers: int) -> None:
    """Fail over 'web' on purpose while a stop condition guards 'web': HALTED, rolled back.

    With two locust workers the guard must follow both workers' journals (``requests-<id>.jsonl``).
    """
    monkeypatch.setenv("GAMEDAY_LOAD_WORKERS", str(load_workers))
    from gameday.drill.runner import run_drill
    from gameday.drill.scenario import find_scenario
    from gameday.pytest_plugin import _sandbox_topology, skip_if_inconclusive
    from gameday.target import Endpoints

    base = find_scenario("service-failover", resources.scenarios_dir())
    scenario = dataclasses.replace(
        base, experiment_config={**base.experiment_config, "gameday_failover_service": "web"},
        stop_conditions=(StopCondition(service="web", window_s=2.0, max_error_ratio=0.2),))
    topo, password = _sandbox_topology(sandbox)
    result = run_drill(scenario, Endpoints.load(sandbox / "endpoints.json"), topo, tmp_path / "run",
                       password=password)
    skip_if_inconclusive(result)
    assert result.verdict == "HALTED", result.verdict
    trip = result.halted.to_dict()
    print(f"{result.halted_message} (stop lag {trip['stop_lag_s']} s)")
    assert "web error ratio" in trip["figure"]
    if load_workers:
        journals = sorted(p.name for p in (tmp_path / "run").glob("**/requests-*.jsonl"))
        assert len(journals) >= load_workers, journals  # the load really was distributed
    assert trip["stop_lag_s"] is not None and trip["stop_lag_s"] < 1.0, trip
    assert result.results.chaos is not None
    rollbacks = result.results.chaos.rollbacks
    assert rollbacks and all(r.status == "succeeded" for r in rollbacks), rollbacks
    assert check_steady(Target.sandbox(sandbox)) == []
    assert undolog.open_entries(undolog.files_in(undolog.sandbox_undo_dir(sandbox))) == []


def test_abort_after_kill_9(sandbox: Path, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    trials.run_trial("region-outage", "SIGKILL", "fault", sandbox, reports)
    open_before = undolog.open_entries(undolog.files_in(undolog.sandbox_undo_dir(sandbox)))
    assert open_before, "kill -9 mid-fault should leave an open undo entry"
    out = subprocess.run([sys.executable, "-m", "gameday", "abort", "--target", "sandbox", "--state-dir",
                          str(sandbox)], capture_output=True, text=True, timeout=300, check=False)
    print(out.stdout, out.stderr)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "StopExperiment" in out.stdout and "back in steady state" in out.stdout
    res = trials.TrialResult("region-outage", "SIGKILL", "fault", None, "")
    trials.judge(res, sandbox, reports)
    assert not res.problems and not res.leftovers, (res.problems, res.leftovers)
