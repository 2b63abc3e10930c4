"""Pure analysis of drill journals: RTO, lost writes / RPO (Jepsen set semantics), routing, plots."""

from gameday.analysis.models import Request, Write, load_ledger, load_requests
from gameday.analysis.plot import plot_timeline, recovery_marks_from
from gameday.analysis.report import summarise
from gameday.analysis.results import AnalysisParameters, AnalysisSummary, FaultWindow
from gameday.analysis.routing import Bucket, RoutingResult, Switch, region_share, routing_summary, switches
from gameday.analysis.rpo import DataLossResult, check_writes
from gameday.analysis.rto import RtoResult, compute_rto, rto_by_service

__all__ = [
    "AnalysisParameters", "AnalysisSummary", "Bucket", "DataLossResult", "FaultWindow", "Request",
    "RoutingResult", "RtoResult", "Switch", "Write", "check_writes", "compute_rto", "load_ledger",
    "load_requests", "plot_timeline", "recovery_marks_from", "region_share", "routing_summary",
    "rto_by_service", "summarise", "switches",
]
