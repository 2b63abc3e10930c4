"""Guardrails against the sandbox's STS (moto: account 123456789012), with a config that asks for them.

One session sandbox serves every test; each runs the real ``gameday experiment run`` CLI. Refused
runs and dry runs must leave the control plane exactly as it was (compared before and after).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.sandbox

CONFIG = ("accounts: [{account}]\nregions: [eu-south-1, eu-central-1]\n"
          "scope_tag: {{key: 'gameday:stack', value: gameday}}\napply_to: [aws, sandbox]\n{extra}")


def _config(tmp: Path, account: str = "'123456789012'", extra: str = "") -> Path:
    p = tmp / "config.yaml"
    p.write_text(CONFIG.format(account=account, extra=extra))
    return p


def _run(sandbox: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GAMEDAY_CONFIRM"))}
    return subprocess.run([sys.executable, "-m", "gameday", "experiment", "run", *args, "--state-dir",
                           str(sandbox.state_dir)], env=env, text=True, capture_output=True, timeout=180,
                          stdin=subprocess.DEVNULL, check=False)


def _control_plane(sandbox: Any) -> dict[str, Any]:
    """What a fault would change: instances, groups, databases, FIS experiments (both regions)."""
    import boto3

    kw = {"endpoint_url": sandbox.aws_endpoint_url, "aws_access_key_id": "test", "aws_secret_access_key": "test"}
    out: dict[str, Any] = {}
    for region in sandbox.regions():
        ec2 = boto3.client("ec2", region_name=region, **kw)
        out[f"{region}/instances"] = sorted((i["InstanceId"], i["State"]["Name"])
                                            for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])
        asg = boto3.client("autoscaling", region_name=region, **kw)
        groups = asg.describe_auto_scaling_groups()["AutoScalingGroups"]
        out[f"{region}/asgs"] = sorted((g["AutoScalingGroupName"], g["DesiredCapacity"], g["MinSize"], len(g["Tags"]))
                                       for g in groups)
        rds = boto3.client("rds", region_name=region, **kw)
        out[f"{region}/dbs"] = sorted((d["DBInstanceIdentifier"], d["DBInstanceStatus"],
                                       d.get("ReadReplicaSourceDBInstanceIdentifier"))
                                      for d in rds.describe_db_instances()["DBInstances"])
        fis = boto3.client("fis", region_name=region, **kw)
        out[f"{region}/fis"] = sorted(e["id"] for e in fis.list_experiments()["experiments"])
    return out


def test_not_allow_listed_account_is_refused(gameday_sandbox: Any, tmp_path: Path) -> None:
    before = _control_plane(gameday_sandbox)
    proc = _run(gameday_sandbox, "instance-termination", "--yes", "--config",
                str(_config(tmp_path, account="'111122223333'")))
    assert proc.returncode == 2, proc.stderr
    assert "account 123456789012" in proc.stderr and "not on the allow-list" in proc.stderr, proc.stderr
    assert "field 'accounts'" in proc.stderr and "Traceback" not in proc.stderr
    assert _control_plane(gameday_sandbox) == before


def test_destructive_run_without_yes_is_refused(gameday_sandbox: Any, tmp_path: Path) -> None:
    before = _control_plane(gameday_sandbox)
    proc = _run(gameday_sandbox, "instance-termination", "--config", str(_config(tmp_path)))
    assert proc.returncode == 2, proc.stderr
    assert "changes account 123456789012 and needs confirmation" in proc.stderr, proc.stderr
    assert "--yes" in proc.stderr
    assert _control_plane(gameday_sandbox) == before


@pytest.mark.parametrize(("extra", "experiment", "field"), [
    ("blast_radius: {max_instances: 1}\n", "instance-termination", "blast_radius.max_instances"),
    ("blast_radius: {max_percent: 50}\n", "service-failover", "blast_radius.max_percent"),
])
def test_blast_radius_is_enforced(gameday_sandbox: Any, tmp_path: Path, extra: str, experiment: str,
                                  field: str) -> None:
    before = _control_plane(gameday_sandbox)
    proc = _run(gameday_sandbox, experiment, "--yes", "--config", str(_config(tmp_path, extra=extra)))
    assert proc.returncode == 2, proc.stderr
    assert f"field '{field}'" in proc.stderr and "refused" in proc.stderr, proc.stderr
    figure = re.search(r"would stop (\d+)", proc.stderr)
    assert figure is not None and int(figure.group(1)) >= 2, proc.stderr   # the measured count, not the limit
    assert _control_plane(gameday_sandbox) == before


def test_scope_tag_is_required(gameday_sandbox: Any, tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    cfg.write_text(cfg.read_text().replace("value: gameday", "value: someone-else"))
    proc = _run(gameday_sandbox, "az-outage", "--yes", "--config", str(cfg))
    assert proc.returncode == 2, proc.stderr
    assert "lacks the scope tag gameday:stack=someone-else" in proc.stderr, proc.stderr


@pytest.mark.parametrize("experiment", sorted(p.stem for p in
                                              (Path(__file__).resolve().parents[2] / "experiments").glob("*.json")))
def test_dry_run_changes_nothing(gameday_sandbox: Any, tmp_path: Path, experiment: str) -> None:
    before = _control_plane(gameday_sandbox)
    proc = _run(gameday_sandbox, experiment, "--dry-run", "--config",
                str(_config(tmp_path, extra="blast_radius: {max_instances: 50, max_percent: 100}\n")))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"dry run of {experiment} on sandbox: nothing is changed"), proc.stdout
    assert "undone by:" in proc.stdout, proc.stdout
    if experiment != "database-crash":  # the crash is a loopback process kill, not an AWS resource
        assert re.search(r"\n    (ec2:instance|ec2:subnet|rds:db-instance|autoscaling:group) ", proc.stdout), \
            proc.stdout
    assert _control_plane(gameday_sandbox) == before
    print(proc.stdout)


def test_sandbox_secrets_are_owner_only(gameday_sandbox: Any) -> None:
    """secrets.json and the terraform state: 0600 files in a 0700 state dir; passwords random and distinct."""
    state = Path(gameday_sandbox.state_dir)
    assert state.stat().st_mode & 0o777 == 0o700
    for f in [state / "secrets.json", *(state / "terraform").glob("terraform.tfstate*")]:
        assert f.stat().st_mode & 0o777 == 0o600, f
    password = json.loads((state / "secrets.json").read_text())["db_password"]
    conf = [p for p in state.rglob("postgresql.conf") if "primary_conninfo = 'host=" in p.read_text(errors="replace")]
    for p in conf:
        text = p.read_text(errors="replace")
        assert password not in text, f"{p} holds the application password"
        assert "password=" in text and p.stat().st_mode & 0o777 == 0o600
