"""Apply the Terraform stack to the sandbox daemon's in-process control plane.

The same HCL as for AWS; only the provider endpoints differ (an override file), and slow
resources converge through the fast-waiter procedure of ``TerraformRunner.apply``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from gameday.provision import module_dir
from gameday.provision.cli import AWS_ENV_DROPPED_FOR_SANDBOX, DEFAULT_CREATE_TIMEOUT, SANDBOX_ENV
from gameday.provision.runner import TerraformRunner, TfEvent
from gameday.provision.sandbox_override import render_sandbox_override
from gameday.provision.topology import Topology
from gameday.util.redact import Secret


def apply_sandbox_stack(endpoint_url: str, work_dir: Path, password: Secret,
                        progress: Callable[[str], None] | None = None,
                        routing_mode: str = "global_accelerator") -> Topology:
    """Apply provision/terraform against endpoint_url; save topology.json and a 0600 secrets.json."""
    say = progress or (lambda _m: None)

    def on_event(ev: TfEvent) -> None:
        if ev.type in ("apply_complete", "fast_waiter_round", "retry"):
            say(f"terraform: {ev.message}")

    runner = TerraformRunner(module_dir(), work_dir, env=dict(SANDBOX_ENV), unset_env=AWS_ENV_DROPPED_FOR_SANDBOX,
                             vars={"db_password": password, "create_timeout": DEFAULT_CREATE_TIMEOUT,
                                   "routing_mode": routing_mode},
                             timeout_s=600.0, on_event=on_event)
    runner.write_override("sandbox", render_sandbox_override(endpoint_url))
    runner.init()
    runner.apply(fast_waiters=True)
    topo = Topology.from_outputs(runner.output(), source=f"terraform output ({work_dir})")
    state = Path(work_dir).parent
    topo.save(state / "topology.json")
    fd = os.open(state / "secrets.json", os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"db_password": str(password)}, fh)
    return topo
