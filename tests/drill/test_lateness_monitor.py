"""The lateness monitor reports a real starvation: its process frozen with SIGSTOP for 2 s."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

from gameday.drill.scenario import Slos
from gameday.drill.starvation import assess
from gameday.sandbox.events import EventLog, read_events
from gameday.sandbox.lateness import LatenessMonitor, percentile, summarise
from gameday.util.procs import ProcessRegistry

STOP_S = 2.0


def _wait_for(path: Path, n: int, timeout: float) -> list[dict]:
    deadline = time.monotonic() + timeout
    events: list[dict] = []
    while time.monotonic() < deadline:
        events = read_events(path, kind="sandbox_lateness")
        if len(events) >= n:
            return events
        time.sleep(0.1)
    return events


def test_sigstop_of_the_monitored_process_shows_up_as_lateness(tmp_path: Path) -> None:
    events_path = tmp_path / "events.jsonl"
    registry = ProcessRegistry(tmp_path)
    try:
        m = registry.spawn("lateness", [sys.executable, "-m", "gameday.sandbox.lateness", "--events",
                                        str(events_path), "--seconds", "60"], log=tmp_path / "monitor.log")
        assert len(_wait_for(events_path, 2, 15.0)) >= 2, (tmp_path / "monitor.log").read_text()
        stopped_at = time.time()
        registry.signal("lateness", signal.SIGSTOP)
        time.sleep(STOP_S)
        # taken before SIGCONT: a busy test process may run after the monitor has already reported
        resumed_at = time.time()
        registry.signal("lateness", signal.SIGCONT)
        # two summaries after the stop: the one whose window held the stop, and a normal one
        deadline = time.monotonic() + 20.0
        while time.monotonic() < deadline:
            if sum(e["ts"] >= resumed_at for e in read_events(events_path, kind="sandbox_lateness")) >= 2:
                break
            time.sleep(0.1)
        assert m.alive(), (tmp_path / "monitor.log").read_text()
    finally:
        registry.kill_all()
    events = read_events(events_path, kind="sandbox_lateness")
    before = [e for e in events if e["ts"] < stopped_at]
    after = [e for e in events if e["ts"] >= resumed_at]
    assert before and after
    worst = max(after, key=lambda e: e["max_s"])
    # the sleep that spanned the stop woke (almost) the whole stop late; nothing before it did
    assert worst["max_s"] >= STOP_S * 0.8, worst
    assert worst["p99_s"] >= STOP_S * 0.5, worst
    assert max(e["max_s"] for e in before) < STOP_S * 0.5, before
    # and the drill-side classifier turns those events into INCONCLUSIVE for a 3 s budget
    starvation = assess(Slos(rto_s={"*": 3.0}), stopped_at - 1.0, resumed_at + 3.0, events_path=events_path,
                        requests=[], rates={})
    assert starvation.starved, starvation.message
    assert starvation.message.startswith("host starved: sandbox scheduling lateness p99 ")


def test_monitor_in_process_emits_one_summary_a_second_with_other_sources(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.jsonl")
    mon = LatenessMonitor(log, period_s=0.02, report_s=0.5)
    mon.start()
    try:
        for _ in range(5):
            mon.note("controller_tick", 0.003)
        time.sleep(1.3)
    finally:
        mon.stop()
        log.close()
    events = read_events(tmp_path / "events.jsonl", kind="sandbox_lateness")
    assert 2 <= len(events) <= 4
    first = events[0]
    assert first["n"] >= 10 and first["p99_s"] >= first["p50_s"] >= 0.0
    assert first["sources"]["controller_tick"]["n"] == 5
    assert mon.latest()["n"] >= 1


def test_percentile_and_summary() -> None:
    assert percentile([0.0, 1.0], 50) == 0.5
    assert percentile([3.0], 99) == 3.0
    assert summarise([])["p99_s"] is None
    s = summarise([0.001] * 99 + [2.0])
    assert s["max_s"] == 2.0 and 0.001 < s["p99_s"] < 2.0 and s["n"] == 100
