"""Cost of our journaling: locust throughput against one `web` instance with and without recording.

Both variants run in one invocation against the same server on 127.0.0.1 with the same users and
duration, in rounds whose order alternates (plain, recorded / recorded, plain / ...) so drift of
the 2-core box hits both. The probe rate is set far above what the box can do, with a bounded
number of requests in flight, so each variant runs flat out. Per round we take the ratio
recorded / plain; we report the median of those ratios beside the median absolute figures
(requests/s, and locust CPU ms per request, which a busy machine disturbs less).

    .venv/bin/python benchmarks/bench_load.py [--seconds 8] [--rounds 5] [--inflight 8]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gameday.load import LoadRunner
from gameday.util.journal import iter_records
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
    # locust's final summary (printed after the last request; its _stats.csv is rewritten only once a
    # second, so it can miss up to a second of requests: too coarse for a few-percent comparison)
    n = fails = 0
    for line in result.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^\s+Aggregated\s+(\d+)\s+(\d+)\(", line)
        if m:
            n, fails = int(m.group(1)), int(m.group(2))
    journaled = sum(1 for _ in iter_records(result.requests_path)) if record else 0
    return {"requests": n, "rps": n / elapsed, "cpu_ms_per_req": 1000 * cpu / max(n, 1),
            "failures": fails, "journaled": journaled}


MICRO = """
import atexit, importlib.util, json, os, shutil, sys, tempfile, time
from pathlib import Path
import locust  # noqa: F401  (gevent monkey-patching, as in a real run)
import requests
url, locustfile, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
scratch = tempfile.mkdtemp(prefix="gameday-bench-micro-")
atexit.register(shutil.rmtree, scratch, True)  # the journals written here are only measured, never kept
os.environ.update(GAMEDAY_TARGETS=json.dumps({"web": url}), GAMEDAY_WRITE_SERVICES="",
                  GAMEDAY_RECORDS_DIR=scratch)
spec = importlib.util.spec_from_file_location("gameday_locustfile", locustfile)
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
resp = requests.get(url + "/items", timeout=5)  # a real response, replayed through the listener
def loop(journal):
    mod.JOURNAL = journal
    t = time.process_time()
    for _ in range(n):  # what one() and the events.request listener do per request
        ctx = {"service": "web", "kind": "read", "t0": time.time(), "endpoint": "GET /items"}
        if mod.JOURNAL is not None:
            mod.JOURNAL.begin(ctx)
        mod._on_request("GET", "web GET /items", 1.0, 10, response=resp, context={"gameday": ctx},
                        exception=None, start_time=ctx["t0"])
    if journal is not None:
        journal.close()  # the flushes, the fsync and the compression of rotated segments count too
    return time.process_time() - t
plain = min(loop(None) for _ in range(3))
rec = min(loop(mod.Journal(Path(os.environ["GAMEDAY_RECORDS_DIR"]) / str(i))) for i in range(3))
print(json.dumps({"us_per_request": 1e6 * (rec - plain) / n}))
"""


def recording_cost_us(url: str, n: int = 100_000) -> float:
    """CPU microseconds our recording adds per request, measured in a locust-like child process
    (monkey-patched, real response object, the locustfile's own Journal and listener)."""
    from gameday.load.runner import default_locustfile

    out = subprocess.run([sys.executable, "-c", MICRO, url, str(default_locustfile()), str(n)],
                         capture_output=True, text=True, check=True, timeout=300)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["us_per_request"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--inflight", type=int, default=8)
    args = ap.parse_args()
    print("load average (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()), flush=True)
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
            for record in ((False, True) if rnd % 2 == 0 else (True, False)):
                r = one_run(url, base / f"r{rnd}-{'rec' if record else 'plain'}", record, args.seconds,
                            args.inflight)
                results[record].append(r)
                print(f"round {rnd} record={record!s:5}: {r['rps']:7.1f} req/s  "
                      f"{r['cpu_ms_per_req']:.3f} locust-CPU ms/req  failures={r['failures']} "
                      f"requests={r['requests']} journaled={r['journaled']}", flush=True)
        med = statistics.median
        ratios = [b["rps"] / a["rps"] for a, b in zip(results[False], results[True], strict=True)]
        cpu_ratios = [a["cpu_ms_per_req"] / b["cpu_ms_per_req"]
                      for a, b in zip(results[False], results[True], strict=True)]
        plain, rec = med(r["rps"] for r in results[False]), med(r["rps"] for r in results[True])
        cpu_plain = med(r["cpu_ms_per_req"] for r in results[False])
        cpu_rec = med(r["cpu_ms_per_req"] for r in results[True])
        print(f"\nplain locust: {plain:.1f} req/s (median of {args.rounds}), with our journals: {rec:.1f} req/s; "
              f"ratio with/without, median of {args.rounds} rounds = {med(ratios):.3f} "
              f"(per round: {', '.join(f'{x:.3f}' for x in ratios)}; goal >= 0.97)")
        print(f"locust CPU per request: plain {cpu_plain:.3f} ms, with journals {cpu_rec:.3f} ms; "
              f"CPU efficiency ratio plain/with, median = {med(cpu_ratios):.3f} "
              f"(per round: {', '.join(f'{x:.3f}' for x in cpu_ratios)})")
        us = recording_cost_us(url)
        print(f"recording cost measured in-process: {us:.1f} us CPU per request = "
              f"{100 * us / (1000 * cpu_plain):.2f} % of plain locust's {cpu_plain:.3f} ms -> expected ratio "
              f"{1000 * cpu_plain / (1000 * cpu_plain + us):.3f} on an idle machine")
    finally:
        reg.kill_all()
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
