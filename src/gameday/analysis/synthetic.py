"""Synthetic probe timelines with known ground truth, for property tests, benchmarks and demos."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gameday.analysis.models import Request, Write
from gameday.util.journal_schema import Kind, Outcome


@dataclass(frozen=True)
class Outage:
    """Requests started in ``[start, end]`` of ``service`` (all kinds when ``kind`` is None) fail."""

    start: float
    end: float
    service: str | None = None
    kind: Kind | None = None
    outcome: Outcome | Literal["mixed"] = "failed"


def probe_timeline(*, start: float, duration_s: float,
                   services: Sequence[str] = ("web", "orders", "catalog"), read_rate: float = 20.0,
                   write_rate: float = 10.0, write_services: Sequence[str] = ("web", "orders", "catalog"),
                   outages: Sequence[Outage] = (),
                   region_of: dict[str, list[tuple[float, str]]] | None = None,
                   default_region: str = "eu-south-1", jitter: float = 0.0, seed: int = 0,
                   noise: Sequence[tuple[str, float]] = ()) -> list[Request]:
    """Steady probes at ``read_rate`` (and ``write_rate`` for ``write_services``), sorted by t0.

    ``region_of[service]`` is a list of ``(from_time, region)`` changes; ``noise`` lists
    ``(service, t)`` points where the nearest request fails. Jitter (fraction of the probe
    interval, < 0.5) keeps requests in order.
    """
    rng = random.Random(seed)
    out: list[Request] = []
    for svc in services:
        rates: list[tuple[Kind, float]] = [("read", read_rate)]
        if svc in write_services and write_rate:
            rates.append(("write", write_rate))
        changes = sorted((region_of or {}).get(svc, []))
        for kind, rate in rates:
            step = 1.0 / rate
            n = int(duration_s * rate)
            noise_idx = {round((t - start) * rate) for s_, t in noise if s_ == svc}
            for i in range(n):
                t0 = start + i * step + (rng.uniform(-jitter, jitter) * step if jitter else 0.0)
                outcome: Outcome = "ok"
                for o in outages:
                    if (o.service in (None, svc) and o.kind in (None, kind) and o.start <= t0 <= o.end):
                        outcome = o.outcome if o.outcome != "mixed" else rng.choice(("failed", "unknown"))
                if kind == "read" and i in noise_idx:
                    outcome = "failed"
                region = default_region
                for at, reg in changes:
                    if t0 >= at:
                        region = reg
                ok = outcome == "ok"
                t1 = t0 + (0.02 if outcome != "unknown" else 2.0)
                out.append(Request(t0=t0, t1=t1, service=svc, kind=kind, outcome=outcome,
                                   endpoint="/items" if kind == "read" else "/records",
                                   status=(200 if kind == "read" else 201) if ok else
                                   (503 if outcome == "failed" else None),
                                   region=region if ok else None, instance=f"{region}-i1" if ok else None,
                                   error=None if ok else outcome))
    out.sort(key=lambda r: r.t0)
    return out


def writes_from(requests: Sequence[Request]) -> list[Write]:
    """One ledger entry per write request, ids ``w<n>`` in start order."""
    return [Write(id=f"w{i}", service=r.service, t0=r.t0, t1=r.t1, outcome=r.outcome, status=r.status,
                  region=r.region) for i, r in enumerate(r for r in requests if r.kind == "write")]
