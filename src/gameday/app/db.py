"""Small psycopg connection pool with hard client-side deadlines.

Why not psycopg_pool: a failover or a frozen region must turn into a quick 503, never a stall.
``statement_timeout`` only helps while the server runs; a SIGSTOPped server or a cut link needs a
client-side deadline, so every query runs under a watchdog that shuts the socket down, and every
connect runs under its own deadline (libpq's ``connect_timeout`` cannot go below 2 s).
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.types.json import Jsonb

from gameday.app.config import DbAddress
from gameday.util.redact import Secret, redact

T = TypeVar("T")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS records (
    id text PRIMARY KEY,
    service text,
    region text,
    payload jsonb,
    created_at timestamptz DEFAULT now()
)"""
CREATE_INDEX = "CREATE INDEX IF NOT EXISTS records_created_at ON records (created_at DESC)"


class DbUnavailable(Exception):
    """The database did not answer in time or refused; the HTTP layer turns it into a 503."""


class PgEndpoint:
    """One database endpoint (writer or reader): bounded pool, reconnect on failure, deadlines."""

    def __init__(self, address: DbAddress, *, dbname: str, user: str, password: Secret, app_name: str,
                 connect_timeout: float = 1.0, statement_timeout: float = 3.0,
                 max_open: int = 8, max_idle: int = 4) -> None:
        self.address = address
        self._dbname = dbname
        self._user = user
        self._password = password
        self._app_name = app_name
        self.connect_timeout = connect_timeout
        self.statement_timeout = statement_timeout
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_open)
        self._max_idle = max_idle
        self._closed = False
        self.connects = 0
        self.errors = 0

    # -- connections ---------------------------------------------------------------------------
    def _connect(self, wait: float) -> psycopg.Connection[Any]:
        """Connect in a helper thread so the caller waits at most ``wait`` seconds."""
        box: dict[str, Any] = {}
        done = threading.Event()
        abandoned = threading.Event()

        def run() -> None:
            try:
                conn = psycopg.connect(
                    host=self.address.host, port=self.address.port, dbname=self._dbname, user=self._user,
                    password=str(self._password), application_name=self._app_name,
                    connect_timeout=max(2, int(self.connect_timeout + 1)), autocommit=True,
                    options=f"-c statement_timeout={int(self.statement_timeout * 1000)}",
                )
            except Exception as exc:
                box["error"] = exc
            else:
                box["conn"] = conn
            done.set()
            if abandoned.is_set() and "conn" in box:
                box["conn"].close()  # the caller gave up: do not leak the late connection

        threading.Thread(target=run, name=f"pg-connect-{self.address}", daemon=True).start()
        if not done.wait(wait):
            abandoned.set()
            if done.is_set() and "conn" in box:  # finished in the gap between wait and set
                box["conn"].close()
            raise DbUnavailable(f"connect to {self.address} timed out after {wait:.2g} s")
        if "error" in box:
            raise DbUnavailable(self._describe(box["error"]))
        self.connects += 1
        conn: psycopg.Connection[Any] = box["conn"]
        return conn

    def _describe(self, exc: BaseException) -> str:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return str(redact(f"{type(exc).__name__}: {text}", secrets=(str(self._password),)))

    def _checkout(self, wait: float) -> tuple[psycopg.Connection[Any], bool]:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn, True
        return self._connect(wait), False

    def _checkin(self, conn: psycopg.Connection[Any]) -> None:
        healthy = (not conn.closed and conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE)
        with self._lock:
            if healthy and not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    # -- running work --------------------------------------------------------------------------
    def run(self, fn: Callable[[psycopg.Connection[Any]], T], *, budget: float | None = None) -> T:
        """Run fn on a pooled connection, all within ``budget`` s (default: connect + statement timeout).

        A stale pooled connection (dropped by a failover while idle) is retried once on a fresh
        one; that is safe because every statement we send is idempotent (SELECTs, and an INSERT
        with ON CONFLICT DO NOTHING on a client-chosen id).
        """
        budget = self.connect_timeout + self.statement_timeout + 0.5 if budget is None else budget
        deadline = time.monotonic() + budget
        if self._closed:
            raise DbUnavailable("database client closed")
        if not self._slots.acquire(timeout=min(self.connect_timeout, budget)):
            raise DbUnavailable(f"all connections to {self.address} busy")
        try:
            for attempt in (1, 2):
                remaining = deadline - time.monotonic()
                if remaining <= 0.05:
                    raise DbUnavailable(f"no time left for {self.address} within {budget:.2g} s")
                conn, pooled = self._checkout(min(self.connect_timeout, remaining))
                try:
                    result = _with_watchdog(conn, max(0.05, deadline - time.monotonic()), fn)
                except DbUnavailable:
                    self.errors += 1
                    conn.close()
                    raise
                except psycopg.Error as exc:
                    self.errors += 1
                    conn.close()
                    if pooled and attempt == 1 and isinstance(exc, psycopg.OperationalError):
                        continue  # connection dropped by a failover while idle: one fresh try
                    raise DbUnavailable(self._describe(exc)) from exc
                self._checkin(conn)
                return result
            raise AssertionError("unreachable")
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def _with_watchdog(conn: psycopg.Connection[Any], timeout: float,
                   fn: Callable[[psycopg.Connection[Any]], T]) -> T:
    """Run fn; if it overruns, shut the socket down so psycopg fails fast instead of blocking."""
    lock = threading.Lock()
    state = {"finished": False, "fired": False}

    def fire() -> None:
        with lock:
            if state["finished"]:
                return
            state["fired"] = True
            with contextlib.suppress(Exception):
                fd = os.dup(conn.pgconn.socket)
                s = socket.socket(fileno=fd)
                try:
                    s.shutdown(socket.SHUT_RDWR)
                finally:
                    s.close()

    timer = threading.Timer(timeout, fire)
    timer.daemon = True
    timer.start()
    started = time.monotonic()
    try:
        result = fn(conn)
    except psycopg.Error as exc:
        if state["fired"]:
            raise DbUnavailable(f"query timed out after {time.monotonic() - started:.1f} s") from exc
        raise
    finally:
        with lock:
            state["finished"] = True
        timer.cancel()
    return result


class RecordStore:
    """The ``records`` table on a writer and a reader endpoint."""

    def __init__(self, writer: PgEndpoint, reader: PgEndpoint) -> None:
        self.writer = writer
        self.reader = reader
        self._table_ready = False

    def _ensure_table(self) -> None:
        if self._table_ready:
            return

        def create(conn: psycopg.Connection[Any]) -> None:
            try:
                conn.execute(CREATE_TABLE)
                conn.execute(CREATE_INDEX)
            except (pg_errors.UniqueViolation, pg_errors.DuplicateTable, pg_errors.DuplicateObject):
                pass  # another instance created it at the same moment

        self.writer.run(create)
        self._table_ready = True

    def insert(self, rec_id: str, service: str, region: str, payload: dict[str, Any]) -> bool:
        """Insert and commit (autocommit); True if new, False if the id already existed."""
        self._ensure_table()

        def ins(conn: psycopg.Connection[Any]) -> bool:
            cur = conn.execute(
                "INSERT INTO records (id, service, region, payload) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING RETURNING id",
                (rec_id, service, region, Jsonb(payload)),
            )
            return cur.fetchone() is not None

        try:
            return self.writer.run(ins)
        except DbUnavailable as exc:
            if isinstance(exc.__cause__, pg_errors.UndefinedTable):
                self._table_ready = False  # e.g. a rebuilt database: recreate on the next write
            raise

    def find(self, ids: list[str], *, source: str = "writer") -> list[str]:
        ep = self.reader if source == "reader" else self.writer

        def q(conn: psycopg.Connection[Any]) -> list[str]:
            try:
                rows = conn.execute("SELECT id FROM records WHERE id = ANY(%s)", (ids,)).fetchall()
            except pg_errors.UndefinedTable:
                return []
            return sorted(str(r[0]) for r in rows)

        return ep.run(q)

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        def q(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
            try:
                rows = conn.execute(
                    "SELECT id, service, region, payload, created_at FROM records "
                    "ORDER BY created_at DESC LIMIT %s", (limit,)).fetchall()
            except pg_errors.UndefinedTable:
                return []
            return [{"id": r[0], "service": r[1], "region": r[2], "payload": r[3],
                     "created_at": r[4].isoformat() if r[4] else None} for r in rows]

        return self.reader.run(q)

    def ping(self, which: str, timeout: float) -> None:
        """``SELECT 1`` within timeout on writer, reader or both; raises DbUnavailable."""
        eps = {"writer": [self.writer], "reader": [self.reader], "both": [self.writer, self.reader]}[which]
        for ep in eps:
            ep.run(lambda conn: conn.execute("SELECT 1").fetchone(), budget=timeout)

    def close(self) -> None:
        self.writer.close()
        if self.reader is not self.writer:
            self.reader.close()
