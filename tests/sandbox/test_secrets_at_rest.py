"""After a full drill, no secret is anywhere but in the 0600 files (in 0700 directories) that must hold it.

The secrets: the database master password (random per sandbox) and the replication role's own
password (random, never the master password). Searched: every file under the sandbox's state
directory (its PostgreSQL data directories included), the drill's run directory (journals,
locust reports, chaos journal and logs, plot, results) and the drill's allure results.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from gameday.drill.runner import drill_scenario
from gameday.drill.scenario import find_scenario

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
# the files that must hold a password, and why
ALLOWED = {
    "terraform.tfstate": "Terraform keeps the sensitive db_password in its state",
    "terraform.tfstate.backup": "the previous state",
    "secrets.json": "the sandbox's own record of the database password, for the drills",
    "postgresql.conf": "a standby's primary_conninfo carries the replication password",
    "postgresql.auto.conf": "the same, where PostgreSQL keeps ALTER SYSTEM settings",
}


def _files(root: Path) -> list[Path]:
    out = []
    for dirpath, _dirs, names in os.walk(root, followlinks=True):
        for n in names:
            p = Path(dirpath) / n
            if p.is_file() and not p.is_symlink() and not n.endswith((".sock", ".lock")):
                out.append(p)
    return out


def _repl_password(state: Path) -> str:
    """The replication password, read from a standby's primary_conninfo (the only place it lives)."""
    for conf in _files(state / "pg"):
        if conf.name == "postgresql.conf":
            m = re.search(r"primary_conninfo\s*=\s*'[^']*password=(\S+?)[ ']", conf.read_text(errors="replace"))
            if m:
                return m.group(1)
    raise AssertionError(f"no standby with a primary_conninfo password under {state / 'pg'}")


def test_no_secret_outside_its_0600_files_after_a_drill(gameday_target: Any, tmp_path: Path) -> None:
    if gameday_target.kind != "sandbox":
        pytest.skip("sandbox only")
    state = Path(str(gameday_target.endpoints.state_dir))
    scenario = find_scenario("instance-termination", REPO / "scenarios")
    short = dataclasses.replace(scenario.load, duration_s=40.0, settle_s=5.0)
    scenario = dataclasses.replace(scenario, load=short, load_by_timing={})
    run_dir = tmp_path / "run"
    drill_scenario(scenario, gameday_target, run_dir)
    db_password = json.loads((state / "secrets.json").read_text())["db_password"]
    repl_password = _repl_password(state)
    assert db_password and repl_password and db_password != repl_password
    assert len(repl_password) >= 16

    searched = _files(state) + _files(run_dir)
    assert len(searched) > 20, searched  # the search saw the sandbox, not an empty folder
    leaks: list[str] = []
    for path in searched:
        data = path.read_bytes()
        for name, secret in (("database password", db_password), ("replication password", repl_password)):
            if secret.encode() not in data:
                continue
            mode = stat.S_IMODE(path.stat().st_mode)
            parent = stat.S_IMODE(path.parent.stat().st_mode)
            if path.name not in ALLOWED:
                leaks.append(f"{name} in {path}")
            elif mode & 0o077 or parent & 0o077:
                leaks.append(f"{name} in {path} with mode {mode:o} in a {parent:o} directory (want 600 in 700)")
    assert leaks == [], "\n".join(leaks)
