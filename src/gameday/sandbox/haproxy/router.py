"""Global Accelerator (or Route 53 failover) played by one HAProxy (see the package doc)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gameday.errors import ConfigError, SandboxError
from gameday.sandbox.haproxy.base import _NAME_RE, HealthCheck, _HAProxyProcess
from gameday.util.net import LOOPBACK, free_port
from gameday.util.procs import ProcessRegistry

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Global Accelerator
# --------------------------------------------------------------------------------------------
@dataclass
class _Service:
    name: str
    primary_region: str
    primary_port: int
    recovery_region: str
    recovery_port: int
    health: HealthCheck
    port: int
    fixed_port: bool
    dials: dict[str, float] = field(default_factory=dict)
    # the recovery endpoint group's own health-check settings (None: the same as the primary's)
    recovery_health: HealthCheck | None = None
    weights: dict[str, int] = field(default_factory=dict)  # endpoint weight per region (0-255)
    # Route 53 mode (dns_ttl_s set): what Route 53 answers, since when, and what clients still use
    dns_ttl_s: float | None = None
    dns_answer: str = ""
    dns_answer_since: float = 0.0
    dns_effective: str = ""

    @property
    def backend(self) -> str:
        return f"svc_{self.name}"


@dataclass(frozen=True)
class RouterServerState:
    """What the router sees of one region's ALB for one service."""

    region: str
    role: str            # "primary" | "recovery"
    status: str          # raw HAProxy status: "UP", "UP 1/2", "DOWN", "DOWN 1/2", "DRAIN", "MAINT"...
    healthy: bool        # the router's health checks pass (whatever the dial)
    dial: float          # traffic dial, percent
    weight: int
    check_status: str    # e.g. L7OK, L7STS (503), L4CON (refused), L4TOUT / L7TOUT (frozen)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class GlobalRouter(_HAProxyProcess):
    """Global Accelerator as one HAProxy: a frontend (own port) and a backend per service.

    Traffic dials (GA endpoint-group ``TrafficDialPercentage``), applied at runtime:

    * primary 100: primary ALB takes everything while healthy; recovery is a ``backup`` server,
      used only when the primary is down (failover after ``fall`` failed checks, failback after
      ``rise`` good ones).
    * primary 0: the primary server is set to DRAIN (weight 0, health checks keep running, so
      setting the dial back sends traffic back at once if it is healthy) → recovery at once.
    * primary 0 < p < 100: a second, non-backup server to the recovery ALB (``recovery_split``,
      tracking the recovery server's health) is enabled; weights p : 100-p split the traffic.
      If either side is down, the other takes everything.
    * recovery 0: the recovery group gets no share of the normal traffic, but it still takes the
      failover: "for this failover, Global Accelerator ignores the traffic dial setting. So if,
      for example, an endpoint group has a traffic dial set to zero, Global Accelerator still
      includes that endpoint group in the failover attempt" (docs.aws.amazon.com/
      global-accelerator/latest/dg/about-endpoints-endpoint-weights.unhealthy-endpoints.html).

    Endpoint weights (``EndpointConfiguration.Weight``): GA fails over only "to a healthy endpoint
    with a weight greater than zero in another endpoint group" (same page), so a recovery ALB of
    weight 0 is never a failover target, and a primary ALB of weight 0 takes no traffic. With no
    healthy weighted endpoint GA fails open to a random endpoint nearby: not modelled, the
    router answers 503 (pessimistic).

    ``health_checks=False`` (variant "no-router-health") never checks the ALBs: the primary stays
    preferred however broken it is, so only a dial change moves traffic.

    Route 53 failover (a service added with ``dns_ttl_s``): Route 53's answer is the primary while
    its health check passes (and is not inverted: dial 0), else the recovery region; clients keep
    the answer they cached for the record's TTL. Modelled at the worst case, every client's cache
    refreshed just before the answer changed: traffic follows a new answer only once it has
    stood for ``dns_ttl_s`` (``observe``, called by the controller's router watch). Until then
    requests still go to the old region, failing if it is down, as a stale DNS answer does.
    """

    PRIMARY, RECOVERY, SPLIT = "primary", "recovery", "recovery_split"

    def __init__(self, work_dir: str | os.PathLike[str], registry: ProcessRegistry, *,
                 port: int | None = None, health_checks: bool = True, name: str = "global-router",
                 connect_timeout_s: float = 1.0) -> None:
        super().__init__(name, work_dir, registry)
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()   # the HAProxy stats page
        self.health_checks = health_checks
        self.connect_timeout_s = connect_timeout_s
        self._services: dict[str, _Service] = {}
        # per service, per region: the router's view at the last observe() (the health GA reports)
        self.last_states: dict[str, dict[str, RouterServerState]] = {}

    @property
    def stats_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def add_service(self, name: str, primary_region: str, primary_port: int, recovery_region: str,
                    recovery_port: int, health: HealthCheck, *, port: int | None = None,
                    dns_ttl_s: float | None = None, recovery_health: HealthCheck | None = None,
                    dials: Mapping[str, float] | None = None, weights: Mapping[str, int] | None = None) -> int:
        """Declare a service before start(); return the port its frontend will listen on."""
        with self._lock:
            if self._started:
                raise SandboxError(f"router {self.name} is running; services are fixed at start()")
            if not _NAME_RE.match(name):
                raise ConfigError(f"service name {name!r} must be letters, digits, '_', '.' or '-'",
                                  field="service")
            if name in self._services:
                raise ConfigError(f"service {name!r} added twice", field="service")
            if primary_region == recovery_region:
                raise ConfigError(f"service {name!r}: primary and recovery are both {primary_region!r}",
                                  field="recovery_region")
            if recovery_health is not None and recovery_health.path != health.path:
                # one HAProxy backend sends one check request; endpoint groups of one service that
                # check different paths cannot be played by it
                raise ConfigError(f"service {name!r}: the endpoint groups check different paths "
                                  f"({health.path!r}, {recovery_health.path!r})", field="health_check_path",
                                  hint="use the same health_check_path in both regions")
            start = {primary_region: 100.0, recovery_region: 100.0, **(dials or {})}
            for region, p in start.items():
                if not 0.0 <= float(p) <= 100.0:
                    raise ConfigError(f"traffic dial {p!r} of {name}/{region} out of range",
                                      field="traffic_dial_percentage", hint="0 to 100")
            svc = _Service(name, primary_region, int(primary_port), recovery_region, int(recovery_port),
                           health, port=port if port is not None else free_port(),
                           fixed_port=port is not None, dials={r: float(p) for r, p in start.items()},
                           dns_ttl_s=dns_ttl_s, dns_answer=primary_region, dns_effective=primary_region,
                           recovery_health=recovery_health,
                           weights={primary_region: 128, recovery_region: 128, **(weights or {})})
            for region, w in svc.weights.items():
                if not 0 <= int(w) <= 255:
                    raise ConfigError(f"endpoint weight {w!r} of {name}/{region} out of range", field="weight",
                                      hint="0 to 255")
            self._services[name] = svc
            return svc.port

    def services(self) -> list[str]:
        return list(self._services)

    def service_port(self, service: str) -> int:
        return self._svc(service).port

    def service_url(self, service: str) -> str:
        return f"http://{LOOPBACK}:{self.service_port(service)}"

    def _svc(self, service: str) -> _Service:
        try:
            return self._services[service]
        except KeyError:
            raise ConfigError(f"unknown service {service!r}", field="service",
                              hint=f"one of: {', '.join(self._services) or '(none added)'}") from None

    def _ports(self) -> list[int]:
        return [self.port, *(s.port for s in self._services.values())]

    def _reallocate_ports(self) -> bool:
        if self._fixed_port or any(s.fixed_port for s in self._services.values()):
            return False
        self.port = free_port()
        for s in self._services.values():
            s.port = free_port()
        return True

    def _config(self) -> str:
        parts = [self._global_and_defaults(self.connect_timeout_s), f"""
listen stats
    bind {LOOPBACK}:{self.port}
    stats enable
    stats uri /
    stats refresh 2s
"""]
        for s in self._services.values():
            if self.health_checks:
                check_lines = "\n    ".join(s.health.backend_lines(host=f"{s.name}.gameday"))
                args = s.health.server_args()
                rargs = (s.recovery_health or s.health).server_args()
                split = f"track {s.backend}/{self.RECOVERY}"
            else:
                check_lines = "# router health checks disabled (variant no-router-health)"
                args = rargs = split = ""
            parts.append(f"""
frontend fe_{s.name}
    bind {LOOPBACK}:{s.port}
    default_backend {s.backend}

backend {s.backend}
    balance roundrobin
    {check_lines}
    server {self.PRIMARY} {LOOPBACK}:{s.primary_port} {args} weight 100
    server {self.RECOVERY} {LOOPBACK}:{s.recovery_port} {rargs} backup weight 100
    server {self.SPLIT} {LOOPBACK}:{s.recovery_port} {split} weight 100 disabled
""")
        return "".join(parts)

    def start(self) -> int:
        """Start HAProxy with every added service and apply the dials set so far; return the stats port."""
        with self._lock:
            if not self._services:
                raise ConfigError("router has no services", hint="call add_service() before start()")
            if not self._started:
                self._launch()
                for s in self._services.values():
                    self._apply_dials(s)
            return self.port

    def set_traffic_dial(self, service: str, region: str, percent: float) -> None:
        """GA traffic dial of a region's endpoint group (0-100), applied at once (see class doc)."""
        with self._lock:
            s = self._svc(service)
            if region not in s.dials:
                raise ConfigError(f"service {service!r} has no region {region!r}", field="region",
                                  hint=f"one of: {s.primary_region}, {s.recovery_region}")
            p = float(percent)
            if not 0.0 <= p <= 100.0:
                raise ConfigError(f"traffic dial {percent!r} out of range", field="traffic_dial_percentage",
                                  hint="0 to 100")
            s.dials[region] = p
            if self._started:
                self._apply_dials(s)

    def set_endpoint_weight(self, service: str, region: str, weight: int) -> None:
        """GA endpoint weight of a region's ALB (0-255), applied at once; 0 takes it out of routing."""
        with self._lock:
            s = self._svc(service)
            if region not in s.weights:
                raise ConfigError(f"service {service!r} has no region {region!r}", field="region")
            if not 0 <= int(weight) <= 255:
                raise ConfigError(f"endpoint weight {weight!r} out of range", field="weight", hint="0 to 255")
            s.weights[region] = int(weight)
            if self._started:
                self._apply_dials(s)

    def endpoint_weight(self, service: str, region: str) -> int:
        return self._svc(service).weights[region]

    def dns_ttl(self, service: str) -> float | None:
        """Seconds clients keep a Route 53 answer (None: not a Route 53 service)."""
        return self._svc(service).dns_ttl_s

    def traffic_dial(self, service: str, region: str) -> float:
        return self._svc(service).dials[region]

    def observe(self) -> tuple[list[tuple[str, str, str]], dict[str, str | None]]:
        """One pass over every service, one ``show stat`` each: follow Route 53 answers that have
        stood for their TTL, then say which region takes each service's next request.

        Returns (switches made as (service, from, to), active region per service). A service
        whose stats cannot be read is left out of the second; the controller's router watch
        calls this every 20 ms, so it reads HAProxy once per service, not once per question.
        """
        switched: list[tuple[str, str, str]] = []
        active: dict[str, str | None] = {}
        with self._lock:
            if not self._started:
                return switched, active
            t = time.monotonic()
            for s in self._services.values():
                try:
                    states = self.server_states(s.name)
                except SandboxError as exc:
                    log.debug("router %s: no stats for %s: %s", self.name, s.name, exc)
                    continue
                self.last_states[s.name] = states
                if s.dns_ttl_s is not None:
                    followed = self._follow_dns(s, states, t)
                    if followed:
                        switched.append((s.name, *followed))
                active[s.name] = self._active(s, self._split(s, states))
        return switched, active

    def _follow_dns(self, s: _Service, states: dict[str, RouterServerState], t: float) -> tuple[str, str] | None:
        """Route 53's answer for s now; clients move to it once it has stood for the TTL."""
        assert s.dns_ttl_s is not None
        primary_ok = states[s.primary_region].healthy and s.dials[s.primary_region] > 0
        answer = s.primary_region if primary_ok else s.recovery_region
        if answer != s.dns_answer:
            s.dns_answer, s.dns_answer_since = answer, t
        if answer == s.dns_effective or t - s.dns_answer_since < s.dns_ttl_s:
            return None
        old, s.dns_effective = s.dns_effective, answer
        self._apply_dials(s)
        return old, answer

    def _apply_dials(self, s: _Service) -> None:
        rt = self.runtime
        if s.dns_ttl_s is not None:
            # Route 53: only the region clients resolve to takes traffic; the other keeps being
            # health-checked (drain, not maint) so Route 53's answer can follow it
            be = s.backend
            on, off = (self.PRIMARY, self.RECOVERY) if s.dns_effective == s.primary_region else \
                (self.RECOVERY, self.PRIMARY)
            for cmd in (f"set server {be}/{self.SPLIT} state maint", f"set weight {be}/{on} 100",
                        f"set server {be}/{on} state ready", f"set server {be}/{off} state drain"):
                rt.execute(cmd)
            return
        p, r, wr = self._effective_dial(s), s.dials[s.recovery_region], s.weights[s.recovery_region]
        be = s.backend
        cmds: list[str] = []
        split = 0.0 < p < 100.0 and r > 0.0 and wr > 0
        if split:
            cmds += [f"set weight {be}/{self.SPLIT} {max(1, round(100 - p))}",
                     f"set server {be}/{self.SPLIT} state ready"]
        else:
            cmds.append(f"set server {be}/{self.SPLIT} state maint")
        if p > 0.0:
            cmds += [f"set weight {be}/{self.PRIMARY} {max(1, round(p))}",
                     f"set server {be}/{self.PRIMARY} state ready"]
        else:
            cmds.append(f"set server {be}/{self.PRIMARY} state drain")
        # the failover target whatever its dial, as long as its endpoint has a weight (with every
        # dial at 0 no group is chosen at all: nothing, the pessimistic reading)
        cmds.append(f"set server {be}/{self.RECOVERY} state " + ("ready" if self._recovery_eligible(s) else "drain"))
        for cmd in cmds:
            rt.execute(cmd)

    def _recovery_eligible(self, s: _Service) -> bool:
        every_dial_zero = self._effective_dial(s) == 0.0 and s.dials[s.recovery_region] == 0.0
        return s.weights[s.recovery_region] > 0 and not every_dial_zero

    @staticmethod
    def _effective_dial(s: _Service) -> float:
        """The primary group's dial, 0 when its only endpoint has weight 0 (it takes nothing)."""
        return s.dials[s.primary_region] if s.weights[s.primary_region] > 0 else 0.0

    def server_states(self, service: str) -> dict[str, RouterServerState]:
        """Per region, the router's view of that region's ALB (status, health, dial, weight)."""
        with self._lock:
            s = self._svc(service)
            stats = self.runtime.server_stats(s.backend)
        out = {}
        for role, region in ((self.PRIMARY, s.primary_region), (self.RECOVERY, s.recovery_region)):
            st = stats.get(role)
            if st is None:
                raise SandboxError(f"router {self.name}: server {s.backend}/{role} missing from show stat")
            status = st.get("status", "")
            out[region] = RouterServerState(
                region=region, role=role, status=status,
                healthy=status.upper().startswith(("UP", "DRAIN", "NOLB", "NO CHECK")),
                dial=s.dials[region], weight=int(st.get("weight") or 0),
                check_status=st.get("check_status", ""),
            )
        return out

    def traffic_split(self, service: str) -> dict[str, float]:
        """Share of new requests each region would get now (empty: no region can take traffic)."""
        return self._split(self._svc(service), self.server_states(service))

    def _split(self, s: _Service, states: dict[str, RouterServerState]) -> dict[str, float]:
        if s.dns_ttl_s is not None:     # Route 53: only the region clients resolve to, if it answers
            return {s.dns_effective: 1.0} if states[s.dns_effective].healthy else {}
        p = self._effective_dial(s)
        p_ok = states[s.primary_region].healthy and p > 0
        r_ok = states[s.recovery_region].healthy and self._recovery_eligible(s)
        if p_ok and r_ok and p < 100 and s.dials[s.recovery_region] > 0:
            share = p / 100.0
            return {s.primary_region: share, s.recovery_region: 1.0 - share}
        if p_ok:
            return {s.primary_region: 1.0}
        if r_ok:  # failover: the recovery group's dial is ignored
            return {s.recovery_region: 1.0}
        return {}

    def active_region(self, service: str) -> str | None:
        """The region taking the next request (the larger share; the primary on a tie), or None."""
        return self._active(self._svc(service), self.traffic_split(service))

    @staticmethod
    def _active(s: _Service, split: dict[str, float]) -> str | None:
        if not split:
            return None
        return max(split, key=lambda r: (split[r], r == s.primary_region))

    def __enter__(self) -> GlobalRouter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
