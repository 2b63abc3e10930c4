"""Full two-region stack against a standalone control plane: apply, outputs, destroy, nothing left."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import boto3

from gameday.provision.runner import TerraformRunner, TfEvent
from gameday.provision.sandbox import (
    AWS_ENV_DROPPED_FOR_SANDBOX,
    DEFAULT_CREATE_TIMEOUT,
    SANDBOX_ENV,
    SANDBOX_PARALLELISM,
)
from gameday.provision.sandbox_override import render_sandbox_override
from gameday.util.net import free_port, port_open
from gameday.util.procs import ProcessRegistry, pid_alive
from gameday.util.redact import Secret
from gameday.util.retry import wait_until

SERVICES = {"web", "orders", "catalog"}
PRIMARY, RECOVERY = "eu-south-1", "eu-central-1"
ALB_KEYS = {"alb_arn", "alb_dns_name", "target_group_arn", "listener_arn", "asg_name", "launch_template_id"}
DB_KEYS = {
    "primary_identifier",
    "primary_region",
    "address",
    "port",
    "endpoint",
    "db_name",
    "username",
    "replica_identifier",
    "replica_region",
    "replica_address",
    "replica_endpoint",
}


def _start_cp(reg: ProcessRegistry, log: Path) -> tuple[str, int]:
    port = free_port()
    reg.spawn("controlplane", [sys.executable, "-m", "gameday.controlplane", "--port", str(port)], log=log)
    wait_until(
        "control plane READY", lambda: "READY " in (log.read_text() if log.exists() else ""), timeout=30
    )
    return f"http://127.0.0.1:{port}", port


def _check_outputs(out: dict[str, dict[str, object]]) -> None:
    assert set(out) == {
        "regions",
        "routing_mode",
        "services",
        "database",
        "database_password",
        "queues",
        "frontend",
    }
    assert out["database_password"]["sensitive"] is True
    assert out["regions"]["value"] == {"primary": PRIMARY, "recovery": RECOVERY}
    assert out["routing_mode"]["value"] == "global_accelerator"
    services = out["services"]["value"]
    assert isinstance(services, dict) and set(services) == SERVICES
    for svc in services.values():
        assert set(svc) == {
            "regions",
            "global_dns_name",
            "accelerator_arn",
            "accelerator_dns_name",
            "ga_listener_arn",
            "endpoint_group_arns",
            "route53_zone_id",
            "health_check_ids",
        }
        # global_accelerator mode: the accelerator is the global name, the Route 53 fields are null
        assert svc["global_dns_name"] == svc["accelerator_dns_name"]
        assert svc["route53_zone_id"] is None and svc["health_check_ids"] is None
        assert set(svc["regions"]) == {PRIMARY, RECOVERY}
        for region, r in svc["regions"].items():
            assert set(r) == ALB_KEYS and f":{region}:" in r["alb_arn"]
        assert svc["accelerator_dns_name"].endswith(".awsglobalaccelerator.com")
        assert set(svc["endpoint_group_arns"]) == {PRIMARY, RECOVERY}
    db = out["database"]["value"]
    assert isinstance(db, dict) and set(db) == DB_KEYS
    assert db["primary_region"] == PRIMARY and db["replica_region"] == RECOVERY and db["port"] == 5432
    queues = out["queues"]["value"]
    assert isinstance(queues, dict) and set(queues) == {PRIMARY, RECOVERY}
    frontend = out["frontend"]["value"]
    assert isinstance(frontend, dict) and set(frontend) == {"bucket", "website_endpoint"}


def _assert_subnets_tagged_for_fis(url: str, regions: dict[str, str]) -> None:
    """The region-outage FIS template targets subnets by the gameday:region tag: every region has some."""
    for region in regions.values():
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=url, aws_access_key_id="test",
                           aws_secret_access_key="test")
        subnets = ec2.describe_subnets(Filters=[{"Name": "tag:gameday:region", "Values": [region]}])["Subnets"]
        assert len(subnets) >= 2, f"{region}: subnets tagged gameday:region={region}: {subnets}"


def _assert_empty(url: str) -> None:
    def c(service: str, region: str) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    for region in (PRIMARY, RECOVERY):
        assert c("elbv2", region).describe_load_balancers()["LoadBalancers"] == []
        assert c("elbv2", region).describe_target_groups()["TargetGroups"] == []
        assert c("autoscaling", region).describe_auto_scaling_groups()["AutoScalingGroups"] == []
        assert c("rds", region).describe_db_instances()["DBInstances"] == []
        assert c("sqs", region).list_queues().get("QueueUrls", []) == []
        assert c("ec2", region).describe_launch_templates()["LaunchTemplates"] == []
        vpcs = c("ec2", region).describe_vpcs()["Vpcs"]
        assert all(v.get("IsDefault") for v in vpcs)
    assert c("globalaccelerator", "us-west-2").list_accelerators()["Accelerators"] == []
    assert c("s3", PRIMARY).list_buckets()["Buckets"] == []


def test_stack_applies_and_destroys_cleanly(tmp_path: Path, stack_dir: Path) -> None:
    """The sandbox's own apply path (TerraformRunner, fast waiters) on the full stack."""
    reg = ProcessRegistry(tmp_path / "state")
    seen: list[TfEvent] = []
    try:
        url, port = _start_cp(reg, tmp_path / "cp.log")
        runner = TerraformRunner(
            stack_dir, tmp_path / "work", env=dict(SANDBOX_ENV), unset_env=AWS_ENV_DROPPED_FOR_SANDBOX,
            vars={"db_password": Secret("sandbox-only-password"), "create_timeout": DEFAULT_CREATE_TIMEOUT,
                  "delete_timeout": DEFAULT_CREATE_TIMEOUT},
            timeout_s=600.0, on_event=seen.append,
        )
        runner.write_override("sandbox", render_sandbox_override(url))
        runner.init()
        runner.apply(fast_waiters=True, parallelism=SANDBOX_PARALLELISM)
        rounds = 1 + sum(1 for e in seen if e.type == "fast_waiter_round" and e.command == "apply")
        assert rounds <= 4
        res = runner.run(["output", "-json"], keep_log=False, quiet=True)
        out = json.loads(res.stdout)
        _check_outputs(out)
        _assert_subnets_tagged_for_fis(url, out["regions"]["value"])
        plan = runner.plan(out=None)
        assert not plan.has_changes, f"stack did not converge (plan shows changes): {plan.changes}"
        runner.destroy(parallelism=SANDBOX_PARALLELISM)
        assert runner.state_list() == []
        _assert_empty(url)
        proc = reg.procs["controlplane"].popen
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        reg.forget("controlplane")
        assert not pid_alive(proc.pid)
        wait_until("control plane port closed", lambda: not port_open(port), timeout=5)
    finally:
        reg.kill_all()
