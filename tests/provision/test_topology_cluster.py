"""Topology of database_mode = cluster (Aurora global database); instance mode stays as it was."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gameday.errors import ConfigError
from gameday.provision.topology import ClusterMember, DatabaseCluster, Topology

SAMPLE = Path(__file__).parent / "data" / "outputs.json"
PRIMARY, RECOVERY = "eu-south-1", "eu-central-1"
P_WRITER = "gameday-db-eu-south-1.cluster-aaaaaaaaaaaa.eu-south-1.rds.amazonaws.com"
P_READER = "gameday-db-eu-south-1.cluster-ro-aaaaaaaaaaaa.eu-south-1.rds.amazonaws.com"
S_WRITER = "gameday-db-eu-central-1.cluster-bbbbbbbbbbbb.eu-central-1.rds.amazonaws.com"
S_READER = "gameday-db-eu-central-1.cluster-ro-bbbbbbbbbbbb.eu-central-1.rds.amazonaws.com"


@pytest.fixture
def raw() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


def _cluster(raw: dict[str, Any], secondary_instances: int = 1) -> dict[str, Any]:
    """The sample as database_mode = "cluster" outputs it (the shape of provision/terraform/outputs.tf)."""
    data = copy.deepcopy(raw)
    db = data["database"]["value"]
    db.update({
        "primary_identifier": "gameday-db-eu-south-1", "address": P_WRITER, "endpoint": f"{P_WRITER}:5432",
        "replica_identifier": "gameday-db-eu-central-1", "replica_address": S_READER,
        "replica_endpoint": f"{S_READER}:5432", "mode": "cluster",
        "cluster": {
            "global_cluster_id": "gameday-global-db",
            "primary": {"identifier": "gameday-db-eu-south-1", "region": PRIMARY, "writer_endpoint": P_WRITER,
                        "reader_endpoint": P_READER,
                        "instances": ["gameday-db-eu-south-1-1", "gameday-db-eu-south-1-2"]},
            "secondary": {"identifier": "gameday-db-eu-central-1", "region": RECOVERY, "writer_endpoint": S_WRITER,
                          "reader_endpoint": S_READER,
                          "instances": [f"gameday-db-eu-central-1-{i + 1}" for i in range(secondary_instances)]},
        },
    })
    return data


def test_instance_mode_has_no_cluster(raw: dict[str, Any]) -> None:
    topo = Topology.from_outputs(raw, strict=True)
    assert topo.database.mode == "instance" and topo.database.cluster is None
    assert "mode" not in topo.to_dict()["database"] and "cluster" not in topo.to_dict()["database"]
    assert "aurora" not in topo.summary()


def test_cluster_outputs_parse_into_typed_fields(raw: dict[str, Any]) -> None:
    topo = Topology.from_outputs(_cluster(raw, secondary_instances=2), strict=True)
    db = topo.database
    assert db.mode == "cluster"
    assert db.cluster == DatabaseCluster(
        global_cluster_id="gameday-global-db",
        primary=ClusterMember("gameday-db-eu-south-1", PRIMARY, P_WRITER, P_READER,
                              ("gameday-db-eu-south-1-1", "gameday-db-eu-south-1-2")),
        secondary=ClusterMember("gameday-db-eu-central-1", RECOVERY, S_WRITER, S_READER,
                                ("gameday-db-eu-central-1-1", "gameday-db-eu-central-1-2")),
    )
    assert db.address == db.cluster.primary.writer_endpoint
    assert [m.region for m in db.cluster.members] == [PRIMARY, RECOVERY]
    summary = topo.summary()
    assert "aurora global database gameday-global-db" in summary and S_READER in summary


def test_cluster_round_trips_through_save_and_load(raw: dict[str, Any], tmp_path: Path) -> None:
    topo = Topology.from_outputs(_cluster(raw), strict=True)
    assert Topology.from_outputs(topo.to_dict(redacted=False), strict=True) == topo
    again = Topology.load(topo.save(tmp_path / "topology.json"))
    assert again.database.cluster == topo.database.cluster and again.database.mode == "cluster"


def _set(data: dict[str, Any], path: list[str], value: Any, delete: bool = False) -> dict[str, Any]:
    node = data["database"]["value"]
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "delete", "field", "message"), [
    (["mode"], "serverless", False, "database.mode", "instance"),
    (["cluster"], None, True, "database.cluster", "missing"),
    (["cluster", "global_cluster_id"], "", False, "database.cluster.global_cluster_id", "non-empty"),
    (["cluster", "secondary"], None, True, "database.cluster.secondary", "missing"),
    (["cluster", "primary", "writer_endpoint"], None, True, "database.cluster.primary.writer_endpoint", "missing"),
    (["cluster", "secondary", "reader_endpoint"], 5, False, "database.cluster.secondary.reader_endpoint",
     "non-empty string"),
    (["cluster", "secondary", "region"], PRIMARY, False, "database.cluster.secondary.region", RECOVERY),
    (["cluster", "primary", "instances"], [], False, "database.cluster.primary.instances", "non-empty list"),
])
def test_invalid_cluster_outputs_name_the_field(raw: dict[str, Any], path: list[str], value: Any, delete: bool,
                                                field: str, message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        Topology.from_outputs(_set(_cluster(raw), path, value, delete), source="outputs.json")
    assert ei.value.field == field
    assert message in str(ei.value)


def test_a_cluster_without_cluster_mode_is_refused(raw: dict[str, Any]) -> None:
    data = _cluster(raw)
    del data["database"]["value"]["mode"]
    with pytest.raises(ConfigError) as ei:
        Topology.from_outputs(data)
    assert ei.value.field == "database.cluster"
