"""Live progress of a game day: a bar per phase, elapsed and remaining time, live error ratios.

On a terminal one status line is redrawn twice a second; otherwise (CI logs, systemd journal)
plain lines: one per phase start and end, and the error ratios every ``PLAIN_EVERY_S`` during a
fault. The error ratio per service is read from the load generator's ``requests.jsonl`` as it is
written (the last ``WINDOW_S`` seconds of completed requests); guardrails watch the same figures.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from gameday.gameday.home import duration
from gameday.util.journal import JournalTail

WINDOW_S = 5.0
TICK_S = 0.5
PLAIN_EVERY_S = 10.0
BAR = 20


class ErrorRatios:
    """Tails requests.jsonl; per-service failed share of the requests that completed in the last window."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tail = JournalTail(path)  # follows the journal across rotations; partial lines wait
        self.recent: deque[tuple[float, str, bool]] = deque()

    def poll(self, now: float | None = None) -> dict[str, float]:
        try:
            lines = self.tail.lines()
        except OSError:
            lines = []
        for line in lines:
            try:
                r = json.loads(line)
                self.recent.append((float(r["t1"]), str(r["service"]), r.get("outcome") == "ok"))
            except (ValueError, KeyError, TypeError):
                continue
        horizon = (now if now is not None else time.time()) - WINDOW_S
        while self.recent and self.recent[0][0] < horizon:
            self.recent.popleft()
        totals: dict[str, list[int]] = {}
        for _, svc, ok in self.recent:
            t = totals.setdefault(svc, [0, 0])
            t[0] += 1
            t[1] += 0 if ok else 1
        return {svc: bad / n for svc, (n, bad) in sorted(totals.items()) if n}


class Progress:
    """What the engine tells the terminal; ``watch`` runs the guardrail check on every tick."""

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None,
                 watch: Callable[[dict[str, float], str, float], None] | None = None) -> None:
        self.out = out or sys.stdout
        self.tty = self.out.isatty() if tty is None else tty
        self.watch = watch
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.total = 0
        self.index = 0
        self.scenario = ""
        self.estimates: list[float] = []
        self.scenario_started = self.started
        self.phase_name = ""
        self.phase_started = self.started
        self.phase_expected: float | None = None
        self.ratios: dict[str, float] = {}
        self.tail: ErrorRatios | None = None
        self.last_plain = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="gameday-progress", daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------

    def begin(self, estimates: list[float]) -> None:
        self.estimates = list(estimates)
        self.total = len(estimates)
        self.thread.start()

    def end(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(timeout=5)
        self._clear()

    def line(self, text: str) -> None:
        """A permanent line (above the status line on a terminal)."""
        with self.lock:
            self._clear_locked()
            self.out.write(text + "\n")
            self.out.flush()

    def start_scenario(self, index: int, name: str, run_dir: Path) -> None:
        with self.lock:
            self.index, self.scenario = index, name
            self.scenario_started = time.monotonic()
            self.tail = ErrorRatios(run_dir / "load" / "requests.jsonl")
            self.ratios = {}
        self.line(f"[{index + 1}/{self.total}] {name} (up to ~{duration(self.estimates[index])})")

    @contextmanager
    def phase(self, name: str, expected_s: float | None = None) -> Iterator[None]:
        with self.lock:
            self.phase_name, self.phase_started, self.phase_expected = name, time.monotonic(), expected_s
        if not self.tty:
            self.line(f"  {self.scenario}: {name} ...")
        ok = False
        try:
            yield
            ok = True
        finally:
            took = time.monotonic() - self.phase_started
            if not self.tty or not ok:
                self.line(f"  {self.scenario}: {name} {'done' if ok else 'stopped'} in {duration(took)}")
            with self.lock:
                self.phase_name = ""

    # --- rendering ---------------------------------------------------------------------------

    def remaining_s(self) -> float:
        now = time.monotonic()
        if not self.estimates:
            return 0.0
        current = max(0.0, self.estimates[self.index] - (now - self.scenario_started))
        return current + sum(self.estimates[self.index + 1:])

    def status(self) -> str:
        now = time.monotonic()
        ph = self.phase_name or "between phases"
        took = now - self.phase_started if self.phase_name else 0.0
        if self.phase_expected:
            frac = min(1.0, took / self.phase_expected)
            bar = "#" * int(frac * BAR) + "-" * (BAR - int(frac * BAR))
            ph_text = f"{ph} [{bar}] {took:4.0f}/{self.phase_expected:.0f} s"
        else:
            ph_text = f"{ph} {took:4.0f} s"
        err = " ".join(f"{s} {r * 100:.0f}%" for s, r in self.ratios.items())
        return (f"[{self.index + 1}/{self.total}] {self.scenario}: {ph_text} | elapsed {duration(now - self.started)}"
                f", ~{duration(self.remaining_s())} left" + (f" | errors {err}" if err else ""))

    def _loop(self) -> None:
        while not self.stop.wait(TICK_S):
            with self.lock:
                tail, ph = self.tail, self.phase_name
            ratios = tail.poll() if tail is not None and ph else {}
            with self.lock:
                self.ratios = ratios
            if self.watch is not None:
                try:
                    self.watch(ratios, ph, time.monotonic() - self.started)
                except Exception as exc:  # a broken guardrail check must not kill the progress thread
                    self.line(f"  guardrail check failed: {exc}")
            if self.tty:
                with self.lock:
                    self.out.write("\r\x1b[K" + self.status()[:200])
                    self.out.flush()
            elif ph.startswith("fault") and ratios and time.monotonic() - self.last_plain >= PLAIN_EVERY_S:
                self.last_plain = time.monotonic()
                self.line(f"  {self.scenario}: error ratio (last {WINDOW_S:.0f} s) " +
                          ", ".join(f"{s} {r * 100:.1f}%" for s, r in ratios.items()))

    def _clear_locked(self) -> None:
        if self.tty:
            self.out.write("\r\x1b[K")

    def _clear(self) -> None:
        with self.lock:
            self._clear_locked()
            self.out.flush()


def expected_phase_s(name: str, load: Any) -> float | None:
    """How long a phase of run_drill should last, when the load profile says it."""
    if name.startswith("fault"):
        return max(1.0, float(load.duration_s) - float(load.warmup_s) - float(load.settle_s))
    if name == "recovery":
        return float(load.settle_s)
    return None
