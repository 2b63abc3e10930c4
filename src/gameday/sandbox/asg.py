"""Auto Scaling group behaviour moto lacks: the instance lifecycle and health-check replacement.

moto answers the ASG API; what AWS does on its own between calls happens here, each tick,
from the group's own settings (``health_check_type``, ``health_check_grace_period``, min /
desired / max, the target groups' deregistration delay). Sources, from the Amazon EC2 Auto
Scaling user guide (docs.aws.amazon.com/autoscaling/ec2/userguide/):

* ec2-auto-scaling-lifecycle.html: instances "start in the Pending state"; "When each instance
  is fully configured and passes the Amazon EC2 health checks, it is attached to the Auto Scaling
  group and it enters the InService state."
* ec2-auto-scaling-health-checks.html: "After an instance finishes registering [with the load
  balancer], it enters the InService state"; "if Amazon EC2 Auto Scaling detects that an instance
  is no longer in the running state, this situation is treated as an immediate failure ... it
  immediately marks the instance as unhealthy and replaces it"; with ELB health checks enabled,
  "when Elastic Load Balancing reports a registered instance as unhealthy, Amazon EC2 Auto Scaling
  marks the instance as unhealthy on its next periodic health check and replaces it"; "If
  connection draining (deregistration delay) is enabled ..., Amazon EC2 Auto Scaling waits for
  either in-flight requests to complete or the maximum timeout to expire before it terminates
  unhealthy instances"; "it terminates the instance while it launches a new replacement instance".
* health-check-grace-period.html: the grace period is "the minimum amount of time (in seconds) to
  keep a new instance in service before terminating it if it's found to be unhealthy", and should
  "match the expected startup period of your application".

Where AWS is vague the sandbox reads it pessimistically:

* "finishes registering" = its target passed the load balancer's health checks (an ELB target is
  ``initial`` / ``Elb.RegistrationInProgress`` until then), so a replacement is ``Pending`` until
  it really serves, and chaostoolkit-aws's ``desired_equals_healthy`` stays false until then.
* start-up (launch, boot, user data) takes the group's own health-check grace period: the time
  the Terraform says the application needs to start. AWS documents no boot time.
* AWS does not say how soon the group deregisters an instance that EC2 terminated behind its
  back: its target stays registered, and gets requests that fail, until the load balancer's own
  health checks take it out of service (unhealthy threshold x interval); only then is it
  deregistered and drained.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gameday.sandbox.timing import TimingProfile
from gameday.target import SANDBOX_ACCOUNT as ACCOUNT

if TYPE_CHECKING:
    from gameday.sandbox.controller import Controller

log = logging.getLogger("gameday.asg")

RUNNING = "running"
NOT_RUNNING = ("stopping", "stopped", "shutting-down", "terminated")


@dataclass
class Leaving:
    """An instance on its way out: marked unhealthy, then deregistered, drained and terminated."""

    instance_id: str
    why: str
    since: float
    deregistered_at: float | None = None


class GroupLifecycle:
    """One tick of AWS's own Auto Scaling work for every group the controller manages."""

    def __init__(self, controller: Controller, timing: TimingProfile) -> None:
        self.ctl = controller
        self.timing = timing
        self.leaving: dict[str, Leaving] = {}
        self.in_service_at: dict[str, float] = {}

    # -- settings the Terraform made -------------------------------------------------------
    def grace_s(self, group: Any) -> float:
        """The group's health-check grace period, scaled; also its start-up time (module doc)."""
        return self.timing.s(float(group.health_check_grace_period or 0))

    def deregistration_delay_s(self, region: str, group: Any) -> float:
        elb = self.ctl._elbv2_backend(region)
        delays = [float(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
                  for arn in group.target_group_arns if (tg := elb.target_groups.get(arn)) is not None]
        return self.timing.s(max(delays, default=0.0))

    # -- the tick ----------------------------------------------------------------------------
    def reconcile(self, svc: str, region: str, asg_name: str) -> None:
        backend = self.ctl._asg_backend(region)
        group = backend.autoscaling_groups.get(asg_name)
        if group is None:
            return
        now = time.monotonic()
        for st in list(group.instance_states):
            iid = st.instance.id
            if iid in self.leaving:
                continue
            state = st.instance.state
            if state in NOT_RUNNING:
                # "no longer in the running state ... an immediate failure"
                self._mark_unhealthy(group, st, svc, region, f"EC2 instance {state}", now)
                continue
            if state != RUNNING:
                continue
            proc = self.ctl.instances.get(iid)
            if proc is None:
                first = self.ctl._first_seen.setdefault(iid, now)
                if now - first >= self.grace_s(group):
                    self.ctl._start_instance(iid, svc, region, st.instance.placement.zone
                                             if st.instance.placement else "")
                continue
            self.ctl._watch_process(proc)
            health = self.ctl.alb_health(svc, region, iid)
            if st.lifecycle_state == "Pending" and (health == "healthy" or not group.target_group_arns):
                st.lifecycle_state = "InService"
                self.in_service_at[iid] = now
                self.ctl.events.emit("instance_in_service", instance=iid, service=svc, region=region)
            elif (st.lifecycle_state == "InService" and group.health_check_type == "ELB"
                  and health == "unhealthy" and now - self.in_service_at.get(iid, now) >= self.grace_s(group)):
                self._mark_unhealthy(group, st, svc, region, "ELB health check failure", now)
        self._register_members(group, svc, region)
        self._retire(group, svc, region, now)
        self._forget_strays(group, svc, region)

    def _mark_unhealthy(self, group: Any, st: Any, svc: str, region: str, why: str, now: float) -> None:
        """Unhealthy + Terminating, and a replacement launched at once (it counts toward desired)."""
        iid = st.instance.id
        st.health_status, st.lifecycle_state = "Unhealthy", "Terminating"
        self.leaving[iid] = Leaving(iid, why, now)
        proc = self.ctl.instances.get(iid)
        if proc is not None and st.instance.state in NOT_RUNNING and not proc.stopped:
            self.ctl._kill_instance(iid, svc, region, "terminated" if st.instance.state != "stopped" else "stopped")
            proc.stopped = True
        self.ctl.events.emit("instance_unhealthy", instance=iid, service=svc, region=region, reason=why)
        # moto counts Pending and InService instances as active (moto_patches): this launches one more
        group.set_desired_capacity(group.desired_capacity)

    def _retire(self, group: Any, svc: str, region: str, now: float) -> None:
        """Deregister leaving instances once the ALB no longer routes to them, drain, then terminate."""
        from moto.ec2.models import ec2_backends

        elb = self.ctl._elbv2_backend(region)
        mine = {st.instance.id for st in group.instance_states}
        for iid, lv in list(self.leaving.items()):
            if iid not in mine:
                continue
            if lv.deregistered_at is None:
                if self.ctl.alb_health(svc, region, iid) == "healthy":
                    continue  # still in service at the ALB: requests keep reaching it
                for arn in group.target_group_arns:
                    tg = elb.target_groups.get(arn)
                    if tg is not None and iid in tg.targets:
                        elb.deregister_targets(arn, [{"Id": iid}])
                        self.ctl.events.emit("target_deregistered", instance=iid, service=svc, region=region)
                lv.deregistered_at = now
                continue
            draining = self.ctl.alb_health(svc, region, iid) == "draining"
            if draining and now - lv.deregistered_at < self.deregistration_delay_s(region, group):
                continue
            ec2 = ec2_backends[ACCOUNT][region]
            inst = ec2.get_instance_by_id(iid)
            if inst is not None and inst.state not in ("shutting-down", "terminated"):
                ec2.terminate_instances([iid])
            proc = self.ctl.instances.get(iid)
            if proc is not None and not proc.stopped:
                self.ctl._kill_instance(iid, svc, region, "terminated by the Auto Scaling group")
            group.instance_states = [s for s in group.instance_states if s.instance.id != iid]
            self.leaving.pop(iid, None)
            self.in_service_at.pop(iid, None)
            self.ctl._forget_instance(iid)
            self.ctl.events.emit("instance_terminated", instance=iid, service=svc, region=region, reason=lv.why)

    def _register_members(self, group: Any, svc: str, region: str) -> None:
        """Register every running member with the group's target groups (moto skips those it launches)."""
        elb = self.ctl._elbv2_backend(region)
        members = {st.instance.id for st in group.instance_states
                   if st.instance.state == RUNNING and st.instance.id not in self.leaving}
        for arn in list(group.target_group_arns):
            tg = elb.target_groups.get(arn)
            if tg is None:
                continue
            missing = sorted(members - set(tg.targets))
            if missing:
                elb.register_targets(arn, [{"Id": iid, "Port": tg.port} for iid in missing])
                for iid in missing:
                    self.ctl.events.emit("target_registered", instance=iid, service=svc, region=region)

    def _forget_strays(self, group: Any, svc: str, region: str) -> None:
        """Instances that left the group some other way (DetachInstances, scale-in) stop being ours."""
        members = {st.instance.id for st in group.instance_states}
        for iid, proc in list(self.ctl.instances.items()):
            if proc.service == svc and proc.region == region and iid not in members:
                if not proc.stopped:
                    self.ctl._kill_instance(iid, svc, region, "left group")
                self.leaving.pop(iid, None)
                self.ctl._forget_instance(iid)


def validate_desired_capacity(group: Any, desired: int) -> str | None:
    """AWS's ValidationError text for a desired capacity outside [min, max], else None."""
    if desired > int(group.max_size):
        return (f"New SetDesiredCapacity value {desired} is above max value {group.max_size} "
                f"for the AutoScalingGroup.")
    if desired < int(group.min_size):
        return (f"New SetDesiredCapacity value {desired} is below min value {group.min_size} "
                f"for the AutoScalingGroup.")
    return None


__all__ = ["GroupLifecycle", "Leaving", "validate_desired_capacity"]
