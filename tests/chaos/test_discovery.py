"""Our activities are discoverable the way chaostoolkit-aws's are."""

from __future__ import annotations

import importlib
from pathlib import Path

from chaos_testlib import run_chaos

from gameday.chaos import ACTIVITY_MODULES, discover

EXPECTED = {
    ("gameday.chaos.globalaccelerator.actions", "set_traffic_dial"),
    ("gameday.chaos.globalaccelerator.actions", "fail_over_service"),
    ("gameday.chaos.globalaccelerator.probes", "describe_endpoint_group"),
    ("gameday.chaos.globalaccelerator.probes", "traffic_dial"),
    ("gameday.chaos.globalaccelerator.probes", "endpoint_health"),
    ("gameday.chaos.region.actions", "region_outage"),
    ("gameday.chaos.region.actions", "restore_region"),
    ("gameday.chaos.region.actions", "cut_inter_region_link"),
    ("gameday.chaos.region.actions", "heal_inter_region_link"),
    ("gameday.chaos.region.probes", "experiment_state"),
    ("gameday.chaos.database.probes", "is_writable"),
    ("gameday.chaos.database.probes", "role"),
    ("gameday.chaos.database.probes", "replica_lag_seconds"),
    ("gameday.chaos.database.probes", "replication_healthy"),
    ("gameday.chaos.database.probes", "count_records"),
    ("gameday.chaos.database.actions", "wait_for_writable"),
    ("gameday.chaos.database.actions", "promote_read_replica"),
    ("gameday.chaos.http.probes", "service_healthy"),
    ("gameday.chaos.http.probes", "all_services_healthy"),
    ("gameday.chaos.http.probes", "serving_region"),
    ("gameday.chaos.http.actions", "wait_for_region"),
    ("gameday.chaos.autoscaling.actions", "set_desired_capacity"),
    ("gameday.chaos.sandbox.actions", "crash_primary_db"),
}


def test_discover_lists_every_activity_with_its_type() -> None:
    found = {(a["mod"], a["name"]): a for a in discover()["activities"]}
    assert set(found) >= EXPECTED
    for (mod, _), activity in found.items():
        assert activity["type"] == ("action" if mod.endswith(".actions") else "probe")
        assert activity["doc"], activity["name"]
        names = [arg["name"] for arg in activity["arguments"]]
        assert names[-2:] == ["configuration", "secrets"], activity["name"]


def test_every_exported_name_is_a_function_with_a_one_line_docstring() -> None:
    for mod_name, _ in ACTIVITY_MODULES:
        mod = importlib.import_module(mod_name)
        for name in mod.__all__:
            fn = getattr(mod, name)
            assert callable(fn) and fn.__doc__ and fn.__doc__.strip().splitlines()[0], f"{mod_name}.{name}"


def test_chaos_discover_cli(tmp_path: Path) -> None:
    proc = run_chaos(["discover", "--no-system-info", "--no-install", "gameday"], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = (tmp_path / "discovery.json").read_text()
    assert "region_outage" in text and "replication_healthy" in text
