"""Wall time of the drill suite (fast timing profile) with one and with two xdist workers.

Each run is ``python -m pytest -m drill -n N -p no:randomly -q --timing fast scenarios/`` in a
subprocess; every xdist worker starts its own sandbox through the gameday pytest plugin, so the
figure includes sandbox bring-up.  Prints wall time and pass/fail counts (from pytest's summary
line) per worker count, and the speed-up ratio of the first worker count over each other one.

    .venv/bin/python benchmarks/bench_drills.py [--workers 1,2] [--scenario NAME ...] [--timeout 3600]

Runs are sequential (two at once would fight over the 2 cores and skew both).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"(\d+) (passed|failed|errors?|skipped|deselected|xfailed|xpassed|warnings?)\b")


@dataclass
class Run:
    workers: int
    seconds: float
    returncode: int
    counts: dict[str, int] = field(default_factory=dict)
    summary: str = ""


def parse_summary(output: str) -> tuple[dict[str, int], str]:
    """Counts from pytest's last summary line ("== 5 passed, 1 failed in 80.1s ==" or its -q form)."""
    for line in reversed(output.splitlines()):
        found = SUMMARY.findall(line)
        if found and (" in " in line or line.startswith("=")):
            counts: dict[str, int] = {}
            for n, what in found:
                key = {"error": "errors", "warning": "warnings"}.get(what, what)
                counts[key] = counts.get(key, 0) + int(n)
            return counts, line.strip("= ").strip()
    return {}, "(no pytest summary line)"


def run(workers: int, scenarios: list[str], timeout: float, log_dir: Path) -> Run:
    argv = [sys.executable, "-m", "pytest", "-m", "drill", "-n", str(workers), "-p", "no:randomly", "-q",
            "--timing", "fast"]
    for s in scenarios:
        argv += ["--scenario", s]
    argv.append("scenarios/")
    log = log_dir / f"drills-n{workers}.log"
    print(f"-- {' '.join(argv[1:])}  (output: {log})", flush=True)
    seconds, rc, counts, summary = timed_pytest(argv, log, timeout)
    return Run(workers, seconds, rc, counts, summary)


def timed_pytest(argv: list[str], log: Path, timeout: float,
                 env: dict[str, str] | None = None) -> tuple[float, int, dict[str, int], str]:
    """Run pytest with its output in ``log``: wall seconds, exit code, and its summary's counts and line."""
    t0 = time.monotonic()
    with open(log, "w", encoding="utf-8") as out:
        # own session: on timeout / Ctrl-C the whole pytest tree (xdist workers) gets the signal,
        # and the plugin's fixtures tear their sandboxes down
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except (subprocess.TimeoutExpired, KeyboardInterrupt):
            stop_run(proc)
            raise
    seconds = time.monotonic() - t0
    counts, summary = parse_summary(log.read_text(errors="replace"))
    return seconds, rc, counts, summary


def stop_run(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT first (pytest runs its teardown), then SIGKILL after a bounded wait."""
    for sig, wait in ((signal.SIGINT, 120.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workers", default="1,2", help="comma-separated xdist worker counts (default 1,2)")
    ap.add_argument("--scenario", action="append", default=[], metavar="NAME",
                    help="run only this scenario (repeatable; passed through to pytest)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="limit per pytest run, seconds (default 3600)")
    ap.add_argument("--log-dir", type=Path, default=REPO / "reports" / "bench",
                    help="where each run's pytest output goes (default reports/bench)")
    args = ap.parse_args()
    try:
        workers = [int(w) for w in args.workers.split(",") if w.strip()]
    except ValueError:
        ap.error(f"--workers must be comma-separated integers, got {args.workers!r}")
    if not workers or any(w < 1 for w in workers):
        ap.error("--workers needs at least one count >= 1")
    args.log_dir.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}; "
          f"scenarios: {', '.join(args.scenario) or 'all'}")
    runs: list[Run] = []
    try:
        for n in workers:
            runs.append(run(n, args.scenario, args.timeout, args.log_dir))
            r = runs[-1]
            print(f"   -n {n}: {r.seconds:.1f} s, exit {r.returncode}: {r.summary}", flush=True)
    except subprocess.TimeoutExpired:
        print(f"a pytest run exceeded --timeout {args.timeout:.0f} s and was stopped", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(f"\n{'workers':>7s} {'wall s':>8s} {'passed':>6s} {'failed':>6s} {'errors':>6s} {'skipped':>7s}  exit")
    for r in runs:
        c = r.counts
        print(f"{r.workers:7d} {r.seconds:8.1f} {c.get('passed', 0):6d} {c.get('failed', 0):6d} "
              f"{c.get('errors', 0):6d} {c.get('skipped', 0):7d}  {r.returncode}")
    if len(runs) > 1:
        base = runs[0]
        for r in runs[1:]:
            print(f"speed-up -n {base.workers} -> -n {r.workers}: {base.seconds / r.seconds:.2f}x "
                  f"(wall time ratio -n {r.workers} / -n {base.workers} = {r.seconds / base.seconds:.2f})")
    print(f"load average at end {os.getloadavg()[0]:.2f} (2-core box; other work running skews these figures)")
    return 0 if runs and all(r.returncode == 0 for r in runs) and len(runs) == len(workers) else 1


if __name__ == "__main__":
    sys.exit(main())
