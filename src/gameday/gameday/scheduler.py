"""``gameday schedule PLAN...``: a foreground service that starts each plan's game day on its cron.

Firing times come from croniter in the plan's time zone (so ``0 6 * * 1`` is 06:00 local across
DST changes). Each game day runs as a child ``gameday run PLAN --trigger schedule`` (a crashing
run cannot take the scheduler down); a firing that comes while a game day on the same target is
still going never starts a second one: with ``missed: skip`` it is dropped, with ``missed:
run_once`` one run follows as soon as the target is free (several missed firings make one run,
like a systemd timer's ``Persistent=true``), unless that is later than ``starting_deadline_s``
after the firing (like a Kubernetes CronJob's ``startingDeadlineSeconds``). The last firing is
kept in ``<home>/schedule/<plan>.json``, so firings missed while the scheduler was down follow
the same policy after a restart. ``gameday run`` itself takes the target lock, so a manual run
and a scheduled one cannot overlap either (the scheduled one exits 75, busy).

SIGTERM/SIGINT: no new run starts, the running game day gets SIGTERM (its drill rolls back),
the scheduler waits for it (``stop_grace_s``) and exits 0.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from croniter import croniter

from gameday.errors import ConfigError
from gameday.gameday.plan import Plan
from gameday.util.procs import ProcessRegistry

POLL_S = 0.5
STOP_GRACE_S = 900.0  # a drill's rollback and read-back on the aws profile take minutes


class Clock(Protocol):
    def now(self) -> datetime: ...

    def wait(self, seconds: float, stop: threading.Event) -> bool: ...


class RealClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(seconds)


class ScaledClock:
    """Time that runs ``speed`` times faster than the wall clock (rehearsing a schedule in seconds)."""

    def __init__(self, speed: float, start: datetime | None = None) -> None:
        self.speed = speed
        self.start = start or datetime.now(UTC)
        self.t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.monotonic() - self.t0) * self.speed)

    def wait(self, seconds: float, stop: threading.Event) -> bool:
        return stop.wait(max(0.01, seconds / self.speed))


def run_command(plan: Plan) -> list[str]:
    return [sys.executable, "-m", "gameday", "run", str(plan.path), "--trigger", "schedule"]


@dataclass
class Firing:
    plan: str
    at: datetime
    action: str            # started | skipped | deferred | started-late | dropped
    detail: str = ""


@dataclass
class _State:
    plan: Plan
    tz: ZoneInfo
    next_at: datetime
    proc: Any = None
    started_for: datetime | None = None
    pending: datetime | None = None
    runs: list[tuple[datetime, int | None]] = field(default_factory=list)


def next_firing(cron: str, after: datetime, tz: ZoneInfo) -> datetime:
    nxt: datetime = croniter(cron, after.astimezone(tz)).get_next(datetime)
    return nxt.astimezone(UTC)


class Scheduler:
    """Fires plans on their cron; one game day per target at a time; see the module doc."""

    def __init__(self, plans: Sequence[Plan], *, home: Path, clock: Clock | None = None,
                 command: Callable[[Plan], list[str]] = run_command, out: Callable[[str], None] | None = None,
                 poll_s: float = POLL_S, stop_grace_s: float = STOP_GRACE_S) -> None:
        for p in plans:
            if p.schedule is None:
                raise ConfigError("the plan has no schedule", file=str(p.path), field="schedule",
                                  hint="add schedule: {cron: '0 6 * * 1', timezone: UTC}")
        self.plans = list(plans)
        self.home = home
        self.clock = clock or RealClock()
        self.command = command
        self.out = out or (lambda line: print(line, flush=True))
        self.poll_s = poll_s
        self.stop_grace_s = stop_grace_s
        self.stop = threading.Event()
        self.firings: list[Firing] = []
        self.registry = ProcessRegistry(home / "schedule")
        self.states: dict[str, _State] = {}

    def _say(self, text: str) -> None:
        self.out(f"{self.clock.now().strftime('%Y-%m-%d %H:%M:%S %Z')} {text}")

    def _state_file(self, plan: Plan) -> Path:
        return self.home / "schedule" / f"{plan.name}.json"

    def _remember(self, st: _State, at: datetime) -> None:
        path = self._state_file(st.plan)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"last_firing": at.isoformat()}))

    def _setup(self) -> None:
        now = self.clock.now()
        for p in self.plans:
            assert p.schedule is not None
            tz = ZoneInfo(p.schedule.timezone)
            st = _State(p, tz, next_firing(p.schedule.cron, now, tz))
            try:
                last = datetime.fromisoformat(json.loads(self._state_file(p).read_text())["last_firing"])
            except (OSError, ValueError, KeyError):
                last = None
            if last is not None:
                missed = next_firing(p.schedule.cron, last, tz)
                if missed < now:
                    self._missed(st, missed, "while the scheduler was not running")
            self.states[p.name] = st
            self._say(f"{p.name}: cron '{p.schedule.cron}' ({p.schedule.timezone}), missed runs: {p.schedule.missed}; "
                      f"next at {st.next_at.astimezone(tz).strftime('%Y-%m-%d %H:%M:%S %Z')}")

    def _missed(self, st: _State, at: datetime, why: str) -> None:
        assert st.plan.schedule is not None
        if st.plan.schedule.missed == "run_once":
            st.pending = st.pending or at
            self.firings.append(Firing(st.plan.name, at, "deferred", why))
            self._say(f"{st.plan.name}: firing of {at.isoformat()} missed {why}: one run as soon as the target is free")
        else:
            self.firings.append(Firing(st.plan.name, at, "skipped", why))
            self._say(f"{st.plan.name}: firing of {at.isoformat()} skipped {why} (missed: skip)")

    def _busy(self, st: _State) -> bool:
        key = st.plan.lock_key
        return any(o.proc is not None and o.plan.lock_key == key for o in self.states.values())

    def _start(self, st: _State, at: datetime, late: bool = False) -> None:
        name = f"gameday-{st.plan.name}"
        log = self.home / "schedule" / f"{st.plan.name}.log"
        st.proc = self.registry.spawn(name, self.command(st.plan), log=log)
        st.started_for = at
        self._remember(st, at)
        self.firings.append(Firing(st.plan.name, at, "started-late" if late else "started", f"pid {st.proc.pid}"))
        self._say(f"{st.plan.name}: game day started for the firing of {at.isoformat()} (pid {st.proc.pid}, log {log})")

    def _reap(self, st: _State) -> None:
        if st.proc is None or st.proc.alive():
            return
        from gameday.gameday.engine import EXIT_CODES

        rc = st.proc.popen.returncode
        names = {v: k for k, v in EXIT_CODES.items()} | {2: "bad plan", 75: "target busy"}
        self._say(f"{st.plan.name}: game day finished: {names.get(rc, 'exit')} (exit {rc})")
        self.registry.forget(st.proc.name)
        assert st.started_for is not None
        st.runs.append((st.started_for, rc))
        st.proc = None

    def tick(self) -> None:
        now = self.clock.now()
        for st in self.states.values():
            self._reap(st)
        for st in self.states.values():
            assert st.plan.schedule is not None
            due: list[datetime] = []
            while st.next_at <= now:
                due.append(st.next_at)
                st.next_at = next_firing(st.plan.schedule.cron, st.next_at, st.tz)
            for at in due[:-1]:  # the scheduler itself was held up past several firings
                self._missed(st, at, "while the scheduler was held up")
            if due:
                at = due[-1]
                if self._busy(st):
                    self._missed(st, at, "while a game day on the same target was still running")
                else:
                    st.pending = None
                    self._start(st, at)
            if st.pending is not None and not self._busy(st):
                age = (now - st.pending).total_seconds()
                if age > st.plan.schedule.starting_deadline_s:
                    self.firings.append(Firing(st.plan.name, st.pending, "dropped",
                                               f"{age:.0f} s late > starting_deadline_s"))
                    self._say(f"{st.plan.name}: missed firing of {st.pending.isoformat()} dropped: {age:.0f} s late")
                    st.pending = None
                else:
                    at, st.pending = st.pending, None
                    self._start(st, at, late=True)

    def request_stop(self, signum: int = signal.SIGTERM, frame: object = None) -> None:
        self.stop.set()

    def run(self, *, install_signals: bool = True) -> int:
        """Until SIGTERM/SIGINT (or ``request_stop``); returns 0 after a clean stop."""
        old = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for s in (signal.SIGTERM, signal.SIGINT):
                old[s] = signal.signal(s, self.request_stop)
        try:
            self._setup()
            while not self.stop.is_set():
                self.tick()
                self.clock.wait(self.poll_s, self.stop)
            self._say("stopping: no new game day starts")
            self._shutdown()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        self._say("scheduler stopped")
        return 0

    def _shutdown(self) -> None:
        running = [st for st in self.states.values() if st.proc is not None and st.proc.alive()]
        for st in running:
            self._say(f"{st.plan.name}: asking the running game day (pid {st.proc.pid}) to stop; its drill rolls back")
            st.proc.popen.send_signal(signal.SIGTERM)  # the leader only: it forwards to its experiment
        deadline = time.monotonic() + self.stop_grace_s
        for st in running:
            try:
                st.proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                self._say(f"{st.plan.name}: still running after {self.stop_grace_s:.0f} s: killed")
                self.registry.kill(st.proc.name)
            self._reap(st)
        for st in self.states.values():
            self._reap(st)
