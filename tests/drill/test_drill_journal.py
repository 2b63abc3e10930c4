"""What the drill runner reads from a Chaos Toolkit journal: the fault window, and whether it was injected."""

from __future__ import annotations

from typing import Any

import pytest

from gameday.drill.runner import check_injected, fault_window
from gameday.errors import DrillError


def _run(name: str, func: str, status: str, start: str, end: str, exc: str | None = None) -> dict[str, Any]:
    run: dict[str, Any] = {"activity": {"type": "action", "name": name, "provider": {"type": "python", "func": func}},
                           "status": status, "start": start, "end": end, "output": None}
    if exc:
        run["exception"] = ["Traceback (most recent call last):\n", f"chaoslib.exceptions.ActivityFailed: {exc}\n"]
    return run


def _journal(*runs: dict[str, Any], rollbacks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    # what chaostoolkit writes when a method action fails: it carries on and calls the run completed
    return {"status": "completed", "deviated": False, "run": list(runs), "rollbacks": rollbacks or []}


def test_a_failed_fault_action_is_a_harness_error_not_a_pass() -> None:
    """Seen in a rehearsal: crash_primary_db failed, chaos said "completed", and the drill passed."""
    journal = _journal(
        _run("hard-crash-primary", "crash_primary_db", "failed", "2026-11-25T15:14:44.791593", "2026-11-25T15:14:44.8",
             exc="cannot find the postmaster of writer on this host: [Errno 2] No such file"),
        _run("writer-writable-again", "wait_for_writable", "succeeded", "2026-11-25T15:14:44.81",
             "2026-11-25T15:14:45"),
    )
    with pytest.raises(DrillError) as ei:
        check_injected(journal)
    msg = str(ei.value)
    assert "'hard-crash-primary' (crash_primary_db)" in msg and "not (fully) injected" in msg
    assert "cannot find the postmaster" in msg


def test_a_failed_wait_is_left_to_the_slos() -> None:
    journal = _journal(
        _run("primary-region-dark", "region_outage", "succeeded", "2026-11-25T15:00:00", "2026-11-25T15:00:01"),
        _run("every-service-served-from-recovery-region", "wait_for_all_in_region", "failed",
             "2026-11-25T15:00:01", "2026-11-25T15:00:31", exc="timed out after 30 s"),
    )
    check_injected(journal)          # no error: the timeline decides whether the system recovered
    start, end = fault_window(journal)
    assert end is None and start == pytest.approx(1795618800.0)


def test_fault_window_spans_first_action_to_last_rollback() -> None:
    journal = _journal(
        _run("cut", "cut_inter_region_link", "succeeded", "2026-11-25T15:00:00", "2026-11-25T15:00:00.5"),
        rollbacks=[{"activity": {"type": "action"}, "status": "succeeded", "start": "2026-11-25T15:00:20",
                    "end": "2026-11-25T15:00:21.25"}],
    )
    check_injected(journal)
    assert fault_window(journal) == (pytest.approx(1795618800.0), pytest.approx(1795618821.25))


def _unmet_journal() -> dict[str, Any]:
    return {"status": "completed", "run": [], "steady_states": {"before": {"steady_state_met": False, "probes": [
        {"activity": {"name": "all-services-healthy-through-global-urls"}, "tolerance_met": True},
        {"activity": {"name": "database-replication-healthy"}, "tolerance_met": False}]}}}


def test_steady_state_unmet_names_the_failed_probe() -> None:
    from gameday.drill.runner import steady_state_unmet

    assert steady_state_unmet(_unmet_journal()) == "database-replication-healthy"
    met = {"steady_states": {"before": {"steady_state_met": True, "probes": []}}}
    assert steady_state_unmet(met) is None
    assert steady_state_unmet({}) is None


def test_not_in_steady_state_on_a_quiet_host_is_a_harness_error(tmp_path: Any) -> None:
    """Chaos Toolkit says "completed" when the hypothesis fails first; the drill must not judge that."""
    import time
    from pathlib import Path

    from gameday.drill.runner import _nothing_injected
    from gameday.drill.scenario import find_scenario
    from gameday.target import Endpoints

    scenario = find_scenario("instance-termination", Path(__file__).resolve().parents[2] / "scenarios")
    requests = tmp_path / "requests.jsonl"
    t = time.time()
    # the load kept to its schedule: 20 reads/s per service for 3 s, all answered
    lines = [f'{{"t0": {t + i / 20:.3f}, "t1": {t + i / 20 + 0.01:.3f}, "service": "{svc}", "kind": "read", '
             f'"status": 200, "outcome": "ok", "region": "eu-south-1"}}' for svc in ("web",) for i in range(60)]
    requests.write_text("\n".join(lines) + "\n")
    ep = Endpoints(kind="sandbox", primary_region="eu-south-1", recovery_region="eu-central-1",
                   aws_endpoint_url=None, services={"web": "http://127.0.0.1:1"})
    with pytest.raises(DrillError, match="database-replication-healthy failed"):
        _nothing_injected(scenario, ep, tmp_path, scenario.load_for("fast"), [], requests, "fast", None,
                          "database-replication-healthy")
    # a fault action that failed on a host that kept up is a harness error too, with the action's reason
    with pytest.raises(DrillError, match="was not \\(fully\\) injected: no instance"):
        _nothing_injected(scenario, ep, tmp_path, scenario.load_for("fast"), [], requests, "fast", None,
                          None, "the experiment's action 'x' (terminate) failed, so the fault was not (fully) "
                          "injected: no instance")
