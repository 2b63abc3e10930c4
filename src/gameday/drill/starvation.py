"""Honest verdicts on a starved host: a drill whose host ran late is INCONCLUSIVE, not PASS or FAIL.

Two lateness signals, both per second (worst p99 over the fault window is the figure judged):

* **sandbox**: the daemon's ``sandbox_lateness`` events (``gameday.sandbox.lateness``): how late
  the emulation's threads woke. Only a sandbox has it.
* **load generator**: how far each locust request started behind its schedule (request k of a
  stream is due at k / rate; locust re-anchors its schedule after falling 1 s behind, and so does
  this replay). A client that could not send on time is starved whatever the target, so this
  applies to AWS too.

The bound (``bound_for``): ``BOUND_FRACTION`` of the tightest RTO budget the drill judges.
Why: a stall of L seconds during the fault shifts what the drill measures by up to L: a probe
not sent on time is a recovery seen late (or an outage not seen at all), an emulated health
check or failover step taken late is a recovery delayed. With L at most a quarter of the
tightest budget, the host can move a verdict only for a system already within 25 % of its
budget; past that, neither a breach nor a pass says anything about the system. Every budget
is then above four stalls, the derived budgets' 1 s margins above a stall of 0.25 x 3.2 s.
A bound that follows the budget also scales with the timing profile: a 0.5 s hiccup voids a
fast-profile drill with 3 s budgets but not an aws-profile drill with 26 s ones.

The verdict stays a verdict whenever the host kept up: a real SLO breach on a quiet host is
a FAIL (nothing here touches the SLO checks).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gameday.drill.scenario import Slos
from gameday.sandbox.lateness import percentile
from gameday.util.journal_schema import RequestRecord

BOUND_FRACTION = 0.25
DEFAULT_BOUND_S = 1.0   # a drill with no RTO budget: the fast profile's health-check timeout floor
LOCUST_REANCHOR_S = 1.0  # loadtests/locustfile.py resumes its schedule after falling > 1 s behind
INCONCLUSIVE_PREFIX = "INCONCLUSIVE:"

#: a request record, or its journal line as a dict (only service, kind and t0 are read)
RequestLike = RequestRecord | Mapping[str, Any]

SANDBOX = "sandbox scheduling"
CLIENT = "load generator schedule"


@dataclass(frozen=True)
class Figure:
    """One signal over the judged window: worst per-second p99 and max, where that second ended."""

    source: str
    p99_s: float | None
    max_s: float | None
    seconds: int            # how many 1-s summaries fell in the window
    worst_at: float | None  # wall-clock end of the worst second
    note: str = ""

    def describe(self) -> str:
        if self.p99_s is None:
            return f"{self.source} lateness not measured{f' ({self.note})' if self.note else ''}"
        return f"{self.source} lateness p99 {self.p99_s:.2f} s (max {self.max_s:.2f} s)"


@dataclass(frozen=True)
class Starvation:
    """Whether the host kept up during the fault window, with the figures and the bound."""

    bound_s: float
    bound_basis: str
    window: tuple[float, float]
    figures: Sequence[Figure] = field(default_factory=tuple)

    @property
    def worst(self) -> Figure | None:
        measured = [f for f in self.figures if f.p99_s is not None]
        return max(measured, key=lambda f: f.p99_s or 0.0) if measured else None

    @property
    def starved(self) -> bool:
        w = self.worst
        return w is not None and (w.p99_s or 0.0) > self.bound_s

    @property
    def message(self) -> str:
        """``host starved: sandbox scheduling lateness p99 0.84 s > bound 0.30 s during the fault``."""
        w = self.worst
        if w is None:
            return "host lateness not measured"
        others = "; ".join(f.describe() for f in self.figures if f is not w)
        if self.starved:
            head = (f"host starved: {w.source} lateness p99 {w.p99_s:.2f} s > bound {self.bound_s:.2f} s "
                    f"during the fault")
        else:
            head = (f"host kept up: {w.source} lateness p99 {w.p99_s:.2f} s <= bound {self.bound_s:.2f} s "
                    f"during the fault")
        return f"{head} (bound = {self.bound_basis}){f'; {others}' if others else ''}"

    def to_dict(self) -> dict[str, Any]:
        return {"starved": self.starved, "bound_s": self.bound_s, "bound_basis": self.bound_basis,
                "window": list(self.window), "message": self.message,
                "figures": [asdict(f) for f in self.figures]}


def bound_for(slos: Slos) -> tuple[float, str]:
    """The lateness bound of a drill: BOUND_FRACTION of its tightest RTO budget (see the module doc)."""
    budgets = [(v, f"{k} read") for k, v in slos.rto_s.items()] + \
              [(v, f"{k} write") for k, v in slos.write_rto_s.items()]
    if not budgets:
        return DEFAULT_BOUND_S, f"{DEFAULT_BOUND_S:.1f} s: no RTO budget to scale from"
    tightest, what = min(budgets)
    return round(BOUND_FRACTION * tightest, 3), \
        f"{BOUND_FRACTION:.0%} of the tightest RTO budget, {what.replace('*', 'every service')} {tightest:g} s"


# --- signals ------------------------------------------------------------------------------------

def _worst(per_second: Iterable[tuple[float, float, float]], source: str, note: str = "") -> Figure:
    rows = list(per_second)
    if not rows:
        return Figure(source, None, None, 0, None, note or "no samples in the window")
    at, p99, _ = max(rows, key=lambda r: r[1])
    return Figure(source, round(p99, 4), round(max(r[2] for r in rows), 4), len(rows), at, note)


def sandbox_figure(events_path: str | os.PathLike[str] | None, start: float, end: float) -> Figure:
    """Worst second of the sandbox's ``sandbox_lateness`` events that overlap [start, end]."""
    from gameday.sandbox.events import read_events

    if not events_path:
        return Figure(SANDBOX, None, None, 0, None, "no sandbox: the target has no ground-truth event log")
    rows = []
    for e in read_events(events_path, kind="sandbox_lateness"):
        ts, span = float(e.get("ts", 0.0)), float(e.get("window_s") or 1.0)
        if e.get("p99_s") is None or ts < start or ts - span > end:
            continue
        rows.append((ts, float(e["p99_s"]), float(e.get("max_s") or e["p99_s"])))
    return _worst(rows, SANDBOX, "" if rows else "the sandbox wrote no lateness events for the window")


def schedule_lateness(starts: Sequence[float], rate: float,
                      reanchor_s: float = LOCUST_REANCHOR_S) -> list[tuple[float, float]]:
    """(start, seconds behind schedule) of each request of one fixed-rate stream.

    Request k is due one period after request k-1 was due. The schedule's origin is unknown, so
    it is anchored at the earliest start the data allows (a request earlier than its due time
    moves the anchor back); past ``reanchor_s`` behind, locust drops its schedule and restarts
    it from that request, and so does this replay.
    """
    if rate <= 0 or not starts:
        return []
    period = 1.0 / rate
    out: list[tuple[float, float]] = []
    due = None
    for t in sorted(starts):
        due = t if due is None else due + period
        late = t - due
        if late < 0:
            due, late = t, 0.0
        out.append((t, late))
        if late > reanchor_s:
            due = t
    return out


def client_figure(requests: Iterable[RequestLike], rates: Mapping[tuple[str, str], float], start: float,
                  end: float) -> Figure:
    """Worst second of the load generator's schedule lateness in [start, end], all streams together."""
    streams: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in requests:
        if isinstance(r, RequestRecord):
            key, t0 = (r.service, str(r.kind)), r.t0
        else:
            key, t0 = (str(r["service"]), str(r["kind"])), float(r["t0"])
        if key in rates:
            streams[key].append(t0)
    per_second: dict[int, list[float]] = defaultdict(list)
    for key, starts in streams.items():
        for t, late in schedule_lateness(starts, rates[key]):
            if start <= t <= end:
                per_second[int(t)].append(late)
    rows = [(float(sec + 1), percentile(v, 99), max(v)) for sec, v in sorted(per_second.items())]
    return _worst(rows, CLIENT, "" if rows else "no requests in the window")


def assess(slos: Slos, start: float, end: float, *, events_path: str | os.PathLike[str] | None,
           requests: Iterable[RequestLike], rates: Mapping[tuple[str, str], float]) -> Starvation:
    """Both signals over the fault window [start, end] against the drill's bound."""
    bound, basis = bound_for(slos)
    figures = (sandbox_figure(events_path, start, end), client_figure(requests, rates, start, end))
    return Starvation(bound, basis, (start, end), figures)
