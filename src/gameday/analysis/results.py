"""The typed bundle of one drill's measurements, and its one JSON shape.

:func:`gameday.analysis.report.summarise` and :func:`gameday.analysis.stream.summarise_journals`
return an :class:`AnalysisSummary`; the SLO checks and the reports read its typed fields.
:meth:`AnalysisSummary.to_dict` is the only serialisation (``results.json``, allure attachments)::

    {"fault":      {"start": float, "end": float | null, "duration_s": float | null},
     "parameters": {"window_s", "threshold", "min_stable_s", "primary_region"},
     "requests":   int,                      # request records analysed
     "writes":     int,                      # write attempts in the ledger
     "rto":        {service: {"read" | "write" | "all": RtoResult fields}},
     "data_loss":  DataLossResult fields | null,   # null: nothing was read back
     "routing":    {service: RoutingResult fields}}

Non-finite floats become ``null`` and tuples lists (:func:`gameday.analysis.models.jsonable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gameday.analysis.models import jsonable
from gameday.analysis.routing import RoutingResult
from gameday.analysis.rpo import DataLossResult
from gameday.analysis.rto import RtoResult


@dataclass(frozen=True)
class FaultWindow:
    """From the start of the method's first action to the end of the last rollback (None: no end)."""

    start: float
    end: float | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass(frozen=True)
class AnalysisParameters:
    """The knobs the measurements were taken with."""

    primary_region: str
    window_s: float = 5.0
    threshold: float = 0.99
    min_stable_s: float = 1.0


@dataclass(frozen=True)
class AnalysisSummary:
    """RTO per service and kind, data loss (None when no read-back) and routing per service."""

    fault: FaultWindow
    parameters: AnalysisParameters
    requests: int = 0
    writes: int = 0
    rto: dict[str, dict[str, RtoResult]] = field(default_factory=dict)
    data_loss: DataLossResult | None = None
    routing: dict[str, RoutingResult] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fault": {"start": self.fault.start, "end": self.fault.end, "duration_s": self.fault.duration_s},
            "parameters": jsonable(self.parameters),
            "requests": self.requests,
            "writes": self.writes,
            "rto": {svc: {k: r.to_dict() for k, r in per.items()} for svc, per in self.rto.items()},
            "data_loss": self.data_loss.to_dict() if self.data_loss is not None else None,
            "routing": {svc: r.to_dict() for svc, r in self.routing.items()},
        }
