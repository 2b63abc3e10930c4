"""Typed analysis results with only the fields an SLO check reads set (the rest neutral), for tests."""

from __future__ import annotations

from gameday.analysis.results import AnalysisParameters, AnalysisSummary, FaultWindow
from gameday.analysis.routing import RoutingResult
from gameday.analysis.rpo import DataLossResult
from gameday.analysis.rto import RtoResult

FAULT = 1000.0
PRIMARY = "eu-south-1"


def bundle(*, rto: dict[str, dict[str, RtoResult]] | None = None, data_loss: DataLossResult | None = None,
           routing: dict[str, RoutingResult] | None = None, primary: str = PRIMARY) -> AnalysisSummary:
    return AnalysisSummary(FaultWindow(FAULT), AnalysisParameters(primary), rto=rto or {}, data_loss=data_loss,
                           routing=routing or {})


def rto(rto_s: float | None, *, recovered: bool = True, status: str = "recovered", failed: int = 0,
        unknown: int = 0, total: int = 100, ttfe: float | None = 0.4, service: str = "svc",
        kind: str | None = "read") -> RtoResult:
    return RtoResult(service=service, kind=kind, fault_start=FAULT, window_s=5.0, threshold=0.99, status=status,
                     recovered=recovered, rto_s=rto_s, recovered_at=None if rto_s is None else FAULT + rto_s,
                     first_error_at=None if ttfe is None else FAULT + ttfe, time_to_first_error_s=ttfe,
                     outage_start=None, outage_end=None, outage_duration_s=None, outage_requests=0,
                     outage_errors=failed + unknown, ok=total - failed - unknown, failed=failed, unknown=unknown,
                     total=total, baseline_requests=0, baseline_success_ratio=None, data_end=None, reason="test")


def loss(lost: int, lost_ids: list[str], rpo_s: float) -> DataLossResult:
    return DataLossResult(fault_start=FAULT, attempted=100, acknowledged=100, failed=0, unknown=0,
                          present=100 - lost, lost=lost, lost_ids=lost_ids, lost_after_fault=0, recovered=0,
                          unknown_absent=0, failed_present=0, failed_present_ids=[], unexpected=0, unexpected_ids=[],
                          rpo_s=rpo_s, oldest_lost_ack_at=None, newest_lost_ack_at=None, valid=lost == 0,
                          ids_truncated=False, max_ids=50)


def routing(before: str | None, during: str | None, after: str | None, switched_at_s: float | None = None,
            stayed: bool | None = None, service: str = "svc") -> RoutingResult:
    return RoutingResult(
        service=service, primary_region=PRIMARY, fault_start=FAULT, fault_end=None, region_before=before,
        region_during=during, region_after=after, share_during={},
        switched_at=FAULT + switched_at_s if switched_at_s is not None else None, switched_at_s=switched_at_s,
        switched_to=during if switched_at_s is not None else None, switched_back_at=None, switched_back_at_s=None,
        stayed=stayed if stayed is not None else (switched_at_s is None and before == after), switches=[])
