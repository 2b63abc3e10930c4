"""The controller: turns control-plane (moto) state into a real data plane, continuously.

It runs in the sandbox daemon next to the control plane and reads moto's models directly
(no HTTP round trip), so a ``TerminateInstances`` call is a killed process within one tick.
Every change it makes is written to the ground-truth event log.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gameday.sandbox.asg import GroupLifecycle
from gameday.sandbox.events import EventLog
from gameday.sandbox.timing import TimingProfile
from gameday.target import SANDBOX_ACCOUNT as ACCOUNT
from gameday.util.net import free_port
from gameday.util.procs import ProcessRegistry

log = logging.getLogger("gameday.controller")



@dataclass
class InstanceProc:
    """One EC2 instance's process: the reference service on its own loopback port."""

    instance_id: str
    service: str
    region: str
    az: str
    port: int
    started_at: float
    died_at: float | None = None     # when its process was seen dead without us killing it
    stopped: bool = False


# How far the async-standby variant's standby trails its primary (one way, ms). At the drills'
# 10 acknowledged writes/s a crash then catches ~5 of them in flight (Poisson: P(0) < 1 %).
ASYNC_STANDBY_LAG_MS = 500.0


@dataclass
class Variant:
    """Deliberately broken sandboxes, so tests can prove the drills catch regressions."""

    synchronous_standby: bool = True   # False: the Multi-AZ standby replicates asynchronously
    router_health_checks: bool = True  # False: the global router never checks the ALBs
    replica_reads: bool = True         # False: services in the recovery region ignore the replica
    link_delay_ms: float = 0.0         # one-way delay of the inter-region replication link
    standby_delay_ms: float = 0.0      # one-way delay of the Multi-AZ pair's replication link

    @classmethod
    def parse(cls, names: list[str], link_delay_ms: float = 0.0) -> Variant:
        v = cls(link_delay_ms=link_delay_ms)
        for n in names:
            if n == "async-standby":
                # An asynchronous standby that keeps up within microseconds (loopback) would never
                # show the loss it allows; under real load it trails by a fraction of a second.
                v.synchronous_standby = False
                v.standby_delay_ms = max(v.standby_delay_ms, ASYNC_STANDBY_LAG_MS)
            elif n == "no-router-health":
                v.router_health_checks = False
            elif n == "ignore-replica":
                v.replica_reads = False
            elif n:
                from gameday.errors import ConfigError

                raise ConfigError(f"unknown sandbox variant {n!r}", field="--variant",
                                  hint="use async-standby, no-router-health or ignore-replica")
        return v


@dataclass
class ServiceMap:
    """Which moto objects belong to which service and region (from the Topology)."""

    asg: dict[tuple[str, str], str] = field(default_factory=dict)           # (svc, region) -> asg name
    target_group: dict[tuple[str, str], str] = field(default_factory=dict)  # (svc, region) -> tg arn
    endpoint_group: dict[str, tuple[str, str]] = field(default_factory=dict)  # eg arn -> (svc, region)
    health_check: dict[str, tuple[str, str]] = field(default_factory=dict)    # route53 hc id -> (svc, region)


class Controller:
    """Reconciles moto's EC2/ASG/ELBv2 state with instance processes and HAProxy, every tick."""

    def __init__(self, *, state_dir: Path, registry: ProcessRegistry, events: EventLog, timing: TimingProfile,
                 regions: tuple[str, str], services: list[str], smap: ServiceMap, albs: dict[tuple[str, str], Any],
                 router: Any, pg: Any, instance_env: Callable[[str, str], tuple[list[str], dict[str, str]]],
                 tick_s: float = 0.1, router_tick_s: float = 0.02,
                 on_router_states: Callable[[dict[str, Any]], None] | None = None,
                 note_lateness: Callable[[str, float], None] | None = None,
                 moto_lock: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext) -> None:
        self.state_dir = state_dir
        self.registry = registry
        self.events = events
        self.timing = timing
        self.regions = regions
        self.services = services
        self.smap = smap
        self.albs = albs
        self.router = router
        self.pg = pg
        self.instance_env = instance_env
        self.tick_s = tick_s
        self.router_tick_s = router_tick_s
        self.on_router_states = on_router_states
        self.note_lateness = note_lateness
        # moto's backends are not thread-safe: the reconcile step changes them (scale-in, terminate,
        # deregister) under the same lock as the API calls, or an API call and a tick could both
        # terminate one instance halfway (a CI run saw UpdateAutoScalingGroup fail that way)
        self.moto_lock = moto_lock
        self._router_thread: threading.Thread | None = None
        self.instances: dict[str, InstanceProc] = {}
        self._first_seen: dict[str, float] = {}
        self.frozen: set[str] = set()
        self._targets: dict[tuple[str, str], dict[str, int]] = {}
        self._health: dict[tuple[str, str], dict[str, str]] = {}
        self._active: dict[str, str | None] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0
        self.lifecycle = GroupLifecycle(self, timing)

    # -- moto access -------------------------------------------------------------------------
    @staticmethod
    def _asg_backend(region: str) -> Any:
        from moto.autoscaling.models import autoscaling_backends

        return autoscaling_backends[ACCOUNT][region]

    @staticmethod
    def _elbv2_backend(region: str) -> Any:
        from moto.elbv2.models import elbv2_backends

        return elbv2_backends[ACCOUNT][region]

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        self.reconcile()
        self._thread = threading.Thread(target=self._loop, name="controller", daemon=True)
        self._thread.start()
        # routing switches are ground truth for RTO checks: watch them at a finer grain than a probe interval
        self._router_thread = threading.Thread(target=self._router_loop, name="router-watch", daemon=True)
        self._router_thread.start()

    def _router_loop(self) -> None:
        while not self._stop.wait(self.router_tick_s):
            try:
                self._observe_router()
            except Exception:
                log.exception("router observation failed")

    def stop(self) -> None:
        self._stop.set()
        for t in (self._thread, self._router_thread):
            if t is not None:
                t.join(timeout=5)
        with self._lock:
            for iid in list(self.instances):
                self.registry.kill(f"instance-{iid}")
            self.instances.clear()

    def _loop(self) -> None:
        due = time.monotonic()
        while not self._stop.is_set():
            t = time.monotonic()
            if self.note_lateness is not None:
                # a tick that starts late means the host did not give the controller its turn
                self.note_lateness("controller_tick", max(0.0, t - due))
            try:
                self.reconcile()
            except Exception:
                self.errors += 1
                log.exception("reconcile failed")
            due = t + self.tick_s
            self._stop.wait(max(0.0, due - time.monotonic()))

    # -- the reconcile step ------------------------------------------------------------------
    def reconcile(self) -> None:
        # the moto lock first: an API call holds it while it asks target_health, which takes no other
        with self.moto_lock(), self._lock:
            for (svc, region), asg_name in self.smap.asg.items():
                if region in self.frozen:
                    continue
                self.lifecycle.reconcile(svc, region, asg_name)
            for key, tg_arn in self.smap.target_group.items():
                if key[1] in self.frozen:
                    continue
                self._reconcile_targets(key, tg_arn)
        with self._lock:  # HAProxy's stats socket only: API calls need not wait for it
            self._observe_health()

    def _watch_process(self, proc: InstanceProc) -> None:
        """Note when an instance's process died on its own (a crash, not an API call)."""
        m = self.registry.procs.get(f"instance-{proc.instance_id}")
        if proc.died_at is None and not proc.stopped and m is not None and not m.alive():
            proc.died_at = time.monotonic()
            self.events.emit("instance_killed", instance=proc.instance_id, service=proc.service,
                             region=proc.region, how="process exited")

    def _forget_instance(self, iid: str) -> None:
        self.instances.pop(iid, None)
        self._first_seen.pop(iid, None)
        self.registry.forget(f"instance-{iid}")

    def alb_health(self, svc: str, region: str, iid: str) -> str | None:
        """What the region's ALB last said of a target: healthy / unhealthy / initial / draining / None."""
        return self._health.get((svc, region), {}).get(iid)

    def _start_instance(self, iid: str, svc: str, region: str, az: str, port: int | None = None) -> None:
        port = port or free_port()
        argv, env = self.instance_env(svc, region)
        argv = [*argv, "--instance-id", iid, "--port", str(port)]
        log_path = self.state_dir / "logs" / f"{iid}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        name = f"instance-{iid}"
        if name in self.registry.procs:
            self.registry.forget(name)
        self.registry.spawn(name, argv, env=env, log=log_path)
        self.instances[iid] = InstanceProc(iid, svc, region, az, port, time.monotonic())
        self.events.emit("instance_started", instance=iid, service=svc, region=region, az=az, port=port)

    def _kill_instance(self, iid: str, svc: str, region: str, why: str, sig: int = signal.SIGKILL) -> None:
        self.registry.kill(f"instance-{iid}", sig)
        kind = "instance_stopped" if why == "stopped" else "instance_killed"
        self.events.emit(kind, instance=iid, service=svc, region=region, how=why)

    def _reconcile_targets(self, key: tuple[str, str], tg_arn: str) -> None:
        """The ALB's servers are exactly the target group's registered targets that have a process.

        A registered target whose process is dead (terminated, crashed, stopped) stays a server:
        the ALB keeps sending it requests, which fail, until its health checks take it out; only
        a deregistration (by the Auto Scaling group, see ``asg.py``) drains it.
        """
        backend = self._elbv2_backend(key[1])
        tg = backend.target_groups.get(tg_arn)
        if tg is None:
            return
        want = {tid: proc.port for tid in list(tg.targets) if (proc := self.instances.get(tid)) is not None}
        if self._targets.get(key) != want:
            self.albs[key].set_targets(want)
            self._targets[key] = dict(want)

    def _observe_health(self) -> None:
        for key, alb in self.albs.items():
            if key[1] in self.frozen:
                continue
            try:
                health = alb.target_health()
            except Exception as exc:
                log.debug("target_health %s: %s", key, exc)
                continue
            prev = self._health.get(key, {})
            for tid, st in health.items():
                if prev.get(tid) != st and st in ("healthy", "unhealthy"):
                    self.events.emit(f"target_{st}", instance=tid, service=key[0], region=key[1])
            self._health[key] = health

    def _observe_router(self) -> None:
        switched, active = self.router.observe()
        if self.on_router_states is not None:
            self.on_router_states(self.router.last_states)
        for svc, old, new in switched:
            self.events.emit("dns_answer_followed", service=svc, from_region=old, to_region=new)
        for svc, region in active.items():
            prev = self._active.get(svc, "<unset>")
            if region != prev:
                if prev != "<unset>":
                    self.events.emit("router_switched", service=svc, from_region=prev, to_region=region)
                self._active[svc] = region

    # -- queries -----------------------------------------------------------------------------
    def target_health(self, tg_arn: str, target_id: str) -> str | None:
        for key, arn in self.smap.target_group.items():
            if arn == tg_arn:
                return self._health.get(key, {}).get(target_id)
        return None

    def instances_in(self, region: str) -> list[InstanceProc]:
        return [p for p in self.instances.values() if p.region == region]

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "frozen_regions": sorted(self.frozen),
                "instances": [
                    {"id": p.instance_id, "service": p.service, "region": p.region, "az": p.az, "port": p.port,
                     "state": "stopped" if p.stopped else ("dead" if p.died_at else "running"),
                     "health": self._health.get((p.service, p.region), {}).get(p.instance_id, "-")}
                    for p in sorted(self.instances.values(), key=lambda p: (p.service, p.region, p.instance_id))
                ],
                "routing": dict(self._active),
                "reconcile_errors": self.errors,
            }

    # -- region outage -----------------------------------------------------------------------
    def freeze_region(self, region: str) -> None:
        """Every process of the region stops answering (SIGSTOP): a partition, not a refusal."""
        with self._lock:
            if region in self.frozen:
                return
            self.frozen.add(region)
            for p in self.instances_in(region):
                self.registry.signal(f"instance-{p.instance_id}", signal.SIGSTOP)
            for (_svc, r), alb in self.albs.items():
                if r == region:
                    alb.freeze()
            self.pg.freeze_region(region)
            self.events.emit("region_down", region=region)

    def thaw_region(self, region: str) -> None:
        with self._lock:
            if region not in self.frozen:
                return
            self.pg.thaw_region(region)
            for (_svc, r), alb in self.albs.items():
                if r == region:
                    alb.thaw()
            for p in self.instances_in(region):
                self.registry.signal(f"instance-{p.instance_id}", signal.SIGCONT)
            self.frozen.discard(region)
            self.events.emit("region_up", region=region)


def python_argv() -> list[str]:
    return [sys.executable, "-m", "gameday.app"]


__all__ = ["Controller", "InstanceProc", "ServiceMap", "Variant", "python_argv"]
