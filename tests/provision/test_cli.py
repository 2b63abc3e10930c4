"""`gameday provision up|down|status`: argument handling, and the sandbox end to end."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from gameday.errors import ConfigError
from gameday.provision import cli, load_topology, module_dir, topology_path
from gameday.provision.topology import Topology
from gameday.util.procs import pid_alive


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gameday")
    sub = parser.add_subparsers(dest="command", required=True)
    cli.register(sub)
    return parser


def test_register_adds_commands(tmp_path: Path) -> None:
    p = _parser()
    args = p.parse_args(["provision", "up", "--target", "aws", "--var-file", "a.tfvars",
                         "--var-file", "b.tfvars", "--state-dir", str(tmp_path)])
    assert args.func is cli.cmd_up and args.target == "aws" and args.var_file == ["a.tfvars", "b.tfvars"]
    assert p.parse_args(["provision", "down"]).func is cli.cmd_down
    assert p.parse_args(["provision", "status", "--target", "sandbox"]).func is cli.cmd_status
    with pytest.raises(SystemExit):
        p.parse_args(["provision", "up", "--target", "gcp"])


def test_status_of_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["provision", "status", "--state-dir", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "control plane: not running" in out and "topology: not provisioned" in out


def test_dead_recorded_control_plane_is_not_used(tmp_path: Path) -> None:
    rec = tmp_path / "sandbox" / cli.CONTROLPLANE_RECORD
    rec.parent.mkdir(parents=True)
    rec.write_text(json.dumps({"url": "http://127.0.0.1:1", "pid": 2**22 + 7, "owned": True}))
    assert cli.read_controlplane(tmp_path) is None


def test_aws_up_needs_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(cli.ENV_DB_PASSWORD, raising=False)
    args = _parser().parse_args(["provision", "up", "--target", "aws", "--state-dir", str(tmp_path)])
    with pytest.raises(ConfigError) as ei:
        args.func(args)
    assert ei.value.field == cli.ENV_DB_PASSWORD and ei.value.exit_code == 2


def test_missing_var_file_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cli.ENV_DB_PASSWORD, "long-enough-password")
    missing = str(tmp_path / "prod.tfvars")
    args = _parser().parse_args(["provision", "up", "--target", "aws", "--var-file", missing,
                                 "--state-dir", str(tmp_path)])
    with pytest.raises(ConfigError) as ei:
        args.func(args)
    assert ei.value.file == missing


def test_sandbox_password_is_stable_and_private(tmp_path: Path) -> None:
    a = cli.sandbox_password(tmp_path)
    assert len(a) >= 16 and str(a) not in repr(a)
    assert cli.sandbox_password(tmp_path) == a
    assert (tmp_path / "sandbox" / "db_password").stat().st_mode & 0o077 == 0


@pytest.mark.skipif(not (module_dir() / "main.tf").exists(), reason="provision/terraform not written yet")
@pytest.mark.skipif(os.environ.get("GAMEDAY_SKIP_SLOW") == "1",
                    reason="GAMEDAY_SKIP_SLOW=1: apply/destroy is covered by tests/terraform_stack/test_apply.py")
def test_sandbox_up_status_down(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real thing: control plane process, terraform + aws provider from the mirror, fast waiters."""
    p = _parser()
    state = tmp_path / "state"
    up = p.parse_args(["provision", "up", "--target", "sandbox", "--state-dir", str(state)])
    down = p.parse_args(["provision", "down", "--target", "sandbox", "--state-dir", str(state)])
    try:
        assert up.func(up) == 0
        cp = cli.read_controlplane(state)
        assert cp is not None and cp.owned and cp.pid is not None and pid_alive(cp.pid)
        topo = Topology.load(topology_path(state, "sandbox"))
        assert topo.regions == ("eu-south-1", "eu-central-1")
        assert topo.service_names == ("catalog", "orders", "web")
        assert topo.database.password is None, "saved redacted"
        password = (state / "sandbox" / "db_password").read_text().strip()
        for f in state.rglob("*"):
            if f.is_file() and f.name not in ("db_password",) and not f.name.startswith("terraform.tfstate"):
                assert password not in f.read_text(errors="replace"), f"password leaked into {f}"
        out = capsys.readouterr().out
        assert "topology saved" in out and password not in out
        assert str(load_topology(state, "sandbox").database.password) == password

        status = p.parse_args(["provision", "status", "--target", "sandbox", "--state-dir", str(state)])
        assert status.func(status) == 0
        assert cp.url in capsys.readouterr().out
    finally:
        assert down.func(down) == 0
    assert cp is not None and cp.pid is not None and not pid_alive(cp.pid)
    assert cli.read_controlplane(state) is None
    assert not list((state / "pids").glob("*.json"))
    assert not topology_path(state, "sandbox").exists()
