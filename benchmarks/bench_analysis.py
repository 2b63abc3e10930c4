"""Analysis time for a 1-hour drill at default probe rates (3 services x (20 reads + 10 writes)/s).

Run: ``.venv/bin/python benchmarks/bench_analysis.py [--hours H] [--png out.png]``.
Prints seconds per function and the total; parsing from JSON dicts is timed separately.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gameday.analysis import (
    check_writes,
    compute_rto,
    load_requests,
    plot_timeline,
    recovery_marks_from,
    region_share,
    routing_summary,
    rto_by_service,
    summarise,
    switches,
)
from gameday.analysis.synthetic import Outage, probe_timeline, writes_from


def timed(label: str, fn: Callable[[], Any], rows: list[tuple[str, float]]) -> Any:
    t = time.perf_counter()
    out = fn()
    rows.append((label, time.perf_counter() - t))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--png", default=None, help="also write the timeline plot here")
    args = ap.parse_args()
    duration = 3600.0 * args.hours
    start = 1_700_000_000.0
    fault = start + duration / 2
    t = time.perf_counter()
    reqs = probe_timeline(start=start, duration_s=duration, jitter=0.2, seed=1,
                          outages=[Outage(fault + 1.0, fault + 45.0, outcome="mixed")],
                          region_of={s: [(fault + 45.0, "eu-central-1")] for s in ("web", "orders")})
    ledger = writes_from(reqs)
    present = {w.id for w in ledger if w.outcome == "ok"}
    present -= set(list(present)[:7])
    gen_s = time.perf_counter() - t
    print(f"generated {len(reqs)} requests, {len(ledger)} writes in {gen_s:.2f} s (not counted)")

    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "requests.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for r in reqs:
                fh.write(json.dumps(r.to_dict()) + "\n")
        parsed = timed("load_requests (json lines -> Request)", lambda: load_requests(path), rows)
        assert len(parsed) == len(reqs)
    timed("compute_rto (web, read)", lambda: compute_rto(reqs, fault, service="web", kind="read"), rows)
    rto = timed("rto_by_service (3 services x read/write/all)", lambda: rto_by_service(reqs, fault), rows)
    timed("check_writes", lambda: check_writes(ledger, present, fault), rows)
    timed("region_share (web, 1 s buckets)", lambda: region_share(reqs, "web", 1.0), rows)
    timed("switches (web)", lambda: switches(reqs, "web"), rows)
    timed("routing_summary x3",
          lambda: [routing_summary(reqs, s, fault, fault + 45.0, primary_region="eu-south-1")
                   for s in ("web", "orders", "catalog")], rows)
    timed("summarise (all of the above)",
          lambda: summarise(reqs, ledger, present, fault, fault + 45.0, "eu-south-1"), rows)
    if args.png:
        png = args.png
        timed("plot_timeline (10 s buckets)",
              lambda: plot_timeline(reqs, png, fault_start=fault, fault_end=fault + 45.0,
                                    recovery_marks=recovery_marks_from(rto), bucket_s=10.0), rows)
    width = max(len(label) for label, _ in rows)
    for label, secs in rows:
        print(f"{label:<{width}}  {secs:7.3f} s")
    print(f"{'total':<{width}}  {sum(s for _, s in rows):7.3f} s")
    web = rto["web"]["read"]
    lost = check_writes(ledger, present, fault).lost
    print(f"check: web read rto={web.rto_s:.3f} s (expected ~45), lost={lost} (expected 7)")


if __name__ == "__main__":
    main()
