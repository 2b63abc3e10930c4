"""What the ALBs and the global router share: health-check settings, the runtime API, one process."""

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError, SandboxError, TimeoutExceeded
from gameday.util.net import port_open
from gameday.util.procs import ProcessRegistry
from gameday.util.retry import poll_until

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

    def _global_and_defaults(self, connect_s: float) -> str:
        # No retries and no redispatch. An ALB sends a request to one target and answers the client
        # itself when that target fails (HTTP 502 when the target resets the connection, 504 when it
        # does not answer: "The load balancer generates an HTTP error", docs.aws.amazon.com/
        # elasticloadbalancing/latest/application/load-balancer-troubleshooting.html); AWS documents no
        # retry on another target, so the pessimistic reading is none. Global Accelerator forwards a
        # TCP connection to one endpoint and has no retry either. HAProxy answers 503 where the ALB
        # says 502/504: a failed request either way.
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
    retries 0
    no option redispatch
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

            def ready(rt: HAProxyRuntime = rt) -> bool:
                return self.socket_path.exists() and _answers(rt) and all(port_open(p) for p in self._ports())

            def settled(m: Any = m) -> bool:  # up, or dead (then the log says why)
                return not m.alive() or ready()

            if poll_until(settled, _START_TIMEOUT_S, interval=0.02) and ready():
                self._started = True
                return
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
