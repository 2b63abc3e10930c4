"""Where the sandbox changes what moto answers, so Describe calls report the real data plane.

moto keeps the control-plane state; these patches (class-level, idempotent, in the daemon
process only) make its answers follow what the data plane really is, or what AWS really does:

* ``DescribeTargetHealth``: from what the ALB's HAProxy sees, not "healthy" for every target.
* EC2 ``TerminateInstances`` does not deregister the instance from its target groups at once,
  nor drop it from its Auto Scaling group (moto does both inside the call): AWS documents no such
  instant removal; the group marks it Unhealthy, launches a replacement and deregisters it
  (``asg.py``) after the load balancer's health checks have taken it out of service.
* Auto Scaling instances start ``Pending`` (AWS: "These instances start in the Pending state",
  docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-lifecycle.html) and count
  toward the desired capacity while Pending, so moto does not launch extra ones meanwhile.
* ``SetDesiredCapacity`` outside [min, max] is refused with AWS's ValidationError.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from xml.sax.saxutils import escape

from gameday.controlplane.hooks import ApiCall, Hooks, Response
from gameday.sandbox.asg import validate_desired_capacity
from gameday.target import SANDBOX_ACCOUNT as ACCOUNT

ACTIVE_STATES = ("Pending", "InService")


def query_error(code: str, message: str, namespace: str, status: int = 400) -> Response:
    """An AWS Query-protocol error answer (what boto3 parses into ``ClientError``)."""
    body = (f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return status, {"Content-Type": "text/xml"}, body


def patch_moto(target_health: Callable[[str, str], str | None]) -> None:
    """Apply the class-level patches; ``target_health(tg_arn, instance_id)`` is the ALB's view."""
    from moto.autoscaling import models as asg_models
    from moto.elbv2 import models as elb_models

    if getattr(elb_models.FakeTargetGroup.health_for, "_gameday", False):
        return
    original = elb_models.FakeTargetGroup.health_for

    def health_for(tg: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
        status = original(tg, target, ec2_backend)
        if status.status != "healthy":
            return status
        seen = target_health(tg.arn, target["Id"])
        if seen == "unhealthy":
            status.status, status.reason = "unhealthy", "Target.FailedHealthChecks"
            status.description = "Health checks failed"
        elif seen in (None, "initial"):
            status.status, status.reason = "initial", "Elb.RegistrationInProgress"
            status.description = "Target registration is in progress"
        elif seen == "draining":
            status.status, status.reason = "draining", "Target.DeregistrationInProgress"
            status.description = "Target deregistration is in progress"
        return status

    health_for._gameday = True  # type: ignore[attr-defined]
    elb_models.FakeTargetGroup.health_for = health_for  # type: ignore[method-assign,assignment]

    def notify_terminate_instances(self: Any, instance_ids: list[str]) -> None:
        return None

    elb_models.ELBv2Backend.notify_terminate_instances = notify_terminate_instances  # type: ignore[method-assign]
    # nor does moto's Auto Scaling get to drop a terminated member and replace it inside the EC2
    # call: the group marks it Unhealthy / Terminating and replaces it on its own (asg.py)
    asg_models.AutoScalingBackend.notify_terminate_instances = notify_terminate_instances  # type: ignore[method-assign]

    init = asg_models.InstanceState.__init__

    def instance_state_init(self: Any, instance: Any, lifecycle_state: str = "Pending", *args: Any,
                            **kwargs: Any) -> None:
        init(self, instance, lifecycle_state, *args, **kwargs)

    asg_models.InstanceState.__init__ = instance_state_init  # type: ignore[method-assign]

    def update_attached_target_groups(self: Any, group_name: str) -> None:
        """Register the group's live members only: a Terminating (already terminated) member is not
        registered again by an UpdateAutoScalingGroup (moto tried, and EC2 refused the whole call)."""
        group = self.autoscaling_groups[group_name]
        if not group.target_group_arns:
            return
        live = [st.instance.id for st in group.instance_states
                if st.lifecycle_state in ACTIVE_STATES and st.instance.state == "running"]
        for tg in self.elbv2_backend.describe_target_groups(target_group_arns=group.target_group_arns,
                                                             load_balancer_arn=None, names=None):
            if live:
                self.elbv2_backend.register_targets(tg.arn, [{"Id": iid, "Port": tg.port} for iid in live])

    asg_models.AutoScalingBackend.update_attached_target_groups = update_attached_target_groups  # type: ignore[method-assign]

    set_desired = asg_models.FakeAutoScalingGroup.set_desired_capacity

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        """Scale-in chooses among Pending / InService members only (moto took the first members in
        its list, Terminating ones included, and left the replacements running)."""
        leaving = [st for st in self.instance_states
                   if st.lifecycle_state not in ACTIVE_STATES and not st.protected_from_scale_in]
        for st in leaving:
            st.protected_from_scale_in = True
        try:
            set_desired(self, new_capacity)
        finally:
            for st in leaving:
                st.protected_from_scale_in = False

    asg_models.FakeAutoScalingGroup.set_desired_capacity = set_desired_capacity  # type: ignore[method-assign]

    def active_instances(self: Any) -> list[Any]:
        return [x for x in self.instance_states if x.lifecycle_state in ACTIVE_STATES]

    asg_models.FakeAutoScalingGroup.active_instances = active_instances  # type: ignore[method-assign]


def install_validation(hooks: Hooks) -> None:
    """Refuse, as AWS does, API calls moto would accept."""
    def set_desired_capacity(call: ApiCall) -> Response | None:
        from moto.autoscaling.models import autoscaling_backends

        group = autoscaling_backends[ACCOUNT][call.region].autoscaling_groups.get(
            str(call.params.get("AutoScalingGroupName", "")))
        raw = call.params.get("DesiredCapacity")
        if group is None or raw is None:
            return None
        why = validate_desired_capacity(group, int(raw))
        if why is None:
            return None
        return query_error("ValidationError", why, "http://autoscaling.amazonaws.com/doc/2011-01-01/")

    hooks.override("autoscaling", "SetDesiredCapacity", set_desired_capacity)


__all__ = ["install_validation", "patch_moto", "query_error"]
