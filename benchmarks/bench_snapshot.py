"""Cold vs warm (snapshot) ``sandbox up``, in one run.

    .venv/bin/python benchmarks/bench_snapshot.py [--warm-runs N]

In a fresh temporary gameday home (so no earlier snapshot counts): one cold ``sandbox up``
(``snapshots="cold"``: terraform apply, then the snapshot is saved), ``down``, then N warm ups
from that snapshot (each followed by ``down``). Prints each wall time (client side, from the
call to all services healthy), the daemon's own split (apply/restore vs data plane) and the
ratio warm / cold against the goal (warm at most 1/6 of cold and under 15 s). Each sandbox is
torn down in ``finally``; only one runs at a time. Loopback only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from gameday.sandbox import client, snapshot


def _split(state: Path) -> str:
    """The daemon's own progress line that ends the control-plane part (apply or restore)."""
    try:
        lines = (state / "progress.log").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        m = re.search(r"(terraform applied|restored snapshot \S+) in ([0-9.]+) s", line)
        if m:
            return f"{m.group(1).split(' ')[0]} {m.group(1).split(' ')[1]} at {m.group(2)} s"
    return ""


def one_up(state: Path, mode: str) -> tuple[float, str]:
    t0 = time.monotonic()
    try:
        client.up(state, timing="fast", snapshots=mode, timeout=900.0,
                  progress=lambda line: print(f"  {line}", flush=True) if "snapshot" in line else None)
        took = time.monotonic() - t0
        return took, _split(state)
    finally:
        client.down(state)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm-runs", type=int, default=2)
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  cores: {os.cpu_count()}")
    tmp = Path(tempfile.mkdtemp(prefix="gameday-bench-snapshot-"))
    os.environ["GAMEDAY_HOME"] = str(tmp / "home")  # the daemon inherits it: a fresh snapshot store
    try:
        cold, cold_split = one_up(tmp / "cold", "cold")
        snaps = snapshot.list_snapshots()
        if not snaps:
            print("FAILED: the cold up saved no snapshot", file=sys.stderr)
            return 1
        print(f"cold sandbox up: {cold:6.1f} s  ({cold_split}); snapshot {snaps[0].key} "
              f"{snaps[0].size() / 1e6:.1f} MB")
        warms = []
        for i in range(max(1, args.warm_runs)):
            warm, warm_split = one_up(tmp / f"warm{i}", "use")
            warms.append(warm)
            print(f"warm sandbox up: {warm:6.1f} s  ({warm_split})")
        warm = statistics.median(warms)
        ratio = warm / cold
        ok = ratio <= 1 / 6 and warm < 15.0
        print(f"warm/cold ratio: {ratio:.3f} (median warm {warm:.1f} s / cold {cold:.1f} s; goal <= {1 / 6:.3f} "
              f"and warm < 15 s: {'met' if ok else 'NOT met'})")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
