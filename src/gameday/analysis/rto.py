"""Recovery time (RTO) from the probe timeline: when did errors start, and when did the service recover.

Definitions (all times are request *start* times ``t0``; the probe rate sets the precision):

* post-fault requests: ``fault_start <= t0`` (and ``t0 <= horizon_end`` when given). A request
  started before the fault belongs to the baseline even if it ended after it.
* error: outcome ``failed`` or ``unknown`` (timeout / dropped connection).
* window: the requests with ``t0`` in ``[s, s + window_s)``; its success ratio is ok / total.
  A window is *full* when ``s + window_s <= data_end`` (``data_end`` = ``horizon_end`` or the last
  post-fault start time): only full windows are judged, so a short tail cannot fake a recovery.
* window starts: every post-fault request start (``step_s=None``, request granularity), or a grid
  ``fault_start + k * step_s`` (cheaper, precision ``step_s``).
* recovery instant: the start time of the first *successful* request ``i`` such that at least one
  full window starts at ``t0[i]`` and **every** full window starting at or after ``t0[i]`` has a
  success ratio ``>= threshold`` (the service *stays* recovered to the end of the data).
  In grid mode: the first grid start after the last failing grid window, snapped forward to the
  first successful request at or after it.
* ``rto_s = recovery instant - fault_start``; ``0.0`` when no post-fault request failed
  (``status="no_errors"``) or when errors occurred but no full window ever fell below the
  threshold (``status="no_outage"``: isolated errors within the SLO). ``recovered=False``,
  ``rto_s=None`` when the data ends before the service stays healthy for a full window.
* outage: first post-fault error .. last error before the recovery instant (or the last error at
  all when not recovered); ``outage_requests`` counts all requests started inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gameday.analysis._series import Series, series
from gameday.analysis.models import Request, as_requests, jsonable
from gameday.errors import ConfigError

_EPS = 1e-9


@dataclass(frozen=True)
class RtoResult:
    """Outcome of one RTO measurement (one service, one request kind or all kinds)."""

    service: str
    kind: str | None
    fault_start: float
    window_s: float
    threshold: float
    status: str  # "no_errors" | "no_outage" | "recovered" | "not_recovered" | "no_data"
    recovered: bool
    rto_s: float | None
    recovered_at: float | None
    first_error_at: float | None
    time_to_first_error_s: float | None
    outage_start: float | None
    outage_end: float | None
    outage_duration_s: float | None
    outage_requests: int
    outage_errors: int
    ok: int
    failed: int
    unknown: int
    total: int
    baseline_requests: int
    baseline_success_ratio: float | None
    data_end: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(self))


def _check_params(window_s: float, threshold: float, step_s: float | None) -> None:
    if not window_s > 0:
        raise ConfigError(f"window_s must be > 0, got {window_s}", field="window_s")
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"threshold must be in (0, 1], got {threshold}", field="threshold")
    if step_s is not None and not step_s > 0:
        raise ConfigError(f"step_s must be > 0, got {step_s}", field="step_s")


def compute_rto(requests: Iterable[Request | Mapping[str, Any]], fault_start: float, *, service: str,
                kind: str | None = None, window_s: float = 5.0, threshold: float = 0.99,
                step_s: float | None = None, horizon_end: float | None = None) -> RtoResult:
    """Measure time to first error, outage window and recovery time of ``service`` (see module doc)."""
    _check_params(window_s, threshold, step_s)
    return _rto(series(requests, service, kind), fault_start, service=service, kind=kind, window_s=window_s,
                threshold=threshold, step_s=step_s, horizon_end=horizon_end)


def _rto(s: Series, fault_start: float, *, service: str, kind: str | None, window_s: float, threshold: float,
         step_s: float | None, horizon_end: float | None) -> RtoResult:
    pre = s.t0 < fault_start
    n_pre = int(pre.sum())
    base_ratio = float(s.ok[pre].mean()) if n_pre else None
    lo = n_pre
    hi = len(s) if horizon_end is None else int(np.searchsorted(s.t0, horizon_end, side="right"))
    t = s.t0[lo:hi]
    code = s.outcome[lo:hi]
    ok = code == 0
    n = int(t.shape[0])
    counts = {"ok": int(ok.sum()), "failed": int((code == 1).sum()), "unknown": int((code == 2).sum())}
    common: dict[str, Any] = dict(service=service, kind=kind, fault_start=fault_start, window_s=window_s,
                                  threshold=threshold, total=n, baseline_requests=n_pre,
                                  baseline_success_ratio=base_ratio, **counts)
    empty_outage: dict[str, Any] = dict(outage_start=None, outage_end=None, outage_duration_s=None,
                                        outage_requests=0, outage_errors=0)
    if n == 0:
        return RtoResult(status="no_data", recovered=False, rto_s=None, recovered_at=None,
                         first_error_at=None, time_to_first_error_s=None, data_end=horizon_end,
                         reason=f"no {kind or 'any'} requests of {service} after the fault",
                         **empty_outage, **common)
    data_end = float(horizon_end) if horizon_end is not None else float(t[-1])
    err_idx = np.flatnonzero(~ok)
    if err_idx.size == 0:
        return RtoResult(status="no_errors", recovered=True, rto_s=0.0, recovered_at=fault_start,
                         first_error_at=None, time_to_first_error_s=None, data_end=data_end,
                         reason="no request failed after the fault", **empty_outage, **common)
    first_err = float(t[err_idx[0]])
    ttfe = first_err - fault_start
    cum = np.concatenate(([0], np.cumsum(ok, dtype=np.int64)))

    def judge(starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per window start: (full, passes)."""
        a = np.searchsorted(t, starts, side="left")
        b = np.searchsorted(t, starts + window_s, side="left")
        total = b - a
        good = cum[b] - cum[a]
        passes = (total > 0) & (good >= threshold * total - _EPS)
        full = starts + window_s <= data_end + _EPS
        return full, passes

    recovered_idx: int | None = None
    if step_s is None:
        full, passes = judge(t)
        bad = np.flatnonzero(full & ~passes)
        last_bad = int(bad[-1]) if bad.size else -1
        if last_bad < 0 and full.any():
            return _no_outage(common, fault_start, first_err, ttfe, data_end)
        cand = np.flatnonzero(ok[last_bad + 1:] & full[last_bad + 1:])
        if cand.size:
            recovered_idx = last_bad + 1 + int(cand[0])
    else:
        k = int(np.floor((data_end - window_s - fault_start) / step_s + _EPS)) + 1
        grid = fault_start + step_s * np.arange(max(k, 0), dtype=np.float64)
        full, passes = judge(grid)
        bad = np.flatnonzero(~passes)
        last_bad = int(bad[-1]) if bad.size else -1
        if last_bad < 0 and grid.size:
            return _no_outage(common, fault_start, first_err, ttfe, data_end)
        if last_bad + 1 < grid.size:
            start = int(np.searchsorted(t, grid[last_bad + 1], side="left"))
            cand = np.flatnonzero(ok[start:])
            if cand.size:
                recovered_idx = start + int(cand[0])

    if recovered_idx is None:
        last_err = float(t[err_idx[-1]])
        return RtoResult(status="not_recovered", recovered=False, rto_s=None, recovered_at=None,
                         first_error_at=first_err, time_to_first_error_s=ttfe, data_end=data_end,
                         reason=(f"no full {window_s:g} s window with success ratio >= {threshold:g} "
                                 f"that lasts to the end of the data ({data_end - fault_start:.3f} s "
                                 "after the fault)"),
                         **_outage(t, ok, first_err, last_err), **common)
    rec_at = float(t[recovered_idx])
    before = err_idx[err_idx < recovered_idx]
    outage = _outage(t, ok, first_err, float(t[before[-1]])) if before.size else empty_outage
    return RtoResult(status="recovered", recovered=True, rto_s=rec_at - fault_start, recovered_at=rec_at,
                     first_error_at=first_err, time_to_first_error_s=ttfe, data_end=data_end,
                     reason=f"success ratio >= {threshold:g} over every {window_s:g} s window from then on",
                     **outage, **common)


def _no_outage(common: dict[str, Any], fault_start: float, first_err: float, ttfe: float,
               data_end: float) -> RtoResult:
    return RtoResult(status="no_outage", recovered=True, rto_s=0.0, recovered_at=fault_start,
                     first_error_at=first_err, time_to_first_error_s=ttfe, data_end=data_end,
                     outage_start=None, outage_end=None, outage_duration_s=None, outage_requests=0,
                     outage_errors=0, reason="errors after the fault stayed within the threshold",
                     **common)


def _outage(t: np.ndarray, ok: np.ndarray, start: float, end: float) -> dict[str, Any]:
    a = int(np.searchsorted(t, start, side="left"))
    b = int(np.searchsorted(t, end, side="right"))
    return dict(outage_start=start, outage_end=end, outage_duration_s=end - start, outage_requests=b - a,
                outage_errors=int((~ok[a:b]).sum()))


def rto_by_service(requests: Iterable[Request | Mapping[str, Any]], fault_start: float, *,
                   services: Sequence[str] | None = None, window_s: float = 5.0, threshold: float = 0.99,
                   step_s: float | None = None,
                   horizon_end: float | None = None) -> dict[str, dict[str, RtoResult]]:
    """RTO per service and per kind: ``{service: {"read"|"write"|"all": RtoResult}}``.

    Only kinds a service actually has requests of are included; ``"all"`` mixes both kinds.
    """
    _check_params(window_s, threshold, step_s)
    reqs = as_requests(requests)
    names = sorted({r.service for r in reqs}) if services is None else list(services)
    out: dict[str, dict[str, RtoResult]] = {}
    for svc in names:
        mine = [r for r in reqs if r.service == svc]
        kinds = sorted({r.kind for r in mine})
        per: dict[str, RtoResult] = {}
        for k in [*kinds, None]:
            per[k or "all"] = _rto(series(mine, svc, k), fault_start, service=svc, kind=k, window_s=window_s,
                                   threshold=threshold, step_s=step_s, horizon_end=horizon_end)
        out[svc] = per
    return out
