"""Cleanup that always runs: around a drill, on normal exit, exceptions, SIGINT, SIGTERM, stop conditions.

The first interrupt is passed to Chaos Toolkit at once (SIGTERM: chaoslib turns it into
InterruptExecution and plays the rollbacks); the drill then unwinds, the harness waits a bounded
time for those rollbacks, replays what the undo log still holds, restores the sandbox (admin
reset, last) and checks steady state. Further interrupts during that are refused with a message.
``chaos run`` runs in its own session, so a Ctrl-C to the terminal's process group reaches it
only through us, exactly once (a second signal would make chaoslib skip the remaining rollbacks).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from gameday import settings
from gameday.errors import DrillError, GamedayError
from gameday.safety import undolog
from gameday.safety.guard import Trip
from gameday.safety.replay import Target, check_steady, replay
from gameday.util.procs import ProcessRegistry, kill_group, kill_recorded
from gameday.util.retry import poll_until

if TYPE_CHECKING:
    from gameday.drill.runner import DrillResult

ROLLBACK_WAIT_S = 90.0  # bounded wait for Chaos Toolkit's own rollbacks after an interrupt
CHAOS_PROC = "chaos-run"
_current: contextvars.ContextVar[DrillSafety | None] = contextvars.ContextVar("gameday_drill_safety", default=None)


def current() -> DrillSafety | None:
    return _current.get()


def say(text: str) -> None:
    print(f"gameday: {text}", file=sys.stderr, flush=True)


class DrillSafety:
    """``with DrillSafety(...) as safety:`` around one drill; see the module docstring."""

    def __init__(self, run_dir: Path, endpoints: Any, *, password: str | None = None, run_id: str | None = None,
                 rollback_wait_s: float = ROLLBACK_WAIT_S) -> None:
        self.run_dir = Path(run_dir)
        self.endpoints = endpoints
        self.password = password
        self.rollback_wait_s = rollback_wait_s
        self.run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{self.run_dir.name}-{os.getpid()}"
        if endpoints.kind == "sandbox" and endpoints.state_dir:
            self.target_dir = undolog.sandbox_undo_dir(endpoints.state_dir)
        elif endpoints.kind == "aws":
            self.target_dir = undolog.aws_undo_dir()
        else:
            self.target_dir = undolog.default_undo_dir()
        self.paths = [self.run_dir / "undo.jsonl", self.target_dir / f"{self.run_id}.jsonl"]
        self.chaos: Any = None          # gameday.util.procs.Managed
        self.registry: ProcessRegistry | None = None
        self.guard: Any = None          # gameday.safety.guard.Guard
        self.interrupted: str | None = None
        self.halted: Trip | None = None
        self.cleaning = False
        self.forwarded_at: float | None = None
        self.report: dict[str, Any] = {}
        self._old: dict[int, Any] = {}
        self._token: contextvars.Token[DrillSafety | None] | None = None
        self._lock = threading.RLock()

    # -- set-up ------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        """What ``chaos run`` needs so every activity writes its undo entries where we read them."""
        return {undolog.ENV_LOGS: os.pathsep.join(str(p) for p in self.paths)}

    def __enter__(self) -> DrillSafety:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        # the processes of this drill, so 'gameday abort' can end them when the harness is gone
        undolog.write({"op": "harness", "id": self.run_id, "t": time.time(), "pid": os.getpid(),
                       "pids_dirs": [str(self.run_dir), str(self.run_dir / "load")]}, self.paths)
        self._token = _current.set(self)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.interrupted or self.cleaning:
            say(f"{name} refused: cleanup in progress (Chaos Toolkit rollbacks, then the undo log); "
                "it ends by itself within a bounded time -- or run 'gameday abort' from another terminal")
            return
        self.interrupted = name
        say(f"{name}: stopping the drill; Chaos Toolkit runs its rollbacks, then the undo log is replayed "
            "(further interrupts are refused)")
        self.stop_method()
        raise KeyboardInterrupt(f"drill interrupted by {name}")

    # -- the chaos run -------------------------------------------------------------------------
    def stop_method(self) -> None:
        """Tell ``chaos run`` (once) to interrupt its method and play its rollbacks."""
        with self._lock:
            if self.chaos is None or self.forwarded_at is not None or not self.chaos.alive():
                return
            self.forwarded_at = time.time()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.chaos.pid, signal.SIGTERM)

    def halt(self, trip: Trip) -> None:
        """A stop condition tripped: stop the method now (called from the guard thread)."""
        if self.halted is None:
            self.halted = trip
            self.stop_method()
            trip.stopped_at = self.forwarded_at or time.time()

    def run_chaos(self, argv: Sequence[str], env: dict[str, str], log: Path, timeout: float, cwd: str) -> int:
        """Run ``chaos run`` in its own session (pid recorded in the run dir) and wait, bounded."""
        try:
            return self._run_chaos(argv, env, log, timeout, cwd)
        finally:
            if self.guard is not None:
                self.guard.stop()  # the guard watches the method; afterwards the SLOs judge

    def watch(self, conditions: Sequence[Any], journals: Path | Callable[[], Sequence[Path]]) -> None:
        """Start the stop-condition guard on the load journal(s) (and CloudWatch) before the chaos run."""
        if not conditions:
            return
        from gameday.safety.guard import Guard

        target = self._target()
        self.guard = Guard(conditions, journals, self.halt,
                           cloudwatch=lambda region: target.client("cloudwatch", region)).start()

    def _run_chaos(self, argv: Sequence[str], env: dict[str, str], log: Path, timeout: float, cwd: str) -> int:
        self.registry = ProcessRegistry(self.run_dir)
        self.chaos = self.registry.spawn(CHAOS_PROC, list(argv), env={**env, **self.env()}, cwd=cwd, log=log)
        if self.halted is not None:  # tripped before the chaos run started
            self.stop_method()
        popen = self.chaos.popen
        if not poll_until(lambda: popen.poll() is not None, timeout, interval=0.05):
            self.stop_method()
            self._wait_chaos()
            raise DrillError(f"chaos run did not finish within {timeout:.0f} s (interrupted; rollbacks ran)")
        return int(popen.returncode)

    def _wait_chaos(self) -> None:
        if self.chaos is None:
            return
        chaos = self.chaos
        if not poll_until(lambda: not chaos.alive(), self.rollback_wait_s):
            say(f"chaos run still busy {self.rollback_wait_s:.0f} s after the interrupt: killed; "
                "the undo log covers what its rollbacks did not finish")
            kill_group(self.chaos.pid)

    # -- cleanup -------------------------------------------------------------------------------
    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.cleaning = True
        started = time.time()
        problems: list[str] = []
        undone: list[dict[str, Any]] = []
        try:
            if exc_type is not None and self.chaos is not None and self.chaos.alive():
                self.stop_method()  # e.g. a pytest timeout or a crash outside the signal handler
            self._wait_chaos()
            for d in (self.run_dir, self.run_dir / "load"):  # nothing of the drill outlives it
                kill_recorded(d)
            target = self._target()
            entries = undolog.open_entries([self.paths[1]])
            injected = bool(undolog.read([self.paths[1]]))
            if entries:
                for u in replay(entries, target, f"undo replay ({self.run_id})", [self.paths[0]]):
                    undone.append({"action": u.entry.describe(), "undo": u.message, "ok": u.ok})
                    if not u.ok:
                        problems.append(f"undo of {u.entry.describe()} failed: {u.message}")
            if target.kind == "sandbox" and (injected or exc_type is not None):
                from gameday.sandbox import client

                client.admin(self.endpoints, "/reset", method="POST")
                undone.append({"action": "sandbox", "undo": "admin reset (regions thawed, link healed, dials, "
                                                            "database re-seeded if needed)", "ok": True})
            if target.kind != "bare":
                problems += check_steady(target)
        except GamedayError as err:
            problems.append(f"{type(err).__name__}: {err}")
        finally:
            self.report = {"run_id": self.run_id, "interrupted": self.interrupted,
                           "halted": self.halted.to_dict() if self.halted else None,
                           "exception": None if exc_type is None else f"{exc_type.__name__}: {exc}",
                           "forwarded_to_chaos_at": self.forwarded_at, "undone": undone, "problems": problems,
                           "steady": not problems, "cleanup_s": round(time.time() - started, 2)}
            (self.run_dir / "cleanup.json").write_text(json.dumps(self.report, indent=2, default=str))
            self._restore_signals()
            if self._token is not None:
                _current.reset(self._token)
        if exc_type is not None or self.interrupted:
            say(f"cleanup done in {self.report['cleanup_s']} s: {len(undone)} undo step(s); "
                + ("target back in steady state" if not problems else "NOT steady: " + "; ".join(problems)))
        if problems and exc_type is None:
            raise DrillError("cleanup could not restore the steady state: " + "; ".join(problems))

    def _restore_signals(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def _target(self) -> Target:
        ep = self.endpoints
        if ep.kind == "sandbox" and ep.state_dir:
            t = Target.sandbox(Path(ep.state_dir), ep)
            t.password = self.password or t.password
            return t
        return Target(ep.kind, ep.regions(), ep.aws_env(), ep, None, self.password)


def chaos_subprocess(argv: Sequence[str], env: dict[str, str], run_dir: Path, timeout: float, cwd: str) -> None:
    """``chaos run`` for the drill runner: with the undo-log control, under the current DrillSafety.

    Outside a DrillSafety (a bare ``run_experiment`` call) it still runs in its own session and
    is interrupted -- so it plays its rollbacks -- when the wait is interrupted or times out.
    """
    from gameday.chaos.undo_control import CONTROL

    controls = Path(run_dir) / "gameday-controls.json"
    controls.write_text(json.dumps(CONTROL, indent=2))
    argv = list(argv)
    at = argv.index("run") + 1
    argv[at:at] = ["--control-file", str(controls)]
    log = Path(run_dir) / "chaos-stdout.log"
    safety = current()
    if safety is not None:
        safety.run_chaos(argv, env, log, timeout, cwd)
        return
    with DrillSafety(run_dir, _EnvEndpoints(env)) as bare:
        bare.run_chaos(argv, env, log, timeout, cwd)


class _EnvEndpoints:
    """Just enough of an Endpoints for a bare chaos run: AWS env, no sandbox files (no reset, no checks)."""

    kind = "bare"
    state_dir = None

    def __init__(self, env: dict[str, str]) -> None:
        self._env = {k: v for k, v in env.items() if k.startswith("AWS_")}
        region = settings.text("GAMEDAY_PRIMARY_REGION", env) or env.get("AWS_REGION", "us-east-1")
        self._regions = (region, settings.text("GAMEDAY_RECOVERY_REGION", env) or region)

    def aws_env(self) -> dict[str, str]:
        return dict(self._env)

    def regions(self) -> tuple[str, str]:
        return self._regions


def halted_result(scenario: Any, run_dir: Path, journal: dict[str, Any], safety: DrillSafety) -> DrillResult:
    """The DrillResult of a drill a stop condition halted: no SLO verdicts, the trip as the verdict."""
    from gameday.drill.results import ChaosRun, DrillResults
    from gameday.drill.runner import DrillResult, write_results

    assert safety.halted is not None
    chaos = ChaosRun.from_journal(journal)
    results = DrillResults(chaos=ChaosRun(chaos.status, rollbacks=chaos.rollbacks), halted=safety.halted)
    write_results(Path(run_dir), results)
    start = safety.forwarded_at or safety.halted.detected_at
    return DrillResult(scenario.name, Path(run_dir), start, None, results, [], str(journal.get("status")),
                       None, halted=safety.halted)
