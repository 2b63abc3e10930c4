"""One Application Load Balancer played by one HAProxy (see the package doc)."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from gameday.errors import ConfigError, SandboxError
from gameday.sandbox.haproxy.base import HealthCheck, _HAProxyProcess
from gameday.util.net import LOOPBACK, free_port
from gameday.util.procs import ProcessRegistry
from gameday.util.retry import wait_until

# Global Accelerator judges an ALB endpoint by Elastic Load Balancing's health of its targets, not
# by checks of its own: "For Network Load Balancer and Application Load Balancer endpoints,
# configure health check settings on the Elastic Load Balancing console"
# (docs.aws.amazon.com/global-accelerator/latest/dg/about-endpoint-groups.html). The ALB answers
# this path itself: 200 while a registered target is healthy, 503 once none is.
ELB_HEALTH_PATH = "/__gameday/elb-health"


# --------------------------------------------------------------------------------------------
# ALB
# --------------------------------------------------------------------------------------------
@dataclass
class _Target:
    """One HAProxy server standing for one registered target."""

    target_id: str
    port: int
    added: float
    draining_since: float | None = None
    seen_up: bool = False
    failopen: str | None = None   # name of its unchecked backup twin, once it has left "initial"


class AlbProxy(_HAProxyProcess):
    """One ALB: an HAProxy whose backend servers follow the target group through the runtime API.

    Removed targets are drained (no new requests; in-flight ones finish) and deleted once idle or
    after ``deregistration_delay_s`` (then remaining sessions are cut, like ALB). Draining servers
    are reaped on every ``set_targets``/``target_health``/``wait_drained`` call.
    """

    FRONTEND = "alb"
    BACKEND = "targets"
    FAILOPEN = "failopen"

    def __init__(self, name: str, work_dir: str | os.PathLike[str], registry: ProcessRegistry,
                 health: HealthCheck, *, port: int | None = None, deregistration_delay_s: float = 30.0,
                 connect_timeout_s: float = 1.0) -> None:
        super().__init__(name, work_dir, registry)
        self.health = health
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        # HAProxy's built-in Prometheus exporter (PROMEX), on a loopback frontend of its own
        self.metrics_port = free_port()
        self.deregistration_delay_s = deregistration_delay_s
        self.connect_timeout_s = connect_timeout_s
        self._servers: dict[str, _Target] = {}  # HAProxy server name → target
        self._wanted: dict[str, int] = {}
        self._seq = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{LOOPBACK}:{self.metrics_port}/metrics"

    def _ports(self) -> list[int]:
        return [self.port, self.metrics_port]

    def _reallocate_ports(self) -> bool:
        self.metrics_port = free_port()
        if self._fixed_port:
            return False
        self.port = free_port()
        return True

    def _config(self) -> str:
        check = "\n    ".join(self.health.backend_lines(host=f"{self.name}.gameday"))
        return self._global_and_defaults(self.connect_timeout_s) + f"""
frontend {self.FRONTEND}
    bind {LOOPBACK}:{self.port}
    option forwardfor
    # the load balancer's own health as Global Accelerator sees it: healthy while at least one
    # registered target is healthy (answered by HAProxy itself, never forwarded to a target)
    monitor-uri {ELB_HEALTH_PATH}
    monitor fail if {{ nbsrv({self.BACKEND}) eq 0 }}
    use_backend {self.FAILOPEN} if {{ nbsrv({self.BACKEND}) eq 0 }}
    default_backend {self.BACKEND}

# servers are added at runtime ("add server"), one per registered target
backend {self.BACKEND}
    balance roundrobin
    {check}

# an unchecked twin per target that has had its first health verdict: with every checked server
# down, requests go to all of them, which is the ALB's fail-open; with no registered targets
# there is no server at all and HAProxy answers 503, as an ALB with no targets does
backend {self.FAILOPEN}
    balance roundrobin

# scraped by the region's Prometheus; not part of the load balancer's listener
frontend metrics
    bind {LOOPBACK}:{self.metrics_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    http-request return status 404
"""

    def start(self) -> int:
        """Start HAProxy (no targets yet, or those given to set_targets before); return the port."""
        with self._lock:
            if not self._started:
                self._launch()
                wanted, self._wanted = self._wanted, {}
                if wanted:
                    self._apply(wanted)
            return self.port

    def targets(self) -> dict[str, int]:
        """Registered (not draining) targets: id → port."""
        with self._lock:
            return dict(self._wanted)

    def set_targets(self, targets: Mapping[str, int]) -> None:
        """Make the registered targets exactly ``targets`` (id → 127.0.0.1 port), live, no restart."""
        clean: dict[str, int] = {}
        for tid, port in targets.items():
            if not isinstance(port, int) or not 0 < port < 65536:
                raise ConfigError(f"target {tid!r} has invalid port {port!r}", field="targets")
            clean[str(tid)] = port
        with self._lock:
            if not self._started:
                self._wanted = clean
                return
            self._apply(clean)

    def _apply(self, wanted: dict[str, int]) -> None:
        rt = self.runtime
        active = {(t.target_id, t.port): n for n, t in self._servers.items() if t.draining_since is None}
        for (tid, port), name in active.items():
            if wanted.get(tid) != port:
                rt.execute(f"set server {self.BACKEND}/{name} state drain")
                self._servers[name].draining_since = time.monotonic()
                # a deregistering target gets no new requests, also not by failing open
                self._drop_failopen(self._servers[name])
        active_keys = set(active)
        for tid, port in wanted.items():
            if (tid, port) in active_keys:
                continue
            same = [n for n, t in self._servers.items()
                    if t.draining_since is not None and (t.target_id, t.port) == (tid, port)]
            if not any(self._revive(n) for n in same):
                self._add(tid, port)
        self._wanted = dict(wanted)
        self._reap()

    def _revive(self, name: str) -> bool:
        """A target registered again while draining gets its server back (if not yet in maint)."""
        st = self.runtime.server_stats(self.BACKEND).get(name, {})
        if not st.get("status", "").startswith("DRAIN"):
            return False
        self.runtime.execute(f"set server {self.BACKEND}/{name} state ready")
        self._servers[name].draining_since = None
        return True

    def _add(self, tid: str, port: int) -> None:
        self._seq += 1
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", tid)[:40]
        name = f"{safe}.{self._seq}"
        be = f"{self.BACKEND}/{name}"
        rt = self.runtime
        # weight 0 while we force it DOWN: HAProxy puts a server leaving maintenance straight UP,
        # an ALB target must pass `rise` checks first ("initial" state)
        rt.execute(f"add server {be} {LOOPBACK}:{port} {self.health.server_args()} weight 0",
                   expect="New server registered")
        self._servers[name] = _Target(tid, port, time.monotonic())
        rt.execute(f"enable health {be}")
        rt.execute(f"enable server {be}")
        rt.execute(f"set server {be} health down")
        rt.execute(f"set weight {be} 1")

    def _add_failopen(self, name: str, t: _Target) -> None:
        """The target's unchecked backup twin: used only while no checked server is up (fail open).

        "If a target group contains only unhealthy registered targets, the load balancer routes
        requests to all those targets, regardless of their health status" (docs.aws.amazon.com/
        elasticloadbalancing/latest/application/target-group-health-checks.html). A target still in
        "initial" gets no twin: ALB routes to a target only once it passed a check or failed them.
        """
        twin = f"fo.{name}"
        self.runtime.execute(f"add server {self.FAILOPEN}/{twin} {LOOPBACK}:{t.port} weight 1",
                             expect="New server registered")
        self.runtime.execute(f"enable server {self.FAILOPEN}/{twin}")
        t.failopen = twin

    def _drop_failopen(self, t: _Target) -> None:
        if t.failopen is None:
            return
        be = f"{self.FAILOPEN}/{t.failopen}"
        self.runtime.execute(f"set server {be} state maint")
        self.runtime.command(f"shutdown sessions server {be}")
        out = self.runtime.command(f"del server {be}").strip()
        if "deleted" not in out.lower() and "connections" not in out.lower():
            raise SandboxError(f"HAProxy {self.name} refused to delete {be}: {out}")
        t.failopen = None

    def _reap(self) -> None:
        draining = {n: t for n, t in self._servers.items() if t.draining_since is not None}
        if not draining:
            return
        rt = self.runtime
        stats = rt.server_stats(self.BACKEND)
        now = time.monotonic()
        for name, t in draining.items():
            st = stats.get(name)
            if st is None:
                self._servers.pop(name, None)
                continue
            busy = int(st.get("scur") or 0) + int(st.get("qcur") or 0)
            expired = now - (t.draining_since or now) >= self.deregistration_delay_s
            if busy and not expired:
                continue
            be = f"{self.BACKEND}/{name}"
            self._drop_failopen(t)
            rt.execute(f"set server {be} state maint")
            if busy:
                rt.command(f"shutdown sessions server {be}")
            out = rt.command(f"del server {be}").strip()
            if "deleted" in out.lower():
                self._servers.pop(name, None)
            elif "connections" not in out.lower():
                raise SandboxError(f"HAProxy {self.name} refused to delete {be}: {out}")

    def wait_drained(self, timeout: float | None = None) -> None:
        """Block until every deregistered target is gone (bounded by the deregistration delay)."""
        limit = timeout if timeout is not None else self.deregistration_delay_s + 5.0

        def done() -> bool:
            with self._lock:
                self._reap()
                return all(t.draining_since is None for t in self._servers.values())

        wait_until(f"targets of {self.name} to drain", done, limit, interval=0.05)

    def target_health(self) -> dict[str, str]:
        """Per target id: "healthy" | "unhealthy" | "initial" | "draining" (ELBv2 TargetHealth.State).

        A target that never passed its checks stays "initial" until it has had time to fail
        ``unhealthy_threshold`` of them (then "unhealthy"), like ELB's registration in progress.
        """
        with self._lock:
            if not self._started:
                return {}
            self._reap()
            stats = self.runtime.server_stats(self.BACKEND)
            out: dict[str, str] = {}
            for name, t in self._servers.items():
                st = stats.get(name)
                if st is None:
                    continue
                state = "draining" if t.draining_since is not None else self._classify(t, st)
                if state in ("healthy", "unhealthy") and t.failopen is None:
                    self._add_failopen(name, t)
                if out.get(t.target_id) in (None, "draining"):
                    out[t.target_id] = state
            return out

    def _classify(self, t: _Target, st: Mapping[str, str]) -> str:
        status = st.get("status", "").upper()
        if status.startswith(("UP", "NOLB")):
            t.seen_up = True
            return "healthy"
        if status.startswith("DRAIN"):
            return "draining"
        # DOWN, "DOWN 1/3" (rising) or MAINT; chkdown counts UP→DOWN, 1 comes from our forced down
        if t.seen_up or int(st.get("chkdown") or 0) >= 2 or status.startswith("MAINT"):
            return "unhealthy"
        if st.get("check_status", "") in ("", "INI") or int(st.get("check_health") or 0) > 0:
            return "initial"
        if time.monotonic() - t.added < self.health.detection_s:
            return "initial"
        return "unhealthy"

    def stop(self) -> None:
        with self._lock:
            super().stop()
            self._servers.clear()

    def __enter__(self) -> AlbProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
