"""Interrupt trials: a drill as a real ``pytest`` subprocess on a shared sandbox, interrupted at a point.

Shared by ``tests/safety/test_interrupts_sandbox.py`` (a few trials) and
``benchmarks/bench_interrupts.py`` (the whole matrix).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gameday import resources
from gameday.safety import undolog
from gameday.safety.replay import Target, check_steady, running_fis
from gameday.util.procs import command_lines_containing
from gameday.util.retry import poll_until

POINTS = ("fault", "promotion", "rollback")
#: How a trial ends the drill: a signal to pytest, Ctrl-C to its process group, pytest-timeout's
#: expiry (its ``signal`` method: SIGALRM raises ``pytest.fail`` wherever the test is, the same
#: handler that fires when ``--timeout`` runs out), or SIGKILL (the caller runs ``gameday abort``,
#: which is also what pytest-timeout's ``thread`` method needs: it ends pytest with ``os._exit``).
SIGNALS = ("SIGINT", "SIGTERM", "pgrp-SIGINT", "pytest-timeout", "SIGKILL")


@dataclass
class TrialResult:
    scenario: str
    sig: str
    point: str
    exit_code: int | None
    stderr_tail: str
    problems: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    rolled_back: bool = False
    seconds: float = 0.0
    interrupted: bool = False  # the signal was sent: the drill was still running when the point came


def _undo_kinds(state: Path) -> list[str]:
    return [str(e.undo.get("kind")) for e in undolog.read(undolog.files_in(undolog.sandbox_undo_dir(state)))]


def _chaos_logs(reports: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in reports.glob("**/chaos.log"))


def point_reached(point: str, state: Path, reports: Path, before: int) -> Callable[[], bool]:
    """fault: a fault entry of this run is on disk; promotion: the replica was promoted; rollback: chaos rolls back."""
    if point == "fault":
        return lambda: len(_undo_kinds(state)) > before
    if point == "promotion":
        return lambda: "reseed" in _undo_kinds(state)[before:]
    return lambda: "Let's rollback" in _chaos_logs(reports)


def start_drill(scenario: str, state: Path, reports: Path, *, pytest_timeout: bool = False) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "pytest", str(resources.scenarios_dir() / "test_drills.py"), "-m", "drill",
            "--scenario", scenario, "--reuse-sandbox", str(state), "--gameday-reports", str(reports),
            "-p", "no:randomly", "-p", "no:xdist", "-q", "-rs"]  # -rs: a skip says why (INCONCLUSIVE)
    if pytest_timeout:  # armed far away; the trial delivers its SIGALRM at the chosen point
        argv += ["--timeout", "3600", "--timeout-method", "signal"]  # pytest-timeout (a dev dependency)
    return subprocess.Popen(argv, cwd=str(resources.data_root()), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # its own process group: "Ctrl-C" = killpg(SIGINT)


def leftovers(reports: Path) -> list[str]:
    """Processes of the drill still alive: anything whose command line names the trial's reports folder."""
    return [f"{pid}: {cmd[:120]}" for pid, cmd in command_lines_containing(str(reports))]


def run_trial(scenario: str, sig: str, point: str, state: Path, reports: Path, *, delay_s: float = 1.0,
              timeout_s: float = 300.0) -> TrialResult:
    """Start the drill, interrupt it at ``point`` with ``sig`` (one of SIGNALS), judge."""
    if sig not in SIGNALS:
        raise ValueError(f"unknown trial signal {sig!r}: one of {', '.join(SIGNALS)}")
    t0 = time.monotonic()
    before = len(_undo_kinds(state))
    proc = start_drill(scenario, state, reports, pytest_timeout=sig == "pytest-timeout")
    reached = point_reached(point, state, reports, before)
    interrupted = False
    try:
        poll_until(lambda: reached() or proc.poll() is not None, timeout_s, interval=0.05)
        if proc.poll() is None:
            time.sleep(delay_s)
            if sig == "pgrp-SIGINT":
                os.killpg(proc.pid, signal.SIGINT)
            elif sig == "pytest-timeout":
                os.kill(proc.pid, signal.SIGALRM)
            else:
                os.kill(proc.pid, getattr(signal, sig))
            interrupted = True
        out, _ = proc.communicate(timeout=timeout_s)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = out.decode(errors="replace") if out else ""
    res = TrialResult(scenario, sig, point, proc.returncode, text[-3000:], interrupted=interrupted)
    if sig == "SIGKILL":
        return res  # the caller runs 'gameday abort'
    judge(res, state, reports)
    res.seconds = round(time.monotonic() - t0, 1)
    return res


def judge(res: TrialResult, state: Path, reports: Path) -> None:
    target = Target.sandbox(state)
    res.problems = check_steady(target)
    res.problems += [f"FIS running: {x}" for x in running_fis(target)]
    res.problems += [f"open undo entry: {e.describe()}" for e in
                     undolog.open_entries(undolog.files_in(undolog.sandbox_undo_dir(state)))]
    res.leftovers = leftovers(reports)
    res.rolled_back = not res.problems and not res.leftovers
