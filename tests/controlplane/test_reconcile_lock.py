"""The sandbox controller changes moto's state only between API calls, never during one.

moto's backends are not thread-safe. A CI run once saw an ``UpdateAutoScalingGroup`` scale-in and a
controller tick terminate the same instance at once; moto detached its root volume twice and
failed the API call, so the drill's fault was never injected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gameday.controlplane import ControlPlane
from gameday.sandbox.controller import Controller, ServiceMap
from gameday.sandbox.events import EventLog
from gameday.sandbox.timing import get_profile
from gameday.util.procs import ProcessRegistry


def _no_instances(svc: str, region: str) -> tuple[list[str], dict[str, str]]:
    raise AssertionError("this test launches no instance")


def test_a_reconcile_tick_waits_for_the_api_call_in_flight(
        cp: ControlPlane, client: Callable[..., Any], tmp_path: Path) -> None:
    ec2 = client("ec2")
    lt = ec2.create_launch_template(LaunchTemplateName="lt-lock",
                                    LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"})
    subnet = ec2.create_subnet(VpcId=ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"],
                               CidrBlock="10.8.1.0/24", AvailabilityZone="eu-south-1a")["Subnet"]["SubnetId"]
    client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName="asg-lock", MinSize=0, MaxSize=2, DesiredCapacity=0, VPCZoneIdentifier=subnet,
        LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplate"]["LaunchTemplateId"]})
    ctl = Controller(state_dir=tmp_path, registry=ProcessRegistry(tmp_path), events=EventLog(tmp_path / "ev.jsonl"),
                     timing=get_profile("aws"), regions=("eu-south-1", "eu-central-1"), services=["orders"],
                     smap=ServiceMap(asg={("orders", "eu-south-1"): "asg-lock"}), albs={}, router=None, pg=None,
                     instance_env=_no_instances, moto_lock=cp.quiesced)
    done = threading.Event()
    failed: list[BaseException] = []

    def tick() -> None:
        try:
            ctl.reconcile()
        except BaseException as exc:  # handed to the test thread
            failed.append(exc)
        finally:
            done.set()

    with cp.quiesced():  # what an API call holds while moto runs it
        worker = threading.Thread(target=tick, daemon=True)
        worker.start()
        assert not done.wait(0.5), "the tick ran while an API call held moto"
    assert done.wait(10), "the tick never ran after the API call ended"
    worker.join(5)
    assert failed == []
