"""`gameday provision up|down|status`: argument handling, the state layout, and the sandbox refusal."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from gameday.errors import ConfigError
from gameday.provision import aws_state_dir, cli, topology_path
from gameday.sandbox.client import default_state_dir


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
    assert p.parse_args(["provision", "status"]).target == "aws"
    with pytest.raises(SystemExit):
        p.parse_args(["provision", "up", "--target", "gcp"])


@pytest.mark.parametrize("verb", ["up", "down", "status"])
def test_the_sandbox_target_names_the_one_sandbox_bring_up(verb: str, tmp_path: Path) -> None:
    args = _parser().parse_args(["provision", verb, "--target", "sandbox", "--state-dir", str(tmp_path / "s")])
    with pytest.raises(ConfigError) as ei:
        args.func(args)
    assert ei.value.field == "--target" and f"gameday sandbox {verb}" in str(ei.value.hint)
    assert not (tmp_path / "s").exists()  # refused before anything was made


def test_one_state_layout_for_every_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAMEDAY_STATE_DIR", raising=False)
    monkeypatch.setenv("GAMEDAY_HOME", str(tmp_path / "home"))
    assert aws_state_dir() == tmp_path / "home" / "aws"
    assert default_state_dir() == tmp_path / "home" / "sandboxes" / "default"
    monkeypatch.setenv("GAMEDAY_STATE_DIR", str(tmp_path / "root"))
    assert aws_state_dir() == tmp_path / "root" / "aws"
    assert default_state_dir("b") == tmp_path / "root" / "sandboxes" / "b"
    assert aws_state_dir(str(tmp_path / "mine")) == tmp_path / "mine"
    assert topology_path(tmp_path / "mine") == tmp_path / "mine" / "topology.json"


def test_state_in_the_old_default_place_is_not_silently_ignored(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A run that missed the old state would create the whole AWS system a second time."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAMEDAY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GAMEDAY_STATE_DIR", raising=False)
    old = tmp_path / ".gameday" / "aws" / "terraform" / "terraform.tfstate"
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    args = _parser().parse_args(["provision", "status"])
    with pytest.raises(ConfigError) as ei:
        args.func(args)
    assert ei.value.file == str(old) and "--state-dir .gameday/aws" in str(ei.value.hint)
    explicit = _parser().parse_args(["provision", "status", "--state-dir", ".gameday/aws"])
    assert explicit.func(explicit) == 0


def test_status_of_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(["provision", "status", "--state-dir", str(tmp_path)])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "terraform state: none" in out and "topology: not provisioned" in out


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
    assert os.listdir(tmp_path) == []  # bad input: nothing made
