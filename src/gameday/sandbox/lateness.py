"""How late the sandbox runs: a thread that sleeps a short period and measures the overshoot.

On a busy 2-core machine the emulation (controller ticks, health checkers, PostgreSQL, the
load generator) can run late, and a drill then measures the host, not the system. This
monitor lives in the sandbox daemon and writes one ``sandbox_lateness`` summary per second
(max / p99 / p50 of that second's overshoots) to the ground-truth event log, so the drill
runner can tell a starved host from a slow system (``gameday.drill.starvation``).

Why a sleep overshoot: a thread asking to wake after ``period`` wakes late by however long
the kernel kept it off a CPU plus how long it waited for the daemon's GIL, which is exactly
the delay every other emulation thread of the daemon suffers at the same moment. Other parts
may report their own lateness with ``note(source, seconds)`` (e.g. the controller's tick
overshoot); each source gets its own max/p99 in the summary. The host's CPU pressure (Linux
PSI ``/proc/pressure/cpu`` "some avg10", the share of time runnable tasks waited for a CPU) is
recorded beside it as context, not judged: it counts every process on the machine.
"""

from __future__ import annotations

import argparse
import math
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gameday.sandbox.events import EventLog

PERIOD_S = 0.02      # 50 samples a second: a 1-s p99 is meaningful, the cost is negligible
REPORT_S = 1.0       # one summary event per second
MAX_SOURCE_SAMPLES = 10_000  # per source and report window: note() can never grow memory unbounded
PSI_CPU = Path("/proc/pressure/cpu")  # read directly: psutil has no pressure-stall (PSI) API


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    s = sorted(values)
    if not s:
        raise ValueError("percentile of no values")
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summarise(samples: Sequence[float]) -> dict[str, Any]:
    """n, max, p99, p50 (seconds, rounded to 0.1 ms) of one window's lateness samples."""
    if not samples:
        return {"n": 0, "max_s": None, "p99_s": None, "p50_s": None}
    return {"n": len(samples), "max_s": round(max(samples), 4), "p99_s": round(percentile(samples, 99), 4),
            "p50_s": round(percentile(samples, 50), 4)}


def cpu_pressure() -> float | None:
    """PSI "some avg10" of the CPU (percent), None where the kernel has no PSI."""
    try:
        for line in PSI_CPU.read_text().splitlines():
            if line.startswith("some "):
                fields = dict(kv.split("=", 1) for kv in line.split()[1:])
                return float(fields["avg10"])
    except (OSError, KeyError, ValueError):
        return None
    return None


class LatenessMonitor:
    """Sleeps ``period_s`` in a loop, records each overshoot, emits a summary every ``report_s``."""

    def __init__(self, events: EventLog, *, period_s: float = PERIOD_S, report_s: float = REPORT_S) -> None:
        self.events = events
        self.period_s = period_s
        self.report_s = report_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sources: dict[str, list[float]] = {}
        self._thread: threading.Thread | None = None
        self._latest: dict[str, Any] = {}
        self.worst_p99_s = 0.0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="lateness-monitor", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def note(self, source: str, lateness_s: float) -> None:
        """Another part's own lateness (seconds it ran behind its schedule), summarised per second."""
        with self._lock:
            bucket = self._sources.setdefault(source, [])
            if len(bucket) < MAX_SOURCE_SAMPLES:
                bucket.append(max(0.0, float(lateness_s)))

    def latest(self) -> dict[str, Any]:
        """The last summary emitted (for the daemon's /status)."""
        return dict(self._latest)

    def _loop(self) -> None:
        samples: list[float] = []
        window_start = time.monotonic()
        while not self._stop.is_set():
            t0 = time.monotonic()
            if self._stop.wait(self.period_s):
                break
            now = time.monotonic()
            samples.append(max(0.0, now - t0 - self.period_s))
            if now - window_start >= self.report_s:
                self._emit(samples, now - window_start)
                samples = []
                window_start = now
        if samples:
            self._emit(samples, time.monotonic() - window_start)

    def _emit(self, samples: list[float], window_s: float) -> None:
        with self._lock:
            sources = {k: summarise(v) for k, v in self._sources.items() if v}
            self._sources = {}
        fields = {"window_s": round(window_s, 3), "period_s": self.period_s, **summarise(samples),
                  "cpu_pressure_avg10": cpu_pressure()}
        if sources:
            fields["sources"] = sources
        try:
            self.events.emit("sandbox_lateness", **fields)
        except ValueError:  # the log was closed under us at teardown
            return
        self._latest = fields
        self.worst_p99_s = max(self.worst_p99_s, float(fields["p99_s"] or 0.0))


def main(argv: list[str] | None = None) -> int:
    """Run a monitor alone for a bounded time (tests stop and starve it from outside)."""
    ap = argparse.ArgumentParser(prog="gameday-lateness-monitor")
    ap.add_argument("--events", required=True, type=Path)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args(argv)
    log = EventLog(args.events)
    mon = LatenessMonitor(log)
    mon.start()
    try:
        time.sleep(min(max(args.seconds, 0.0), 600.0))
    finally:
        mon.stop()
        log.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
