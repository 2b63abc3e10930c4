"""Load balancers and the global router of the sandbox, played by real HAProxy processes.

* ``AlbProxy`` is one Application Load Balancer: one HAProxy, one HTTP frontend, one
  round-robin backend whose servers are the registered targets. Targets come and go through
  the runtime API (``add server`` / drain / ``del server``), never by a restart, so in-flight
  requests survive (de)registration like they do on ALB. Health comes from HAProxy's own
  active checks, configured from the target group (interval → ``inter``, timeout →
  ``timeout check``, healthy threshold → ``rise``, unhealthy threshold → ``fall``).
* ``GlobalRouter`` is Global Accelerator: one HAProxy, one frontend per service, the primary
  region's ALB as normal server and the recovery region's ALB as ``backup``, both checked with
  ``GET /health`` *through the ALB*, so an ALB without healthy targets (503) makes its region
  unhealthy and traffic fails over; traffic dials are runtime weight/state changes.
* ``HAProxyRuntime`` talks to the admin stats socket (a unix socket in the work dir).

Everything binds 127.0.0.1 and every process is started through ``ProcessRegistry``.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError, SandboxError, TimeoutExceeded
from gameday.util.net import LOOPBACK, free_port, port_open
from gameday.util.procs import ProcessRegistry
from gameday.util.retry import wait_until

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MAX_UNIX_PATH = 90  # HAProxy 2.6 refuses > 97 (108-byte sun_path minus its ".XXXXX.tmp" name)
_START_TIMEOUT_S = 10.0
_BIND_ATTEMPTS = 3

TARGET_STATES = ("healthy", "unhealthy", "initial", "draining")


@functools.cache
def haproxy_binary() -> Path:
    """HAProxy >= 2.4 from $GAMEDAY_HAPROXY, PATH or /usr/sbin (else PrerequisiteMissing with the fix)."""
    from gameday.provision.prereqs import find_haproxy

    return find_haproxy()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _matcher_regex(matcher: str) -> str:
    """ELBv2 matcher ("200", "200,202", "200-299") as an anchored regex for ``http-check expect rstatus``."""
    codes: list[str] = []
    for part in matcher.split(","):
        part = part.strip()
        lo, _, hi = part.partition("-")
        start, end = int(lo), int(hi or lo)
        codes += [str(c) for c in range(start, end + 1)]
    return "^(" + "|".join(codes) + ")$"


@dataclass(frozen=True)
class HealthCheck:
    """Active health-check settings of a target group (or of a Global Accelerator endpoint group)."""

    path: str = "/health"
    interval_s: float = 30.0
    timeout_s: float = 5.0
    healthy_threshold: int = 5
    unhealthy_threshold: int = 2
    matcher: str = "200"

    def __post_init__(self) -> None:
        if not self.path.startswith("/") or any(c.isspace() for c in self.path):
            raise ConfigError(f"health check path {self.path!r} must start with '/' and have no spaces",
                              field="health_check.path", hint="e.g. /health")
        for fname in ("interval_s", "timeout_s"):
            if not float(getattr(self, fname)) > 0:
                raise ConfigError(f"{fname} must be > 0 (got {getattr(self, fname)!r})",
                                  field=f"health_check.{fname}")
        for fname in ("healthy_threshold", "unhealthy_threshold"):
            if int(getattr(self, fname)) < 1:
                raise ConfigError(f"{fname} must be >= 1 (got {getattr(self, fname)!r})",
                                  field=f"health_check.{fname}")
        if not re.fullmatch(r"\s*\d{3}(\s*-\s*\d{3})?(\s*,\s*\d{3}(\s*-\s*\d{3})?)*\s*", self.matcher):
            raise ConfigError(f"matcher {self.matcher!r} is not an HTTP code list",
                              field="health_check.matcher", hint='use "200", "200,202" or "200-299"')

    @classmethod
    def from_target_group(cls, tg: Mapping[str, Any], scale: float = 1.0,
                          min_interval_s: float = 0.1) -> HealthCheck:
        """From an ELBv2 ``DescribeTargetGroups`` entry (AWS defaults for missing keys), durations scaled."""
        matcher = tg.get("Matcher") or {}
        return cls(
            path=str(tg.get("HealthCheckPath") or "/health"),
            interval_s=max(min_interval_s, float(tg.get("HealthCheckIntervalSeconds") or 30) * scale),
            timeout_s=max(min_interval_s, float(tg.get("HealthCheckTimeoutSeconds") or 5) * scale),
            healthy_threshold=int(tg.get("HealthyThresholdCount") or 5),
            unhealthy_threshold=int(tg.get("UnhealthyThresholdCount") or 2),
            matcher=str(matcher.get("HttpCode") or "200"),
        )

    @property
    def detection_s(self) -> float:
        """Worst case from "target broken" to "marked down": ``fall`` checks, the last one timing out."""
        return self.unhealthy_threshold * self.interval_s + self.timeout_s

    @property
    def recovery_s(self) -> float:
        """Worst case from "target fixed" to "marked up": ``rise`` successful checks."""
        return (self.healthy_threshold + 1) * self.interval_s

    def server_args(self) -> str:
        """``server`` keywords: same interval whatever the state, like ELB (no fast/slow intervals)."""
        inter = _ms(self.interval_s)
        return (f"check inter {inter} fastinter {inter} downinter {inter} "
                f"rise {self.healthy_threshold} fall {self.unhealthy_threshold}")

    def backend_lines(self, host: str) -> list[str]:
        """Backend directives for an HTTP check of ``path`` expecting ``matcher``."""
        if re.fullmatch(r"\d{3}", self.matcher.strip()):
            expect = f"http-check expect status {self.matcher.strip()}"
        else:
            expect = f"http-check expect rstatus {_matcher_regex(self.matcher)}"
        return [
            "option httpchk",
            f"http-check send meth GET uri {self.path} ver HTTP/1.1 hdr Host {host}",
            expect,
            f"timeout check {_ms(self.timeout_s)}",
        ]


# --------------------------------------------------------------------------------------------
# runtime API
# --------------------------------------------------------------------------------------------
class HAProxyRuntime:
    """Client of HAProxy's admin stats socket: one connection per command (non-interactive mode)."""

    def __init__(self, socket_path: str | os.PathLike[str], timeout: float = 2.0) -> None:
        self.socket_path = str(socket_path)
        self.timeout = timeout

    def command(self, cmd: str) -> str:
        """Send one command line; return HAProxy's whole answer (it closes the connection after it)."""
        if "\n" in cmd:
            raise ValueError("one command per call (no newlines)")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(self.timeout)
                s.connect(self.socket_path)
                s.sendall(cmd.encode() + b"\n")
                chunks = []
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
        except (OSError, TimeoutError) as exc:
            raise SandboxError(
                f"HAProxy runtime API at {self.socket_path} did not answer {cmd!r}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def execute(self, cmd: str, expect: str | None = None) -> str:
        """Run a command that answers nothing (or ``expect``) on success; raise SandboxError otherwise."""
        out = self.command(cmd).strip()
        if (expect is None and out) or (expect is not None and expect not in out):
            raise SandboxError(f"HAProxy refused {cmd!r}: {out or '(no answer)'}")
        return out

    def show_stat(self, proxy: str | None = None, servers_only: bool = False) -> list[dict[str, str]]:
        """``show stat`` CSV as dicts (keys: pxname, svname, status, check_status, scur, weight...)."""
        cmd = "show stat"
        if proxy is not None or servers_only:
            cmd += f" {proxy or -1} {4 if servers_only else -1} -1"
        text = self.command(cmd)
        if not text.startswith("# "):
            raise SandboxError(f"unexpected answer to {cmd!r}: {text[:200]!r}")
        rows = csv.DictReader(io.StringIO(text[2:]))
        return [{k: v for k, v in row.items() if k} for row in rows if row.get("pxname")]

    def server_stats(self, backend: str) -> dict[str, dict[str, str]]:
        """Per-server ``show stat`` rows of one backend, by server name."""
        return {r["svname"]: r for r in self.show_stat(backend, servers_only=True)
                if r.get("pxname") == backend and r["svname"] not in ("FRONTEND", "BACKEND")}

    def show_servers_state(self, backend: str | None = None) -> list[dict[str, str]]:
        """``show servers state`` (format 1) as dicts keyed by its header (srv_name, srv_op_state...)."""
        text = self.command("show servers state" + (f" {backend}" if backend else ""))
        lines = [ln for ln in text.splitlines() if ln.strip()]
        header: list[str] = []
        out = []
        for ln in lines:
            if ln.startswith("#"):
                header = ln.lstrip("# ").split()
            elif header:
                out.append(dict(zip(header, ln.split(), strict=False)))
        if not header:
            raise SandboxError(f"unexpected answer to 'show servers state': {text[:200]!r}")
        return out


# --------------------------------------------------------------------------------------------
# one HAProxy process
# --------------------------------------------------------------------------------------------
class _HAProxyProcess:
    """What AlbProxy and GlobalRouter share: config file, process, admin socket, stop/freeze."""

    def __init__(self, name: str, work_dir: str | os.PathLike[str], registry: ProcessRegistry) -> None:
        if not _NAME_RE.match(name):
            raise ConfigError(f"name {name!r} must be letters, digits, '_', '.' or '-' (max 63)",
                              field="name")
        self.name = name
        self.work_dir = Path(work_dir)
        self.registry = registry
        self.proc_name = f"haproxy-{name}"
        self.config_path = self.work_dir / f"{name}.cfg"
        self.log_path = self.work_dir / f"{name}.log"
        self._sock_tmpdir: str | None = None
        self.socket_path = self.work_dir / f"{name}.sock"
        self._lock = threading.RLock()
        self._started = False
        self._runtime: HAProxyRuntime | None = None

    # subclasses
    def _config(self) -> str:
        raise NotImplementedError

    def _reallocate_ports(self) -> bool:
        """Pick new free ports after a bind race; False when ports were fixed by the caller."""
        raise NotImplementedError

    def _ports(self) -> list[int]:
        raise NotImplementedError

    def _global_and_defaults(self, connect_s: float, retries: int) -> str:
        return f"""\
global
    stats socket {self.socket_path} mode 600 level admin
    stats timeout 10s
    log stderr format short local0 notice
    nbthread 1
    maxconn 4096

defaults
    mode http
    log global
    option dontlognull
    # each request gets its own server connection: nothing idle pins a server we delete, and a
    # killed server cannot leave stale pooled connections behind
    option http-server-close
    timeout connect {_ms(connect_s)}
    timeout client 60s
    timeout server 60s
    timeout http-request 10s
    timeout http-keep-alive 5s
    timeout queue 2s
    # a connection refused by a just-killed server is retried on another server at once
    retries {retries}
    option redispatch 1
"""

    @property
    def runtime(self) -> HAProxyRuntime:
        if self._runtime is None or not self._started:
            raise SandboxError(f"HAProxy {self.name} is not running; call start() first")
        return self._runtime

    @property
    def pid(self) -> int | None:
        m = self.registry.procs.get(self.proc_name)
        return m.pid if m is not None else None

    @property
    def running(self) -> bool:
        m = self.registry.procs.get(self.proc_name)
        return self._started and m is not None and m.alive()

    def _launch(self) -> None:
        binary = haproxy_binary()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if len(str(self.socket_path)) > _MAX_UNIX_PATH:
            self._sock_tmpdir = tempfile.mkdtemp(prefix="gameday-haproxy-")
            self.socket_path = Path(self._sock_tmpdir) / "admin.sock"
        last = ""
        for _attempt in range(_BIND_ATTEMPTS):
            self.socket_path.unlink(missing_ok=True)
            self.config_path.write_text(self._config())
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(f"--- start {time.strftime('%H:%M:%S')} ---\n")
            offset = self.log_path.stat().st_size
            m = self.registry.spawn(self.proc_name, [str(binary), "-db", "-f", str(self.config_path)],
                                    log=self.log_path, cwd=self.work_dir)
            self._runtime = HAProxyRuntime(self.socket_path)
            rt = self._runtime
            deadline = time.monotonic() + _START_TIMEOUT_S
            while time.monotonic() < deadline and m.alive():
                if self.socket_path.exists() and _answers(rt) and all(port_open(p) for p in self._ports()):
                    self._started = True
                    return
                time.sleep(0.02)
            last = self._log_tail(offset)
            alive = m.alive()
            self.registry.kill(self.proc_name)
            if alive:
                raise TimeoutExceeded(f"HAProxy {self.name} to start (log {self.log_path}: {last})",
                                      _START_TIMEOUT_S)
            if "bind" not in last.lower() or not self._reallocate_ports():
                break
        raise SandboxError(f"HAProxy {self.name} failed to start; log {self.log_path}:\n{last}")

    def _log_tail(self, offset: int = 0, lines: int = 20) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as fh:
                fh.seek(offset)
                return "\n".join(fh.read().strip().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop HAProxy (whole process group) and remove its socket; safe to call twice."""
        with self._lock:
            self.registry.kill(self.proc_name, signal.SIGTERM)
            self._started = False
            self.socket_path.unlink(missing_ok=True)
            if self._sock_tmpdir:
                shutil.rmtree(self._sock_tmpdir, ignore_errors=True)
                self._sock_tmpdir = None
                self.socket_path = self.work_dir / f"{self.name}.sock"

    def freeze(self) -> None:
        """SIGSTOP: the balancer accepts TCP (kernel backlog) but answers nothing, like a partition."""
        self.registry.signal(self.proc_name, signal.SIGSTOP)

    def thaw(self) -> None:
        self.registry.signal(self.proc_name, signal.SIGCONT)


def _answers(rt: HAProxyRuntime) -> bool:
    try:
        return "Name: HAProxy" in rt.command("show info")
    except SandboxError:
        return False


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


class AlbProxy(_HAProxyProcess):
    """One ALB: an HAProxy whose backend servers follow the target group through the runtime API.

    Removed targets are drained (no new requests; in-flight ones finish) and deleted once idle or
    after ``deregistration_delay_s`` (then remaining sessions are cut, like ALB). Draining servers
    are reaped on every ``set_targets``/``target_health``/``wait_drained`` call.
    """

    FRONTEND = "alb"
    BACKEND = "targets"

    def __init__(self, name: str, work_dir: str | os.PathLike[str], registry: ProcessRegistry,
                 health: HealthCheck, *, port: int | None = None, deregistration_delay_s: float = 30.0,
                 connect_timeout_s: float = 1.0) -> None:
        super().__init__(name, work_dir, registry)
        self.health = health
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.deregistration_delay_s = deregistration_delay_s
        self.connect_timeout_s = connect_timeout_s
        self._servers: dict[str, _Target] = {}  # HAProxy server name → target
        self._wanted: dict[str, int] = {}
        self._seq = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _ports(self) -> list[int]:
        return [self.port]

    def _reallocate_ports(self) -> bool:
        if self._fixed_port:
            return False
        self.port = free_port()
        return True

    def _config(self) -> str:
        check = "\n    ".join(self.health.backend_lines(host=f"{self.name}.gameday"))
        return self._global_and_defaults(self.connect_timeout_s, retries=3) + f"""
frontend {self.FRONTEND}
    bind {LOOPBACK}:{self.port}
    option forwardfor
    default_backend {self.BACKEND}

# servers are added at runtime ("add server"), one per registered target; with none healthy
# HAProxy answers 503 at once, as an ALB without healthy targets does
backend {self.BACKEND}
    balance roundrobin
    {check}
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
    * recovery 0: the recovery server is drained (and the split disabled): nothing fails over.
      Any recovery dial > 0 makes it a full failover target (clients of this sandbox are all
      "near" the primary region, so its own dial does not scale that share further).

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

    @property
    def stats_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def add_service(self, name: str, primary_region: str, primary_port: int, recovery_region: str,
                    recovery_port: int, health: HealthCheck, *, port: int | None = None,
                    dns_ttl_s: float | None = None) -> int:
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
            svc = _Service(name, primary_region, int(primary_port), recovery_region, int(recovery_port),
                           health, port=port if port is not None else free_port(),
                           fixed_port=port is not None, dials={primary_region: 100.0, recovery_region: 100.0},
                           dns_ttl_s=dns_ttl_s, dns_answer=primary_region, dns_effective=primary_region)
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
        parts = [self._global_and_defaults(self.connect_timeout_s, retries=2), f"""
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
                split = f"track {s.backend}/{self.RECOVERY}"
            else:
                check_lines = "# router health checks disabled (variant no-router-health)"
                args = split = ""
            parts.append(f"""
frontend fe_{s.name}
    bind {LOOPBACK}:{s.port}
    default_backend {s.backend}

backend {s.backend}
    balance roundrobin
    {check_lines}
    server {self.PRIMARY} {LOOPBACK}:{s.primary_port} {args} weight 100
    server {self.RECOVERY} {LOOPBACK}:{s.recovery_port} {args} backup weight 100
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
        p, r = s.dials[s.primary_region], s.dials[s.recovery_region]
        be = s.backend
        cmds: list[str] = []
        split = 0.0 < p < 100.0 and r > 0.0
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
        cmds.append(f"set server {be}/{self.RECOVERY} state " + ("ready" if r > 0.0 else "drain"))
        for cmd in cmds:
            rt.execute(cmd)

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
        p_ok = states[s.primary_region].healthy and s.dials[s.primary_region] > 0
        r_ok = states[s.recovery_region].healthy and s.dials[s.recovery_region] > 0
        if p_ok and r_ok and s.dials[s.primary_region] < 100:
            share = s.dials[s.primary_region] / 100.0
            return {s.primary_region: share, s.recovery_region: 1.0 - share}
        if p_ok:
            return {s.primary_region: 1.0}
        if r_ok:
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


__all__ = [
    "TARGET_STATES", "AlbProxy", "GlobalRouter", "HAProxyRuntime", "HealthCheck",
    "RouterServerState", "haproxy_binary",
]
