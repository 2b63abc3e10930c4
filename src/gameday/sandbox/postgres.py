"""Three real PostgreSQL nodes standing in for RDS Multi-AZ plus a cross-region read replica.

Topology (steady state)::

    primary region                         recovery region
    a  primary  --sync (unix socket)-->  b            c  async replica
       \\--------- link TcpProxy (delay, cut, freeze) --------/

Endpoints are TcpProxy instances with stable ports, so clients never learn node ports:
- ``writer_port(primary)``  follows the current primary of the a/b pair;
- ``writer_port(recovery)`` points at that same primary (through the inter-region delay)
  until ``promote_replica()``, then at c;
- ``reader_port(primary)``  = the current primary (read-your-writes, like RDS's writer;
  the synchronous standby is not readable on RDS Multi-AZ instance deployments);
- ``reader_port(recovery)`` = c.

Durability: with ``synchronous=True`` the primary has ``synchronous_standby_names`` =
the other node of the pair and ``synchronous_commit = on``, so an acknowledged commit is
flushed on both nodes before the client hears about it and survives SIGKILL of the
primary. ``fsync = off`` by default because the sandbox only kills *processes*: the page
cache survives, and it makes everything several times faster (``fsync=True`` to change).

Failover (planned, or automatic when the monitor thread sees the primary's postmaster
gone): fence the old primary, promote the standby (its own configuration never has a
synchronous standby, so writes do not block), move the writer/reader proxies (dropping
existing sessions, like RDS does), re-point c through the link proxy (rewinding it if it
had received WAL the new primary never had), then pg_rewind the old primary and start it
as the new synchronous standby. The old primary is never started without
``standby.signal`` after that, so there are never two primaries on different timelines
of the pair.

Processes run as the unprivileged ``postgres`` user when we are root, through the
ProcessRegistry; data lives under ``base_dir`` (or a private /tmp directory if the
``postgres`` user cannot traverse ``base_dir``), sockets in a short per-cluster /tmp dir.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from gameday.errors import CommandFailed, SandboxError, TimeoutExceeded
from gameday.provision.prereqs import find_pg_bin
from gameday.sandbox.events import EventLog
from gameday.sandbox.tcpproxy import TcpProxy
from gameday.util.net import LOOPBACK, free_port
from gameday.util.procs import Managed, ProcessRegistry, kill_group, running_as_root, unprivileged_ids
from gameday.util.redact import Secret

log = logging.getLogger(__name__)

#: Timing profiles: "fast" for tests and quick drills, "aws" to emulate RDS Multi-AZ failover times.
TIMING_PROFILES: dict[str, dict[str, float]] = {
    "fast": {"failover_detect_s": 0.5, "failover_delay_s": 0.0},
    "aws": {"failover_detect_s": 5.0, "failover_delay_s": 60.0},
}

_SUPERUSER = "postgres"
_REPL_USER = "replicator"
_NODE_NAMES = ("a", "b", "c")
# the timeline a primary writes on: the first 8 hex digits of its current WAL file name
_TL_SQL = "('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int"
_HIST_RE = re.compile(r"^\s*(\d+)\s+([0-9A-Fa-f]+/[0-9A-Fa-f]+)")


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """SCRAM-SHA-256 verifier computed client-side, so the plain password never reaches the server."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode("ascii")
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def process_tree(root: int) -> list[int]:
    """root and all its live descendants (parents first).

    PostgreSQL children call setsid(), so signalling the postmaster's process group
    reaches only the postmaster: freezing or killing a node must walk the tree.
    """
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] in ("Z", "X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        todo += children.get(pid, [])
    return out


def _lsn(text: str | None) -> int:
    if not text:
        return 0
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) + int(lo, 16)


def _conf_str(value: str) -> str:
    """Quote a value for postgresql.conf."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


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
class _Node:
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
class _Timings:
    marks: dict[str, float] = field(default_factory=dict)
    t0: float = field(default_factory=time.monotonic)

    def mark(self, what: str) -> float:
        self.marks[what] = round(time.monotonic() - self.t0, 3)
        return self.marks[what]


class PgCluster:
    """A primary, a synchronous standby and a cross-region async replica, all real PostgreSQL."""

    def __init__(self, base_dir: str | os.PathLike[str], registry: ProcessRegistry, events: EventLog | None,
                 *, primary_region: str = "eu-south-1", recovery_region: str = "eu-central-1",
                 password: str, db_name: str = "gameday", user: str = "gameday",
                 link_delay_ms: float = 0.0, synchronous: bool = True, standby_delay_ms: float = 0.0,
                 failover_detect_s: float = 0.5, failover_delay_s: float = 0.0,
                 auto_failover: bool = True, fsync: bool = False, wal_keep_size_mb: int = 1024,
                 start_timeout_s: float = 30.0, name_prefix: str = "pg", heartbeat_s: float = 0.5) -> None:
        if not password:
            raise SandboxError("PgCluster needs a non-empty password for the application user")
        if primary_region == recovery_region:
            raise SandboxError("primary_region and recovery_region must differ")
        self.bin = find_pg_bin()
        self.base_dir = Path(base_dir).resolve()
        self.registry = registry
        self.events = events
        self.primary_region = primary_region
        self.recovery_region = recovery_region
        self.password = Secret(password)
        self.db_name = db_name
        self.user = user
        self.link_delay_ms = float(link_delay_ms)
        self.synchronous = synchronous
        self.standby_delay_ms = float(standby_delay_ms)
        self.failover_detect_s = float(failover_detect_s)
        self.failover_delay_s = float(failover_delay_s)
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
        self.last_error: BaseException | None = None
        self.failovers: list[dict[str, Any]] = []
        self._root, self._private_root = self._choose_root()
        self._sockroot = Path(tempfile.mkdtemp(prefix="gdpg-", dir="/tmp"))
        os.chmod(self._sockroot, 0o755)
        self.nodes: dict[str, _Node] = {}
        for n in _NODE_NAMES:
            region = recovery_region if n == "c" else primary_region
            self.nodes[n] = _Node(n, region, free_port(), self._root / n, self._sockroot / n)
        self.proxies: dict[str, TcpProxy] = {}

    # ================================================================ endpoints
    def writer_port(self, region: str) -> int:
        return self.proxies[f"writer-{self._region_key(region)}"].port

    def reader_port(self, region: str) -> int:
        return self.proxies[f"reader-{self._region_key(region)}"].port

    @property
    def link_port(self) -> int:
        return self.proxies["link"].port

    def node_port(self, name: str) -> int:
        return self.nodes[name].port

    def primary(self) -> str:
        """Name of the current primary of the primary region's pair (a or b)."""
        return self._primary

    def standby(self) -> str:
        return "b" if self._primary == "a" else "a"

    def dsn(self, port: int, *, dbname: str | None = None, connect_timeout: int = 3) -> Secret:
        """libpq connection string for the application user on a local port (a Secret: never printed)."""
        return Secret(make_conninfo(host=LOOPBACK, port=port, dbname=dbname or self.db_name, user=self.user,
                                    password=str(self.password), connect_timeout=connect_timeout,
                                    application_name="gameday"))

    def connect(self, port: int, *, connect_timeout: int = 3) -> psycopg.Connection[Any]:
        """Autocommit application connection to port (a proxy or a node)."""
        return psycopg.connect(str(self.dsn(port, connect_timeout=connect_timeout)), autocommit=True)

    # ================================================================ lifecycle
    def start(self) -> dict[str, float]:
        """Build and start the three nodes and the proxies; return a timing breakdown (seconds)."""
        with self._lock:
            t = _Timings()
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
        """Back to the steady state (a primary, b sync standby, c streaming, proxies normal).

        Rebuilds the nodes from scratch (fresh, empty ``records``) because that is faster and
        surer than undoing an arbitrary drill; endpoints (proxy ports) stay the same.
        """
        with self._lock:
            t = _Timings()
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
            t.mark("total")
            return t.marks

    def _build(self, t: _Timings) -> None:
        a, b, c = (self.nodes[n] for n in _NODE_NAMES)
        for node in self.nodes.values():
            self._wipe(node)
        self._run_as_pg([str(self.bin / "initdb"), "-D", str(a.data), "-U", _SUPERUSER,
                         "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C",
                         "--no-sync", "--no-instructions"], "initdb", timeout=60)
        t.mark("initdb")
        # no synchronous standby until b streams, or the bootstrap DDL would wait for it forever
        self._write_config(a, primary=True, sync_names="")
        self._start_node(a)
        self._bootstrap(a)
        t.mark("primary_up")
        with ThreadPoolExecutor(2) as ex:
            list(ex.map(lambda n: self._basebackup(n, a), (b, c)))
        t.mark("basebackups")
        self._write_config(b, primary=False, upstream="az")
        self._write_config(c, primary=False, upstream="link")
        self._point_proxies()
        self._start_node(b)
        self._start_node(c)
        t.mark("standbys_started")
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
        self._wait("replica c to replay a heartbeat", c_replayed, 15, 0.02)
        t.mark("heartbeat_replayed")

    def _make_proxies(self) -> None:
        p, r = "primary", "recovery"
        self.proxies = {
            f"writer-{p}": TcpProxy(f"writer-{self.primary_region}", None),
            f"reader-{p}": TcpProxy(f"reader-{self.primary_region}", None),
            f"writer-{r}": TcpProxy(f"writer-{self.recovery_region}", None, delay_ms=self.link_delay_ms),
            f"reader-{r}": TcpProxy(f"reader-{self.recovery_region}", None),
            "link": TcpProxy("link", None, delay_ms=self.link_delay_ms),
            # the Multi-AZ pair's own link: what the delay holds dies with a crashed primary
            "az": TcpProxy("az", None, delay_ms=self.standby_delay_ms, lossy_upstream_close=True),
        }

    def _point_proxies(self, drop: bool = True, *, link: bool = True) -> None:
        """Aim every proxy at where the current topology says it should go.

        ``drop`` closes the sessions of a proxy whose upstream *changes* (they point at a node
        that is no longer the right one); sessions on an unchanged upstream live on, as read
        sessions on a promoted PostgreSQL replica do.
        """
        prim = self.nodes[self._primary]
        c = self.nodes["c"]

        def aim(name: str, port: int) -> None:
            proxy = self.proxies[name]
            proxy.set_upstream(port, drop_existing=drop and proxy.upstream_port != port)

        aim("az", prim.port)
        aim("writer-primary", prim.port)
        aim("reader-primary", prim.port)
        aim("reader-recovery", c.port)
        wr = self.proxies["writer-recovery"]
        if self._replica_promoted:
            wr.set_delay(0)
            aim("writer-recovery", c.port)
        else:
            wr.set_delay(self.link_delay_ms)
            aim("writer-recovery", prim.port)
            if link:
                aim("link", prim.port)

    # ================================================================ status & reads
    def status(self) -> list[NodeStatus]:
        """Every node's role, timeline, LSN and lag (relative to the primary it follows)."""
        raw: dict[str, dict[str, Any]] = {}
        for node in self.nodes.values():
            raw[node.name] = self._probe(node)
        prim_lsn = _lsn(raw.get(self._primary, {}).get("lsn"))
        out = []
        for node in self.nodes.values():
            r = raw[node.name]
            role = r["role"]
            lag_b: int | None = None
            lag_s: float | None = None
            if role in ("standby", "replica") and prim_lsn:
                lag_b = max(0, prim_lsn - _lsn(r.get("lsn")))
                lag_s = 0.0 if lag_b == 0 else r.get("replay_age")
            elif role == "primary":
                lag_b, lag_s = 0, 0.0
            out.append(NodeStatus(node.name, node.region, role, node.port,
                                  node.proc.pid if node.proc and node.alive() else None,
                                  r.get("timeline"), r.get("lsn"), lag_b, lag_s,
                                  r.get("streaming"), r.get("sync_state")))
        return out

    def _probe(self, node: _Node) -> dict[str, Any]:
        if not node.alive():
            return {"role": "down"}
        if node.frozen:
            return {"role": "frozen"}
        try:
            with self._su(node, timeout=2) as conn:
                rec = conn.execute(
                    "SELECT pg_is_in_recovery(),"
                    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
                    "      ELSE pg_current_wal_lsn()::text END,"
                    " CASE WHEN pg_is_in_recovery() THEN NULL"
                    f"      ELSE {_TL_SQL} END,"
                    " (SELECT received_tli FROM pg_stat_wal_receiver),"
                    " (SELECT status FROM pg_stat_wal_receiver),"
                    " (SELECT timeline_id FROM pg_control_checkpoint()),"
                    " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8").fetchone()
                assert rec is not None
                in_rec, lsn, tl_prim, tl_recv, wr_status, tl_ckpt, age = rec
                sync_state = None
                if not in_rec:
                    return {"role": "primary", "lsn": lsn, "timeline": tl_prim}
                role = "standby" if node.region == self.primary_region else "replica"
                prim = self.nodes[self._primary]
                if prim.alive() and not prim.frozen and node.name != self._primary:
                    with contextlib.suppress(psycopg.Error), self._su(prim, timeout=2) as pc:
                        row = pc.execute("SELECT sync_state FROM pg_stat_replication"
                                         " WHERE application_name = %s", (node.name,)).fetchone()
                        sync_state = row[0] if row else None
                return {"role": role, "lsn": lsn, "timeline": tl_recv or tl_ckpt, "replay_age": age,
                        "streaming": wr_status == "streaming", "sync_state": sync_state}
        except psycopg.Error as exc:
            return {"role": "down", "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}

    def replica_lag(self) -> ReplicaLag:
        """Lag of c behind the primary it follows: bytes, and seconds since its last replayed commit.

        Seconds are 0 when c has replayed everything the primary has written; otherwise
        ``now() - pg_last_xact_replay_timestamp()`` on c. If the primary cannot be asked
        (down/frozen), the seconds are that age whenever c is not known to be caught up.
        """
        c = self.nodes["c"]
        if self._replica_promoted:
            return ReplicaLag(0.0, 0)
        if not c.alive() or c.frozen:
            raise SandboxError("replica c is down or frozen: its lag cannot be read")
        with self._su(c, timeout=2) as conn:
            row = conn.execute("SELECT pg_last_wal_replay_lsn()::text,"
                               " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
                               ).fetchone()
        assert row is not None
        replay, age = _lsn(row[0]), float(row[1] or 0.0)
        prim = self.nodes[self._primary]
        if prim.alive() and not prim.frozen:
            try:
                with self._su(prim, timeout=2) as conn:
                    r = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                assert r is not None
                behind = max(0, _lsn(r[0]) - replay)
                return ReplicaLag(age if behind else 0.0, behind)
            except psycopg.Error:
                pass
        return ReplicaLag(age, 0)

    def replica_lag_seconds(self) -> float:
        return self.replica_lag().seconds

    def replica_lag_bytes(self) -> int:
        return self.replica_lag().bytes

    def count_ids(self, ids: list[str], port: int) -> set[str]:
        """Which of ids exist in ``records`` on whatever answers at port (node or proxy)."""
        found: set[str] = set()
        with self.connect(port) as conn:
            for i in range(0, len(ids), 5000):
                chunk = ids[i:i + 5000]
                for (rid,) in conn.execute("SELECT id FROM records WHERE id = ANY(%s)", (chunk,)):
                    found.add(rid)
        return found

    # ================================================================ faults
    def crash_primary(self) -> int:
        """SIGKILL the whole process group of the current primary (a host dying); return its pid."""
        node = self.nodes[self._primary]
        if not node.alive() or node.proc is None:
            raise SandboxError(f"primary {node.name} is not running")
        pid = node.proc.pid
        self._crash_at = time.monotonic()
        self._kill_tree(node)
        return pid

    def cut_link(self) -> None:
        """Cut the inter-region link: replication to c and cross-region writer sessions fail."""
        with self._lock:
            self.proxies["link"].cut()
            if not self._replica_promoted:
                self.proxies["writer-recovery"].cut()
            self._link_cut = True
            self._emit("link_cut", link="inter-region", regions=self._regions())

    def heal_link(self) -> None:
        with self._lock:
            self.proxies["link"].heal()
            self.proxies["writer-recovery"].heal()
            self._link_cut = False
            self._emit("link_healed", link="inter-region", regions=self._regions())

    def set_link_delay(self, ms: float) -> None:
        """One-way inter-region latency (replication to c, and the recovery writer while cross-region)."""
        with self._lock:
            self.link_delay_ms = float(ms)
            self.proxies["link"].set_delay(ms)
            if not self._replica_promoted:
                self.proxies["writer-recovery"].set_delay(ms)
            self._emit("link_delay", delay_ms=float(ms))

    def freeze_region(self, region: str) -> None:
        """SIGSTOP every node of region (whole process groups) and freeze its proxies and the link."""
        key = self._region_key(region)
        with self._lock:
            for node in self.nodes.values():
                if node.region == region and node.alive() and not node.frozen:
                    self._signal(node, signal.SIGSTOP)
                    node.frozen = True
            self.proxies[f"writer-{key}"].freeze()
            self.proxies[f"reader-{key}"].freeze()
            if key == "primary":
                self.proxies["az"].freeze()
            self.proxies["link"].freeze()
            self._frozen_regions.add(key)

    def thaw_region(self, region: str) -> None:
        key = self._region_key(region)
        with self._lock:
            for node in self.nodes.values():
                if node.region == region and node.frozen:
                    self._signal(node, signal.SIGCONT)
                    node.frozen = False
            self.proxies[f"writer-{key}"].thaw()
            self.proxies[f"reader-{key}"].thaw()
            if key == "primary":
                self.proxies["az"].thaw()
            self._frozen_regions.discard(key)
            if not self._frozen_regions:
                self.proxies["link"].thaw()

    def freeze_node(self, name: str) -> None:
        """SIGSTOP one node (its process group): a hung instance, for targeted fault tests."""
        with self._lock:
            node = self.nodes[name]
            if node.alive() and not node.frozen:
                self._signal(node, signal.SIGSTOP)
                node.frozen = True

    def thaw_node(self, name: str) -> None:
        with self._lock:
            node = self.nodes[name]
            if node.frozen:
                self._signal(node, signal.SIGCONT)
                node.frozen = False

    # ================================================================ failover
    def failover(self, reason: str) -> dict[str, Any]:
        """Make the standby of the pair the primary; the old primary rejoins as its standby.

        Returns timings (seconds since the call): ``promoted``, ``writers_moved`` (= RTO of the
        database layer), ``replica_repointed``, ``rejoined``, ``total``.
        """
        with self._lock:
            return self._failover(reason, crashed=False)

    def _failover(self, reason: str, *, crashed: bool) -> dict[str, Any]:
        t = _Timings()
        old, new = self.nodes[self._primary], self.nodes[self.standby()]
        if new.frozen or not new.alive():
            state = "frozen" if new.frozen else "down"
            raise SandboxError(f"cannot fail over: standby {new.name} is {state}")
        self._emit("db_failover_started", from_node=old.name, to_node=new.name, region=self.primary_region,
                   reason=reason, planned=not crashed)
        # 1. fence the old primary: a clean fast shutdown sends every WAL record to the standbys first
        if old.frozen:
            self._signal(old, signal.SIGCONT)
            old.frozen = False
        self._stop_node(old, fast=old.alive())
        t.mark("fenced")
        if not crashed and self.failover_delay_s > 0:
            self._stop_evt.wait(self.failover_delay_s)   # emulated RDS failover time (aws profile)
        # 2. promote the standby; its config has no synchronous standby, so writes never block
        with self._su(new, timeout=5) as conn:
            conn.execute("SELECT pg_promote(true, 60)")
        self._primary = new.name
        self._write_config(new, primary=True, sync_names="")
        new.upstream = None
        timeline = self._timeline(new)
        t.mark("promoted")
        self._emit("db_promoted", node=new.name, region=new.region, timeline=timeline,
                   duration_s=t.marks["promoted"], reason=reason)
        # 3. move the endpoints, dropping sessions that still point at the old primary
        self._point_proxies(drop=True, link=False)
        t.mark("writers_moved")
        self._emit("db_failover_done", from_node=old.name, to_node=new.name, region=self.primary_region,
                   duration_s=t.marks["writers_moved"], writer_port=self.writer_port(self.primary_region),
                   reason=reason, timeline=timeline)
        # 4. checkpoint so pg_rewind sees the new timeline in the control file
        with self._su(new, timeout=30) as conn:
            conn.execute("CHECKPOINT")
        switch_lsn = self._switch_lsn(new, timeline)
        # 5. c follows the new primary through the link (rewound if it got WAL the new primary never had)
        if not self._replica_promoted:
            self._repoint_replica(new, timeline, switch_lsn)
            t.mark("replica_repointed")
        # 6. the old primary rejoins as the new synchronous standby
        method = self._rejoin(old, new)
        t.mark("rejoined")
        self._emit("db_rejoined", node=old.name, region=old.region, standby_of=new.name, method=method,
                   timeline=timeline, duration_s=t.marks["rejoined"])
        t.mark("total")
        result: dict[str, Any] = {"from": old.name, "to": new.name, "reason": reason, "timeline": timeline,
                                  "rejoin_method": method, **t.marks}
        self.failovers.append(result)
        return result

    def _repoint_replica(self, new: _Node, timeline: int, switch_lsn: int) -> None:
        c = self.nodes["c"]
        link = self.proxies["link"]
        # refuse c's reconnects (and drop WAL still in flight) while we look at what it received
        link.set_upstream(None, drop_existing=True)
        if c.frozen or not c.alive():
            link.set_upstream(new.port)
            return
        try:
            with self._su(c, timeout=3) as conn:
                row = conn.execute("SELECT greatest(pg_last_wal_receive_lsn(),"
                                   " pg_last_wal_replay_lsn())::text").fetchone()
            assert row is not None
            received = _lsn(row[0])
        except psycopg.Error:
            received = 0
        if switch_lsn and received > switch_lsn:
            log.info("replica c got WAL past the switch point (%x > %x): rewinding", received, switch_lsn)
            self._stop_node(c, fast=True)
            self._rewind_or_rebuild(c, new, upstream="link")
            # a rewound c is consistent only once it replays the new primary's WAL: open the link first
            link.set_upstream(new.port, drop_existing=True)
            self._start_node(c)
        link.set_upstream(new.port, drop_existing=False)
        if not self._link_cut and "recovery" not in self._frozen_regions:
            try:
                self._wait_streaming(new, c, sync=False, timeout=15)
            except TimeoutExceeded:
                log.warning("replica c does not follow %s: rebuilding it", new.name)
                self._stop_node(c, fast=True)
                self._wipe(c)
                self._basebackup(c, new)
                self._write_config(c, primary=False, upstream="link")
                self._start_node(c)
                self._wait_streaming(new, c, sync=False, timeout=30)

    def _rejoin(self, old: _Node, new: _Node) -> str:
        self._stop_node(old, fast=False)
        method = self._rewind_or_rebuild(old, new, upstream="az")
        self._start_node(old)
        self._wait_streaming(new, old, sync=False, timeout=30)
        if self.synchronous:
            self._write_config(new, primary=True, sync_names=old.name)
            self._wait_streaming(new, old, sync=True, timeout=15)
        return method

    def _rewind_or_rebuild(self, node: _Node, source: _Node, *, upstream: str) -> str:
        src = make_conninfo(host=str(source.sock), port=source.port, user=_SUPERUSER, dbname="postgres")
        method = "rewind"
        try:
            self._run_as_pg([str(self.bin / "pg_rewind"), "-D", str(node.data), "--source-server", src,
                             "--no-sync"], f"pg_rewind {node.name}", timeout=120)
        except (CommandFailed, TimeoutExceeded) as exc:
            log.warning("pg_rewind of %s failed (%s): taking a fresh base backup", node.name, exc)
            self._wipe(node)
            self._basebackup(node, source)
            method = "basebackup"
        self._write_config(node, primary=False, upstream=upstream)
        return method

    def restart_primary(self) -> dict[str, Any]:
        """Reboot the primary in place, no failover (RDS reboot): fast shutdown, start, standbys reconnect."""
        with self._lock:
            node = self.nodes[self._primary]
            if node.frozen:
                raise SandboxError(f"cannot restart primary {node.name}: it is frozen")
            t0 = time.monotonic()
            self._stop_node(node, fast=True)
            self._start_node(node)
            self._point_proxies(drop=True)
            dur = round(time.monotonic() - t0, 3)
            log.info("primary %s restarted in %.2fs", node.name, dur)
            return {"node": node.name, "duration_s": dur}

    def promote_replica(self) -> dict[str, Any]:
        """Promote c to an independent writable primary; the recovery writer endpoint moves to it."""
        with self._lock:
            c = self.nodes["c"]
            if c.frozen or not c.alive():
                raise SandboxError("cannot promote replica c: it is frozen or down")
            if self._replica_promoted:
                return {"node": "c", "already": True}
            t0 = time.monotonic()
            try:
                lag = self.replica_lag()
            except (SandboxError, psycopg.Error):
                lag = None
            with self._su(c, timeout=5) as conn:
                conn.execute("SELECT pg_promote(true, 60)")
            self._replica_promoted = True
            c.upstream = None
            self._write_config(c, primary=True, sync_names="")
            self.proxies["link"].set_upstream(None, drop_existing=True)
            self._point_proxies(drop=True)
            timeline = self._timeline(c)
            dur = round(time.monotonic() - t0, 3)
            self._emit("db_replica_promoted", node="c", region=c.region, timeline=timeline, duration_s=dur,
                       lag_seconds=lag.seconds if lag else None, lag_bytes=lag.bytes if lag else None,
                       writer_port=self.writer_port(self.recovery_region))
            return {"node": "c", "timeline": timeline, "duration_s": dur,
                    "lag_seconds": lag.seconds if lag else None}

    # ================================================================ monitor
    def _monitor_loop(self) -> None:
        interval = max(0.02, min(0.1, self.failover_detect_s / 4))
        while not self._stop_evt.wait(interval):
            if not self.auto_failover or not self._started:
                continue
            if not self._lock.acquire(timeout=interval):
                continue
            try:
                node = self.nodes[self._primary]
                if node.proc is None or node.alive() or node.frozen or self._stop_evt.is_set():
                    continue
                rc = node.proc.popen.returncode
                detect = round(time.monotonic() - self._crash_at, 3) if self._crash_at else None
                self._crash_at = None
                self._emit("db_crashed", node=node.name, region=node.region, pid=node.proc.pid, returncode=rc,
                           detect_s=detect)
                log.warning("primary %s died (rc=%s): failing over", node.name, rc)
                if self.failover_delay_s > 0 and self._stop_evt.wait(self.failover_delay_s):
                    return
                try:
                    self._failover(f"primary {node.name} crashed", crashed=True)
                except Exception as exc:
                    self.last_error = exc
                    log.exception("automatic failover failed")
                    self.auto_failover = False
            finally:
                self._lock.release()

    def _heartbeat_loop(self) -> None:
        """Commit a tiny transaction on the primary every heartbeat_s, as RDS does.

        Without it an idle replica's ``pg_last_xact_replay_timestamp()`` is as old as the last
        application write (or NULL after a restart), so lag in seconds would read 0 while bytes
        pile up behind a cut link. Commits are ``synchronous_commit = local`` so a lost standby
        never blocks the heartbeat, and they go to the ``postgres`` database, never the app's.
        """
        conn: psycopg.Connection[Any] | None = None
        node_name = ""
        while not self._stop_evt.wait(self.heartbeat_s):
            node = self.nodes[self._primary]
            if not self._started or node.frozen or not node.alive():
                continue
            try:
                if conn is None or node_name != node.name or conn.closed:
                    if conn is not None:
                        conn.close()
                    conn = psycopg.connect(host=str(node.sock), port=node.port, user=_SUPERUSER, dbname="postgres",
                                           autocommit=True, connect_timeout=1)
                    node_name = node.name
                    self._beat_session(conn)
                self._beat(conn)
            except psycopg.Error:
                # read-only (standby being promoted), restarting, or just killed: try again next beat
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    @staticmethod
    def _beat_session(conn: psycopg.Connection[Any]) -> None:
        """Once per heartbeat connection (to the current primary): its settings and table."""
        conn.execute("SET synchronous_commit = local")
        conn.execute("SET statement_timeout = '1s'")
        conn.execute("CREATE TABLE IF NOT EXISTS gameday_heartbeat (id int PRIMARY KEY, at timestamptz)")

    @staticmethod
    def _beat(conn: psycopg.Connection[Any]) -> None:
        conn.execute("INSERT INTO gameday_heartbeat VALUES (1, now()) ON CONFLICT (id) DO UPDATE SET at = excluded.at")

    # ================================================================ node plumbing
    def _choose_root(self) -> tuple[Path, bool]:
        """base_dir if the postgres user can reach it, else a private /tmp dir (root's home is 0700)."""
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if self._ids is None or self._traversable(self.base_dir):
            root = self.base_dir / "pg"
            root.mkdir(exist_ok=True)
            return root, False
        root = Path(tempfile.mkdtemp(prefix="gameday-pgdata-", dir="/tmp"))
        os.chmod(root, 0o711)
        with contextlib.suppress(OSError):
            link = self.base_dir / "pg"
            if link.is_symlink() or not link.exists():
                link.unlink(missing_ok=True)
                link.symlink_to(root)
        return root, True

    def _traversable(self, path: Path) -> bool:
        assert self._ids is not None
        uid, gid = self._ids
        for p in [path, *path.parents]:
            st = p.stat()
            if st.st_uid == uid:
                ok = bool(st.st_mode & 0o100)
            elif st.st_gid == gid:
                ok = bool(st.st_mode & 0o010)
            else:
                ok = bool(st.st_mode & 0o001)
            if not ok:
                return False
        return True

    def _chown(self, path: Path) -> None:
        if self._ids is not None:
            os.chown(path, *self._ids)

    def _wipe(self, node: _Node) -> None:
        self._drop_shm(node)
        shutil.rmtree(node.dir, ignore_errors=True)
        node.dir.mkdir(parents=True, exist_ok=True)
        node.sock.mkdir(parents=True, exist_ok=True)
        for p in (node.dir, node.sock):
            os.chmod(p, 0o700)
            self._chown(p)

    def _drop_shm(self, node: _Node) -> None:
        """Remove the SysV segment a SIGKILLed postmaster leaves behind (its key is in postmaster.pid)."""
        pidfile = node.data / "postmaster.pid"
        with contextlib.suppress(OSError, ValueError, IndexError, subprocess.SubprocessError):
            key, shmid = (int(x) for x in pidfile.read_text().splitlines()[6].split()[:2])
            for line in Path("/proc/sysvipc/shm").read_text().splitlines()[1:]:
                f = line.split()
                # only our segment (same key and id) and only when nothing is attached any more
                if int(f[0]) == key and int(f[1]) == shmid and int(f[6]) == 0:
                    subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True, timeout=5)

    def _run_as_pg(self, argv: list[str], what: str, *, timeout: float) -> str:
        env = {"PATH": f"{self.bin}:/usr/bin:/bin", "LC_ALL": "C", "LANG": "C", "HOME": str(self._root)}
        kw: dict[str, Any] = {}
        if self._ids is not None:
            kw = {"user": self._ids[0], "group": self._ids[1], "extra_groups": []}
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env,
                                 cwd=str(self._root), **kw)
        except subprocess.TimeoutExpired as exc:
            raise TimeoutExceeded(what, timeout) from exc
        if out.returncode != 0:
            raise CommandFailed(argv, out.returncode, out.stderr + out.stdout, summary=f"{what} failed")
        return out.stdout + out.stderr

    def _basebackup(self, node: _Node, source: _Node) -> None:
        self._wipe(node)
        self._run_as_pg([str(self.bin / "pg_basebackup"), "-D", str(node.data), "-h", str(source.sock),
                         "-p", str(source.port), "-U", _REPL_USER, "-X", "stream", "-c", "fast", "--no-sync",
                         "-w"], f"pg_basebackup {node.name} from {source.name}", timeout=120)

    def _write_config(self, node: _Node, *, primary: bool, upstream: str | None = None,
                      sync_names: str | None = None) -> None:
        """Write the node's whole postgresql.conf (ours, not the copied one) and reload if running."""
        if sync_names is None:
            sync_names = self.standby() if (primary and self.synchronous) else ""
        conninfo = ""
        if not primary:
            node.upstream = upstream
            if upstream in ("link", "az"):
                conninfo = make_conninfo(host=LOOPBACK, port=self.proxies[upstream].port, user=_REPL_USER,
                                         password=str(self.password), application_name=node.name,
                                         connect_timeout=2)
            elif upstream:
                src = self.nodes[upstream]
                conninfo = make_conninfo(host=str(src.sock), port=src.port, user=_REPL_USER,
                                         application_name=node.name, connect_timeout=2)
        sync = f'FIRST 1 ("{sync_names}")' if sync_names else ""
        lines = {
            "listen_addresses": _conf_str(LOOPBACK), "port": str(node.port),
            "unix_socket_directories": _conf_str(str(node.sock)), "max_connections": "200",
            "shared_buffers": "'32MB'", "dynamic_shared_memory_type": "posix",
            "fsync": "on" if self.fsync else "off", "synchronous_commit": "on", "full_page_writes": "on",
            "wal_level": "replica", "wal_log_hints": "on", "wal_keep_size": f"'{self.wal_keep_size_mb}MB'",
            "max_wal_size": "'1GB'", "max_wal_senders": "10", "max_replication_slots": "10",
            "hot_standby": "on", "hot_standby_feedback": "on", "wal_receiver_status_interval": "'1s'",
            "wal_retrieve_retry_interval": "'200ms'", "wal_sender_timeout": "'15s'",
            "wal_receiver_timeout": "'15s'", "synchronous_standby_names": _conf_str(sync),
            "primary_conninfo": _conf_str(conninfo), "recovery_target_timeline": "'latest'",
            "log_line_prefix": "'%m [%p] %a '", "lc_messages": "'C'", "timezone": "'UTC'",
            "log_min_error_statement": "panic", "log_connections": "off",
            "cluster_name": _conf_str(node.name),
            "checkpoint_timeout": "'5min'", "log_checkpoints": "off",
        }
        text = "# written by gameday.sandbox.postgres; rewritten on every role change\n"
        text += "".join(f"{k} = {v}\n" for k, v in lines.items())
        self._write_pg_file(node.data / "postgresql.conf", text)
        self._write_pg_file(node.data / "postgresql.auto.conf", "# unused: see postgresql.conf\n")
        self._write_pg_file(node.data / "pg_hba.conf", (
            "local all all trust\n"
            "local replication all trust\n"
            "host replication replicator 127.0.0.1/32 scram-sha-256\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"))
        for sig in ("standby.signal", "recovery.signal"):
            (node.data / sig).unlink(missing_ok=True)
        if not primary:
            self._write_pg_file(node.data / "standby.signal", "")
        if node.alive() and not node.frozen and node.proc is not None:
            os.kill(node.proc.pid, signal.SIGHUP)
            if primary:
                self._wait_setting(node, "synchronous_standby_names", sync)

    def _wait_setting(self, node: _Node, name: str, value: str) -> None:
        def ok() -> bool:
            try:
                with self._su(node, timeout=2) as conn:
                    row = conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()
                return row is not None and row[0] == value
            except psycopg.Error:
                return False
        self._wait(f"{node.name}: {name} reloaded", ok, 10, 0.02)

    def _write_pg_file(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        self._chown(path)

    def _start_node(self, node: _Node) -> None:
        name = f"{self.name_prefix}-{node.name}"
        if name in self.registry.procs:
            self.registry.forget(name)
        self._drop_shm(node)
        node.proc = self.registry.spawn(name, [str(self.bin / "postgres"), "-D", str(node.data)],
                                        log=node.log, unprivileged=True, cwd=str(self._root))
        node.frozen = False

        def ready() -> bool:
            if not node.alive():
                rc = node.proc.popen.returncode if node.proc else None
                raise SandboxError(f"postgres {node.name} exited at start (rc={rc}); see {node.log}:\n"
                                   f"{self._log_tail(node)}")
            try:
                with self._su(node, timeout=1):
                    return True
            except psycopg.Error:
                return False
        self._wait(f"postgres {node.name} to accept connections", ready, self.start_timeout_s, 0.03)

    def _stop_node(self, node: _Node, *, fast: bool) -> None:
        """Fast shutdown (SIGINT to the postmaster) when fast and alive, then make sure the group is gone."""
        name = f"{self.name_prefix}-{node.name}"
        if node.proc is not None:
            if node.frozen:
                self._signal(node, signal.SIGCONT)
            if fast and node.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.proc.pid, signal.SIGINT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.proc.popen.wait(5)
            self._kill_tree(node)
            kill_group(node.proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                node.proc.popen.wait(5)
            self.registry.forget(name)
        node.proc = None
        node.frozen = False

    def _signal(self, node: _Node, sig: int) -> None:
        """Signal the postmaster and every child (each child is its own process group)."""
        if node.proc is None:
            return
        pids = process_tree(node.proc.pid)
        if sig == signal.SIGCONT:
            pids.reverse()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        # A stopped child never notices its postmaster dying: record each one while frozen so
        # kill_recorded() (cleanup after a crash of ours) can still SIGCONT+SIGKILL it.
        prefix = f"{self.name_prefix}-{node.name}-frozen-"
        if sig == signal.SIGSTOP:
            for pid in pids[1:]:
                self.registry.adopt(f"{prefix}{pid}", pid)
        elif sig == signal.SIGCONT:
            for path in self.registry.dir.glob(f"{prefix}*.json"):
                path.unlink(missing_ok=True)

    def _kill_tree(self, node: _Node) -> None:
        """SIGKILL the whole node at once (stop everything first so nothing forks or reacts)."""
        if node.proc is None or node.proc.popen.poll() is not None:
            return
        pids = process_tree(node.proc.pid)
        for sig in (signal.SIGSTOP, signal.SIGKILL, signal.SIGCONT):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)

    @contextlib.contextmanager
    def _su(self, node: _Node, *, timeout: int = 3,
            dbname: str = "postgres") -> Iterator[psycopg.Connection[Any]]:
        """Superuser session over the node's unix socket (trust), for control queries."""
        conn = psycopg.connect(host=str(node.sock), port=node.port, user=_SUPERUSER, dbname=dbname,
                               autocommit=True, connect_timeout=max(1, timeout))
        try:
            yield conn
        finally:
            conn.close()

    def _bootstrap(self, node: _Node) -> None:
        verifier = scram_verifier(str(self.password))
        with self._su(node, timeout=5) as conn:
            conn.execute("SET log_min_error_statement = panic")
            for role, attrs in ((self.user, "LOGIN"), (_REPL_USER, "LOGIN REPLICATION")):
                conn.execute(sql.SQL("CREATE ROLE {} " + attrs + " PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(verifier)))
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(self.db_name),
                                                                       sql.Identifier(self.user)))
        with self._su(node, timeout=5, dbname=self.db_name) as conn:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.user)))
            conn.execute("CREATE TABLE records (id text PRIMARY KEY, service text, region text,"
                         " payload jsonb, created_at timestamptz NOT NULL DEFAULT now())")

    def _wait_streaming(self, primary: _Node, standby: _Node, *, sync: bool, timeout: float = 30.0) -> None:
        def ok() -> bool:
            if not standby.alive():
                raise SandboxError(f"{standby.name} died while joining {primary.name}:\n"
                                   f"{self._log_tail(standby)}")
            try:
                with self._su(primary, timeout=2) as conn:
                    row = conn.execute("SELECT state, sync_state FROM pg_stat_replication"
                                       " WHERE application_name = %s", (standby.name,)).fetchone()
            except psycopg.Error:
                return False
            return row is not None and row[0] == "streaming" and (not sync or row[1] == "sync")
        what = f"{standby.name} streaming from {primary.name}{' (sync)' if sync else ''}"
        self._wait(what, ok, timeout, 0.03)

    def _timeline(self, node: _Node) -> int:
        with self._su(node, timeout=3) as conn:
            row = conn.execute(f"SELECT {_TL_SQL}").fetchone()
        assert row is not None
        return int(row[0])

    def _switch_lsn(self, node: _Node, timeline: int) -> int:
        """LSN where ``timeline`` forked from its parent (last line of its .history file)."""
        path = node.data / "pg_wal" / f"{timeline:08X}.history"
        try:
            lines = [m for m in (_HIST_RE.match(x) for x in path.read_text().splitlines()) if m]
        except OSError:
            return 0
        return _lsn(lines[-1].group(2)) if lines else 0

    def _log_tail(self, node: _Node, n: int = 15) -> str:
        try:
            return "\n".join(node.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def _wait(self, what: str, pred: Callable[[], bool], timeout: float, interval: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if pred():
                return
            if time.monotonic() >= deadline:
                raise TimeoutExceeded(what, timeout)
            time.sleep(interval)

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

    def __repr__(self) -> str:
        return (f"PgCluster(primary={self._primary}, regions={self._regions()}, "
                f"synchronous={self.synchronous}, password={self.password!r})")
