"""Stop conditions: watch the load journal and CloudWatch alarms while the method runs; trip once.

A service condition reads ``requests.jsonl`` as locust appends it (one line per completed
request; in distributed mode one journal per worker, ``requests-<worker>.jsonl``, each followed
from the moment it appears) and judges the requests that completed in the last ``window_s``
seconds across all of them; an alarm
condition polls DescribeAlarms like AWS FIS stop conditions do ("If the alarm is in the ALARM
state, the experiment is stopped" --
https://docs.aws.amazon.com/fis/latest/userguide/stop-conditions.html).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError
from gameday.util.journal import JournalTail

POLL_S = 0.05
ALARM_POLL_S = 0.5
DEFAULT_MIN_REQUESTS = 5


@dataclass(frozen=True)
class StopCondition:
    """One guard: a service's error ratio / p95 latency over a window, or a CloudWatch alarm."""

    service: str | None = None
    window_s: float = 0.0
    max_error_ratio: float | None = None
    max_p95_latency_ms: float | None = None
    min_requests: int = DEFAULT_MIN_REQUESTS
    cloudwatch_alarm: str | None = None
    region: str | None = None

    def describe(self) -> str:
        if self.cloudwatch_alarm:
            return f"CloudWatch alarm {self.cloudwatch_alarm} in ALARM"
        parts = []
        if self.max_error_ratio is not None:
            parts.append(f"error ratio > {self.max_error_ratio:g}")
        if self.max_p95_latency_ms is not None:
            parts.append(f"p95 latency > {self.max_p95_latency_ms:g} ms")
        return f"{self.service}: {' or '.join(parts)} over {self.window_s:g} s"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def parse_conditions(raw: Sequence[Mapping[str, Any]] | None, file: str | None) -> tuple[StopCondition, ...]:
    """Scenario ``stop_conditions`` (schema-checked shape) -> conditions; the rules a schema cannot say."""
    out = []
    for i, c in enumerate(raw or ()):
        where = f"stop_conditions.{i}"
        if ("service" in c) == ("cloudwatch_alarm" in c):
            raise ConfigError("a stop condition watches either a service or a CloudWatch alarm", file=file,
                              field=where, hint="give exactly one of 'service' (with window_s and a max_*) "
                                                "or 'cloudwatch_alarm'")
        if "cloudwatch_alarm" in c:
            extra = sorted(k for k in c if k not in ("cloudwatch_alarm", "region"))
            if extra:
                raise ConfigError(f"'{extra[0]}' does not apply to an alarm condition", file=file,
                                  field=f"{where}.{extra[0]}", hint="an alarm condition takes cloudwatch_alarm "
                                                                    "and optionally region")
            out.append(StopCondition(cloudwatch_alarm=str(c["cloudwatch_alarm"]), region=c.get("region")))
            continue
        if "window_s" not in c:
            raise ConfigError("required field is missing", file=file, field=f"{where}.window_s",
                              hint="add 'window_s' (seconds the error ratio / latency is judged over)")
        if "max_error_ratio" not in c and "max_p95_latency_ms" not in c:
            raise ConfigError("a service stop condition needs a threshold", file=file, field=where,
                              hint="add max_error_ratio (0..1) and/or max_p95_latency_ms")
        if "region" in c:
            raise ConfigError("'region' applies to alarm conditions only", file=file, field=f"{where}.region",
                              hint="remove it (the service is judged through its global URL)")
        out.append(StopCondition(
            service=str(c["service"]), window_s=float(c["window_s"]),
            max_error_ratio=None if c.get("max_error_ratio") is None else float(c["max_error_ratio"]),
            max_p95_latency_ms=None if c.get("max_p95_latency_ms") is None else float(c["max_p95_latency_ms"]),
            min_requests=int(c.get("min_requests", DEFAULT_MIN_REQUESTS))))
    return tuple(out)


@dataclass
class Trip:
    """Which condition tripped, the figure that tripped it, when the journal/alarm showed the breach."""

    condition: StopCondition
    figure: str
    breach_at: float        # wall clock of the breach (last request of the window / alarm state change)
    detected_at: float
    stopped_at: float | None = None  # when the method was told to stop

    def message(self) -> str:
        lag = "" if self.stopped_at is None else f"; method stopped {self.stopped_at - self.breach_at:.2f} s after it"
        return f"stop condition '{self.condition.describe()}' tripped: {self.figure}{lag}"

    def to_dict(self) -> dict[str, Any]:
        return {"condition": self.condition.describe(), "spec": self.condition.to_dict(), "figure": self.figure,
                "breach_at": self.breach_at, "detected_at": self.detected_at, "stopped_at": self.stopped_at,
                "stop_lag_s": None if self.stopped_at is None else round(self.stopped_at - self.breach_at, 3)}


class _Window:
    def __init__(self, cond: StopCondition) -> None:
        self.cond = cond
        self.items: deque[tuple[float, bool, float]] = deque()

    def add(self, t1: float, failed: bool, latency_s: float) -> str | None:
        """Add one request; the figure when the window now breaches the condition."""
        self.items.append((t1, failed, latency_s))
        while self.items and self.items[0][0] <= t1 - self.cond.window_s:
            self.items.popleft()
        n = len(self.items)
        if n < self.cond.min_requests:
            return None
        bad = sum(1 for _, f, _ in self.items if f)
        if self.cond.max_error_ratio is not None and bad / n > self.cond.max_error_ratio:
            return (f"{self.cond.service} error ratio {bad / n:.2f} ({bad}/{n} requests failed "
                    f"in {self.cond.window_s:g} s)")
        if self.cond.max_p95_latency_ms is not None:
            lat = sorted(x[2] for x in self.items)
            p95 = lat[min(n - 1, math.ceil(0.95 * n) - 1)] * 1000
            if p95 > self.cond.max_p95_latency_ms:
                return f"{self.cond.service} p95 latency {p95:.0f} ms over {n} requests in {self.cond.window_s:g} s"
        return None


class Guard:
    """A thread that trips ``on_trip`` once, on the first condition breached (bounded by ``max_s``)."""

    def __init__(self, conditions: Sequence[StopCondition], journals: Path | Callable[[], Sequence[Path]],
                 on_trip: Callable[[Trip], None], cloudwatch: Callable[[str | None], Any] | None = None,
                 max_s: float = 3600.0) -> None:
        self.conditions = tuple(conditions)
        # one journal, or a function listing the per-worker journals (new workers' files appear late)
        self.journals: Callable[[], Sequence[Path]] = (
            (lambda: (journals,)) if isinstance(journals, Path) else journals)
        self.on_trip = on_trip
        self.cloudwatch = cloudwatch  # region -> boto3 CloudWatch client
        self.max_s = max_s
        self.trip: Trip | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stop-conditions", daemon=True)
        self._windows = {i: _Window(c) for i, c in enumerate(self.conditions) if c.service}

    def start(self) -> Guard:
        if self.conditions:
            self._thread.start()
        return self

    def stop(self) -> Trip | None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        return self.trip

    def _fire(self, cond: StopCondition, figure: str, breach_at: float) -> None:
        self.trip = Trip(cond, figure, breach_at, time.time())
        self.on_trip(self.trip)
        self._stop.set()

    def _run(self) -> None:
        tails: dict[Path, JournalTail] = {}  # each follows its journal across rotations
        try:
            self._watch(tails)
        finally:
            for tail in tails.values():
                tail.close()

    def _new_records(self, tails: dict[Path, JournalTail]) -> list[dict[str, Any]]:
        """Records appended since the last poll to any journal, oldest completion first across workers."""
        for path in self.journals():
            if path not in tails:
                tails[path] = JournalTail(path)
        records: list[dict[str, Any]] = []
        for tail in tails.values():
            for line in tail.lines():
                try:
                    records.append(json.loads(line))  # each line parsed once, then judged
                except json.JSONDecodeError:
                    continue
        if len(tails) > 1:
            records.sort(key=lambda r: float(r.get("t1", 0.0)))
        return records

    def _watch(self, tails: dict[Path, JournalTail]) -> None:
        deadline = time.monotonic() + self.max_s
        next_alarm = 0.0
        alarms = [c for c in self.conditions if c.cloudwatch_alarm]
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                if self._windows:
                    for rec in self._new_records(tails):
                        if self._record(rec):
                            return
                if alarms and self.cloudwatch is not None and time.monotonic() >= next_alarm:
                    next_alarm = time.monotonic() + ALARM_POLL_S
                    if self._alarms(alarms):
                        return
            except Exception as exc:  # a guard that cannot see is reported, never silently passed
                self.error = f"{type(exc).__name__}: {exc}"
            self._stop.wait(POLL_S)

    def _record(self, rec: dict[str, Any]) -> bool:
        for i, w in self._windows.items():
            if rec.get("service") != w.cond.service:
                continue
            t0, t1 = float(rec.get("t0", 0.0)), float(rec.get("t1", 0.0))
            figure = w.add(t1, rec.get("outcome") != "ok", t1 - t0)
            if figure:
                self._fire(self.conditions[i], figure, t1)
                return True
        return False

    def _alarms(self, alarms: Sequence[StopCondition]) -> bool:
        assert self.cloudwatch is not None
        by_region: dict[str | None, list[StopCondition]] = {}
        for c in alarms:
            by_region.setdefault(c.region, []).append(c)
        for region, conds in by_region.items():
            names = [str(c.cloudwatch_alarm) for c in conds]
            found = self.cloudwatch(region).describe_alarms(AlarmNames=names, StateValue="ALARM")
            for a in found.get("MetricAlarms", []) + found.get("CompositeAlarms", []):
                if a.get("StateValue") != "ALARM":  # moto ignores StateValue next to AlarmNames
                    continue
                cond = next(c for c in conds if c.cloudwatch_alarm == a["AlarmName"])
                ts = a.get("StateUpdatedTimestamp")
                breach = ts.timestamp() if hasattr(ts, "timestamp") else time.time()
                self._fire(cond, f"alarm {a['AlarmName']} is ALARM ({a.get('StateReason', '')})", breach)
                return True
        return False
