"""The scheduler: one run per firing, no overlap on a target, missed-run policies, clean SIGTERM.

Time runs 60x faster (``ScaledClock``) so the every-minute cron ``* * * * *`` fires once a real
second; the game day is a quick stand-in process (the real ``gameday run`` is covered by
test_gameday_sandbox.py) that journals when it starts and ends.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gameday.gameday.plan import Plan, load_plan
from gameday.gameday.scheduler import ScaledClock, Scheduler

FAKE_RUN = """
import os, signal, sys, time
journal, seconds = sys.argv[1], float(sys.argv[2])
def log(text):
    with open(journal, "a") as fh:
        fh.write(f"{text} {time.time():.3f} {os.getpid()}\\n")
def term(signum, frame):
    log("rollback")
    sys.exit(5)
signal.signal(signal.SIGTERM, term)
log("start")
time.sleep(seconds)
log("end")
"""


def plan(tmp: Path, name: str, missed: str = "skip", deadline: float = 3600) -> Plan:
    d = tmp / "gamedays"
    d.mkdir(exist_ok=True)
    p = d / f"{name}.yaml"
    p.write_text(f"name: {name}\ntarget: {{kind: sandbox}}\nscenarios: [instance-termination]\n"
                 f"schedule: {{cron: '* * * * *', timezone: Europe/Rome, missed: {missed}, "
                 f"starting_deadline_s: {deadline}}}\n")
    return load_plan(p)


def intervals(journal: Path) -> list[tuple[float, float]]:
    starts, ends = [], []
    for line in journal.read_text().splitlines():
        kind, t, _pid = line.split()
        (starts if kind == "start" else ends).append(float(t))
    return list(zip(starts, ends, strict=False))


def journaled_pids(journal: Path) -> list[int]:
    """The pid of every stand-in run that got as far as journaling its start."""
    return [int(pid) for kind, _t, pid in (line.split() for line in journal.read_text().splitlines())
            if kind == "start"]


def run_for(s: Scheduler, seconds: float) -> None:
    t = threading.Thread(target=s.run, kwargs={"install_signals": False}, daemon=True)
    t.start()
    time.sleep(seconds)
    s.request_stop()
    t.join(timeout=30)
    assert not t.is_alive()


@pytest.mark.parametrize("missed", ["skip", "run_once"])
def test_one_run_per_firing_and_no_overlap(tmp_path: Path, gameday_home: Path, missed: str) -> None:
    journal = tmp_path / "journal.txt"
    p = plan(tmp_path, "every-minute", missed)
    lines: list[str] = []
    s = Scheduler([p], home=gameday_home, clock=ScaledClock(60.0), out=lines.append, poll_s=3.0,
                  command=lambda _: [sys.executable, "-c", FAKE_RUN, str(journal), "1.6"])
    run_for(s, 6.5)
    runs = intervals(journal)
    started = [f for f in s.firings if f.action in ("started", "started-late")]
    # exactly one game day per started firing: no run without a firing, none started twice; only
    # the last one may be missing, stopped by request_stop() before its interpreter was up
    ran = journaled_pids(journal)
    fired = [int(f.detail.split()[-1]) for f in started]
    assert len(ran) == len(set(ran)) == len(runs) >= 2, (ran, runs)
    assert set(ran) <= set(fired), (ran, fired)
    assert [pid for pid in fired if pid not in ran] in ([], fired[-1:]), (ran, fired)
    for (_, a1), (b0, _) in itertools.pairwise(runs):
        assert b0 >= a1 - 0.05, f"runs overlap: {runs}"  # the next starts only after the previous ended
    busy = [f for f in s.firings if f.action in ("skipped", "deferred")]
    assert busy, lines  # a firing came while a run was going (1.6 s runs, a firing a second)
    assert all("still running" in f.detail for f in busy)
    if missed == "skip":
        assert all(f.action == "started" for f in started)
        assert len(busy) >= len(started) - 1
    else:
        assert any(f.action == "started-late" for f in started)  # the deferred firing ran once, later
    assert all(f.plan == "every-minute" for f in s.firings)
    at = [f.at for f in s.firings]
    assert at == sorted(at) or missed == "run_once"
    assert all(t.second == 0 for t in at)  # fired on the minute (fake time), in the plan's cron


def test_missed_while_down_runs_once_within_deadline(tmp_path: Path, gameday_home: Path) -> None:
    journal = tmp_path / "journal.txt"
    start = datetime(2025, 1, 6, 5, 0, 30, tzinfo=UTC)
    for name, missed, deadline, expect in (("late", "run_once", 3600, 1), ("gone", "run_once", 60, 0),
                                           ("skipper", "skip", 3600, 0)):
        p = plan(tmp_path, name, missed, deadline)
        state = gameday_home / "schedule" / f"{name}.json"
        state.parent.mkdir(parents=True, exist_ok=True)
        state.write_text(json.dumps({"last_firing": (start - timedelta(minutes=10)).isoformat()}))
        s = Scheduler([p], home=gameday_home, clock=ScaledClock(1.0, start=start), out=lambda _: None, poll_s=0.2,
                      command=lambda _: [sys.executable, "-c", FAKE_RUN, str(journal), "0.1"])
        run_for(s, 1.0)
        late = [f for f in s.firings if f.action == "started-late"]
        assert len(late) == expect, (name, s.firings)
        if name == "gone":
            assert any(f.action == "dropped" for f in s.firings)
        if name == "skipper":
            assert any(f.action == "skipped" and "not running" in f.detail for f in s.firings)
    assert len(intervals(journal)) == 1


SCHED = """
import sys
from pathlib import Path
from gameday.gameday.plan import load_plan
from gameday.gameday.scheduler import ScaledClock, Scheduler
journal, home, plan = sys.argv[1], Path(sys.argv[2]), load_plan(sys.argv[3])
fake = sys.argv[4]
s = Scheduler([plan], home=home, clock=ScaledClock(60.0), poll_s=3.0, stop_grace_s=20,
              command=lambda p: [sys.executable, "-c", fake, journal, "60"])
sys.exit(s.run())
"""


def test_sigterm_stops_cleanly_and_the_running_game_day_rolls_back(tmp_path: Path, gameday_home: Path) -> None:
    journal = tmp_path / "journal.txt"
    p = plan(tmp_path, "term")
    proc = subprocess.Popen([sys.executable, "-c", SCHED, str(journal), str(gameday_home), str(p.path), FAKE_RUN],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (journal.exists() and "start" in journal.read_text()):
            time.sleep(0.1)
        assert journal.exists(), "the scheduler never started a game day"
        child = json.loads(next((gameday_home / "schedule" / "pids").glob("*.json")).read_text())["pid"]
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert time.monotonic() - t0 < 10
        kinds = [line.split()[0] for line in journal.read_text().splitlines()]
        assert kinds == ["start", "rollback"]  # the game day was told to stop and rolled back, nothing new began
        assert "finished: HALTED (exit 5)" in out and "scheduler stopped" in out
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
        assert not list((gameday_home / "schedule" / "pids").glob("*.json"))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def test_cli_schedule_idles_until_sigterm(tmp_path: Path, gameday_home: Path) -> None:
    p = plan(tmp_path, "idle")
    p.path.write_text(p.path.read_text().replace("'* * * * *'", "'0 6 * * 1'"))
    env = {**os.environ, "GAMEDAY_HOME": str(gameday_home)}
    proc = subprocess.Popen([sys.executable, "-m", "gameday", "schedule", str(p.path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert "idle: cron '0 6 * * 1' (Europe/Rome)" in first and "next at" in first and ("CET" in first
                                                                                       or "CEST" in first)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and "scheduler stopped" in out and "Traceback" not in out
