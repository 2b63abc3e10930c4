"""Helpers for the chaos activity tests (fake services, PostgreSQL handles, chaos CLI runner)."""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from gameday.errors import PrerequisiteMissing
from gameday.provision.prereqs import find_pg_bin
from gameday.util.net import LOOPBACK, free_port
from gameday.util.procs import ProcessRegistry, running_as_root, unprivileged_ids


def pg_bin() -> Path:
    """The PostgreSQL server binaries the harness itself would use; skips the test when there are none."""
    try:
        return find_pg_bin()
    except PrerequisiteMissing as exc:
        pytest.skip(str(exc))
PRIMARY, RECOVERY = "eu-south-1", "eu-central-1"
DB_PASSWORD = "s3cret-Pa55-word"


class FakeService:
    """A loopback HTTP service answering /health with a status and X-Gameday-Region we can change."""

    def __init__(self, region: str, status: int = 200) -> None:
        self.region, self.status = region, status
        svc = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = b'{"ok": true}'
                self.send_response(svc.status if self.path.startswith("/health") else 404)
                self.send_header("X-Gameday-Region", svc.region)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((LOOPBACK, free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass
class Pg:
    """One throwaway PostgreSQL server on loopback."""

    name: str
    port: int
    data: Path
    registry: ProcessRegistry

    @property
    def hostport(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def pid(self) -> int:
        return self.registry.procs[self.name].pid


def run_as_pg(registry: ProcessRegistry, name: str, argv: list[str], env: dict[str, str] | None = None,
               log: Path | None = None) -> None:
    m = registry.spawn(name, argv, env=env, log=log, unprivileged=True)
    try:
        rc = m.popen.wait(timeout=60)
    finally:
        registry.forget(name)
    if rc != 0:
        text = log.read_text() if log and log.exists() else ""
        raise RuntimeError(f"{argv[0]} failed ({rc}): {text[-2000:]}")


def chown(path: Path) -> None:
    if running_as_root():
        uid, gid = unprivileged_ids()
        os.chown(path, uid, gid)


def psql(pg: Pg, sql: str, db: str = "postgres") -> None:
    import psycopg

    with psycopg.connect(host=LOOPBACK, port=pg.port, user="gameday", password=DB_PASSWORD, dbname=db,
                         autocommit=True, connect_timeout=5) as conn:
        conn.execute(sql.encode())


def db_configuration(writer: str, readers: dict[str, str] | None = None) -> dict[str, Any]:
    """A Chaos Toolkit configuration like the experiments build from GAMEDAY_DB_* env."""
    return {"aws_region": PRIMARY, "gameday_primary_region": PRIMARY, "gameday_db_writer": writer,
            "gameday_db_reader": readers or {}, "gameday_db_name": "app", "gameday_db_user": "gameday"}


SECRETS = {"db_password": DB_PASSWORD}


def chaos_env(tmp: Path) -> dict[str, str]:
    """Dummy loopback values for every env var the experiments reference."""
    env = dict(os.environ)
    env.update({
        "GAMEDAY_PRIMARY_REGION": PRIMARY, "GAMEDAY_RECOVERY_REGION": RECOVERY,
        "GAMEDAY_SERVICE_URLS": '{"web": "http://127.0.0.1:1", "orders": "http://127.0.0.1:2", '
                                '"catalog": "http://127.0.0.1:3"}',
        "GAMEDAY_DB_WRITER": '{"eu-south-1": "127.0.0.1:4", "eu-central-1": "127.0.0.1:5"}',
        "GAMEDAY_DB_READER": '{"eu-south-1": "127.0.0.1:6", "eu-central-1": "127.0.0.1:7"}',
        "GAMEDAY_DB_PASSWORD": "dummy", "GAMEDAY_PRIMARY_ASGS": '["web-a", "orders-a", "catalog-a"]',
        "GAMEDAY_PRIMARY_AZ": "eu-south-1a", "GAMEDAY_DB_PRIMARY_ID": "db-primary",
        "GAMEDAY_DB_REPLICA_ID": "db-replica", "GAMEDAY_FAILOVER_ASG": "orders-a",
        "AWS_REGION": PRIMARY, "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "HOME": str(tmp),
    })
    return env


def run_chaos(args: list[str], tmp: Path,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    chaos = Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "chaos"
    if not chaos.exists():
        chaos = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "chaos"
    return subprocess.run([str(chaos), "--no-log-file", *args], cwd=tmp, env=env or chaos_env(tmp),
                          capture_output=True, text=True, timeout=120, check=False)
