"""fmt + validate of the committed stack, and the override file really merges into the providers."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gameday.provision.sandbox_override import OVERRIDE_FILENAME, render_sandbox_override


def _tf(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["terraform", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_fmt_and_validate(stack_dir: Path, stack_copy: Path, tf_env: dict[str, str]) -> None:
    fmt = _tf(["fmt", "-check", "-recursive", "-diff"], stack_dir, tf_env)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    work = stack_copy
    init = _tf(["init", "-input=false", "-backend=false", "-no-color"], work, tf_env)
    assert init.returncode == 0, init.stderr
    val = _tf(["validate", "-no-color"], work, tf_env)
    assert val.returncode == 0, val.stdout + val.stderr
    # With the sandbox override the configuration must still be valid (override merges, no duplicates).
    (work / OVERRIDE_FILENAME).write_text(render_sandbox_override("http://127.0.0.1:4566"))
    val = _tf(["validate", "-no-color"], work, tf_env)
    assert val.returncode == 0, val.stdout + val.stderr


def test_routing_mode_is_validated(stack_copy: Path, tf_env: dict[str, str]) -> None:
    work = stack_copy
    assert _tf(["init", "-input=false", "-backend=false", "-no-color"], work, tf_env).returncode == 0
    plan = _tf(
        [
            "plan",
            "-input=false",
            "-no-color",
            "-refresh=false",
            "-var=db_password=longenough",
            "-var=routing_mode=dns-roulette",
        ],
        work,
        tf_env,
    )
    assert plan.returncode != 0
    assert "routing_mode" in plan.stderr
