"""Sandbox snapshots: cold up saves one, a warm up restores it, indistinguishable to drills and terraform.

One sandbox at a time (cold, then warm), each torn down in ``finally``.
"""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import boto3
import pytest

from gameday.drill.runner import steady_state
from gameday.provision import module_dir
from gameday.provision.runner import TerraformRunner
from gameday.provision.sandbox import AWS_ENV_DROPPED_FOR_SANDBOX, DEFAULT_CREATE_TIMEOUT, SANDBOX_ENV
from gameday.sandbox import client, snapshot
from gameday.target import SANDBOX_CREDENTIALS


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _control_plane_view(url: str, region: str) -> dict[str, object]:
    """What a drill sees of the control plane: ASGs, target groups, DB instances, queues."""
    kw = {"endpoint_url": url, "region_name": region, "aws_access_key_id": SANDBOX_CREDENTIALS["AWS_ACCESS_KEY_ID"],
          "aws_secret_access_key": SANDBOX_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}
    asgs = boto3.client("autoscaling", **kw).describe_auto_scaling_groups()["AutoScalingGroups"]
    tgs = boto3.client("elbv2", **kw).describe_target_groups()["TargetGroups"]
    dbs = boto3.client("rds", **kw).describe_db_instances()["DBInstances"]
    return {"asgs": sorted((a["AutoScalingGroupName"], a["MinSize"], a["MaxSize"]) for a in asgs),
            "tgs": sorted((t["TargetGroupName"], t["HealthCheckPath"]) for t in tgs),
            "dbs": sorted((d["DBInstanceIdentifier"], d["MultiAZ"], d["EngineVersion"]) for d in dbs)}


def test_a_changed_variable_is_a_different_key(tmp_path: Path) -> None:
    base = snapshot.key_parts(module_dir(), "global_accelerator", (), ())
    var = tmp_path / "x.tfvars"
    var.write_text("deregistration_delay = 5\n")
    keys = {snapshot.snapshot_key(base),
            snapshot.snapshot_key(snapshot.key_parts(module_dir(), "global_accelerator", (), ("asg_max_size=4",))),
            snapshot.snapshot_key(snapshot.key_parts(module_dir(), "route53", (), ())),
            snapshot.snapshot_key(snapshot.key_parts(module_dir(), "global_accelerator", (str(var),), ()))}
    assert len(keys) == 4
    var.write_text("deregistration_delay = 6\n")  # same file name, other content
    assert snapshot.snapshot_key(snapshot.key_parts(module_dir(), "global_accelerator", (str(var),), ())) not in keys
    assert snapshot.snapshot_key(base) == snapshot.snapshot_key(
        snapshot.key_parts(module_dir(), "global_accelerator", (), ()))


@pytest.mark.sandbox
def test_cold_then_warm_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEDAY_HOME", str(tmp_path / "home"))  # inherited by the daemons
    lines: list[str] = []
    cold_state, warm_state = tmp_path / "cold", tmp_path / "warm"
    try:
        t0 = time.monotonic()
        ep = client.up(cold_state, timing="fast", snapshots="cold", timeout=900, progress=lines.append)
        cold_s = time.monotonic() - t0
        assert any("terraform applied" in ln for ln in lines)
        assert any(" saved in " in ln and "snapshot" in ln for ln in lines), lines[-20:]
        cold_topology = json.loads((cold_state / "topology.json").read_text())
        cold_view = _control_plane_view(ep.aws_endpoint_url, ep.primary_region)
        cold_services = sorted(ep.services)
        cold_url = ep.aws_endpoint_url
    finally:
        client.down(cold_state)

    snaps = snapshot.list_snapshots()
    assert len(snaps) == 1
    snap = snaps[0]
    assert _mode(snap.path.parent) == 0o700 and _mode(snap.path / "secrets.json") == 0o600
    assert _mode(snap.path / "controlplane.pickle") == 0o600

    lines.clear()
    try:
        t0 = time.monotonic()
        ep = client.up(warm_state, timing="fast", timeout=300, progress=lines.append)
        warm_s = time.monotonic() - t0
        assert any(f"restored snapshot {snap.key}" in ln for ln in lines), lines
        assert not any("terraform applied" in ln for ln in lines)
        assert warm_s < cold_s, (warm_s, cold_s)
        # same topology (the control plane's URL aside: fresh port), same control-plane resources
        warm_topology = json.loads((warm_state / "topology.json").read_text())
        assert json.loads(json.dumps(cold_topology).replace(cold_url, ep.aws_endpoint_url)) == warm_topology
        assert sorted(ep.services) == cold_services
        assert _control_plane_view(ep.aws_endpoint_url, ep.primary_region) == cold_view
        # the database password is the one the restored RDS holds, kept 0600
        secrets = warm_state / "secrets.json"
        assert _mode(secrets) == 0o600 and json.loads(secrets.read_text())["db_password"] == snap.password
        # the drills' precondition: every service healthy through its global URL, from the primary
        assert set(steady_state(ep).values()) == {ep.primary_region}
        # terraform sees exactly the state a cold apply left: nothing to change
        runner = TerraformRunner(module_dir(), warm_state / "terraform", env=dict(SANDBOX_ENV),
                                 unset_env=AWS_ENV_DROPPED_FOR_SANDBOX,
                                 vars={"db_password": snap.password, "create_timeout": DEFAULT_CREATE_TIMEOUT,
                                       "routing_mode": "global_accelerator"}, timeout_s=300)
        res = runner.run(["plan", "-detailed-exitcode", "-input=false", "-no-color", "-lock=false"], check=False)
        assert res.exit_code == 0, res.stdout[-3000:]
    finally:
        client.down(warm_state)
