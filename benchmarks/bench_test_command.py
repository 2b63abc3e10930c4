"""The whole test command's time without and with sandbox snapshots, in one run.

Runs the pytest part of ``make test`` (``GAMEDAY_SKIP_SLOW=1 pytest -n 2 --dist loadgroup
--timing fast``) twice, one after the other, each in a fresh gameday home so no earlier snapshot
counts:

1. **before**: ``GAMEDAY_SNAPSHOTS=0``: every sandbox up is a cold ``terraform apply``, as it was
   before snapshots existed;
2. **after**: snapshots on: the first up of each key applies and saves, every later one restores.

``tests/sandbox/test_snapshot.py::test_cold_then_warm_up`` is left out in both runs: it tests
snapshots themselves and cannot run with them off. The lint part of ``make test`` is the same in
both and is not timed. Prints each run's wall time, pytest's counts and the ratio after / before.

    .venv/bin/python benchmarks/bench_test_command.py [--workers 2] [--timeout 3600] [--log-dir DIR]

Each run's output goes to ``reports/bench/test-command-{before,after}.log``. A run is stopped
(SIGINT to its process group, then SIGKILL) on timeout or Ctrl-C, so its fixtures tear down.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bench_drills import timed_pytest

REPO = Path(__file__).resolve().parents[1]
#: by name: xdist's loadgroup suffixes the node ids of sandbox tests, so --deselect does not match them
SELF_TEST = "test_cold_then_warm_up"


@dataclass
class Run:
    label: str
    seconds: float
    returncode: int
    counts: dict[str, int] = field(default_factory=dict)
    summary: str = ""


def run(label: str, snapshots: bool, workers: int, timeout: float, log_dir: Path) -> Run:
    home = Path(tempfile.mkdtemp(prefix=f"gameday-bench-home-{label}-"))
    results = Path(tempfile.mkdtemp(prefix=f"gameday-bench-allure-{label}-"))
    env = {**os.environ, "GAMEDAY_HOME": str(home), "GAMEDAY_SKIP_SLOW": "1",
           "GAMEDAY_SNAPSHOTS": "1" if snapshots else "0"}
    argv = [sys.executable, "-m", "pytest", "-n", str(workers), "--dist", "loadgroup", "--timing", "fast",
            "--alluredir", str(results), "-q", "-k", f"not {SELF_TEST}"]
    log = log_dir / f"test-command-{label}.log"
    print(f"-- {label}: GAMEDAY_SNAPSHOTS={env['GAMEDAY_SNAPSHOTS']} {' '.join(argv[1:])}  (output: {log})",
          flush=True)
    try:
        seconds, rc, counts, summary = timed_pytest(argv, log, timeout, env)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(results, ignore_errors=True)
    return Run(label, seconds, rc, counts, summary)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", type=int, default=2, help="xdist workers, as make test (default 2)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="limit per run, seconds (default 3600)")
    ap.add_argument("--log-dir", type=Path, default=REPO / "reports" / "bench")
    args = ap.parse_args()
    if args.workers < 1:
        ap.error("--workers must be at least 1")
    args.log_dir.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")
    runs: list[Run] = []
    try:
        for label, snaps in (("before", False), ("after", True)):
            runs.append(run(label, snaps, args.workers, args.timeout, args.log_dir))
            r = runs[-1]
            print(f"   {label}: {r.seconds:.1f} s, exit {r.returncode}: {r.summary}", flush=True)
    except subprocess.TimeoutExpired:
        print(f"a run exceeded --timeout {args.timeout:.0f} s and was stopped", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"\n{'run':>7s} {'snapshots':>9s} {'wall s':>8s} {'passed':>6s} {'failed':>6s} {'errors':>6s} "
          f"{'skipped':>7s}  exit")
    for r in runs:
        c = r.counts
        print(f"{r.label:>7s} {'on' if r.label == 'after' else 'off':>9s} {r.seconds:8.1f} {c.get('passed', 0):6d} "
              f"{c.get('failed', 0):6d} {c.get('errors', 0):6d} {c.get('skipped', 0):7d}  {r.returncode}")
    if len(runs) == 2:
        before, after = runs
        print(f"test command with snapshots / without: {after.seconds / before.seconds:.2f} "
              f"({before.seconds - after.seconds:+.1f} s)")
    print(f"load average at end {os.getloadavg()[0]:.2f} (2-core box; other work running skews these figures)")
    return 0 if len(runs) == 2 and all(r.returncode == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
