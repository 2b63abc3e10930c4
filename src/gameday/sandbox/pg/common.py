"""Shared pieces of the PostgreSQL data plane: node records, status records, helpers, the state base class.

Every ``pg`` module builds on :class:`ClusterState`, which only *declares* what a cluster holds;
:class:`gameday.sandbox.pg.cluster.PgCluster` fills it in. The modules form one inheritance
chain (nodes -> links -> faults -> failover -> monitor -> cluster), so each layer may call the
layers below it.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError, SandboxError
from gameday.sandbox.events import EventLog
from gameday.sandbox.tcpproxy import TcpProxy
from gameday.util.procs import Managed, ProcessRegistry
from gameday.util.procs import process_tree as process_tree  # re-exported: gameday.sandbox.pg
from gameday.util.redact import Secret

SUPERUSER = "postgres"
REPL_USER = "replicator"
MULTI_AZ_NODES = ("a", "b", "c")
SINGLE_AZ_NODES = ("a", "c")
# the timeline a primary writes on: the first 8 hex digits of its current WAL file name
TL_SQL = "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
HIST_RE = re.compile(r"^\s*(\d+)\s+([0-9A-Fa-f]+/[0-9A-Fa-f]+)")

#: DescribeDBInstances status values the data plane can be in. "rebooting": "The DB instance is
#: being rebooted because of a customer request or an Amazon RDS process that requires the
#: rebooting of the DB instance." (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html)
STATUS_AVAILABLE = "available"
STATUS_REBOOTING = "rebooting"


def lsn(text: str | None) -> int:
    if not text:
        return 0
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def conf_str(value: str) -> str:
    """Quote a value for postgresql.conf."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def engine_major(version: str) -> int | None:
    """Major of an RDS PostgreSQL engine_version ("15", "15.4", "9.6.22" -> 15, 15, 9)."""
    m = re.match(r"\s*(\d+)", version or "")
    return int(m.group(1)) if m else None


def require_engine_major(engine_version: str | None, installed: tuple[int, ...] | None,
                         bin_dir: Path) -> None:
    """The installed PostgreSQL must be the major the Terraform asked RDS for.

    A sandbox on another major would rehearse different replication, rewind and crash-recovery
    code than the database the drill is meant to prove (RDS runs exactly the requested major:
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_UpgradeDBInstance.PostgreSQL.html
    - a major version change only happens through an explicit upgrade).
    """
    want = engine_major(engine_version or "")
    if want is None or installed is None:
        return
    if installed[0] != want:
        have = ".".join(str(x) for x in installed)
        raise ConfigError(
            f"the Terraform asks RDS for PostgreSQL {engine_version} (major {want}) but the sandbox's "
            f"PostgreSQL at {bin_dir} is {have} (major {installed[0]})",
            field="db_engine_version",
            hint=f"install PostgreSQL {want} and point GAMEDAY_PG_BIN at its bin directory, "
                 f"or set db_engine_version = \"{installed[0]}\" in the Terraform variables")


@dataclass(frozen=True)
class NodeStatus:
    """One node as seen right now; role is primary/standby/replica/down/frozen."""

    name: str
    region: str
    role: str
    port: int
    pid: int | None
    timeline: int | None = None
    lsn: str | None = None
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    streaming: bool | None = None
    sync_state: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ReplicaLag:
    seconds: float
    bytes: int


@dataclass
class Node:
    name: str
    region: str
    port: int
    dir: Path
    sock: Path
    proc: Managed | None = None
    frozen: bool = False
    # where this node streams from when it is a standby: a node name, or "link" (c via the link proxy)
    upstream: str | None = None

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def log(self) -> Path:
        return self.dir / "postgres.log"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.popen.poll() is None


@dataclass
class Timings:
    marks: dict[str, float] = field(default_factory=dict)
    t0: float = field(default_factory=time.monotonic)

    def mark(self, what: str) -> float:
        self.marks[what] = round(time.monotonic() - self.t0, 3)
        return self.marks[what]


class ClusterState:
    """What every layer of the cluster reads and writes (declared here, set by PgCluster.__init__)."""

    bin: Path
    base_dir: Path
    registry: ProcessRegistry
    events: EventLog | None
    primary_region: str
    recovery_region: str
    password: Secret
    repl_password: Secret  # the replication role's own (random, never the application's)
    db_name: str
    user: str
    multi_az: bool
    link_delay_ms: float
    synchronous: bool
    standby_delay_ms: float
    failover_detect_s: float
    failover_delay_s: float
    single_az_recovery_s: float
    auto_failover: bool
    fsync: bool
    wal_keep_size_mb: int
    start_timeout_s: float
    name_prefix: str
    heartbeat_s: float
    last_error: BaseException | None
    failovers: list[dict[str, Any]]
    recoveries: list[dict[str, Any]]
    nodes: dict[str, Node]
    proxies: dict[str, TcpProxy]
    _ids: tuple[int, int] | None
    _lock: threading.RLock
    _stop_evt: threading.Event
    _primary: str
    _replica_promoted: bool
    _link_cut: bool
    _frozen_regions: set[str]
    _crash_at: float | None
    _started: bool
    _status: str
    _root: Path
    _private_root: bool
    _sockroot: Path

    def primary(self) -> str:
        """Name of the current primary of the primary region (a, or b after a Multi-AZ failover)."""
        return self._primary

    def standby(self) -> str:
        """The synchronous standby of the pair; "" for a Single-AZ instance (there is none)."""
        if not self.multi_az:
            return ""
        return "b" if self._primary == "a" else "a"

    def instance_status(self) -> str:
        """RDS DBInstanceStatus of the primary instance as the data plane really is."""
        return self._status

    def begin_reboot(self, reason: str) -> None:
        """An accepted RebootDBInstance: the instance reads ``rebooting`` from the API's answer on."""
        self._set_status(STATUS_REBOOTING, reason=reason)

    def _set_status(self, status: str, **why: Any) -> None:
        if status != self._status:
            self._status = status
            self._emit("db_instance_status", status=status, **why)

    def _region_key(self, region: str) -> str:
        if region in ("primary", self.primary_region):
            return "primary"
        if region in ("recovery", self.recovery_region):
            return "recovery"
        raise SandboxError(f"unknown region {region!r}: expected one of {self._regions()}")

    def _regions(self) -> list[str]:
        return [self.primary_region, self.recovery_region]

    def _emit(self, kind: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.emit(kind, **fields)
