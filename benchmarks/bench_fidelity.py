"""Measured RTO beside what the Terraform's health-check settings predict, per service.

Starts ONE sandbox (fast profile), runs the instance-termination and service-failover drills
through the same engine as ``pytest -m drill`` (``gameday.drill.runner.run_drill``), and prints for
each judged service the measured read/write RTO, the budget derived from the reference
Terraform (``gameday.drill.derive``, margin included), the detection time alone (margin
excluded), and measured / expected. Also the drill's verdict and the host-lateness figure, so a
figure taken on a starved host says so.

    .venv/bin/python benchmarks/bench_fidelity.py [--scenario NAME ...] [--keep-state]

The sandbox is always torn down (``client.down``), also on Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT = ("instance-termination", "service-failover")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def expected_detection(scenario: Any, kind: str, service: str, timing: str, routing_mode: str) -> float | None:
    """The budget's derivation without its margin: what the settings alone predict."""
    from gameday.drill.derive import derive

    raw = scenario_raw(scenario)
    table = raw.get("write_rto_s" if kind == "write" else "rto_s") or {}
    spec = table.get(service, table.get("*"))
    if kind == "write" and spec is None:
        table = raw.get("rto_s") or {}
        spec = table.get(service, table.get("*"))
    if not isinstance(spec, dict):
        return None
    return derive({**spec, "margin_s": 0.0}, timing, routing_mode=routing_mode).seconds


def scenario_raw(scenario: Any) -> dict[str, Any]:
    import yaml

    data = yaml.safe_load(Path(scenario.path).read_text())
    return dict(data.get("slos") or {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", action="append", default=[])
    ap.add_argument("--keep-state", action="store_true")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)

    from gameday.drill.runner import run_drill
    from gameday.drill.scenario import find_scenario
    from gameday.provision.topology import Topology
    from gameday.sandbox import client

    names = args.scenario or list(DEFAULT)
    scenarios = [find_scenario(n, REPO / "scenarios") for n in names]
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="gameday-bench-fidelity-"))
    state = base / "sandbox"
    rows: list[tuple[str, ...]] = []
    try:
        t0 = time.monotonic()
        endpoints = client.up_with_retry(state, timing="fast")
        print(f"sandbox up in {time.monotonic() - t0:.0f} s", flush=True)
        topology = Topology.load(state / "topology.json")
        import json

        secrets = state / "secrets.json"
        password = json.loads(secrets.read_text()).get("db_password") if secrets.exists() else None
        for i, scenario in enumerate(scenarios):
            if i:
                client.admin(endpoints, "/reset", method="POST")
            result = run_drill(scenario, endpoints, topology, base / "runs" / scenario.name, timing="fast",
                               password=password)
            slos = scenario.slos_for("fast", topology.routing_mode)
            host = result.starvation.message if result.starvation is not None else "-"
            print(f"\n{scenario.name}: {result.verdict}  ({host})", flush=True)
            analysis = result.results.analysis
            for service, kinds in sorted(analysis.rto.items() if analysis is not None else ()):
                for kind in ("read", "write"):
                    m = kinds.get(kind)
                    budget = slos.read_budget(service) if kind == "read" else slos.write_budget(service)
                    if m is None or budget is None:
                        continue
                    measured = m.rto_s
                    expected = expected_detection(scenario, kind, service, "fast", topology.routing_mode)
                    ratio = (f"{measured / expected:.2f}" if measured is not None and expected else "-")
                    rows.append((scenario.name, service, kind,
                                 "-" if measured is None else f"{measured:.2f}",
                                 "-" if expected is None else f"{expected:.2f}", f"{budget:.2f}", ratio,
                                 m.status))
    finally:
        client.down(state)
        if not args.keep_state:
            shutil.rmtree(base, ignore_errors=True)
    head = ("scenario", "service", "kind", "measured RTO s", "expected (settings) s", "budget s",
            "measured/expected", "status")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    print()
    for r in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
