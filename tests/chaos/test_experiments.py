"""Every experiment file passes `chaos validate` (real CLI: JSON schema, modules, function signatures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chaos_testlib import chaos_env, run_chaos

EXPERIMENTS = sorted((Path(__file__).resolve().parents[2] / "experiments").glob("*.json"))
EXPECTED = {"instance-termination", "az-outage", "database-failover", "database-crash", "service-failover",
            "region-outage", "replication-partition"}


def test_every_expected_experiment_exists() -> None:
    assert {p.stem for p in EXPERIMENTS} == EXPECTED


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_validates(path: Path, tmp_path: Path) -> None:
    proc = run_chaos(["validate", str(path)], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "looks valid" in proc.stdout + proc.stderr


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_experiment_is_target_neutral(path: Path) -> None:
    """Everything target-specific comes from env-backed configuration; the password only from env secrets."""
    exp = json.loads(path.read_text())
    for key, value in exp["configuration"].items():
        assert isinstance(value, dict) and value["type"] == "env", key
        assert value["key"].startswith("GAMEDAY_"), key
    assert exp["secrets"] == {"gameday": {"db_password": {"type": "env", "key": "GAMEDAY_DB_PASSWORD"}}}
    text = path.read_text()
    for literal in ("127.0.0.1", "eu-south-1", "eu-central-1", "123456789012", "amazonaws.com"):
        assert literal not in text, literal
    probes = [p["name"] for p in exp["steady-state-hypothesis"]["probes"]]
    assert "all-services-healthy-through-global-urls" in probes


def test_validate_rejects_a_wrong_argument(tmp_path: Path) -> None:
    """The validation above is a real check: a misspelt activity argument is refused."""
    src = (Path(__file__).resolve().parents[2] / "experiments" / "replication-partition.json").read_text()
    bad = tmp_path / "bad.json"
    bad.write_text(src.replace('"window_s"', '"windows"'))
    proc = run_chaos(["validate", str(bad)], tmp_path)
    assert "windows" in proc.stdout + proc.stderr
    assert "looks valid" not in proc.stdout + proc.stderr


def test_validate_needs_the_documented_env(tmp_path: Path) -> None:
    env = chaos_env(tmp_path)
    del env["GAMEDAY_FAILOVER_ASG"]
    proc = run_chaos(["validate", str(EXPERIMENTS[0].parent / "service-failover.json")], tmp_path, env)
    assert "GAMEDAY_FAILOVER_ASG" in proc.stdout + proc.stderr
