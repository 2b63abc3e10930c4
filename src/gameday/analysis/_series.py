"""Column view of one service's requests (numpy arrays sorted by start time), built once per call."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from gameday.analysis.models import Request, as_requests

OK, FAILED, UNKNOWN = 0, 1, 2
_CODE = {"ok": OK, "failed": FAILED, "unknown": UNKNOWN}


@dataclass(frozen=True)
class Series:
    """Requests of one service (and kind), sorted by t0; ``region`` codes index ``regions`` (-1 = none)."""

    t0: npt.NDArray[np.float64]
    outcome: npt.NDArray[np.int8]
    region: npt.NDArray[np.int16]
    regions: tuple[str, ...]

    @property
    def ok(self) -> npt.NDArray[np.bool_]:
        ok: npt.NDArray[np.bool_] = self.outcome == OK
        return ok

    def __len__(self) -> int:
        return int(self.t0.shape[0])


def series(requests: Iterable[Request | Mapping[str, Any]], service: str | None,
           kind: str | None = None) -> Series:
    """Filter by service/kind and sort by start time (locust records in completion order)."""
    sel = [r for r in as_requests(requests)
           if (service is None or r.service == service) and (kind is None or r.kind == kind)]
    regions = tuple(sorted({r.region for r in sel if r.region is not None}))
    index = {name: i for i, name in enumerate(regions)}
    t0 = np.fromiter((r.t0 for r in sel), dtype=np.float64, count=len(sel))
    outcome = np.fromiter((_CODE[r.outcome] for r in sel), dtype=np.int8, count=len(sel))
    region = np.fromiter((index.get(r.region, -1) if r.region is not None else -1 for r in sel),
                         dtype=np.int16, count=len(sel))
    order = np.argsort(t0, kind="stable")
    return Series(t0[order], outcome[order], region[order], regions)
