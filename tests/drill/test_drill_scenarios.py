"""Scenario files: the shipped ones validate, bad ones fail with file + field + fix."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from gameday.drill.scenario import Scenario, find_scenario, load_all, load_scenario
from gameday.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXPECTED = {"instance-termination": "instance", "az-outage": "az", "database-failover": "database",
            "database-crash": "database", "service-failover": "service", "region-outage": "region",
            "replication-partition": "network"}

GOOD = """\
name: demo
description: a demo drill
experiment: demo
fault: service
experiment_config:
  gameday_failover_service: orders
load:
  duration_s: 60
slos:
  rto_s: {"*": 5, orders: 8}
  max_lost_writes: 0
  must_switch: [orders]
  unaffected: {services: [web], max_error_ratio: 0.01}
slos_by_timing:
  aws:
    rto_s: {"*": 90}
"""


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "experiments" / "demo.json").write_text(json.dumps(
        {"title": "demo", "configuration": {"gameday_failover_service": {"type": "env", "key": "X"}}}))
    return tmp_path


def write(repo: Path, text: str, name: str = "demo") -> Path:
    path = repo / "scenarios" / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_for(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    return info.value


# --- the shipped scenarios ---------------------------------------------------------------------

def test_all_shipped_scenarios_validate_against_the_real_experiments() -> None:
    scenarios = load_all(REPO / "scenarios")
    assert {s.name: s.fault for s in scenarios} == EXPECTED
    for s in scenarios:
        assert s.experiment_path == REPO / "experiments" / f"{s.name}.json"
        assert s.experiment_path.is_file()
        fast, aws = s.slos_for("fast"), s.slos_for("aws")
        # every drill judges recovery time, and AWS budgets are never tighter than the sandbox's
        assert fast.rto_s and aws.rto_s
        for service in ("web", "orders", "catalog"):
            f, a = fast.read_budget(service), aws.read_budget(service)
            if f is not None:
                assert a is not None and a >= f, (s.name, service)
        assert s.load_for("aws").duration_s >= s.load_for("fast").duration_s


def test_shipped_scenarios_encode_the_intended_slos() -> None:
    by_name = {s.name: s for s in load_all(REPO / "scenarios")}
    region = by_name["region-outage"].slos_for("fast")
    assert region.max_lost_writes is None and region.max_rpo_s is not None
    assert region.expected_during_region("catalog") == "recovery"
    assert set(region.must_switch) == {"web", "orders", "catalog"}
    svc = by_name["service-failover"]
    assert svc.experiment_config == {"gameday_failover_service": "orders"}
    assert svc.slos.must_switch == ("orders",)
    assert svc.slos.unaffected is not None and set(svc.slos.unaffected.services) == {"web", "catalog"}
    # derived budgets: the timing profile's RDS failover time + the stated 8 s margin
    from gameday.sandbox.timing import get_profile

    for timing in ("fast", "aws"):
        p = get_profile(timing)
        assert by_name["database-failover"].slos_for(timing).write_budget("orders") == pytest.approx(
            p.s(p.db_failover_s) + 8.0)
    assert not by_name["database-crash"].runs_on("aws") and by_name["database-crash"].runs_on("sandbox")
    for name in ("instance-termination", "az-outage", "database-failover", "database-crash"):
        assert by_name[name].slos.max_lost_writes == 0


def test_find_scenario_by_name_and_unknown_name_lists_the_known_ones() -> None:
    assert find_scenario("az-outage", REPO / "scenarios").name == "az-outage"
    with pytest.raises(ConfigError) as info:
        find_scenario("no-such-drill", REPO / "scenarios")
    assert "region-outage" in str(info.value) and "--scenario" in str(info.value)


# --- parsing and merging -----------------------------------------------------------------------

def test_good_file_parses_with_defaults_and_timing_override(repo: Path) -> None:
    s = load_scenario(write(repo, GOOD))
    assert isinstance(s, Scenario)
    assert (s.load.probe_rate, s.load.write_rate, s.load.duration_s) == (20.0, 10.0, 60.0)
    assert s.slos.read_budget("orders") == 8 and s.slos.read_budget("web") == 5
    assert s.slos.write_budget("orders") == 8  # no write_rto_s: the read budget applies
    aws = s.slos_for("aws")
    assert aws.read_budget("orders") == 90  # whole key replaced: no mix of profiles
    assert aws.must_switch == ("orders",) and aws.max_lost_writes == 0  # untouched keys kept
    assert s.slos_for("fast") == s.slos
    with pytest.raises(ConfigError, match="unknown timing profile 'slow'"):
        s.slos_for("slow")


def test_scenario_is_frozen(repo: Path) -> None:
    s = load_scenario(write(repo, GOOD))
    with pytest.raises(AttributeError):
        s.name = "x"  # type: ignore[misc]


# --- bad files ---------------------------------------------------------------------------------

def test_missing_required_field(repo: Path) -> None:
    path = write(repo, GOOD.replace("fault: service\n", ""))
    err = error_for(path)
    assert err.file == str(path) and err.field == "fault"
    assert "required field is missing" in str(err)
    assert "fix: add 'fault' (one of" in str(err) and '"region"' in str(err)


def test_wrong_type_names_the_nested_field(repo: Path) -> None:
    path = write(repo, GOOD.replace("orders: 8}", "orders: fast}"))
    err = error_for(path)
    assert err.field == "slos.rto_s.orders"
    assert str(err).startswith(f"{path}: field 'slos.rto_s.orders': expected a number of seconds > 0, "
                               "got string 'fast'")
    assert "fix:" in str(err)


def test_negative_budget_in_a_timing_override(repo: Path) -> None:
    err = error_for(write(repo, GOOD.replace('rto_s: {"*": 90}', 'rto_s: {"*": -1}')))
    assert err.field == "slos_by_timing.aws.rto_s.*"


def test_unknown_key_lists_the_allowed_ones(repo: Path) -> None:
    err = error_for(write(repo, GOOD.replace("  max_lost_writes: 0", "  max_lost_write: 0")))
    assert err.field == "slos.max_lost_write"
    assert "unknown key 'max_lost_write'" in str(err)
    assert "allowed keys here: during_region, end_region, max_lost_writes, max_replica_lag_s" in str(err)
    top = error_for(write(repo, GOOD + "timeout: 3\n"))
    assert top.field == "timeout" and "experiment_config" in (top.hint or "")


def test_bad_enum_value(repo: Path) -> None:
    err = error_for(write(repo, GOOD.replace("fault: service", "fault: meteor")))
    assert err.field == "fault" and "got string 'meteor'" in str(err)


def test_missing_experiment_file(repo: Path) -> None:
    err = error_for(write(repo, GOOD.replace("experiment: demo", "experiment: experiments/nope.json")))
    assert err.field == "experiment"
    assert "nope.json does not exist" in str(err) and "use one of: demo" in str(err)


def test_experiment_config_key_unknown_to_the_experiment(repo: Path) -> None:
    err = error_for(write(repo, GOOD.replace("gameday_failover_service:", "gameday_failover_servise:")))
    assert err.field == "experiment_config.gameday_failover_servise"
    assert "use one of: gameday_failover_service" in str(err)


def test_bad_yaml_names_file_and_line(repo: Path) -> None:
    path = write(repo, "name: demo\nslos: {rto_s: [1, 2\n")
    err = error_for(path)
    assert err.file == str(path) and "invalid YAML at line" in str(err)


def test_duplicate_key_is_rejected(repo: Path) -> None:
    err = error_for(write(repo, GOOD + "fault: region\n"))
    assert "duplicate key 'fault'" in str(err)


def test_not_a_mapping(repo: Path) -> None:
    err = error_for(write(repo, "- a\n- b\n"))
    assert "must be a YAML mapping, got a list" in str(err)


def test_name_must_match_the_file(repo: Path) -> None:
    err = error_for(write(repo, GOOD, name="other"))
    assert err.field == "name" and "set name: other" in str(err)


def test_semantic_conflicts(repo: Path) -> None:
    err = error_for(write(repo, GOOD.replace("services: [web]", "services: [web, orders]")))
    assert err.field == "slos.unaffected.services"
    assert "'orders' is both unaffected and must_switch" in str(err)
    err = error_for(write(repo, GOOD.replace("duration_s: 60", "duration_s: 12")))
    assert err.field == "load.duration_s"


def test_missing_file_and_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="no scenario files"):
        load_all(tmp_path)
