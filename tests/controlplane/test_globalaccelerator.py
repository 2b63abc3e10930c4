"""Global Accelerator emulation over real HTTP with boto3: full lifecycle and AWS error shapes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gameday.controlplane.globalaccelerator.models import ga_backends

ALB_P = "arn:aws:elasticloadbalancing:eu-south-1:123456789012:loadbalancer/app/web-p/1"
ALB_R = "arn:aws:elasticloadbalancing:eu-central-1:123456789012:loadbalancer/app/web-r/2"


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_lifecycle_with_traffic_dial_update(client: Callable[..., Any]) -> None:
    ga = client("globalaccelerator", "us-west-2")
    acc = ga.create_accelerator(Name="web", Tags=[{"Key": "service", "Value": "web"}])["Accelerator"]
    arn = acc["AcceleratorArn"]
    assert acc["Status"] == "DEPLOYED"
    assert acc["DnsName"].endswith(".awsglobalaccelerator.com") and acc["DnsName"].startswith("a")
    assert len(acc["IpSets"][0]["IpAddresses"]) == 2
    assert (
        ga.describe_accelerator_attributes(AcceleratorArn=arn)["AcceleratorAttributes"]["FlowLogsEnabled"]
        is False
    )
    assert ga.list_tags_for_resource(ResourceArn=arn)["Tags"] == [{"Key": "service", "Value": "web"}]

    listener = ga.create_listener(
        AcceleratorArn=arn, Protocol="TCP", PortRanges=[{"FromPort": 80, "ToPort": 80}]
    )["Listener"]
    groups = {}
    for region, alb, dial in (("eu-south-1", ALB_P, 100.0), ("eu-central-1", ALB_R, 0.0)):
        groups[region] = ga.create_endpoint_group(
            ListenerArn=listener["ListenerArn"],
            EndpointGroupRegion=region,
            TrafficDialPercentage=dial,
            HealthCheckProtocol="HTTP",
            HealthCheckPath="/health",
            HealthCheckPort=80,
            HealthCheckIntervalSeconds=10,
            ThresholdCount=3,
            EndpointConfigurations=[{"EndpointId": alb, "Weight": 128}],
        )["EndpointGroup"]
    primary = groups["eu-south-1"]
    assert primary["TrafficDialPercentage"] == 100.0
    assert primary["HealthCheckPath"] == "/health"
    assert primary["EndpointDescriptions"][0]["EndpointId"] == ALB_P
    assert primary["EndpointDescriptions"][0]["HealthState"] == "HEALTHY"
    with pytest.raises(ClientError) as exc:
        ga.create_endpoint_group(ListenerArn=listener["ListenerArn"], EndpointGroupRegion="eu-south-1")
    assert _code(exc) == "EndpointGroupAlreadyExistsException"

    updated = ga.update_endpoint_group(
        EndpointGroupArn=primary["EndpointGroupArn"], TrafficDialPercentage=25.0
    )["EndpointGroup"]
    assert updated["TrafficDialPercentage"] == 25.0
    assert updated["HealthCheckPath"] == "/health"  # untouched settings survive a partial update
    described = ga.describe_endpoint_group(EndpointGroupArn=primary["EndpointGroupArn"])["EndpointGroup"]
    assert described["TrafficDialPercentage"] == 25.0
    model = ga_backends["123456789012"].endpoint_groups[primary["EndpointGroupArn"]]
    assert model.traffic_dial_percentage == 25.0 and model.threshold_count == 3
    assert len(ga.list_endpoint_groups(ListenerArn=listener["ListenerArn"])["EndpointGroups"]) == 2

    # Deletion order is enforced as in AWS.
    with pytest.raises(ClientError) as exc:
        ga.delete_accelerator(AcceleratorArn=arn)
    assert _code(exc) == "AcceleratorNotDisabledException"
    ga.update_accelerator(AcceleratorArn=arn, Enabled=False)
    with pytest.raises(ClientError) as exc:
        ga.delete_accelerator(AcceleratorArn=arn)
    assert _code(exc) == "AssociatedListenerFoundException"
    with pytest.raises(ClientError) as exc:
        ga.delete_listener(ListenerArn=listener["ListenerArn"])
    assert _code(exc) == "AssociatedEndpointGroupFoundException"
    for g in groups.values():
        ga.delete_endpoint_group(EndpointGroupArn=g["EndpointGroupArn"])
    ga.delete_listener(ListenerArn=listener["ListenerArn"])
    ga.delete_accelerator(AcceleratorArn=arn)
    assert ga.list_accelerators()["Accelerators"] == []
    with pytest.raises(ClientError) as exc:
        ga.describe_accelerator(AcceleratorArn=arn)
    assert _code(exc) == "AcceleratorNotFoundException"
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_invalid_arguments_are_400(client: Callable[..., Any]) -> None:
    ga = client("globalaccelerator", "us-west-2")
    arn = ga.create_accelerator(Name="orders")["Accelerator"]["AcceleratorArn"]
    li = ga.create_listener(AcceleratorArn=arn, Protocol="TCP", PortRanges=[{"FromPort": 80, "ToPort": 80}])
    with pytest.raises(ClientError) as exc:
        ga.create_endpoint_group(
            ListenerArn=li["Listener"]["ListenerArn"],
            EndpointGroupRegion="eu-south-1",
            HealthCheckProtocol="UDP",
        )
    assert _code(exc) == "InvalidArgumentException"
    with pytest.raises(ClientError) as exc:
        ga.describe_listener(ListenerArn=arn + "/listener/deadbeef")
    assert _code(exc) == "ListenerNotFoundException"


def test_create_endpoint_group_is_idempotent_per_token(client: Callable[..., Any]) -> None:
    """A retried CreateEndpointGroup (same IdempotencyToken) returns the group it created; a new
    request (new token) for the same listener and region is still refused, as AWS does."""
    ga = client("globalaccelerator", "us-west-2")
    acc = ga.create_accelerator(Name="idem")["Accelerator"]
    li = ga.create_listener(AcceleratorArn=acc["AcceleratorArn"], Protocol="TCP",
                            PortRanges=[{"FromPort": 80, "ToPort": 80}])["Listener"]
    kw = {"ListenerArn": li["ListenerArn"], "EndpointGroupRegion": "eu-south-1",
          "EndpointConfigurations": [{"EndpointId": ALB_P, "Weight": 128}]}
    first = ga.create_endpoint_group(IdempotencyToken="retry-1", **kw)["EndpointGroup"]
    again = ga.create_endpoint_group(IdempotencyToken="retry-1", **kw)["EndpointGroup"]
    assert again["EndpointGroupArn"] == first["EndpointGroupArn"]
    groups = ga.list_endpoint_groups(ListenerArn=li["ListenerArn"])["EndpointGroups"]
    assert [g["EndpointGroupArn"] for g in groups] == [first["EndpointGroupArn"]]
    with pytest.raises(ClientError) as exc:
        ga.create_endpoint_group(IdempotencyToken="retry-2", **kw)
    assert _code(exc) == "EndpointGroupAlreadyExistsException"
