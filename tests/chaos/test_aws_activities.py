"""Global Accelerator, FIS and Auto Scaling activities against the real local control plane.

chaosaws reaches the control plane only through the standard AWS_ENDPOINT_URL environment, exactly
as ``chaos run`` does in a drill; results are read back through the API or the GA models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from chaos_testlib import PRIMARY, RECOVERY

from gameday.chaos._common import ActivityFailed
from gameday.chaos.autoscaling.actions import restore_desired_capacity, set_desired_capacity
from gameday.chaos.globalaccelerator.actions import fail_over_service, restore_service, set_traffic_dial
from gameday.chaos.globalaccelerator.probes import describe_endpoint_group, endpoint_health, traffic_dial
from gameday.chaos.region.actions import (
    cut_inter_region_link,
    heal_inter_region_link,
    region_outage,
    restore_region,
)
from gameday.chaos.region.probes import experiment_state

Aws = Callable[..., Any]
CFG = {"aws_region": PRIMARY}


def _accelerator(aws: Aws) -> dict[str, Any]:
    ga = aws("globalaccelerator", "us-west-2")
    acc = ga.create_accelerator(Name="orders", IdempotencyToken="t1")["Accelerator"]["AcceleratorArn"]
    lst = ga.create_listener(AcceleratorArn=acc, Protocol="TCP", PortRanges=[{"FromPort": 80, "ToPort": 80}],
                             IdempotencyToken="t2")["Listener"]["ListenerArn"]
    groups = {}
    for region in (PRIMARY, RECOVERY):
        alb = f"arn:aws:elasticloadbalancing:{region}:123456789012:loadbalancer/app/orders/{region[-6:]}"
        groups[region] = ga.create_endpoint_group(
            ListenerArn=lst, EndpointGroupRegion=region, IdempotencyToken=f"g-{region}",
            EndpointConfigurations=[{"EndpointId": alb, "Weight": 128}])["EndpointGroup"]["EndpointGroupArn"]
    return {"accelerator": acc, "listener": lst, "groups": groups}


def test_traffic_dial_set_and_read(cp: Any, aws: Aws) -> None:
    ga = _accelerator(aws)
    arn = ga["groups"][PRIMARY]
    assert traffic_dial(arn, CFG) == 100.0  # aws_region is eu-south-1: the GA client still goes to us-west-2
    out = set_traffic_dial(arn, 25, CFG)
    assert out["previous"] == 100.0 and out["traffic_dial_percentage"] == 25.0
    assert traffic_dial(arn, CFG) == 25.0
    assert describe_endpoint_group(arn, CFG)["EndpointGroupRegion"] == PRIMARY
    with pytest.raises(ActivityFailed, match=r"0\.\.100"):
        set_traffic_dial(arn, 150, CFG)


def test_fail_over_and_restore_a_service(cp: Any, aws: Aws) -> None:
    ga = _accelerator(aws)
    seen: list[tuple[str, str]] = []
    cp.hooks.after("globalaccelerator", "UpdateEndpointGroup",
                   lambda call: seen.append((call.region, call.params.get("EndpointGroupArn", ""))))
    fail_over_service(RECOVERY, accelerator_arn=ga["accelerator"], configuration=CFG)
    assert traffic_dial(ga["groups"][PRIMARY], CFG) == 0.0
    assert traffic_dial(ga["groups"][RECOVERY], CFG) == 100.0
    assert seen[0][1] == ga["groups"][RECOVERY]  # the target is raised before the source is drained
    assert {r for r, _ in seen} == {"us-west-2"}
    restore_service(listener_arn=ga["listener"], configuration=CFG)
    assert traffic_dial(ga["groups"][PRIMARY], CFG) == 100.0
    with pytest.raises(ActivityFailed, match="no endpoint group in region"):
        fail_over_service("ap-south-1", listener_arn=ga["listener"], configuration=CFG)


def test_endpoint_health_reflects_the_model(cp: Any, aws: Aws) -> None:
    from gameday.controlplane.globalaccelerator.models import ga_backends

    ga = _accelerator(aws)
    arn = ga["groups"][PRIMARY]
    (endpoint_id, state), = endpoint_health(arn, CFG).items()
    assert state == "HEALTHY"
    ga_backends["123456789012"].set_endpoint_health(arn, endpoint_id, "UNHEALTHY", "health check failed")
    assert endpoint_health(arn, CFG) == {endpoint_id: "UNHEALTHY"}


def test_region_outage_creates_the_fis_experiment_the_sandbox_understands(cp: Any, aws: Aws) -> None:
    started: list[Any] = []
    cp.hooks.after("fis", "StartExperiment", started.append)
    out = region_outage(PRIMARY, configuration={"aws_region": RECOVERY})  # FIS of the affected region
    assert [c.region for c in started] == [PRIMARY]
    fis = aws("fis", PRIMARY)
    template = fis.get_experiment_template(id=out["template_id"])["experimentTemplate"]
    (action,) = template["actions"].values()
    assert action["actionId"] == "aws:network:disrupt-connectivity"
    assert action["parameters"] == {"scope": "all", "duration": "PT12H"}
    assert template["targets"]["Subnets"]["resourceType"] == "aws:ec2:subnet"
    assert template["targets"]["Subnets"]["resourceTags"] == {"gameday:region": PRIMARY}
    assert template["tags"]["gameday:region"] == PRIMARY
    assert experiment_state(out["experiment_id"], PRIMARY, CFG) in ("pending", "initiating", "running")

    assert restore_region(PRIMARY, CFG) == [out["experiment_id"]]
    assert experiment_state(out["experiment_id"], PRIMARY, CFG) in ("stopping", "stopped")
    assert fis.list_experiment_templates()["experimentTemplates"] == []  # nothing left behind
    assert restore_region(PRIMARY, CFG) == []  # idempotent rollback


def test_link_cut_and_heal_are_separate_from_outages(cp: Any, aws: Aws) -> None:
    cut = cut_inter_region_link(PRIMARY, RECOVERY, duration_s=90, configuration=CFG)
    outage = region_outage(PRIMARY, duration_s=120, configuration=CFG)
    fis = aws("fis", PRIMARY)
    template = fis.get_experiment_template(id=cut["template_id"])["experimentTemplate"]
    (action,) = template["actions"].values()
    assert action["actionId"] == "aws:network:route-table-disrupt-cross-region-connectivity"
    assert action["parameters"] == {"region": RECOVERY, "duration": "PT90S"}
    assert outage["parameters"]["duration"] == "PT2M"
    assert heal_inter_region_link(PRIMARY, CFG) == [cut["experiment_id"]]
    assert experiment_state(outage["experiment_id"], PRIMARY, CFG) in ("pending", "initiating", "running")
    assert restore_region(PRIMARY, CFG) == [outage["experiment_id"]]


def _group(asg: Any) -> dict[str, Any]:
    return dict(asg.describe_auto_scaling_groups(AutoScalingGroupNames=["orders-eu-south-1"])
                ["AutoScalingGroups"][0])


def test_asg_capacity_is_remembered_and_restored(cp: Any, aws: Aws) -> None:
    ec2, asg = aws("ec2"), aws("autoscaling")
    ami = ec2.describe_images()["Images"][0]["ImageId"]
    ec2.create_launch_template(LaunchTemplateName="orders", LaunchTemplateData={"ImageId": ami,
                                                                                "InstanceType": "t3.micro"})
    asg.create_auto_scaling_group(AutoScalingGroupName="orders-eu-south-1", MinSize=2, MaxSize=4,
                                  DesiredCapacity=2, AvailabilityZones=[f"{PRIMARY}a"],
                                  LaunchTemplate={"LaunchTemplateName": "orders"})
    out = set_desired_capacity("orders-eu-south-1", 0, configuration=CFG)
    assert out == {"asg_name": "orders-eu-south-1", "previous": 2, "desired": 0}
    group = _group(asg)
    assert (group["DesiredCapacity"], group["MinSize"]) == (0, 0)
    set_desired_capacity("orders-eu-south-1", 0, configuration=CFG)  # a second call keeps the first sizes
    assert restore_desired_capacity("orders-eu-south-1", configuration=CFG)["desired"] == 2
    group = _group(asg)
    assert (group["DesiredCapacity"], group["MinSize"]) == (2, 2)
    assert not [t for t in group.get("Tags", []) if t["Key"].startswith("gameday:")]
    with pytest.raises(ActivityFailed, match="no remembered capacity"):
        restore_desired_capacity("orders-eu-south-1", configuration=CFG)
