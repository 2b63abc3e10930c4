"""Rollbacks executed / interrupts, over the full matrix of drill kinds x signals x interrupt points.

Starts ONE sandbox (fast profile) and, for every scenario, signal (SIGINT, SIGTERM, process-group
Ctrl-C, a pytest-timeout expiry) and point (during the fault, after the replica promotion --
region-outage only --, during Chaos Toolkit's rollback), runs the drill as a real ``pytest``
subprocess on that sandbox (``--reuse-sandbox``), interrupts it, and judges it rolled back when
afterwards the sandbox is in steady state (one writable primary, primary region serving,
nothing frozen), no FIS experiment runs, no undo entry is open and no process of the drill is
left. Prints one line per trial and the ratio.

    .venv/bin/python benchmarks/bench_interrupts.py [--scenario NAME ...] [--signal SIG ...] [--point P ...]

The sandbox is always torn down (``client.down``), also on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    from gameday.drill.scenario import load_all
    from gameday.safety import trials
    from gameday.sandbox import client

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", action="append", default=[])
    signals_all = [s for s in trials.SIGNALS if s != "SIGKILL"]  # kill -9 needs 'gameday abort': its own test
    ap.add_argument("--signal", action="append", default=[], choices=signals_all)
    ap.add_argument("--point", action="append", default=[], choices=trials.POINTS)
    args = ap.parse_args(argv)
    scenarios = args.scenario or [s.name for s in load_all(REPO / "scenarios") if s.runs_on("sandbox")]
    signals = args.signal or signals_all
    points = args.point or list(trials.POINTS)

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    base = Path(tempfile.mkdtemp(prefix="gameday-bench-interrupts-"))
    state = base / "sandbox"
    done = ok = 0
    try:
        client.up_with_retry(state, timing="fast")
        for sc in scenarios:
            for pt in points:
                if pt == "promotion" and sc != "region-outage":
                    continue  # only region-outage promotes a replica
                for sig in signals:
                    reports = base / f"r{done}"
                    res = trials.run_trial(sc, sig, pt, state, reports)
                    done += 1
                    ok += res.rolled_back
                    why = "" if res.rolled_back else f"  {res.problems + res.leftovers}"
                    print(f"{sc:<22} {sig:<14} {pt:<10} exit {res.exit_code!s:<4} {res.seconds:>6.1f} s  "
                          f"{'rolled back' if res.rolled_back else 'NOT rolled back'}{why}", flush=True)
                    if not res.rolled_back:  # next trial from steady state
                        client.admin(client_endpoints(state), "/reset", method="POST")
    finally:
        client.down(state)
        shutil.rmtree(base, ignore_errors=True)
        if done:
            print(f"rollbacks executed / interrupts: {ok}/{done} = {ok / done:.2f}")
    return 0 if done and ok == done else 1


def client_endpoints(state: Path) -> Any:
    from gameday.target import Endpoints

    return Endpoints.load(state / "endpoints.json")


if __name__ == "__main__":
    sys.exit(main())
