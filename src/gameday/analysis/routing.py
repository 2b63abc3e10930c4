"""Which region served each service over time, and when traffic switched.

Only successful responses count (a failed request says nothing reliable about routing; its
region header is usually missing). Responses without a region header are ignored for
switches and shown as ``"unknown"`` in bucket counts.

Switch definition (debounced): a response from region X at time t *confirms* X when
X holds more than ``majority`` (default half), and at least two, of the successful responses
started in ``[t, t + min_stable_s)`` and that window lies inside the data (``t + min_stable_s <=`` last
response). The routed region is the region of the latest confirming response; a switch is
recorded at the first confirming response of a region different from the current one, so the
switch time is the first response from the new region once it stays the majority. The initial
region (of the first confirming response) is not a switch. Stray responses from another region
and flapping shorter than ``min_stable_s`` are ignored; a switch within ``min_stable_s`` of the
end of the data cannot be confirmed.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from gameday.analysis._series import Series, series
from gameday.analysis.models import Request, jsonable
from gameday.errors import ConfigError

NO_REGION = "unknown"
_EPS = 1e-9


@dataclass(frozen=True)
class Bucket:
    """One time bucket: successful responses per region, their shares, ok and total request counts."""

    start: float
    end: float
    counts_by_region: dict[str, int]
    share_by_region: dict[str, float]
    ok: int
    total: int

    @property
    def success_ratio(self) -> float | None:
        return self.ok / self.total if self.total else None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = jsonable(self)
        d["success_ratio"] = self.success_ratio
        return d


@dataclass(frozen=True)
class Switch:
    """Routing moved from one region to another at time ``t`` (first response from the new region)."""

    t: float
    from_region: str
    to_region: str

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(self))


@dataclass(frozen=True)
class RoutingResult:
    """Where a service was served before, during and after the fault, and when it moved."""

    service: str
    primary_region: str
    fault_start: float
    fault_end: float | None
    region_before: str | None
    region_during: str | None
    region_after: str | None
    share_during: dict[str, float]
    switched_at: float | None
    switched_at_s: float | None
    switched_to: str | None
    switched_back_at: float | None
    switched_back_at_s: float | None
    stayed: bool
    switches: list[Switch]

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(self))


def region_share(requests: Iterable[Request | Mapping[str, Any]], service: str, bucket_s: float = 1.0, *,
                 origin: float | None = None, end: float | None = None) -> list[Bucket]:
    """Fixed buckets ``[origin + k*bucket_s, ...)`` over the service's requests (all kinds).

    ``origin`` defaults to the first request start; pass ``fault_start`` to align buckets with the
    fault. Buckets with no request at all are still returned (``total == 0``) so gaps stay visible.
    """
    if not bucket_s > 0:
        raise ConfigError(f"bucket_s must be > 0, got {bucket_s}", field="bucket_s")
    s = series(requests, service)
    if len(s) == 0:
        return []
    first = float(s.t0[0]) if origin is None else float(origin)
    last = float(s.t0[-1]) if end is None else float(end)
    k0 = math.floor((float(s.t0[0]) - first) / bucket_s + _EPS)
    k1 = math.floor((last - first) / bucket_s + _EPS)
    if k1 < k0:
        return []
    n_b = k1 - k0 + 1
    idx = np.floor((s.t0 - first) / bucket_s + _EPS).astype(np.int64) - k0
    keep = (idx >= 0) & (idx < n_b)
    idx, ok, reg = idx[keep], s.ok[keep], s.region[keep]
    total = np.bincount(idx, minlength=n_b)
    oks = np.bincount(idx[ok], minlength=n_b)
    names = [*s.regions, NO_REGION]
    per = [np.bincount(idx[ok & (reg == (c if c < len(s.regions) else -1))], minlength=n_b)
           for c in range(len(names))]
    out: list[Bucket] = []
    for b in range(n_b):
        counts = {names[c]: int(per[c][b]) for c in range(len(names)) if per[c][b]}
        n_ok = int(oks[b])
        share = {k: v / n_ok for k, v in counts.items()} if n_ok else {}
        start = first + (k0 + b) * bucket_s
        out.append(Bucket(start=start, end=start + bucket_s, counts_by_region=counts, share_by_region=share,
                          ok=n_ok, total=int(total[b])))
    return out


def _confirmed(s: Series, min_stable_s: float, majority: float) -> tuple[np.ndarray, np.ndarray]:
    """(times, region codes) of successful responses that confirm their region (see module doc)."""
    sel = s.ok & (s.region >= 0)
    t, reg = s.t0[sel], s.region[sel]
    if t.size == 0:
        return t, reg
    b = np.searchsorted(t, t + min_stable_s, side="left")
    a = np.arange(t.size)
    same = np.zeros(t.size, dtype=np.int64)
    for c in range(len(s.regions)):
        cum = np.concatenate(([0], np.cumsum(reg == c, dtype=np.int64)))
        mine = reg == c
        same[mine] = (cum[b] - cum[a])[mine]
    full = t + min_stable_s <= t[-1] + _EPS
    # a lone response never confirms a region: a stray answer just before an outage (a window
    # with nothing else in it) would otherwise count as a switch
    conf = full & (same > majority * (b - a)) & (same >= 2)
    return t[conf], reg[conf]


def switches(requests: Iterable[Request | Mapping[str, Any]], service: str, *, min_stable_s: float = 1.0,
             majority: float = 0.5) -> list[Switch]:
    """Debounced changes of the region serving ``service`` (see module doc for the exact rule)."""
    if not min_stable_s > 0:
        raise ConfigError(f"min_stable_s must be > 0, got {min_stable_s}", field="min_stable_s")
    s = series(requests, service)
    return _switches(s, min_stable_s, majority)


def _switches(s: Series, min_stable_s: float, majority: float) -> list[Switch]:
    t, reg = _confirmed(s, min_stable_s, majority)
    if t.size < 2:
        return []
    change = np.flatnonzero(reg[1:] != reg[:-1]) + 1
    return [Switch(t=float(t[i]), from_region=s.regions[reg[i - 1]], to_region=s.regions[reg[i]])
            for i in change]


def _majority(s: Series, lo: float, hi: float) -> tuple[str | None, dict[str, float]]:
    a = int(np.searchsorted(s.t0, lo, side="left"))
    b = int(np.searchsorted(s.t0, hi, side="left"))
    sel = s.ok[a:b] & (s.region[a:b] >= 0)
    counts = Counter(s.regions[c] for c in s.region[a:b][sel].tolist())
    n = sum(counts.values())
    if not n:
        return None, {}
    share = {k: v / n for k, v in sorted(counts.items())}
    return max(sorted(counts), key=lambda k: counts[k]), share


def routing_summary(requests: Iterable[Request | Mapping[str, Any]], service: str, fault_start: float,
                    fault_end: float | None = None, *, primary_region: str, min_stable_s: float = 1.0,
                    majority: float = 0.5, lookback_s: float = 30.0, tail_s: float = 5.0) -> RoutingResult:
    """Region before (majority of the ``lookback_s`` before the fault), during ([fault_start, fault_end),
    or to the end when the fault has no end), after (majority of the last ``tail_s`` of data); the
    first switch away from the primary at/after the fault, the first switch back after that, and
    ``stayed`` = never served from another region before, during or after the fault."""
    if not min_stable_s > 0:
        raise ConfigError(f"min_stable_s must be > 0, got {min_stable_s}", field="min_stable_s")
    return routing_of_series(series(requests, service), service, fault_start, fault_end,
                             primary_region=primary_region, min_stable_s=min_stable_s, majority=majority,
                             lookback_s=lookback_s, tail_s=tail_s)


def routing_of_series(s: Series, service: str, fault_start: float, fault_end: float | None, *,
                      primary_region: str, min_stable_s: float, majority: float = 0.5,
                      lookback_s: float = 30.0, tail_s: float = 5.0) -> RoutingResult:
    """:func:`routing_summary` on an already-built column view (the streaming path builds it from disk)."""
    sw = _switches(s, min_stable_s, majority)
    if len(s) == 0:
        return RoutingResult(service=service, primary_region=primary_region, fault_start=fault_start,
                             fault_end=fault_end, region_before=None, region_during=None, region_after=None,
                             share_during={}, switched_at=None, switched_at_s=None, switched_to=None,
                             switched_back_at=None, switched_back_at_s=None, stayed=True, switches=[])
    end = float(s.t0[-1])
    before, _ = _majority(s, fault_start - lookback_s, fault_start)
    if before is None:
        before, _ = _majority(s, -math.inf, fault_start)
    during, share_during = _majority(s, fault_start, fault_end if fault_end is not None else math.inf)
    after, _ = _majority(s, end - tail_s, math.inf)
    away = next((x for x in sw if x.t >= fault_start and x.to_region != primary_region), None)
    back = (next((x for x in sw if x.t > away.t and x.to_region == primary_region), None)
            if away is not None else None)
    stayed = away is None and all(r in (None, primary_region) for r in (before, during, after))
    return RoutingResult(
        service=service, primary_region=primary_region, fault_start=fault_start, fault_end=fault_end,
        region_before=before, region_during=during, region_after=after, share_during=share_during,
        switched_at=away.t if away else None, switched_at_s=away.t - fault_start if away else None,
        switched_to=away.to_region if away else None, switched_back_at=back.t if back else None,
        switched_back_at_s=back.t - fault_start if back else None, stayed=stayed, switches=sw)
