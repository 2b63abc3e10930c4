"""The sandbox refuses a desired capacity outside [min, max] as AWS does (moto accepts it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from gameday.controlplane import ControlPlane
from gameday.sandbox.moto_patches import install_validation


def _group(client: Callable[..., Any]) -> str:
    ec2 = client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="eu-south-1a")
    lt = ec2.create_launch_template(LaunchTemplateName="lt-asg-validation",
                                    LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="asg-validation", MinSize=2, MaxSize=4, DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplate"]["LaunchTemplateId"]},
        VPCZoneIdentifier=subnet["Subnet"]["SubnetId"])
    return "asg-validation"


@pytest.mark.parametrize(("desired", "word"), [(5, "above max value 4"), (1, "below min value 2")])
def test_set_desired_capacity_outside_min_max_is_a_validation_error(
        cp: ControlPlane, client: Callable[..., Any], desired: int, word: str) -> None:
    name = _group(client)
    install_validation(cp.hooks)
    asg = client("autoscaling")
    with pytest.raises(ClientError) as err:
        asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=desired)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert word in err.value.response["Error"]["Message"]
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 2  # refused: nothing changed
    asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=3)  # inside: accepted
    group = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 3
