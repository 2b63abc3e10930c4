"""A throwaway real PostgreSQL 15 for tests (shared by tests/app and tests/load).

Runs as user ``postgres`` when we are root (PostgreSQL refuses root), password auth on
127.0.0.1 so the app's GAMEDAY_DB_PASSWORD path is exercised for real.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from gameday.errors import PrerequisiteMissing
from gameday.provision.prereqs import find_pg_bin
from gameday.util.net import LOOPBACK, free_port, wait_port
from gameday.util.procs import ProcessRegistry, process_tree, running_as_root, unprivileged_ids
from gameday.util.retry import wait_until


def pg_bin() -> Path:
    """The PostgreSQL server binaries the harness itself would use; skips the test when there are none."""
    try:
        return find_pg_bin()
    except PrerequisiteMissing as exc:
        pytest.skip(str(exc))


class ThrowawayPg:
    """initdb + postgres in a private temp dir; ``stop()``/``start()`` keep the data."""

    def __init__(self, registry: ProcessRegistry, name: str = "pg", user: str = "gameday",
                 password: str = "t3st-Secret-pw", dbname: str = "gameday") -> None:
        self.registry = registry
        self.name = name
        self.user = user
        self.password = password
        self.dbname = dbname
        self.port = free_port()
        self.bin = pg_bin()
        # pytest's basetemp is 0700 root; postgres must be able to reach its data dir.
        self.base = Path(tempfile.mkdtemp(prefix=f"gameday-{name}-"))
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.sock = self.base / "sock"
        self.log = self.base / "postgres.log"

    def _chown(self, path: Path) -> None:
        if running_as_root():
            uid, gid = unprivileged_ids()
            os.chown(path, uid, gid)

    def init(self) -> None:
        for d in (self.sock, self.data):
            d.mkdir(mode=0o700)
            self._chown(d)
        pwfile = self.base / "pw"
        pwfile.write_text(self.password + "\n")
        self._chown(pwfile)
        m = self.registry.spawn(f"{self.name}-initdb", [
            str(self.bin / "initdb"), "-D", str(self.data), "-U", self.user, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--no-sync", "--no-instructions",
        ], log=self.base / "initdb.log", unprivileged=True, cwd=self.base)
        try:
            rc = m.popen.wait(timeout=60)
        finally:
            self.registry.forget(f"{self.name}-initdb")
        pwfile.unlink()
        if rc != 0:
            raise RuntimeError(f"initdb failed ({rc}): {(self.base / 'initdb.log').read_text()[-2000:]}")

    def start(self) -> None:
        if not self.data.exists():
            self.init()
        self.registry.spawn(self.name, [
            str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
            "-c", f"listen_addresses={LOOPBACK}", "-c", f"unix_socket_directories={self.sock}",
            "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "shared_buffers=16MB",
            "-c", "max_connections=60", "-c", "log_min_messages=warning",
        ], log=self.log, unprivileged=True, cwd=self.base)
        wait_port(self.port, timeout=30, what=f"postgres {self.name}")
        wait_until(f"postgres {self.name} accepting queries", self._answers, timeout=30, interval=0.1)
        with psycopg.connect(**self.conninfo(dbname="postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.dbname,)).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{self.dbname}"')

    def _answers(self) -> bool:
        try:
            with psycopg.connect(**self.conninfo(dbname="postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            if self.registry.procs.get(self.name) and not self.registry.procs[self.name].alive():
                raise RuntimeError(f"postgres died: {self.log.read_text()[-2000:]}") from None
            return False

    def conninfo(self, dbname: str | None = None) -> dict[str, object]:
        return {"host": LOOPBACK, "port": self.port, "user": self.user, "password": self.password,
                "dbname": dbname or self.dbname}

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        """Fast shutdown (SIGINT), data kept for a later start()."""
        if self.name in self.registry.procs:
            self.registry.kill(self.name, signal.SIGINT)

    def crash(self) -> None:
        """SIGKILL postmaster and backends (a crashed host: every connection dies)."""
        self._signal_tree(signal.SIGKILL)
        if self.name in self.registry.procs:
            self.registry.kill(self.name, signal.SIGKILL)

    def _tree(self) -> list[int]:
        """Postmaster + descendants: every backend calls setsid(), so killpg alone misses them."""
        m = self.registry.procs.get(self.name)
        if m is None or not m.alive():
            return []
        return process_tree(m.pid)

    def _signal_tree(self, sig: int) -> None:
        for pid in self._tree():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)

    def freeze(self) -> None:
        self._signal_tree(signal.SIGSTOP)

    def thaw(self) -> None:
        self._signal_tree(signal.SIGCONT)

    def query(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with psycopg.connect(**self.conninfo(), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def destroy(self) -> None:
        try:
            self.thaw()
            self.crash()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)


# -- fixtures (imported by tests/app/conftest.py and tests/load/conftest.py) ---------------------
@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayPg]:
    """One PostgreSQL for the session; tests that break the database use ``pg_private``."""
    reg = ProcessRegistry(tmp_path_factory.mktemp("pg-state"))
    db = ThrowawayPg(reg, name="pg-shared")
    try:
        db.start()
        yield db
    finally:
        db.destroy()
        reg.kill_all()


@pytest.fixture
def pg_private(tmp_path: Path) -> Iterator[ThrowawayPg]:
    reg = ProcessRegistry(tmp_path / "pg-state")
    db = ThrowawayPg(reg, name="pg-private")
    try:
        db.start()
        yield db
    finally:
        db.destroy()
        reg.kill_all()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ProcessRegistry]:
    reg = ProcessRegistry(tmp_path / "state")
    try:
        yield reg
    finally:
        reg.kill_all()


AppFactory = Callable[..., str]


@pytest.fixture
def start_app(registry: ProcessRegistry, tmp_path: Path) -> AppFactory:
    """Start ``python -m gameday.app``; returns its base URL once it listens."""

    def start(service: str, *, db: ThrowawayPg | None = None, name: str | None = None,
              instance: str = "i-test", region: str = "eu-south-1", password: str | None = None,
              extra: list[str] | None = None) -> str:
        port = free_port()
        name = name or f"app-{service}-{port}"
        env = dict(os.environ)
        if db is not None:
            env["GAMEDAY_DB_PASSWORD"] = db.password if password is None else password
        m = registry.spawn(name, app_argv(service, port, region=region, instance=instance,
                                          writer=db.address if db else None, extra=extra),
                           env=env, log=tmp_path / f"{name}.log")
        try:
            wait_port(port, timeout=15, what=f"app {name}")
        except Exception:
            m.popen.poll()
            log = (tmp_path / f"{name}.log").read_text()
            raise RuntimeError(f"app {name} did not start: {log}") from None
        return f"http://127.0.0.1:{port}"

    return start


def app_argv(service: str, port: int, *, region: str = "eu-south-1", instance: str = "i-test",
             writer: str | None = None, reader: str | None = None,
             extra: list[str] | None = None) -> list[str]:
    import sys

    argv = [sys.executable, "-m", "gameday.app", "--service", service, "--region", region,
            "--instance-id", instance, "--port", str(port)]
    if writer:
        argv += ["--db-writer", writer, "--db-reader", reader or writer]
    return argv + (extra or [])


def run_quiet(argv: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
