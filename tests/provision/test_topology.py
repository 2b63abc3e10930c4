"""Topology parsing from a realistic `terraform output -json` sample, validation and redaction."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from gameday.errors import ConfigError
from gameday.provision.runner import parse_outputs
from gameday.provision.topology import Topology
from gameday.util.redact import REDACTED, Secret

SAMPLE = Path(__file__).parent / "data" / "outputs.json"
PASSWORD = "sample-Pa55word-not-real"


@pytest.fixture
def raw() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


@pytest.fixture
def topo(raw: dict[str, Any]) -> Topology:
    return Topology.from_outputs(raw, strict=True)


def test_parses_contract(topo: Topology) -> None:
    assert topo.regions == ("eu-south-1", "eu-central-1")
    assert topo.routing_mode == "global_accelerator"
    assert topo.service_names == ("catalog", "orders", "web")
    web = topo.service("web")
    assert web.region("eu-central-1").asg_name == "gameday-web-eu-central-1"
    assert web.regions["eu-south-1"].alb_arn.startswith("arn:aws:elasticloadbalancing:eu-south-1:1234")
    assert set(web.endpoint_group_arns) == {"eu-south-1", "eu-central-1"}
    assert topo.database.port == 5432 and isinstance(topo.database.port, int)
    assert topo.database.replica_region == "eu-central-1"
    assert isinstance(topo.database.password, Secret) and str(topo.database.password) == PASSWORD
    assert topo.queues["eu-south-1"].endswith("/gameday-eu-south-1")
    assert topo.frontend.bucket == "gameday-frontend-eu-south-1"
    assert topo.other_region("eu-south-1") == "eu-central-1"
    assert topo.other_region("eu-central-1") == "eu-south-1"
    with pytest.raises(ValueError, match="us-east-1"):
        topo.other_region("us-east-1")
    with pytest.raises(KeyError, match="nosuch"):
        topo.service("nosuch")


def test_unwrapped_outputs_from_runner_parse_the_same(raw: dict[str, Any], topo: Topology) -> None:
    outputs = parse_outputs(raw)
    assert outputs.sensitive == frozenset({"database_password"})
    assert Topology.from_outputs(outputs) == topo


def test_frozen(topo: Topology) -> None:
    with pytest.raises(AttributeError):
        topo.routing_mode = "route53"  # type: ignore[misc]
    with pytest.raises(TypeError):
        topo.services["evil"] = topo.services["web"]  # type: ignore[index]


def test_password_never_shown(topo: Topology, tmp_path: Path) -> None:
    assert PASSWORD not in repr(topo)
    assert PASSWORD not in repr(topo.database)
    assert PASSWORD not in str(topo.database)
    assert PASSWORD not in topo.summary()
    d = topo.to_dict()
    assert d["database_password"] == REDACTED
    assert PASSWORD not in json.dumps(d)
    saved = topo.save(tmp_path / "topology.json")
    assert PASSWORD not in saved.read_text()
    loaded = Topology.load(saved)
    assert loaded == topo  # password is not part of equality
    assert loaded.database.password is None
    assert str(Topology.load(saved, password=PASSWORD).database.password) == PASSWORD


def test_unredacted_round_trip(topo: Topology, tmp_path: Path) -> None:
    d = topo.to_dict(redacted=False)
    assert d["database_password"] == PASSWORD
    again = Topology.from_outputs(d, strict=True)
    assert again == topo and str(again.database.password) == PASSWORD
    path = topo.save(tmp_path / "secret.json", redacted=False)
    assert path.stat().st_mode & 0o077 == 0, "an unredacted topology is readable by its owner only"
    assert str(Topology.load(path).database.password) == PASSWORD


def _broken(raw: dict[str, Any], path: list[str], value: Any = None, delete: bool = False) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    node = data[path[0]]["value"]
    for key in path[1:-1]:
        node = node[key]
    if len(path) == 1:
        if delete:
            del data[path[0]]
        else:
            data[path[0]]["value"] = value
    elif delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(("path", "value", "delete", "field", "message"), [
    (["regions", "recovery"], None, True, "regions.recovery", "missing"),
    (["services", "web", "regions", "eu-south-1", "alb_arn"], None, True,
     "services.web.regions.eu-south-1.alb_arn", "missing"),
    (["services", "orders", "regions", "eu-central-1", "target_group_arn"], "tg-123", False,
     "services.orders.regions.eu-central-1.target_group_arn", "ARN"),
    (["services", "web", "endpoint_group_arns"], {"eu-south-1": "arn:aws:x"}, False,
     "services.web.endpoint_group_arns", "regions"),
    (["database", "port"], "not-a-port", False, "database.port", "port"),
    (["database", "port"], 70000, False, "database.port", "port"),
    (["database", "replica_region"], "eu-south-1", False, "database.replica_region", "recovery region"),
    (["routing_mode"], "dns", False, "routing_mode", "global_accelerator"),
    (["queues"], {"eu-south-1": "https://q"}, False, "queues", "regions"),
    (["frontend"], None, True, "frontend", "missing"),
    (["database_password"], None, True, "database_password", "missing"),
    (["services", "catalog", "accelerator_dns_name"], "", False, "services.catalog.accelerator_dns_name",
     "non-empty"),
])
def test_invalid_outputs_name_the_field(raw: dict[str, Any], path: list[str], value: Any, delete: bool,
                                        field: str, message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        Topology.from_outputs(_broken(raw, path, value, delete), source="outputs.json")
    assert ei.value.field == field
    assert message in str(ei.value)
    assert ei.value.file == "outputs.json"
    assert PASSWORD not in str(ei.value)


def test_strict_rejects_unknown_outputs(raw: dict[str, Any]) -> None:
    raw["debug_dump"] = {"sensitive": False, "type": "string", "value": "x"}
    Topology.from_outputs(raw)  # tolerant by default
    with pytest.raises(ConfigError) as ei:
        Topology.from_outputs(raw, strict=True)
    assert ei.value.field == "debug_dump"


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Topology.load(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError) as ei:
        Topology.load(bad)
    assert ei.value.file == str(bad)


def _route53(raw: dict[str, Any]) -> dict[str, Any]:
    """The sample as `routing_mode = "route53"` outputs it: accelerator fields null, Route 53 ones set."""
    data = copy.deepcopy(raw)
    data["routing_mode"]["value"] = "route53"
    for name, svc in data["services"]["value"].items():
        for k in ("accelerator_arn", "accelerator_dns_name", "ga_listener_arn", "endpoint_group_arns"):
            svc[k] = None
        svc["global_dns_name"] = f"{name}.gameday.example.com"
        svc["route53_zone_id"] = "Z0SAMPLE"
        svc["health_check_ids"] = {r: f"hc-{name}-{r}" for r in ("eu-south-1", "eu-central-1")}
    return data


def test_route53_outputs_parse_and_round_trip(raw: dict[str, Any]) -> None:
    topo = Topology.from_outputs(_route53(raw), strict=True)
    orders = topo.service("orders")
    assert topo.routing_mode == "route53"
    assert orders.global_dns_name == "orders.gameday.example.com"
    assert dict(orders.health_check_ids) == {"eu-south-1": "hc-orders-eu-south-1",
                                             "eu-central-1": "hc-orders-eu-central-1"}
    assert orders.accelerator_arn == "" and not orders.endpoint_group_arns
    assert "route53 failover orders.gameday.example.com" in topo.summary()
    assert Topology.from_outputs(topo.to_dict(redacted=False), strict=True) == topo


def test_route53_outputs_name_a_missing_health_check(raw: dict[str, Any]) -> None:
    data = _route53(raw)
    data["services"]["value"]["web"]["health_check_ids"] = {"eu-south-1": "hc-1"}
    with pytest.raises(ConfigError) as ei:
        Topology.from_outputs(data, source="outputs.json")
    assert ei.value.field == "services.web.health_check_ids"
