"""Cold apply time of the two-region stack against the local control plane: default waiters vs
the fast procedure the sandbox uses (``TerraformRunner.apply(fast_waiters=True)``), and destroy time.

Usage: .venv/bin/python benchmarks/bench_apply.py [--skip-default]
Each measurement uses a fresh control plane process and a fresh work dir copied from provision/terraform.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from gameday.errors import GamedayError
from gameday.provision.runner import TerraformRunner, TfEvent
from gameday.provision.sandbox import (
    AWS_ENV_DROPPED_FOR_SANDBOX,
    DEFAULT_CREATE_TIMEOUT,
    SANDBOX_ENV,
    SANDBOX_PARALLELISM,
)
from gameday.provision.sandbox_override import render_sandbox_override
from gameday.util.net import free_port
from gameday.util.procs import ProcessRegistry
from gameday.util.redact import Secret
from gameday.util.retry import wait_until

STACK = Path(__file__).resolve().parents[1] / "provision" / "terraform"


def _setup(tmp: Path, reg: ProcessRegistry, name: str, fast: bool,
           events: list[TfEvent]) -> TerraformRunner:
    port = free_port()
    log = tmp / f"{name}-cp.log"
    reg.spawn(name, [sys.executable, "-m", "gameday.controlplane", "--port", str(port)], log=log)
    wait_until(
        "control plane READY", lambda: "READY " in (log.read_text() if log.exists() else ""), timeout=30
    )
    tf_vars: dict[str, object] = {"db_password": Secret("bench-only-password")}
    if fast:
        tf_vars.update(create_timeout=DEFAULT_CREATE_TIMEOUT, delete_timeout=DEFAULT_CREATE_TIMEOUT)
    runner = TerraformRunner(STACK, tmp / name, env=dict(SANDBOX_ENV), unset_env=AWS_ENV_DROPPED_FOR_SANDBOX,
                             vars=tf_vars, timeout_s=1800.0, on_event=events.append)
    runner.write_override("sandbox", render_sandbox_override(f"http://127.0.0.1:{port}"))
    runner.init()
    return runner


def _rounds(events: list[TfEvent], command: str) -> int:
    return 1 + sum(1 for e in events if e.type == "fast_waiter_round" and e.command == command)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-default", action="store_true", help="skip the slow default-waiter measurement")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gameday-bench-") as d:
        tmp = Path(d)
        reg = ProcessRegistry(tmp / "state")
        try:
            if not args.skip_default:
                events: list[TfEvent] = []
                tf = _setup(tmp, reg, "default", False, events)
                t = time.monotonic()
                tf.apply(parallelism=SANDBOX_PARALLELISM)
                print(f"cold apply, default waiters:        {time.monotonic() - t:6.1f} s", flush=True)
                t = time.monotonic()
                tf.destroy(max_rounds=1, parallelism=SANDBOX_PARALLELISM)
                print(f"destroy, default waiters:           {time.monotonic() - t:6.1f} s", flush=True)
                reg.kill("default")
            events = []
            tf = _setup(tmp, reg, "fast", True, events)
            t = time.monotonic()
            tf.apply(fast_waiters=True, parallelism=SANDBOX_PARALLELISM)
            print(f"cold apply, fast procedure:         {time.monotonic() - t:6.1f} s "
                  f"({_rounds(events, 'apply')} rounds)", flush=True)
            t = time.monotonic()
            tf.destroy(parallelism=SANDBOX_PARALLELISM)
            print(f"destroy, fast procedure:            {time.monotonic() - t:6.1f} s "
                  f"({_rounds(events, 'destroy')} rounds)", flush=True)
        except GamedayError as exc:
            print(exc, file=sys.stderr)
            return 1
        finally:
            reg.kill_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
