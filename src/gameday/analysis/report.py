"""Every analysis result of one drill in one typed bundle (:mod:`gameday.analysis.results`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gameday.analysis.models import Request, Write, as_requests, as_writes
from gameday.analysis.results import AnalysisParameters, AnalysisSummary, FaultWindow
from gameday.analysis.routing import routing_summary
from gameday.analysis.rpo import check_writes
from gameday.analysis.rto import rto_by_service


def summarise(requests: Iterable[Request | Mapping[str, Any]], ledger: Iterable[Write | Mapping[str, Any]],
              present_ids: Iterable[str] | None, fault_start: float, fault_end: float | None,
              primary_region: str, *, services: Sequence[str] | None = None, window_s: float = 5.0,
              threshold: float = 0.99, min_stable_s: float = 1.0, max_ids: int = 50) -> AnalysisSummary:
    """RTO per service/kind, data loss (skipped when ``present_ids`` is None) and routing per service."""
    reqs = as_requests(requests)
    names = sorted({r.service for r in reqs}) if services is None else list(services)
    rto = rto_by_service(reqs, fault_start, services=names, window_s=window_s, threshold=threshold)
    routing = {svc: routing_summary(reqs, svc, fault_start, fault_end, primary_region=primary_region,
                                    min_stable_s=min_stable_s) for svc in names}
    writes = as_writes(ledger)
    loss = check_writes(writes, present_ids, fault_start, max_ids=max_ids) if present_ids is not None else None
    return AnalysisSummary(FaultWindow(fault_start, fault_end),
                           AnalysisParameters(primary_region, window_s, threshold, min_stable_s),
                           requests=len(reqs), writes=len(writes), rto=rto, data_loss=loss, routing=routing)
