"""Mutation tests: the user's own Terraform breaks the sandbox, and the unchanged drills must FAIL.

Each test starts a sandbox with one of the shipped variants in ``provision/terraform/examples/``
(applied with ``--var-file``, exactly as a user would) and runs the matching scenario from
``scenarios/`` with its SLOs as written. The drill must fail with the SLO verdict that names what
the variant broke. That the reference Terraform passes the same drills is the drill suite itself
(``pytest -m drill``), not repeated here.

One sandbox per test (each variant is a different stack), grouped per xdist worker like the
other sandbox tests (``--dist loadgroup``); marked ``sandbox``, not ``drill``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gameday.pytest_plugin import VariantSandbox, assert_breach, assert_held, variant_sandbox, verdict_table

REPO_ROOT = Path(__file__).resolve().parents[2]
SCENARIOS_DIR = REPO_ROOT / "scenarios"
EXAMPLES = REPO_ROOT / "provision" / "terraform" / "examples"

pytestmark = pytest.mark.sandbox


def _sandbox(request: pytest.FixtureRequest, tmp_path: Path, example: str) -> Iterator[VariantSandbox]:
    yield from variant_sandbox(request, tmp_path / "runs", SCENARIOS_DIR, var_files=(str(EXAMPLES / example),))


def _recorded(sandbox: VariantSandbox, example: str) -> None:
    """The variant is named where a report reads it: endpoints.json and the daemon's status."""
    want = [str((EXAMPLES / example).resolve())]
    assert list(sandbox.endpoints.var_files) == want
    assert (sandbox.status().get("endpoints") or {}).get("var_files") == want


SHOW_ENV = ("import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
            "if k.startswith(('AWS_', 'GAMEDAY_'))}))")


def _evaluated_env(sandbox: VariantSandbox, *flags: str) -> tuple[str, dict[str, str]]:
    """``eval "$(gameday sandbox env)"`` in a real shell; returns (printed text, resulting environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GAMEDAY_"))}
    argv = [sys.executable, "-m", "gameday", "sandbox", "env", "--state-dir", str(sandbox.state), *flags]
    printed = subprocess.run(argv, env=env, text=True, capture_output=True, timeout=60, check=True).stdout
    script = f'eval "$({" ".join(argv)})" && {sys.executable} -c "{SHOW_ENV}"'
    out = subprocess.run(["bash", "-c", script], env=env, text=True, capture_output=True, timeout=60, check=True)
    return printed, json.loads(out.stdout)


def _check_env_command(sandbox: VariantSandbox) -> None:
    """What ``chaos run`` needs, from the running sandbox; the DB password only on request."""
    from gameday.chaos.config import experiment_env

    printed, env = _evaluated_env(sandbox)
    want = {**sandbox.endpoints.aws_env(), **experiment_env(sandbox.endpoints, sandbox.topology)}
    assert {k: env.get(k) for k in want} == want
    assert env["AWS_ENDPOINT_URL"] == sandbox.endpoints.aws_endpoint_url and env["AWS_REGION"]
    # a hand-run chaos run's undo log lands where 'gameday abort --state-dir' and the reset replay it
    from gameday.safety import undolog

    assert env[undolog.ENV_DIR] == str(undolog.sandbox_undo_dir(sandbox.state))
    assert "GAMEDAY_DB_PASSWORD" not in env
    assert sandbox.password and sandbox.password not in printed
    assert "slow-health-check.tfvars" in printed  # the variant is named in the output's header
    _, with_secrets = _evaluated_env(sandbox, "--with-secrets")
    assert with_secrets["GAMEDAY_DB_PASSWORD"] == sandbox.password


def _db_roles(sandbox: VariantSandbox) -> list[Any]:
    return [(n.get("name"), n.get("region"), n.get("role")) for n in sandbox.status().get("database", [])]


def _aws(sandbox: VariantSandbox, service: str, region: str) -> Any:
    """A boto3 client of the sandbox's control plane: the variant must be in the AWS API state."""
    import boto3

    return boto3.client(service, region_name=region,  # type: ignore[call-overload]
                        endpoint_url=sandbox.endpoints.aws_endpoint_url,
                        aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def single_az(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VariantSandbox]:
    yield from _sandbox(request, tmp_path, "single-az.tfvars")


@pytest.fixture
def slow_health_check(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VariantSandbox]:
    yield from _sandbox(request, tmp_path, "slow-health-check.tfvars")


@pytest.fixture
def no_recovery_traffic(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VariantSandbox]:
    yield from _sandbox(request, tmp_path, "no-recovery-traffic.tfvars")


def test_single_az_database_crash_breaches_write_rto_or_loses_writes(single_az: VariantSandbox) -> None:
    """No Multi-AZ standby: a crashed primary recovers in place, far slower than a failover."""
    _recorded(single_az, "single-az.tfvars")
    primary = single_az.endpoints.primary_region
    rds = _aws(single_az, "rds", primary).describe_db_instances(
        DBInstanceIdentifier=single_az.topology.database.primary_identifier)["DBInstances"][0]
    assert rds["MultiAZ"] is False, f"db_multi_az = false did not reach the RDS instance: {rds['MultiAZ']}"
    roles = _db_roles(single_az)
    result = single_az.drill("database-crash")
    print(f"database-crash against single-az.tfvars:\n{verdict_table(result)}")  # shown with -rP
    by_name = {v.name: v for v in result.verdicts}
    write_rto, lost = by_name.get("rto.orders.write"), by_name.get("lost_writes")
    breached = [v for v in (write_rto, lost) if v is not None and not v.passed]
    assert breached, (f"database-crash passed against a single-AZ database (nodes before the drill: {roles})\n"
                      f"{verdict_table(result)}")
    for v in breached:
        if v.name == "rto.orders.write":
            assert_breach(result, v.name, "orders write RTO", "orders writes never recovered")
        else:
            assert_breach(result, v.name, "lost acknowledged writes: ")


def test_slow_health_check_instance_termination_breaches_read_rto(slow_health_check: VariantSandbox) -> None:
    """30 s x 10 failed checks: the ALBs keep sending requests to the terminated instances."""
    _recorded(slow_health_check, "slow-health-check.tfvars")
    elbv2 = _aws(slow_health_check, "elbv2", slow_health_check.endpoints.primary_region)
    for tg in elbv2.describe_target_groups()["TargetGroups"]:
        got = (tg["HealthCheckIntervalSeconds"], tg["HealthCheckTimeoutSeconds"], tg["UnhealthyThresholdCount"])
        assert got == (30, 5, 10), f"{tg['TargetGroupName']}: the var file did not reach the target group: {got}"
    _check_env_command(slow_health_check)
    result = slow_health_check.drill("instance-termination")
    print(f"instance-termination against slow-health-check.tfvars:\n{verdict_table(result)}")
    for svc in slow_health_check.topology.services:  # one instance of every service is terminated
        assert_breach(result, f"rto.{svc}.read", f"{svc} read RTO", f"{svc} reads never recovered")
    # attributable: slower detection costs availability, never acknowledged writes
    assert_held(result, "lost_writes")


def test_no_recovery_traffic_region_outage_never_switches(no_recovery_traffic: VariantSandbox) -> None:
    """Recovery ALBs of weight 0 in their endpoint groups: Global Accelerator has no failover target."""
    sandbox = no_recovery_traffic
    _recorded(sandbox, "no-recovery-traffic.tfvars")
    ga = _aws(sandbox, "globalaccelerator", "us-west-2")
    for svc in sandbox.topology.services.values():
        arn = svc.endpoint_group_arns[sandbox.endpoints.recovery_region]
        group = ga.describe_endpoint_group(EndpointGroupArn=arn)["EndpointGroup"]
        weights = [e["Weight"] for e in group["EndpointDescriptions"]]
        assert weights == [0], f"{arn}: recovery_endpoint_weight = 0 did not reach the endpoint group: {weights}"
    result = sandbox.drill("region-outage")
    print(f"region-outage against no-recovery-traffic.tfvars:\n{verdict_table(result)}")
    recovery = sandbox.endpoints.recovery_region
    for svc in ("web", "orders", "catalog"):  # the scenario's must_switch list
        assert_breach(result, f"must_switch.{svc}", f"{svc} never switched region")
        assert_breach(result, f"during_region.{svc}", f"expected recovery {recovery}")
        assert_breach(result, f"rto.{svc}.read", f"{svc} reads never recovered", "s allowed")
