"""The AWS calls that take real effect in the sandbox, and the faults they cause.

Each entry is an ``after`` hook on the control plane: once moto (or our emulation) has
answered a call, the data plane is made to match it (a process killed, a database failed
over, a dial turned, a region frozen). FIS experiments end on ``StopExperiment``, when their
``duration`` runs out, or on ``reset``.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any

from gameday.controlplane.hooks import Hooks
from gameday.sandbox import moto_patches, routing
from gameday.sandbox.controller import ACCOUNT, ServiceMap

if TYPE_CHECKING:
    from gameday.sandbox.daemon import Sandbox


class ApiFaults:
    """The table of AWS calls with an effect on the data plane, and the FIS experiments running."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox
        self.timers: dict[str, threading.Timer] = {}
        self.active: dict[str, tuple[str, str]] = {}  # experiment id -> (kind, region)

    def install(self, hooks: Hooks, smap: ServiceMap) -> None:
        """Register what each AWS call does to the data plane."""
        hooks.after("rds", "RebootDBInstance", self.on_reboot_db)
        hooks.after("rds", "PromoteReadReplica", self.on_promote_replica)
        hooks.after("globalaccelerator", "UpdateEndpointGroup", lambda call: self.on_dial(call, smap))
        hooks.after("route53", "UpdateHealthCheck", lambda call: self.on_health_check_update(call, smap))
        hooks.after("fis", "StartExperiment", self.on_fis_start)
        hooks.after("fis", "StopExperiment", self.on_fis_stop)
        hooks.after("ec2", "TerminateInstances", lambda call: self.sb._kick())
        hooks.after("ec2", "StopInstances", lambda call: self.sb._kick())
        hooks.after("autoscaling", "SetDesiredCapacity", lambda call: self.sb._kick())
        moto_patches.install_validation(hooks)

    def on_reboot_db(self, call: Any) -> None:
        if call.status >= 300:
            return
        force = str(call.params.get("ForceFailover", "false")).lower() == "true"
        if call.params.get("DBInstanceIdentifier") != self.sb.topology.database.primary_identifier:
            return
        if force:
            self.sb.events.emit("fault_injected", fault="rds_reboot_failover",
                                db=call.params.get("DBInstanceIdentifier"))
            self.sb._background(lambda: self.sb.pg.failover("reboot with failover"), "db-failover")
        else:
            self.sb.events.emit("fault_injected", fault="rds_reboot", db=call.params.get("DBInstanceIdentifier"))
            self.sb._background(self.sb.pg.restart_primary, "db-reboot")

    def on_promote_replica(self, call: Any) -> None:
        replica = self.sb.topology.database.replica_identifier
        if call.status >= 300 or call.params.get("DBInstanceIdentifier") != replica:
            return
        self.sb._background(self.sb.pg.promote_replica, "db-promote-replica")

    def on_dial(self, call: Any, smap: ServiceMap) -> None:
        """UpdateEndpointGroup: the router follows the group's dial and its endpoint's weight as stored."""
        arn = call.params.get("EndpointGroupArn")
        if call.status >= 300 or arn not in smap.endpoint_group:
            return
        svc, region = smap.endpoint_group[arn]
        group = routing.endpoint_group(arn)
        dial, weight = float(group.traffic_dial_percentage), routing.endpoint_weight(group)
        if dial != self.sb.router.traffic_dial(svc, region):
            self.sb.router.set_traffic_dial(svc, region, dial)
            self.sb.events.emit("traffic_dial_changed", service=svc, region=region, percent=dial)
        if weight != self.sb.router.endpoint_weight(svc, region):
            self.sb.router.set_endpoint_weight(svc, region, weight)
            self.sb.events.emit("endpoint_weight_changed", service=svc, region=region, weight=weight)

    def on_health_check_update(self, call: Any, smap: ServiceMap) -> None:
        """An inverted Route 53 health check reports its healthy endpoint unhealthy: traffic leaves it.

        Inverting the primary's check is how operators force a Route 53 failover (the dial of
        this routing mode). Emulated as a dial of 0 for that region while inverted; ``Disabled``
        (always healthy) is not emulated and is reported as such in the event.
        """
        hc_id = call.params.get("HealthCheckId")
        if call.status >= 300 or hc_id not in smap.health_check:
            return
        hc = routing.route53_health_check(hc_id)
        if hc is None:
            return
        inverted = str(getattr(hc, "inverted", False)).lower() == "true"
        disabled = str(getattr(hc, "disabled", False)).lower() == "true"
        svc, region = smap.health_check[hc_id]
        self.sb.router.set_traffic_dial(svc, region, 0.0 if inverted else 100.0)
        self.sb.events.emit("route53_health_check_changed", service=svc, region=region, health_check_id=hc_id,
                         inverted=inverted, disabled=disabled, disabled_emulated=False,
                         clients_follow_after_s=self.sb.router.dns_ttl(svc))

    def _fis_experiment(self, call: Any) -> tuple[str, Any, dict[str, str]] | None:
        from moto.fis.models import fis_backends

        backend = fis_backends[ACCOUNT][call.region]
        template_id = call.params.get("experimentTemplateId")
        exps = [e for e in backend.experiments.values() if e.experiment_template_id == template_id]
        if not exps:
            return None
        exp = max(exps, key=lambda e: e.creation_time)
        template = backend.experiment_templates.get(template_id)
        tags = backend.tagger.get_tag_dict_for_resource(template.arn) if template else {}
        return exp.id, exp, tags

    def on_fis_start(self, call: Any) -> None:
        if call.status >= 300:
            return
        found = self._fis_experiment(call)
        if found is None:
            return
        exp_id, exp, tags = found
        for action in (exp.actions or {}).values():
            action_id = action.get("actionId", "")
            params = action.get("parameters", {}) or {}
            region = tags.get("gameday:region") or params.get("region") or call.region
            duration = _iso_duration_s(params.get("duration", ""))
            if action_id == "aws:network:disrupt-connectivity":
                self.active[exp_id] = ("region", region)
                self.sb.events.emit("fault_injected", fault="region_outage", region=region, experiment=exp_id)
                self.sb._background(lambda r=region: self.sb.controller.freeze_region(r), "region-down")  # type: ignore[union-attr]
            elif action_id == "aws:network:route-table-disrupt-cross-region-connectivity":
                self.active[exp_id] = ("link", region)
                self.sb.events.emit("fault_injected", fault="link_cut", region=region, experiment=exp_id)
                self.sb._background(self.sb.pg.cut_link, "link-cut")
            else:
                continue
            if duration:
                timer = threading.Timer(duration, self.end_fis, args=(exp_id,))
                timer.daemon = True
                self.timers[exp_id] = timer
                timer.start()

    def on_fis_stop(self, call: Any) -> None:
        exp_id = call.params.get("id") or call.params.get("Id")
        if exp_id is None:
            return
        self.sb._background(lambda: self.end_fis(str(exp_id)), "fis-stop")

    def end_fis(self, exp_id: str) -> None:
        timer = self.timers.pop(exp_id, None)
        if timer is not None:
            timer.cancel()
        active = self.active.pop(exp_id, None)
        if active is None:
            return
        kind, region = active
        if kind == "region":
            assert self.sb.controller is not None
            self.sb.controller.thaw_region(region)
        else:
            self.sb.pg.heal_link()

    def end_all(self) -> None:
        for exp_id in list(self.active):
            self.end_fis(exp_id)

    def cancel_timers(self) -> None:
        for t in list(self.timers.values()):
            t.cancel()


def _iso_duration_s(text: str) -> float:
    """Seconds of an ISO 8601 duration like PT2M or PT30S (FIS's format); 0 when absent."""
    m = re.fullmatch(r"PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?", text or "")
    if not m or not any(m.groups()):
        return 0.0
    h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return h * 3600 + mi * 60 + s


__all__ = ["ApiFaults"]
