"""Create, start, find and stop the FIS experiments behind the region activities."""

from __future__ import annotations

import contextlib
import math
import uuid
from collections.abc import Mapping
from typing import Any

from gameday.chaos import _undo
from gameday.chaos._common import ActivityFailed, client
from gameday.target import SANDBOX_ACCOUNT

REGION_TAG = "gameday:region"
FAULT_TAG = "gameday:fault"
ACTIVE_STATES = ("pending", "initiating", "running")
MAX_DURATION = "PT12H"  # FIS's longest action: "until restore" in practice


def iso_duration(duration_s: float | None) -> str:
    """FIS duration text: PTnM for whole minutes, PTnS otherwise, PT12H (until stopped) for None."""
    if duration_s is None:
        return MAX_DURATION
    if duration_s <= 0:
        raise ActivityFailed(f"duration_s must be positive, got {duration_s}")
    secs = math.ceil(duration_s)
    return f"PT{secs // 60}M" if secs % 60 == 0 else f"PT{secs}S"


def role_arn(fis_configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None,
             region: str) -> str:
    """FIS execution role: ``gameday_fis_role_arn``, else ``role/gameday-fis`` in the caller's account."""
    cfg = fis_configuration or {}
    if cfg.get("gameday_fis_role_arn"):
        return str(cfg["gameday_fis_role_arn"])
    try:
        account = client("sts", cfg, secrets, region=region).get_caller_identity()["Account"]
    except Exception:  # the sandbox's moto answers too; this is only a fallback
        account = SANDBOX_ACCOUNT
    return f"arn:aws:iam::{account}:role/gameday-fis"


def subnet_target(region: str, subnet_tags: Mapping[str, str] | None,
                  subnet_arns: list[str] | None) -> dict[str, Any]:
    """The FIS ``Subnets`` target: explicit ARNs, else subnets tagged ``gameday:region=<region>``."""
    target: dict[str, Any] = {"resourceType": "aws:ec2:subnet", "selectionMode": "ALL"}
    if subnet_arns:
        target["resourceArns"] = list(subnet_arns)
    else:
        target["resourceTags"] = dict(subnet_tags or {REGION_TAG: region})
    return target


def start(fault: str, region: str, action_id: str, parameters: dict[str, str], target: dict[str, Any],
          configuration: Mapping[str, Any] | None, secrets: Mapping[str, Any] | None) -> dict[str, Any]:
    """Create a tagged template for one FIS action in ``region`` and start it; return the experiment."""
    fis = client("fis", configuration, secrets, region=region)
    tags = {REGION_TAG: region, FAULT_TAG: fault}
    # undo: StopExperiment (by id once known, else every active experiment with these tags)
    entry = _undo.before(fault, f"fis:{region}:{fault}", {"kind": "fis_stop", "region": region, "fault": fault},
                         what=f"FIS {action_id} in {region}", region=region)
    try:
        template = fis.create_experiment_template(
            clientToken=str(uuid.uuid4()),
            description=f"gameday {fault} {region}",
            roleArn=role_arn(configuration, secrets, region),
            stopConditions=[{"source": "none"}],
            targets={"Subnets": target},
            actions={fault: {"actionId": action_id, "parameters": parameters,
                             "targets": {"Subnets": "Subnets"}}},
            tags=tags,
        )["experimentTemplate"]
        experiment = fis.start_experiment(clientToken=str(uuid.uuid4()), experimentTemplateId=template["id"],
                                          tags=tags)["experiment"]
    except ActivityFailed:
        raise
    except Exception as exc:
        raise ActivityFailed(f"FIS could not start {fault} in {region}: {exc}") from exc
    _undo.after(entry, experiment_id=experiment["id"], template_id=template["id"])
    return {"experiment_id": experiment["id"], "template_id": template["id"], "region": region,
            "fault": fault, "action": action_id, "parameters": parameters,
            "state": experiment.get("state", {}).get("status")}


def stop(fault: str, region: str, configuration: Mapping[str, Any] | None,
         secrets: Mapping[str, Any] | None) -> list[str]:
    """Stop every active experiment of this fault for this region and delete its templates."""
    fis = client("fis", configuration, secrets, region=region)
    stopped: list[str] = []
    templates: set[str] = set()
    token: str | None = None
    for _ in range(100):  # bounded pagination
        kw: dict[str, Any] = {"maxResults": 100}
        if token:
            kw["nextToken"] = token
        page = fis.list_experiments(**kw)
        for summary in page.get("experiments", []):
            tags = summary.get("tags") or fis.get_experiment(id=summary["id"])["experiment"].get("tags", {})
            if tags.get(REGION_TAG) != region or tags.get(FAULT_TAG) != fault:
                continue
            templates.add(summary.get("experimentTemplateId", ""))
            if summary.get("state", {}).get("status") in ACTIVE_STATES:
                fis.stop_experiment(id=summary["id"])
                stopped.append(summary["id"])
        token = page.get("nextToken")
        if not token:
            break
    for tid in sorted(t for t in templates if t):
        with contextlib.suppress(Exception):
            fis.delete_experiment_template(id=tid)
    _undo.done("fis_stop", f"rollback: stop {fault} in {region}", region=region, fault=fault)
    return stopped
