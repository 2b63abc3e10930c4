"""Hooks see real calls (service/action/region/params/status) and can replace moto's answer."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from gameday.controlplane import ApiCall, ControlPlane


def test_after_hook_sees_query_json_and_rest_calls(cp: ControlPlane, client: Callable[..., Any]) -> None:
    seen: list[ApiCall] = []
    lock = threading.Lock()

    def record(call: ApiCall) -> None:
        with lock:
            seen.append(call)

    for service in ("ec2", "sqs", "s3", "elbv2", "globalaccelerator", "fis"):
        cp.hooks.after(service, "*", record)
    client("ec2", "eu-central-1").describe_vpcs()
    client("sqs").create_queue(QueueName="orders")
    client("s3").create_bucket(
        Bucket="front-end-x", CreateBucketConfiguration={"LocationConstraint": "eu-south-1"}
    )
    client("elbv2").describe_load_balancers()
    client("globalaccelerator", "us-west-2").list_accelerators()
    client("fis", "eu-central-1").list_experiment_templates()
    got = {(c.service, c.action, c.region, c.status) for c in seen}
    assert ("ec2", "DescribeVpcs", "eu-central-1", 200) in got
    assert ("sqs", "CreateQueue", "eu-south-1", 200) in got
    assert ("s3", "CreateBucket", "eu-south-1", 200) in got
    assert ("elbv2", "DescribeLoadBalancers", "eu-south-1", 200) in got
    assert ("globalaccelerator", "ListAccelerators", "us-west-2", 200) in got
    assert ("fis", "ListExperimentTemplates", "eu-central-1", 200) in got
    sqs_call = next(c for c in seen if c.action == "CreateQueue")
    assert sqs_call.params["QueueName"] == "orders"


def test_specific_action_hook_and_error_status(cp: ControlPlane, client: Callable[..., Any]) -> None:
    statuses: list[int] = []
    cp.hooks.after("rds", "DescribeDBInstances", lambda c: statuses.append(c.status))
    rds = client("rds")
    rds.describe_db_instances()
    with contextlib.suppress(rds.exceptions.DBInstanceNotFoundFault):
        rds.describe_db_instances(DBInstanceIdentifier="missing")
    assert statuses == [200, 404]


def test_override_replaces_answer_and_broken_hooks_are_contained(
    cp: ControlPlane, client: Callable[..., Any]
) -> None:
    def boom(call: ApiCall) -> None:
        raise RuntimeError("hook bug")

    body = (
        '<DescribeTargetHealthResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
        "<DescribeTargetHealthResult><TargetHealthDescriptions><member>"
        "<Target><Id>i-0123456789abcdef0</Id><Port>8080</Port></Target>"
        "<TargetHealth><State>unhealthy</State><Reason>Target.FailedHealthChecks</Reason></TargetHealth>"
        "</member></TargetHealthDescriptions></DescribeTargetHealthResult>"
        "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></DescribeTargetHealthResponse>"
    )
    cp.hooks.override("elbv2", "DescribeTargetHealth", boom)
    cp.hooks.override("elbv2", "DescribeTargetHealth", lambda c: (200, {"Content-Type": "text/xml"}, body))
    cp.hooks.after("elbv2", "DescribeTargetHealth", boom)
    got = client("elbv2").describe_target_health(TargetGroupArn="arn:aws:elasticloadbalancing:x:tg/none/1")
    health = got["TargetHealthDescriptions"][0]
    assert health["Target"]["Id"] == "i-0123456789abcdef0"
    assert health["TargetHealth"]["State"] == "unhealthy"
    # The server is still up after the broken hooks.
    assert client("sqs").list_queues().get("QueueUrls", []) == []
