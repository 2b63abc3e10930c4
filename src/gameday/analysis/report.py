"""One JSON-serialisable bundle of every analysis result, for the drill report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gameday.analysis.models import Request, Write, as_requests, as_writes
from gameday.analysis.routing import routing_summary
from gameday.analysis.rpo import check_writes
from gameday.analysis.rto import rto_by_service


def summarise(requests: Iterable[Request | Mapping[str, Any]], ledger: Iterable[Write | Mapping[str, Any]],
              present_ids: Iterable[str] | None, fault_start: float, fault_end: float | None,
              primary_region: str, *, services: Sequence[str] | None = None, window_s: float = 5.0,
              threshold: float = 0.99, min_stable_s: float = 1.0, max_ids: int = 50) -> dict[str, Any]:
    """RTO per service/kind, data loss (skipped when ``present_ids`` is None) and routing per service."""
    reqs = as_requests(requests)
    names = sorted({r.service for r in reqs}) if services is None else list(services)
    rto = rto_by_service(reqs, fault_start, services=names, window_s=window_s, threshold=threshold)
    routing = {svc: routing_summary(reqs, svc, fault_start, fault_end, primary_region=primary_region,
                                    min_stable_s=min_stable_s).to_dict() for svc in names}
    writes = as_writes(ledger)
    loss = (check_writes(writes, present_ids, fault_start, max_ids=max_ids).to_dict()
            if present_ids is not None else None)
    return summary_dict(fault_start, fault_end, primary_region, window_s, threshold, min_stable_s,
                        n_requests=len(reqs), n_writes=len(writes), loss=loss, routing=routing,
                        rto={svc: {k: r.to_dict() for k, r in per.items()} for svc, per in rto.items()})


def summary_dict(fault_start: float, fault_end: float | None, primary_region: str, window_s: float,
                 threshold: float, min_stable_s: float, *, n_requests: int, n_writes: int,
                 rto: dict[str, Any], loss: dict[str, Any] | None, routing: dict[str, Any]) -> dict[str, Any]:
    """The one shape of a drill's measurements, whichever path (in memory or streamed) computed them."""
    return {
        "fault": {"start": fault_start, "end": fault_end,
                  "duration_s": (fault_end - fault_start) if fault_end is not None else None},
        "parameters": {"window_s": window_s, "threshold": threshold, "min_stable_s": min_stable_s,
                       "primary_region": primary_region},
        "requests": n_requests,
        "writes": n_writes,
        "rto": rto,
        "data_loss": loss,
        "routing": routing,
    }
