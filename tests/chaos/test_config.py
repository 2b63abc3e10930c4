"""experiment_env: the env the drill runner gives `chaos run`, built from real Endpoints + Topology."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chaos_testlib import run_chaos

from gameday.chaos.config import CONFIG_ENV, experiment_env
from gameday.errors import ConfigError
from gameday.provision.topology import Topology
from gameday.target import Endpoints

ROOT = Path(__file__).resolve().parents[2]


def _topology() -> Topology:
    outputs = json.loads((ROOT / "tests" / "provision" / "data" / "outputs.json").read_text())
    return Topology.from_outputs(outputs, require_password=False)


def test_env_covers_every_key_the_experiments_declare() -> None:
    topo = _topology()
    env = experiment_env(Endpoints.for_aws(topo), topo)
    for path in (ROOT / "experiments").glob("*.json"):
        for key, value in json.loads(path.read_text())["configuration"].items():
            assert CONFIG_ENV[key] == value["key"], (path.name, key)
            assert value["key"] in env or "default" in value, (path.name, key)
    writer = json.loads(env["GAMEDAY_DB_WRITER"])
    assert writer[topo.recovery_region] == topo.database.replica_endpoint  # the writer after promotion
    assert env["GAMEDAY_FAILOVER_ASG"] == topo.services["orders"].regions[topo.primary_region].asg_name


def test_scenario_overrides_and_unknown_keys() -> None:
    topo = _topology()
    other = sorted(s for s in topo.services if s != "orders")[0]
    env = experiment_env(Endpoints.for_aws(topo), topo, {"gameday_failover_service": other,
                                                          "gameday_max_lag_s": 2})
    assert env["GAMEDAY_FAILOVER_ASG"] == topo.services[other].regions[topo.primary_region].asg_name
    assert env["GAMEDAY_MAX_LAG_S"] == "2"
    with pytest.raises(ConfigError, match="unknown experiment configuration"):
        experiment_env(Endpoints.for_aws(topo), topo, {"gameday_nope": 1})


def test_generated_env_validates_every_experiment(tmp_path: Path) -> None:
    import os

    topo = _topology()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GAMEDAY_", "AWS_"))}
    env.update(experiment_env(Endpoints.for_aws(topo), topo))
    env.update({"GAMEDAY_DB_PASSWORD": "dummy", "AWS_REGION": topo.primary_region, "HOME": str(tmp_path)})
    for path in sorted((ROOT / "experiments").glob("*.json")):
        proc = run_chaos(["validate", str(path)], tmp_path, env)
        assert proc.returncode == 0 and "looks valid" in proc.stdout + proc.stderr, path.name
