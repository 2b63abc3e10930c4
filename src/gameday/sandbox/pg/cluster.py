"""Real PostgreSQL nodes standing in for an RDS instance (Multi-AZ or not) plus a cross-region read replica.

Topology (steady state, Multi-AZ)::

    primary region                         recovery region
    a  primary  --sync (az proxy)-->  b            c  async replica
       \\--------- link TcpProxy (delay, cut, freeze) --------/

A Single-AZ instance (``multi_az=False``, the Terraform's ``multi_az = false``) has no ``b`` at all:
nodes ``a`` and ``c`` only. RDS then has no failover target, so an unclean crash of the primary is
followed by RDS Single-AZ recovery (see :mod:`gameday.sandbox.pg.monitor`).

Endpoints are TcpProxy instances with stable ports, so clients never learn node ports:
- ``writer_port(primary)``  follows the current primary of the primary region;
- ``writer_port(recovery)`` points at that same primary (through the inter-region delay)
  until ``promote_replica()``, then at c;
- ``reader_port(primary)``  = the current primary (read-your-writes, like RDS's writer;
  the synchronous standby is not readable on RDS Multi-AZ instance deployments);
- ``reader_port(recovery)`` = c.

Durability: with ``synchronous=True`` (Multi-AZ) the primary has ``synchronous_standby_names`` =
the other node of the pair and ``synchronous_commit = on``, so an acknowledged commit is
flushed on both nodes before the client hears about it and survives SIGKILL of the
primary. ``fsync = off`` by default because the sandbox only kills *processes*: the page
cache survives, and it makes everything several times faster (``fsync=True`` to change).

Failover (planned, or automatic once the monitor has *detected* the primary's postmaster gone):
fence the old primary, promote the standby, move the writer/reader proxies (dropping existing
sessions, like RDS does), re-point c through the link proxy (rewinding it if it had received WAL
the new primary never had), then pg_rewind the old primary and start it as the new synchronous
standby. The old primary is never started without ``standby.signal`` after that.

The code is split by job: :mod:`.nodes` (node lifecycle, config), :mod:`.links` (endpoints,
replication links, status), :mod:`.faults`, :mod:`.failover` (failover, rewind, recovery,
promotion), :mod:`.monitor` (crash detection, heartbeat); this module puts them together.

Processes run as the unprivileged ``postgres`` user when we are root, through the
ProcessRegistry; data lives under ``base_dir`` (or a private /tmp directory if the
``postgres`` user cannot traverse ``base_dir``), sockets in a short per-cluster /tmp dir.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from gameday.errors import SandboxError
from gameday.provision.prereqs import _pg_dir_version, find_pg_bin
from gameday.sandbox.events import EventLog
from gameday.sandbox.pg.common import (
    MULTI_AZ_NODES,
    SINGLE_AZ_NODES,
    STATUS_AVAILABLE,
    Node,
    Timings,
    require_engine_major,
)
from gameday.sandbox.pg.monitor import MonitorOps
from gameday.util.net import free_port
from gameday.util.procs import ProcessRegistry, running_as_root, unprivileged_ids
from gameday.util.redact import Secret
from gameday.util.retry import wait_until

log = logging.getLogger("gameday.sandbox.postgres")


class PgCluster(MonitorOps):
    """A primary, its synchronous standby (Multi-AZ only) and a cross-region async replica, all real PostgreSQL."""

    def __init__(self, base_dir: str | os.PathLike[str], registry: ProcessRegistry, events: EventLog | None,
                 *, primary_region: str = "eu-south-1", recovery_region: str = "eu-central-1",
                 password: str, db_name: str = "gameday", user: str = "gameday",
                 link_delay_ms: float = 0.0, synchronous: bool = True, standby_delay_ms: float = 0.0,
                 failover_detect_s: float = 0.5, failover_delay_s: float = 0.0,
                 multi_az: bool = True, single_az_recovery_s: float = 0.0, engine_version: str | None = None,
                 auto_failover: bool = True, fsync: bool = False, wal_keep_size_mb: int = 1024,
                 start_timeout_s: float = 30.0, name_prefix: str = "pg", heartbeat_s: float = 0.5) -> None:
        if not password:
            raise SandboxError("PgCluster needs a non-empty password for the application user")
        if primary_region == recovery_region:
            raise SandboxError("primary_region and recovery_region must differ")
        self.bin = find_pg_bin()
        require_engine_major(engine_version, _pg_dir_version(self.bin), self.bin)
        self.base_dir = Path(base_dir).resolve()
        self.registry = registry
        self.events = events
        self.primary_region = primary_region
        self.recovery_region = recovery_region
        self.password = Secret(password)
        # the replication role gets its own random password: it sits in every standby's postgresql.conf
        self.repl_password = Secret(secrets.token_urlsafe(24))
        self.db_name = db_name
        self.user = user
        self.multi_az = bool(multi_az)
        self.link_delay_ms = float(link_delay_ms)
        self.synchronous = synchronous and self.multi_az
        self.standby_delay_ms = float(standby_delay_ms)
        self.failover_detect_s = float(failover_detect_s)
        self.failover_delay_s = float(failover_delay_s)
        self.single_az_recovery_s = float(single_az_recovery_s)
        self.auto_failover = auto_failover
        self.fsync = fsync
        self.wal_keep_size_mb = wal_keep_size_mb
        self.start_timeout_s = start_timeout_s
        self.name_prefix = name_prefix
        self.heartbeat_s = float(heartbeat_s)
        self._heartbeat: threading.Thread | None = None
        self._ids = unprivileged_ids() if running_as_root() else None
        self._lock = threading.RLock()
        self._stop_evt = threading.Event()
        self._monitor: threading.Thread | None = None
        self._primary = "a"
        self._replica_promoted = False
        self._link_cut = False
        self._frozen_regions: set[str] = set()
        self._initial_link_delay_ms = float(link_delay_ms)
        self._crash_at: float | None = None
        self._started = False
        self._status = STATUS_AVAILABLE
        self.last_error: BaseException | None = None
        self.failovers: list[dict[str, Any]] = []
        self.recoveries: list[dict[str, Any]] = []
        self._root, self._private_root = self._choose_root()
        self._sockroot = Path(tempfile.mkdtemp(prefix="gdpg-", dir="/tmp"))
        os.chmod(self._sockroot, 0o755)
        self.nodes: dict[str, Node] = {}
        for n in (MULTI_AZ_NODES if self.multi_az else SINGLE_AZ_NODES):
            region = recovery_region if n == "c" else primary_region
            self.nodes[n] = Node(n, region, free_port(), self._root / n, self._sockroot / n)
        self.proxies = {}

    # ================================================================ lifecycle
    def start(self) -> dict[str, float]:
        """Build and start the nodes and the proxies; return a timing breakdown (seconds)."""
        with self._lock:
            t = Timings()
            if not self.proxies:
                self._make_proxies()
            self._build(t)
            self._started = True
            if self._monitor is None or not self._monitor.is_alive():
                self._stop_evt.clear()
                self._monitor = threading.Thread(target=self._monitor_loop, name="pg-monitor", daemon=True)
                self._monitor.start()
            if self.heartbeat_s > 0 and (self._heartbeat is None or not self._heartbeat.is_alive()):
                self._heartbeat = threading.Thread(target=self._heartbeat_loop, name="pg-heartbeat", daemon=True)
                self._heartbeat.start()
            t.mark("total")
            log.info("pg cluster up in %.2fs: %s", t.marks["total"], t.marks)
            return t.marks

    def stop(self) -> None:
        """Kill every node and proxy; free every port; idempotent."""
        self._stop_evt.set()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(10)
        if self._heartbeat is not None:
            self._heartbeat.join(3)
        with self._lock:
            for node in self.nodes.values():
                self._stop_node(node, fast=True)
            for p in self.proxies.values():
                p.stop()
            self.proxies.clear()
            self._started = False
            shutil.rmtree(self._sockroot, ignore_errors=True)
            if self._private_root:
                shutil.rmtree(self._root, ignore_errors=True)

    def reset(self) -> dict[str, float]:
        """Back to the steady state (a primary, b sync standby if Multi-AZ, c streaming, proxies normal).

        Rebuilds the nodes from scratch (fresh, empty ``records``) because that is faster and
        surer than undoing an arbitrary drill; endpoints (proxy ports) stay the same.
        """
        with self._lock:
            t = Timings()
            for node in self.nodes.values():
                if node.frozen:
                    self._signal(node, signal.SIGCONT)
                    node.frozen = False
            with ThreadPoolExecutor(3) as ex:
                list(ex.map(lambda n: self._stop_node(n, fast=True), self.nodes.values()))
            t.mark("stopped")
            for p in self.proxies.values():
                p.thaw()
                p.heal()
                p.set_upstream(None, drop_existing=True)
            self._link_cut = False
            self._frozen_regions.clear()
            self._replica_promoted = False
            self._primary = "a"
            self.link_delay_ms = self._initial_link_delay_ms
            self.proxies["link"].set_delay(self.link_delay_ms)
            self._build(t)
            self._set_status(STATUS_AVAILABLE, reason="reset")
            t.mark("total")
            return t.marks

    def _build(self, t: Timings) -> None:
        a, c = self.nodes["a"], self.nodes["c"]
        b = self.nodes.get("b")
        for node in self.nodes.values():
            self._wipe(node)
        self._run_as_pg([str(self.bin / "initdb"), "-D", str(a.data), "-U", "postgres",
                         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                         "--no-sync", "--no-instructions"], "initdb", timeout=60)
        t.mark("initdb")
        # no synchronous standby until b streams, or the bootstrap DDL would wait for it forever
        self._write_config(a, primary=True, sync_names="")
        self._start_node(a)
        self._bootstrap(a)
        t.mark("primary_up")
        followers = [n for n in (b, c) if n is not None]
        with ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda n: self._basebackup(n, a), followers))
        t.mark("basebackups")
        if b is not None:
            self._write_config(b, primary=False, upstream="az")
        self._write_config(c, primary=False, upstream="link")
        self._point_proxies()
        for n in followers:
            self._start_node(n)
        t.mark("standbys_started")
        if b is not None:
            self._wait_streaming(a, b, sync=False)
            if self.synchronous:
                self._write_config(a, primary=True, sync_names="b")
                self._wait_streaming(a, b, sync=True)
        self._wait_streaming(a, c, sync=False)
        t.mark("streaming")
        # a first heartbeat replayed on c: from here on its lag in seconds is defined (never NULL)
        with self._su(a, timeout=5) as conn:
            self._beat_session(conn)
            self._beat(conn)

        def c_replayed() -> bool:
            with self._su(c, timeout=2) as conn:
                row = conn.execute("SELECT pg_last_xact_replay_timestamp() IS NOT NULL").fetchone()
            return bool(row and row[0])
        wait_until("replica c to replay a heartbeat", c_replayed, 15, 0.02)
        t.mark("heartbeat_replayed")

    def __repr__(self) -> str:
        return (f"PgCluster(primary={self._primary}, regions={self._regions()}, multi_az={self.multi_az}, "
                f"synchronous={self.synchronous}, password={self.password!r})")
