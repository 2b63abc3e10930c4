"""Set an ASG's desired capacity and put it back: the previous sizes live in tags on the group itself.

Keeping them on the ASG (not in the experiment process) makes the rollback correct even when it
runs from a later ``chaos run`` or after the drill process crashed.
"""

from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from gameday.chaos import _undo
from gameday.chaos._common import ActivityFailed, client, region_of

__all__ = ["restore_desired_capacity", "set_desired_capacity"]

PREV_DESIRED = "gameday:previous-desired-capacity"
PREV_MIN = "gameday:previous-min-size"


def _group(asg: Any, name: str) -> dict[str, Any]:
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name]).get("AutoScalingGroups", [])
    if not groups:
        raise ActivityFailed(f"auto scaling group {name} not found")
    return dict(groups[0])


def set_desired_capacity(asg_name: str, desired_capacity: int, region: str | None = None,
                         configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Set desired capacity (lowering MinSize if needed), remembering the old sizes in tags for restore."""
    asg = client("autoscaling", configuration, secrets, region=region)
    group = _group(asg, asg_name)
    tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
    _undo.before("set_desired_capacity", f"asg:{asg_name}",
                 {"kind": "asg_sizes", "region": region_of(configuration, region), "asg_name": asg_name,
                  "min_size": int(tags.get(PREV_MIN, group["MinSize"])), "max_size": int(group["MaxSize"]),
                  "desired_capacity": int(tags.get(PREV_DESIRED, group["DesiredCapacity"]))},
                 what=f"desired capacity {desired_capacity}", region=region_of(configuration, region))
    if PREV_DESIRED not in tags:  # keep the first (pre-fault) sizes if called twice
        asg.create_or_update_tags(Tags=[
            {"ResourceId": asg_name, "ResourceType": "auto-scaling-group", "Key": key, "Value": str(value),
             "PropagateAtLaunch": False}
            for key, value in ((PREV_DESIRED, group["DesiredCapacity"]), (PREV_MIN, group["MinSize"]))])
    kw: dict[str, Any] = {"AutoScalingGroupName": asg_name, "DesiredCapacity": int(desired_capacity)}
    if int(desired_capacity) < int(group["MinSize"]):
        kw["MinSize"] = int(desired_capacity)
    asg.update_auto_scaling_group(**kw)
    return {"asg_name": asg_name, "previous": int(group["DesiredCapacity"]), "desired": int(desired_capacity)}


def restore_desired_capacity(asg_name: str, default_capacity: int | None = None, region: str | None = None,
                             configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Put back the sizes set_desired_capacity remembered (or default_capacity) and drop the tags."""
    asg = client("autoscaling", configuration, secrets, region=region)
    group = _group(asg, asg_name)
    tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
    if PREV_DESIRED in tags:
        desired, min_size = int(tags[PREV_DESIRED]), int(tags.get(PREV_MIN, group["MinSize"]))
    elif default_capacity is not None:
        desired, min_size = int(default_capacity), min(int(group["MinSize"]), int(default_capacity))
    else:
        raise ActivityFailed(f"{asg_name} has no remembered capacity and no default_capacity was given")
    asg.update_auto_scaling_group(AutoScalingGroupName=asg_name, MinSize=min_size, DesiredCapacity=desired)
    _undo.done("asg_sizes", "rollback: restore_desired_capacity", asg_name=asg_name)
    remembered = [k for k in (PREV_DESIRED, PREV_MIN) if k in tags]
    if remembered:
        asg.delete_tags(Tags=[{"ResourceId": asg_name, "ResourceType": "auto-scaling-group", "Key": k}
                              for k in remembered])
    return {"asg_name": asg_name, "desired": desired, "min_size": min_size}
