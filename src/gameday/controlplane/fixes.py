"""Fixes for moto quirks that the two-region stack hits (measured on moto 5.2).

- A cross-region read replica was built as a copy of the primary whose region was switched
  *after* its DB subnet group had been looked up, so the subnet group had to exist in the source
  region; it also kept the primary's AZ, Multi-AZ flag, security groups and DbiResourceId.
- Deleting a cross-region replica raised ValueError (the primary lists it by ARN, removal is by id).
- CreateLaunchTemplate copied the template's own tags (request-level TagSpecifications, resource
  type ``launch-template``) into the version's LaunchTemplateData, so terraform saw a phantom
  ``tag_specifications`` block and planned an update after every apply.
"""

from __future__ import annotations

import copy
import secrets
import string
from typing import Any

_applied = False


def _resource_id() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "db-" + "".join(secrets.choice(alphabet) for _ in range(26))


def apply() -> None:
    """Patch moto in this process (idempotent); survives moto resets (class-level patches)."""
    global _applied
    if _applied:
        return
    from moto.rds.models import DBInstance, RDSBackend

    def create_db_instance_read_replica(self: RDSBackend, db_kwargs: dict[str, Any]) -> DBInstance:
        database_id = db_kwargs["db_instance_identifier"]
        primary = self.find_db_from_id(db_kwargs["source_db_instance_identifier"])
        replica = copy.copy(primary)
        replica.backend = self  # region and account of the replica, before any region-scoped lookup
        cross_region = primary.region != self.region_name
        replica.tags = list(db_kwargs.get("tags") or [])
        replica.dbi_resource_id = _resource_id()
        replica.multi_az = bool(db_kwargs.get("multi_az") or False)
        replica.availability_zone = db_kwargs.get("availability_zone") or f"{self.region_name}a"
        if cross_region:
            sgs = db_kwargs.get("vpc_security_group_ids")
            replica.vpc_security_group_ids = list(sgs) if sgs else []
            if not replica.vpc_security_group_ids:
                from moto.ec2.models import ec2_backends

                ec2 = ec2_backends[self.account_id][self.region_name]
                default_sg = ec2.get_default_security_group(ec2.default_vpc.id)
                if default_sg is not None:
                    replica.vpc_security_group_ids = [default_sg.id]
            if not db_kwargs.get("db_subnet_group_name"):
                replica._db_subnet_group_name = None
                if hasattr(replica, "db_subnet_group"):
                    del replica.db_subnet_group
        rest = {
            k: v
            for k, v in db_kwargs.items()
            if k not in ("backend", "tags", "multi_az", "availability_zone")
        }
        replica.update(**rest)
        replica.set_as_replica()
        self.databases[database_id] = replica
        primary.add_replica(replica)
        return replica

    def remove_replica(self: DBInstance, replica: DBInstance) -> None:
        for ref in (replica.db_instance_identifier, replica.db_instance_arn):
            if ref in self.replicas:
                self.replicas.remove(ref)

    from moto.ec2.models.launch_templates import LaunchTemplate, LaunchTemplateBackend

    original_create_lt = LaunchTemplateBackend.create_launch_template

    def create_launch_template(
        self: LaunchTemplateBackend,
        name: str,
        description: str,
        template_data: dict[str, Any],
        tag_spec: dict[str, Any],
    ) -> LaunchTemplate:
        specs = template_data.get("TagSpecifications")
        if specs:
            kept = [s for s in specs if s.get("ResourceType") != "launch-template"]
            if kept:
                template_data["TagSpecifications"] = kept
            else:
                del template_data["TagSpecifications"]
        return original_create_lt(self, name, description, template_data, tag_spec)

    LaunchTemplateBackend.create_launch_template = create_launch_template  # type: ignore[method-assign]
    _idempotent_create_launch_template()
    RDSBackend.create_db_instance_read_replica = create_db_instance_read_replica  # type: ignore[method-assign]
    DBInstance.remove_replica = remove_replica  # type: ignore[method-assign]
    _spread_asg_instances_across_subnets()
    _applied = True


#: (account, region, ClientToken) -> launch template name, for retried CreateLaunchTemplate calls.
_LT_CLIENT_TOKENS: dict[tuple[str, str, str], str] = {}


def _idempotent_create_launch_template() -> None:
    """CreateLaunchTemplate honours ClientToken, as AWS does; moto ignores it.

    The AWS SDKs fill ClientToken and resend it when they retry a call whose answer was lost
    (a loaded control plane). moto then created the template the first time and answered the
    retry with ``InvalidLaunchTemplateName.AlreadyExistsException``, failing a CI apply.
    """
    from moto.core.responses import ActionResult
    from moto.ec2.responses.launch_templates import LaunchTemplates

    original = LaunchTemplates.create_launch_template

    def create_launch_template(self: LaunchTemplates) -> ActionResult:
        token = self._get_param("ClientToken")
        name = self._get_param("LaunchTemplateName")
        key = (self.current_account, self.region, str(token))
        backend = self.ec2_backend
        if token and _LT_CLIENT_TOKENS.get(key) == name and name in backend.launch_template_name_to_ids:
            template = backend.get_launch_template_by_name(name)
            version = template.default_version()
            return ActionResult({"LaunchTemplate": {
                "CreateTime": version.create_time,
                "CreatedBy": f"arn:{self.partition}:iam::{self.current_account}:root",
                "DefaultVersionNumber": template.default_version_number,
                "LatestVersionNumber": version.number,
                "LaunchTemplateId": template.id,
                "LaunchTemplateName": template.name,
                "Tags": template.tags,
            }})
        result = original(self)
        if token:
            _LT_CLIENT_TOKENS[key] = name
        return result

    LaunchTemplates.create_launch_template = create_launch_template  # type: ignore[method-assign]


def _spread_asg_instances_across_subnets() -> None:
    """moto launches every ASG instance in the group's first subnet; AWS balances across AZs.

    Without this, an AZ outage would take out every instance of a service at once.
    """
    from moto.autoscaling.models import FakeAutoScalingGroup

    original = FakeAutoScalingGroup.replace_autoscaling_group_instances

    def replace(self: FakeAutoScalingGroup, count_needed: int, propagated_tags: dict[str, str]) -> None:
        subnets = [s for s in (self.vpc_zone_identifier or "").split(",") if s]
        if len(subnets) < 2:
            original(self, count_needed, propagated_tags)
            return
        saved = self.vpc_zone_identifier
        try:
            for _ in range(count_needed):
                counts = dict.fromkeys(subnets, 0)
                for st in self.instance_states:
                    sid = getattr(st.instance, "subnet_id", None)
                    if sid in counts:
                        counts[sid] += 1
                best = min(subnets, key=lambda s: counts[s])
                self.vpc_zone_identifier = ",".join([best, *[s for s in subnets if s != best]])
                original(self, 1, dict(propagated_tags))
        finally:
            self.vpc_zone_identifier = saved

    FakeAutoScalingGroup.replace_autoscaling_group_instances = replace  # type: ignore[method-assign]
