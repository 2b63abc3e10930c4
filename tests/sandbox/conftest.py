"""Fixtures for the sandbox data-plane tests (TcpProxy, PgCluster)."""

from __future__ import annotations

import contextlib
import itertools
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest

from gameday.sandbox.events import EventLog
from gameday.sandbox.pg import PgCluster, process_tree
from gameday.util.net import LOOPBACK
from gameday.util.procs import ProcessRegistry


def _echo_server(tag: str) -> Iterator[tuple[int, str]]:
    """A threaded echo server that greets each connection with ``tag`` (to tell upstreams apart)."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((LOOPBACK, 0))
    srv.listen(128)
    srv.settimeout(0.2)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def serve(c: socket.socket) -> None:
        with c:
            try:
                c.sendall(tag.encode())
                while True:
                    data = c.recv(65536)
                    if not data:
                        return
                    c.sendall(data)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conns.append(c)
            threading.Thread(target=serve, args=(c,), daemon=True).start()

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield int(srv.getsockname()[1]), tag
    finally:
        stop.set()
        t.join(2)
        srv.close()
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            c.close()


@pytest.fixture
def echo_server() -> Iterator[tuple[int, str]]:
    yield from _echo_server("A")


@pytest.fixture
def echo_server2() -> Iterator[tuple[int, str]]:
    yield from _echo_server("B")


class WriteLoop:
    """Acknowledged-commit writer through one endpoint: records every id whose INSERT returned.

    On any error it reconnects and carries on with a new id; an id whose INSERT raised is
    *not* acknowledged (it may or may not exist: Jepsen's "indeterminate").
    """

    def __init__(self, connect: Callable[[], psycopg.Connection[Any]], prefix: str,
                 interval_s: float = 0.005) -> None:
        self.connect = connect
        self.prefix = prefix
        self.interval_s = interval_s
        self.acked: list[str] = []
        self.ack_times: list[float] = []
        self.sent_times: list[float] = []  # when each acknowledged INSERT was sent (parallel to ack_times)
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> WriteLoop:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._t.join(15)

    def max_gap(self) -> float:
        """Longest time without an acknowledged write (an upper bound of the write outage)."""
        ts = self.ack_times
        return max((b - a for a, b in itertools.pairwise(ts)), default=0.0)

    def first_ack_of_write_sent_after(self, t: float) -> float | None:
        """Ack time of the first write sent after ``t``: one in flight at ``t`` may be acked by the old primary."""
        return min((a for s, a in zip(self.sent_times, self.ack_times, strict=True) if s > t), default=None)

    def wait_acks(self, n: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.acked)
        while len(self.acked) < start + n:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.prefix}: fewer than {n} acks in {timeout}s; "
                                     f"errors={self.errors[-3:]}")
            time.sleep(0.01)

    def _run(self) -> None:
        conn: psycopg.Connection[Any] | None = None
        i = 0
        while not self._stop.is_set():
            i += 1
            rid = f"{self.prefix}-{i}"
            try:
                if conn is None:
                    conn = self.connect()
                sent = time.monotonic()
                conn.execute("INSERT INTO records (id, service, region, payload)"
                             " VALUES (%s, 'test', 'x', '{}')", (rid,))
                self.acked.append(rid)
                self.ack_times.append(time.monotonic())
                self.sent_times.append(sent)
            except psycopg.Error as exc:
                self.errors.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                conn = None
                time.sleep(0.02)
            if self.interval_s:
                time.sleep(self.interval_s)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


PASSWORD = "Gd-t3st'pa ss\\word"


def cluster_pids(cluster: PgCluster) -> set[int]:
    """Every live process of every node (postmasters and their children)."""
    pids: set[int] = set()
    for node in cluster.nodes.values():
        if node.proc is not None:
            pids |= set(process_tree(node.proc.pid))
    return pids


def make_cluster(tmp: Path, **kw: Any) -> tuple[PgCluster, ProcessRegistry, Path]:
    registry = ProcessRegistry(tmp / "state")
    events_path = tmp / "events.jsonl"
    cluster = PgCluster(tmp, registry, EventLog(events_path), password=PASSWORD, **kw)
    return cluster, registry, events_path


@pytest.fixture(scope="module")
def pg_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pg")


@pytest.fixture(scope="module")
def pg(pg_tmp: Path) -> Iterator[PgCluster]:
    """One synchronous cluster shared by the tests of a module (they leave it usable or reset it)."""
    cluster, registry, _ = make_cluster(pg_tmp, failover_detect_s=0.3)
    try:
        cluster.start_timings = cluster.start()  # type: ignore[attr-defined]
        yield cluster
    finally:
        cluster.stop()
        registry.kill_all()


@pytest.fixture
def pgkit() -> SimpleNamespace:
    """Test helpers for PgCluster tests (tests/ is not a package, so they come as a fixture)."""
    return SimpleNamespace(WriteLoop=WriteLoop, PASSWORD=PASSWORD, cluster_pids=cluster_pids,
                           make_cluster=make_cluster)
