"""Cost of our journaling: locust throughput against one `web` instance with and without recording.

Both variants run in one invocation, alternated (A B A B) so drift of the 2-core box hits both.
The probe rate is set far above what the box can do, with a bounded number of requests in flight,
so each variant runs flat out; we report requests/s and locust CPU seconds per 1000 requests.

    .venv/bin/python benchmarks/bench_load.py [--seconds 8] [--rounds 2] [--inflight 8]
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from gameday.load import LoadRunner
from gameday.util.net import free_port, wait_port
from gameday.util.procs import ProcessRegistry

TICK = 100.0  # os.sysconf("SC_CLK_TCK") on Linux


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def one_run(url: str, out: Path, record: bool, seconds: float, inflight: int) -> dict[str, float]:
    lr = LoadRunner({"web": url}, out, run_time_s=seconds + 60, probe_rate=100000, write_rate=0,
                    record=record, extra_env={"GAMEDAY_MAX_INFLIGHT": str(inflight)})
    with lr:
        pid = lr.registry.procs[lr.proc_name].pid
        started = json.loads(lr.run_info_path.read_text())["started"]
        time.sleep(seconds)
        cpu = cpu_seconds(pid)
        elapsed = time.time() - started
        result = lr.stop()
    with open(result.csv_stats_path, newline="") as fh:
        agg = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    n = int(agg["Request Count"])
    journaled = len(result.requests_path.read_text().splitlines()) if record else 0
    return {"requests": n, "rps": n / elapsed, "cpu_ms_per_req": 1000 * cpu / max(n, 1),
            "failures": int(agg["Failure Count"]), "journaled": journaled}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--inflight", type=int, default=8)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="gameday-bench-load-"))
    reg = ProcessRegistry(base / "state")
    try:
        port = free_port()
        reg.spawn("web", [sys.executable, "-m", "gameday.app", "--service", "web", "--region", "bench",
                          "--instance-id", "i-bench", "--port", str(port)], log=base / "web.log")
        wait_port(port, timeout=15)
        url = f"http://127.0.0.1:{port}"
        results: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for rnd in range(args.rounds):
            for record in (False, True):
                r = one_run(url, base / f"r{rnd}-{'rec' if record else 'plain'}", record, args.seconds,
                            args.inflight)
                results[record].append(r)
                print(f"round {rnd} record={record!s:5}: {r['rps']:7.1f} req/s  "
                      f"{r['cpu_ms_per_req']:.3f} locust-CPU ms/req  failures={r['failures']} "
                      f"journaled={r['journaled']}", flush=True)
        plain = sum(r["rps"] for r in results[False]) / args.rounds
        rec = sum(r["rps"] for r in results[True]) / args.rounds
        cpu_plain = sum(r["cpu_ms_per_req"] for r in results[False]) / args.rounds
        cpu_rec = sum(r["cpu_ms_per_req"] for r in results[True]) / args.rounds
        print(f"\nthroughput without recording: {plain:.1f} req/s, with: {rec:.1f} req/s, "
              f"ratio with/without = {rec / plain:.3f}")
        print(f"locust CPU per request without: {cpu_plain:.3f} ms, with: {cpu_rec:.3f} ms "
              f"(+{cpu_rec - cpu_plain:.3f} ms per journaled request)")
    finally:
        reg.kill_all()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
