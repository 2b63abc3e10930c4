"""Chaos Toolkit control: an undo-log entry before each stock chaostoolkit-aws action.

Our own activities record their entries themselves (``gameday.chaos._undo``). The stock
``chaosaws`` actions our experiments use cannot, so the drill runner loads this module as a
global control (``chaos run --control-file``): ``before_activity_control`` runs in the chaos
process right before the action, reads the control plane (the sizes of the groups whose
instances are about to be terminated, the DB instance about to be rebooted) and writes the
entry. Recording *before* the call from the same process is what makes it sound: reading
the journal afterwards would miss a harness killed mid-action. A stock action with no undo
recipe here is refused (InterruptExecution: the method stops, rollbacks run).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chaoslib import substitute
from chaoslib.exceptions import InterruptExecution

from gameday.chaos._common import client, region_of
from gameday.safety import undolog

ASG_TAG = "aws:autoscaling:groupName"


def _asg_sizes(configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None,
               names: list[str]) -> list[dict[str, Any]]:
    if not names:
        return []
    asg = client("autoscaling", configuration, secrets)
    groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=sorted(set(names))).get("AutoScalingGroups", [])
    return [{"kind": "asg_sizes", "region": region_of(configuration), "asg_name": g["AutoScalingGroupName"],
             "min_size": int(g["MinSize"]), "max_size": int(g["MaxSize"]),
             "desired_capacity": int(g["DesiredCapacity"])} for g in groups]


def _groups_of_instances(configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None,
                         args: Mapping[str, Any]) -> list[str]:
    """The ASGs owning the instances terminate_instances would pick (its filters / az / ids)."""
    ec2 = client("ec2", configuration, secrets)
    kw: dict[str, Any] = {}
    filters = list(args.get("filters") or [])
    if args.get("az"):
        filters.append({"Name": "availability-zone", "Values": [args["az"]]})
    if filters:
        kw["Filters"] = filters
    if args.get("instance_ids"):
        kw["InstanceIds"] = list(args["instance_ids"])
    names: set[str] = set()
    for res in ec2.describe_instances(**kw).get("Reservations", []):
        for inst in res.get("Instances", []):
            names.update(t["Value"] for t in inst.get("Tags", []) if t.get("Key") == ASG_TAG)
    return sorted(names)


def undo_for(func: str, args: Mapping[str, Any], configuration: Mapping[str, Any] | None,
             secrets: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """The undo entries of one stock action, or None when we have no recipe for it."""
    if func in ("chaosaws.ec2.actions.terminate_instances",):
        # terminated instances are gone for good on AWS; their groups' sizes bring replacements back
        return _asg_sizes(configuration, secrets, _groups_of_instances(configuration, secrets, args))
    if func == "chaosaws.asg.actions.terminate_random_instances":
        names = args.get("asg_names") or []
        return _asg_sizes(configuration, secrets, [names] if isinstance(names, str) else list(names))
    if func == "chaosaws.rds.actions.reboot_db_instance":
        # RDS does not fail back: the undo is waiting until the instance is available again
        return [{"kind": "rds_available", "region": region_of(configuration),
                 "db_instance_identifier": args.get("db_instance_identifier")}]
    return None


def before_activity_control(context: dict[str, Any], configuration: dict[str, Any] | None = None,
                            secrets: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Write the undo entries of a stock chaosaws action before it runs; refuse it when we cannot."""
    provider = context.get("provider") or {}
    module = str(provider.get("module", ""))
    if context.get("type") != "action" or not module.startswith("chaosaws."):
        return
    func = f"{module}.{provider.get('func', '')}"
    if ".probes." in func:
        return
    args = substitute(dict(provider.get("arguments") or {}), configuration, secrets) or {}
    try:
        undos = undo_for(func, args, configuration, secrets)
        if undos is None:
            raise InterruptExecution(f"gameday: no undo recipe for {func}: refusing to run it")
        for u in undos:
            resource = u.get("asg_name") or u.get("db_instance_identifier") or func
            undolog.record(str(context.get("name", func)), f"{u['kind']}:{resource}", u, what=func,
                           region=u.get("region"))
    except InterruptExecution:
        raise
    except Exception as exc:  # no entry, no injection
        raise InterruptExecution(f"gameday: undo log for {func} not written ({exc}): refusing to run it") from exc


CONTROL = {"gameday-undo-log": {"provider": {"type": "python", "module": __name__}}}
