"""What one drill measured, typed: the analysis bundle plus the chaos run, the load and the host.

:meth:`DrillResults.to_dict` is the one JSON shape of ``results.json`` and of the allure
"measurements" attachment: the keys of :meth:`gameday.analysis.results.AnalysisSummary.to_dict`
at the top level (when the analysis ran), then, each only when known::

    "chaos": {"status": str | null, "deviated": bool | null,
              "rollbacks": [{"name": str | null, "status": str | null}]},
    "load":  {"write_services": [str], "probe_rate": float, "write_rate": float},
    "host":  Starvation.to_dict(),             # host lateness during the fault
    "halted": Trip.to_dict(),                  # the stop condition that stopped the method
    "steady_state_unmet": str                  # the probe that failed before any fault
    "not_injected": str                        # the fault action that failed (on a starved host)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gameday.analysis.results import AnalysisSummary
from gameday.drill.starvation import Starvation

if TYPE_CHECKING:
    from gameday.safety.guard import Trip


@dataclass(frozen=True)
class Rollback:
    """One rollback activity of the chaos run and how it ended."""

    name: str | None
    status: str | None


@dataclass(frozen=True)
class ChaosRun:
    """The Chaos Toolkit run as its journal reports it."""

    status: str | None
    deviated: bool | None = None
    rollbacks: tuple[Rollback, ...] = ()

    @classmethod
    def from_journal(cls, journal: Mapping[str, Any]) -> ChaosRun:
        """From the chaos journal (Chaos Toolkit's JSON: untyped, a third-party format)."""
        deviated = journal.get("deviated")
        status = journal.get("status")
        return cls(status=None if status is None else str(status),
                   deviated=deviated if isinstance(deviated, bool) else None,
                   rollbacks=tuple(Rollback(_opt_str(r.get("activity", {}).get("name")), _opt_str(r.get("status")))
                                   for r in journal.get("rollbacks", [])))

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "deviated": self.deviated,
                "rollbacks": [{"name": r.name, "status": r.status} for r in self.rollbacks]}


@dataclass(frozen=True)
class LoadInfo:
    """The load the drill ran."""

    write_services: tuple[str, ...]
    probe_rate: float
    write_rate: float

    def to_dict(self) -> dict[str, Any]:
        return {"write_services": list(self.write_services), "probe_rate": self.probe_rate,
                "write_rate": self.write_rate}


@dataclass(frozen=True)
class DrillResults:
    """Everything a drill measured; sections it did not get to are None."""

    analysis: AnalysisSummary | None = None
    chaos: ChaosRun | None = None
    load: LoadInfo | None = None
    host: Starvation | None = None
    halted: Trip | None = None
    steady_state_unmet: str | None = None
    not_injected: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = self.analysis.to_dict() if self.analysis is not None else {}
        if self.chaos is not None:
            out["chaos"] = self.chaos.to_dict()
        if self.load is not None:
            out["load"] = self.load.to_dict()
        if self.host is not None:
            out["host"] = self.host.to_dict()
        if self.halted is not None:
            out["halted"] = self.halted.to_dict()
        if self.steady_state_unmet is not None:
            out["steady_state_unmet"] = self.steady_state_unmet
        if self.not_injected is not None:
            out["not_injected"] = self.not_injected
        return out


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)
