"""Cold apply time of the two-region stack against the local control plane: default waiters vs
the fast procedure (short create timeouts + untaint + re-apply), and destroy time.

Usage: .venv/bin/python benchmarks/bench_apply.py [--skip-default]
Each measurement uses a fresh control plane process and a fresh copy of provision/terraform.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gameday.controlplane.fast_apply import fast_apply, fast_destroy
from gameday.provision.mirror import write_cli_config
from gameday.provision.sandbox_override import OVERRIDE_FILENAME, render_sandbox_override
from gameday.util.net import free_port
from gameday.util.procs import ProcessRegistry
from gameday.util.retry import wait_until

STACK = Path(__file__).resolve().parents[1] / "provision" / "terraform"
PARALLELISM = "-parallelism=30"


def _setup(tmp: Path, reg: ProcessRegistry, name: str) -> tuple[Path, dict[str, str]]:
    port = free_port()
    log = tmp / f"{name}-cp.log"
    reg.spawn(name, [sys.executable, "-m", "gameday.controlplane", "--port", str(port)], log=log)
    wait_until(
        "control plane READY", lambda: "READY " in (log.read_text() if log.exists() else ""), timeout=30
    )
    work = tmp / name
    shutil.copytree(STACK, work, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "*_override.tf"))
    (work / OVERRIDE_FILENAME).write_text(render_sandbox_override(f"http://127.0.0.1:{port}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(
        TF_CLI_CONFIG_FILE=str(write_cli_config(tmp / "cli.tfrc")),
        TF_IN_AUTOMATION="1",
        CHECKPOINT_DISABLE="1",
        TF_VAR_db_password="bench-only-password",
    )
    subprocess.run(
        ["terraform", "init", "-input=false", "-no-color"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return work, env


def _runner(work: Path, env: dict[str, str]):  # type: ignore[no-untyped-def]
    def terraform(args: list[str], stdin: str | None) -> tuple[int, str, str]:
        p = subprocess.run(
            ["terraform", *args], cwd=work, env=env, input=stdin, capture_output=True, text=True, timeout=1800
        )
        return p.returncode, p.stdout, p.stderr

    return terraform


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--skip-default", action="store_true", help="skip the slow default-waiter measurement")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="gameday-bench-") as d:
        tmp = Path(d)
        reg = ProcessRegistry(tmp / "state")
        try:
            if not args.skip_default:
                work, env = _setup(tmp, reg, "default")
                tf = _runner(work, env)
                t = time.monotonic()
                rc, _, err = tf(["apply", "-auto-approve", "-input=false", "-no-color", PARALLELISM], None)
                if rc != 0:
                    print(err[-3000:], file=sys.stderr)
                    return 1
                print(f"cold apply, default waiters:        {time.monotonic() - t:6.1f} s", flush=True)
                t = time.monotonic()
                rc, _, err = tf(["destroy", "-auto-approve", "-input=false", "-no-color", PARALLELISM], None)
                print(
                    f"destroy, default waiters:           {time.monotonic() - t:6.1f} s (rc={rc})", flush=True
                )
                reg.kill("default")
            work, env = _setup(tmp, reg, "fast")
            tf = _runner(work, env)
            t = time.monotonic()
            rounds = fast_apply(tf, extra_args=[PARALLELISM])
            print(
                f"cold apply, fast procedure:         {time.monotonic() - t:6.1f} s ({rounds} rounds)",
                flush=True,
            )
            t = time.monotonic()
            rounds = fast_destroy(tf, extra_args=[PARALLELISM])
            print(
                f"destroy, fast procedure:            {time.monotonic() - t:6.1f} s ({rounds} rounds)",
                flush=True,
            )
        finally:
            reg.kill_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
