"""INCONCLUSIVE on a starved host: classification from synthetic lateness series, and the reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gameday.drill.report import (
    CATEGORY_INFRA,
    VERDICT_FAIL,
    VERDICT_INCONCLUSIVE,
    VERDICT_PASS,
    ScenarioResult,
    categories,
    overall_verdict,
    write_summary,
)
from gameday.drill.results import DrillResults
from gameday.drill.runner import DrillResult
from gameday.drill.scenario import Slos
from gameday.drill.slo import SloVerdict
from gameday.drill.starvation import assess, bound_for, schedule_lateness
from gameday.sandbox.events import EventLog

SLOS = Slos(rto_s={"*": 3.2}, write_rto_s={"orders": 2.0})   # bound: 25 % of 2.0 s = 0.5 s
FAULT = 1000.0
END = 1030.0


def sandbox_events(path: Path, p99_by_second: dict[int, float]) -> Path:
    """One ``sandbox_lateness`` summary per second from FAULT-10 to END, as the monitor writes them."""
    log = EventLog(path)
    log.close()
    with open(path, "a", encoding="utf-8") as fh:
        for sec in range(int(FAULT) - 10, int(END) + 1):
            p99 = p99_by_second.get(sec, 0.002)
            fh.write(json.dumps({"kind": "sandbox_lateness", "ts": float(sec), "mono": float(sec),
                                 "window_s": 1.0, "n": 50, "p99_s": p99, "max_s": p99 * 1.2, "p50_s": 0.0003})
                     + "\n")
    return path


def steady_requests(rate: float = 20.0, stall_at: float | None = None, stall_s: float = 0.0) -> list[dict]:
    out = []
    for k in range(int((END - FAULT + 10) * rate)):
        t = FAULT - 10 + k / rate
        if stall_at is not None and t >= stall_at:
            t += stall_s
        out.append({"service": "orders", "kind": "read", "t0": t})
    return out


RATES = {("orders", "read"): 20.0}
PASSING = [SloVerdict("rto.orders.read", 3.2, 0.4, True, "orders read RTO 0.4 s <= 3.2 s allowed")]
BREACH = [SloVerdict("rto.orders.read", 3.2, 21.8, False, "orders read RTO 21.8 s > 3.2 s allowed")]


def result(verdicts: list[SloVerdict], starvation: object) -> DrillResult:
    return DrillResult("demo", Path("."), FAULT, None, DrillResults(), verdicts, "completed", starvation)


def test_bound_is_a_quarter_of_the_tightest_budget() -> None:
    bound, basis = bound_for(SLOS)
    assert bound == 0.5 and "orders write 2 s" in basis
    assert bound_for(Slos())[0] == 1.0


def test_quiet_host_keeps_a_breach_a_fail(tmp_path: Path) -> None:
    s = assess(SLOS, FAULT, END, events_path=sandbox_events(tmp_path / "e.jsonl", {}),
               requests=steady_requests(), rates=RATES)
    assert not s.starved and s.message.startswith("host kept up:")
    assert result(BREACH, s).verdict == "FAIL" and result(PASSING, s).verdict == "PASS"


def test_sandbox_stall_during_the_fault_is_inconclusive_whatever_the_slos(tmp_path: Path) -> None:
    s = assess(SLOS, FAULT, END, events_path=sandbox_events(tmp_path / "e.jsonl", {1012: 0.84}),
               requests=steady_requests(), rates=RATES)
    assert s.starved
    assert s.message.startswith("host starved: sandbox scheduling lateness p99 0.84 s > bound 0.50 s "
                                "during the fault")
    for verdicts in (PASSING, BREACH):
        r = result(verdicts, s)
        assert r.verdict == "INCONCLUSIVE"
        assert r.inconclusive_message is not None and r.inconclusive_message.startswith("INCONCLUSIVE: host starved")


def test_a_stall_before_the_fault_or_below_the_bound_does_not_count(tmp_path: Path) -> None:
    events = sandbox_events(tmp_path / "e.jsonl", {int(FAULT) - 5: 3.0, 1010: 0.45})
    s = assess(SLOS, FAULT, END, events_path=events, requests=steady_requests(), rates=RATES)
    assert not s.starved
    assert s.worst is not None and s.worst.p99_s == 0.45


def test_a_starved_load_generator_is_inconclusive_without_any_sandbox() -> None:
    """AWS: no sandbox events, but locust's own schedule shows it could not send."""
    s = assess(SLOS, FAULT, END, events_path=None, requests=steady_requests(stall_at=1015.0, stall_s=2.0),
               rates=RATES)
    assert s.starved
    assert "load generator schedule lateness p99 1.6" in s.message
    assert "sandbox scheduling lateness not measured (no sandbox" in s.message


def test_schedule_replay_anchors_early_and_reanchors_like_locust() -> None:
    # first request late (the whole schedule seems early): anchor moves back, no lateness invented
    late = schedule_lateness([0.3, 0.35, 0.40, 0.45], 20.0)
    assert [round(x, 3) for _, x in late] == [0.0, 0.0, 0.0, 0.0]
    # a 2 s stall: one request 2 s late, then locust restarts its schedule from there
    starts = [0.0, 0.05, 0.10, 2.15, 2.20, 2.25]
    got = [round(x, 3) for _, x in schedule_lateness(starts, 20.0)]
    assert got == [0.0, 0.0, 0.0, 2.0, 0.0, 0.0]
    # steadily slow sends (every gap 10 % long) accumulate until locust gives up at 1 s
    drift = schedule_lateness([k * 0.055 for k in range(400)], 20.0)
    assert 0.9 < max(x for _, x in drift) <= 1.01


def test_summary_and_allure_show_inconclusive(tmp_path: Path) -> None:
    msg = "INCONCLUSIVE: host starved: sandbox scheduling lateness p99 0.84 s > bound 0.50 s during the fault"
    rows = [ScenarioResult("a", "instance", PASSING), ScenarioResult("b", "network", BREACH, inconclusive=msg)]
    assert rows[1].verdict == VERDICT_INCONCLUSIVE and rows[1].key_measurements() == msg
    assert overall_verdict(rows) == VERDICT_INCONCLUSIVE
    assert overall_verdict([*rows, ScenarioResult("c", "az", BREACH)]) == VERDICT_FAIL
    assert overall_verdict(rows[:1]) == VERDICT_PASS
    md, js = write_summary(tmp_path, rows)
    text = md.read_text()
    assert "# gameday run" in text and ": INCONCLUSIVE" in text.splitlines()[0]
    assert "| b | network | **INCONCLUSIVE** | INCONCLUSIVE: host starved" in text
    assert "measured, not judged" in text
    doc = json.loads(js.read_text())
    assert doc["scenarios"][1]["verdict"] == "INCONCLUSIVE" and doc["scenarios"][1]["inconclusive"] == msg
    infra = next(c for c in categories() if c["name"] == CATEGORY_INFRA)
    assert infra["matchedStatuses"] == ["skipped"]
    import re

    assert re.fullmatch(infra["messageRegex"], f"Skipped: {msg}")
    assert not re.fullmatch(infra["messageRegex"], "Skipped: database-crash runs only on sandbox")


@pytest.mark.parametrize("p99, starved", [(0.49, False), (0.51, True)])
def test_the_bound_is_strict(tmp_path: Path, p99: float, starved: bool) -> None:
    s = assess(SLOS, FAULT, END, events_path=sandbox_events(tmp_path / "e.jsonl", {1020: p99}),
               requests=steady_requests(), rates=RATES)
    assert s.starved is starved
