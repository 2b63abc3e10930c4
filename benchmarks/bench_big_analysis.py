"""Analysis of a big game day: 10 million requests on disk (rotated, compressed journals) -> summarise.

An hour against AWS at ~2800 requests/s: 3 services, reads at R/s and writes at R/2 per second
each, a 45 s outage in the middle (mixed failed/unknown), web and orders moving region after it, 7
acknowledged writes missing from the "database". The journals are written by the same
``JournalWriter`` locust uses (64 MiB segments, compressed behind). The analysis then runs in a
fresh child process, so its time and peak RSS (``ru_maxrss``) are the analysis alone.

    .venv/bin/python benchmarks/bench_big_analysis.py [--requests 10000000] [--hours 1] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

START = 1_700_000_000.0
SERVICES = ("web", "orders", "catalog")
PRIMARY, RECOVERY = "eu-south-1", "eu-central-1"
LOST = 7


def generate(d: Path, n_requests: int, hours: float, compression: str | None) -> dict[str, float]:
    from gameday.util.journal import JournalWriter

    duration = 3600.0 * hours
    fault = START + duration / 2
    out_a, out_b = fault + 1.0, fault + 46.0
    read_rate = n_requests / (len(SERVICES) * 1.5 * duration)
    rng = random.Random(1)
    req = JournalWriter(d / "requests.jsonl", compression=compression, threadsafe=False)
    led = JournalWriter(d / "ledger.jsonl", compression=compression, threadsafe=False)
    seq = 0
    written = 0
    plans = [(svc, kind, read_rate if kind == "read" else read_rate / 2)
             for svc in SERVICES for kind in ("read", "write")]
    sec = 0
    while written < n_requests and sec < duration + 10:
        batch: list[tuple[float, str, str]] = []
        for svc, kind, rate in plans:
            k0, k1 = int(sec * rate), int((sec + 1) * rate)
            batch.extend((START + (k + rng.uniform(-0.3, 0.3)) / rate, svc, kind) for k in range(k0, k1))
        batch.sort()
        for t0, svc, kind in batch:
            if written >= n_requests:
                break
            outcome = "ok" if not out_a <= t0 <= out_b else rng.choice(("failed", "unknown"))
            region = (RECOVERY if svc != "catalog" and t0 > out_b else PRIMARY) if outcome == "ok" else None
            t1 = t0 + (2.0 if outcome == "unknown" else 0.02)
            status = (200 if kind == "read" else 201) if outcome == "ok" else (503 if outcome == "failed" else None)
            reg = f'"{region}"' if region else "null"
            inst = f'"{region}-i1"' if region else "null"
            err = "null" if outcome == "ok" else f'"{outcome}"'
            endpoint = "GET /items" if kind == "read" else "POST /records"
            st = "null" if status is None else str(status)
            req.write_line((f'{{"t0":{t0!r},"t1":{t1!r},"service":"{svc}","kind":"{kind}","endpoint":"{endpoint}",'
                            f'"outcome":"{outcome}","status":{st},"region":{reg},"instance":{inst},'
                            f'"error":{err}}}\n').encode())
            if kind == "write":
                seq += 1
                led.write_line((f'{{"id":"bench-{svc}-{seq:09d}","service":"{svc}","t0":{t0!r},"t1":{t1!r},'
                                f'"outcome":"{outcome}","status":{st},"region":{reg}}}\n').encode())
            written += 1
        sec += 1
    req.close()
    led.close()
    return {"fault": fault, "fault_end": out_b, "requests": written, "writes": seq}


def analyse(d: Path, fault: float, fault_end: float) -> None:
    """Child process: summarise_journals from disk; prints one JSON line with time and peak RSS."""
    import pyarrow.compute as pc

    from gameday.analysis.stream import load_ledger_columns, summarise_journals

    t = time.perf_counter()
    # what the database would hand back: the acknowledged ids less the lost ones (read first, so
    # that the timed analysis below reads both journals itself, end to end)
    ids = load_ledger_columns(d)
    present = pc.unique(ids.id.filter(ids.outcome == 0)).slice(LOST)
    del ids
    t_present = time.perf_counter() - t
    t = time.perf_counter()
    c0 = os.times()
    summary = summarise_journals(d, d, present, fault, fault_end, PRIMARY)
    elapsed = time.perf_counter() - t
    c1 = os.times()
    cpu = c1.user - c0.user + c1.system - c0.system
    print(json.dumps({"seconds": elapsed, "cpu_s": cpu, "present_s": t_present,
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "requests": summary.requests, "writes": summary.writes,
                      "web_read_rto_s": summary.rto["web"]["read"].rto_s,
                      "lost": summary.data_loss.lost if summary.data_loss is not None else None,
                      "web_switched_to": summary.routing["web"].switched_to}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=10_000_000)
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--compression", choices=("gzip", "zstd", "none"), default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the journals in this directory")
    ap.add_argument("--analyse", type=Path, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--fault", type=float, nargs=2, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
    if args.analyse:
        analyse(args.analyse, *args.fault)
        return 0
    d = args.keep or Path(tempfile.mkdtemp(prefix="gameday-bench-big-"))
    d.mkdir(parents=True, exist_ok=True)
    meta_path = d / "bench-meta.json"
    try:
        if meta_path.exists() and json.loads(meta_path.read_text())["requests"] == args.requests:
            meta = json.loads(meta_path.read_text())
            print(f"reusing {meta['requests']} requests in {d}")
        else:
            t = time.perf_counter()
            meta = generate(d, args.requests, args.hours, args.compression)
            meta_path.write_text(json.dumps(meta))
            print(f"generated {meta['requests']} requests, {meta['writes']} writes in "
                  f"{time.perf_counter() - t:.1f} s (not counted)")
        files = sorted(p for p in d.iterdir() if p.name != meta_path.name)
        size = sum(p.stat().st_size for p in files)
        print(f"journals: {len(files)} files, {size / 2**20:.0f} MiB on disk "
              f"({sum(1 for p in files if p.suffix in ('.gz', '.zst'))} compressed segments)")
        out = subprocess.run([sys.executable, __file__, "--analyse", str(d), "--fault", str(meta["fault"]),
                              str(meta["fault_end"])], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            sys.stderr.write(out.stderr)
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"analysis (summarise_journals: both journals read from disk, RTO, routing, lost writes) of "
              f"{r['requests']} requests / {r['writes']} writes: {r['seconds']:.1f} s wall, {r['cpu_s']:.1f} s CPU, "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB  (goal: < 60 s, < 1024 MiB; the 'database' ids, "
              f"{r['present_s']:.1f} s, not timed but in the RSS)")
        print(f"check: web read rto={r['web_read_rto_s']:.3f} s (expected ~45), lost={r['lost']} "
              f"(expected {LOST}), web switched to {r['web_switched_to']} (expected {RECOVERY})")
    finally:
        if args.keep is None:
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
