"""Fixtures for our Chaos Toolkit activities: a real control plane, real HTTP servers, real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chaos_testlib import DB_PASSWORD, PRIMARY, FakeService, Pg, chown, pg_bin, psql, run_as_pg

from gameday.util.net import LOOPBACK, free_port, wait_port
from gameday.util.procs import ProcessRegistry
from gameday.util.retry import wait_until


# ---------------------------------------------------------------- control plane
@pytest.fixture(scope="session")
def _chaos_cp() -> Iterator[Any]:
    try:
        from gameday.controlplane import ControlPlane
    except ImportError as exc:  # only while the control plane module is being written
        pytest.skip(f"gameday.controlplane not importable yet: {exc}")
    cp = ControlPlane().start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture()
def cp(_chaos_cp: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A reset control plane, reached by chaosaws through the standard AWS_* environment."""
    _chaos_cp.reset()
    _chaos_cp.hooks.clear()
    monkeypatch.setenv("AWS_ENDPOINT_URL", _chaos_cp.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", PRIMARY)
    yield _chaos_cp
    _chaos_cp.hooks.clear()


@pytest.fixture()
def aws(cp: Any) -> Callable[..., Any]:
    """boto3 client factory against the control plane (for arranging state and reading it back)."""
    def make(service: str, region: str = PRIMARY) -> Any:
        return boto3.client(service, region_name=region, endpoint_url=cp.url,
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    return make


# ---------------------------------------------------------------- HTTP services
@pytest.fixture()
def services() -> Iterator[Callable[..., FakeService]]:
    made: list[FakeService] = []

    def make(region: str = PRIMARY, status: int = 200) -> FakeService:
        made.append(FakeService(region, status))
        return made[-1]
    try:
        yield make
    finally:
        for s in made:
            s.close()


# ---------------------------------------------------------------- PostgreSQL
def _accepts(pg: Pg) -> bool:
    """Connectable (a starting server or a not-yet-consistent replica refuses connections)."""
    try:
        psql(pg, "SELECT 1")
        return True
    except Exception:
        return False


@pytest.fixture(scope="module")
def pg_factory() -> Iterator[Callable[..., Pg]]:
    """Start real PostgreSQL 15 primaries (or a streaming replica of one); everything killed at the end."""
    pg_dir = pg_bin()
    root = Path(tempfile.mkdtemp(prefix="gameday-chaos-pg-"))
    os.chmod(root, 0o755)
    registry = ProcessRegistry(root / "state")
    made: list[Pg] = []

    def start(name: str, data: Path, port: int) -> Pg:
        log = root / f"{name}.log"
        log.touch()
        chown(log)
        registry.spawn(name, [str(pg_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
                              "-c", f"listen_addresses={LOOPBACK}", "-c", "fsync=off"],
                       log=log, unprivileged=True)
        wait_port(port, timeout=30, what=f"postgres {name}")
        pg = Pg(name, port, data, registry)
        wait_until(f"postgres {name} accepting connections", lambda: _accepts(pg), timeout=30, interval=0.1)
        made.append(pg)
        return pg

    def make(name: str, replica_of: Pg | None = None) -> Pg:
        data = root / name
        data.mkdir(mode=0o700)
        chown(data)
        port = free_port()
        if replica_of is None:
            pwfile = root / f"{name}.pw"
            pwfile.write_text(DB_PASSWORD + "\n")
            chown(pwfile)
            run_as_pg(registry, f"initdb-{name}", [
                str(pg_dir / "initdb"), "-D", str(data), "-U", "gameday", "--auth=scram-sha-256",
                f"--pwfile={pwfile}", "--no-sync"], log=root / f"initdb-{name}.log")
            with open(data / "postgresql.conf", "a", encoding="utf-8") as fh:
                fh.write("wal_level = replica\nmax_wal_senders = 4\n")
            pg = start(name, data, port)
            psql(pg, "CREATE DATABASE app")
            return pg
        env = {"PGPASSWORD": DB_PASSWORD, "PATH": os.environ.get("PATH", "")}
        run_as_pg(registry, f"basebackup-{name}", [
            str(pg_dir / "pg_basebackup"), "-h", LOOPBACK, "-p", str(replica_of.port), "-U", "gameday",
            "-D", str(data), "-R", "-X", "stream", "-c", "fast", "--no-sync"],
            env=env, log=root / f"basebackup-{name}.log")
        return start(name, data, port)

    try:
        yield make
    finally:
        registry.kill_all()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_pair(pg_factory: Callable[..., Pg]) -> tuple[Pg, Pg]:
    """A primary and its streaming replica (pg_basebackup -R), both real."""
    primary = pg_factory("primary")
    psql(primary, "CREATE TABLE records (id text PRIMARY KEY)", db="app")
    replica = pg_factory("replica", replica_of=primary)
    return primary, replica
