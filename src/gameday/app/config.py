"""Command line and environment of the reference service (the same flags the EC2 user data passes)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from gameday import settings
from gameday.errors import ConfigError
from gameday.util.redact import Secret

SERVICES = ("web", "orders", "catalog")
# Services whose health depends on the database answering (web serves static content).
DB_SERVICES = frozenset({"orders", "catalog"})
PASSWORD_ENV = "GAMEDAY_DB_PASSWORD"


@dataclass(frozen=True)
class DbAddress:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, field: str) -> DbAddress:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"expected HOST:PORT, got {text!r}", field=field,
                              hint=f"pass e.g. {field} 127.0.0.1:5432")
        return cls(host, int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class AppConfig:
    """Everything one instance needs; the password is a ``Secret`` so reprs never show it."""

    service: str
    region: str
    instance_id: str
    port: int
    bind: str = "127.0.0.1"
    db_writer: DbAddress | None = None
    db_reader: DbAddress | None = None
    db_name: str = "gameday"
    db_user: str = "gameday"
    db_password: Secret = field(default_factory=lambda: Secret(""))
    db_connect_timeout: float = 1.0
    db_statement_timeout: float = 3.0
    health_timeout: float = 1.0
    health_db: str = "auto"
    health_db_grace: float = 0.0
    queue_url: str | None = None
    sqs_endpoint: str | None = None
    sqs_wait_s: int = 2
    access_log: bool = False

    @property
    def needs_db(self) -> bool:
        return self.service in DB_SERVICES

    @property
    def health_target(self) -> str:
        """Which endpoint /health probes: orders lives on the writer, catalog on the reader."""
        if self.health_db != "auto":
            return self.health_db
        return "writer" if self.service == "orders" else "reader"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gameday.app", description=__doc__)
    p.add_argument("--service", required=True, choices=SERVICES)
    p.add_argument("--region", required=True)
    p.add_argument("--instance-id", required=True)
    p.add_argument("--port", type=int, required=True, help="0 picks a free port (printed on the READY line)")
    p.add_argument("--bind", default="127.0.0.1", help="listen address (loopback unless on AWS)")
    p.add_argument("--db-writer", help="HOST:PORT of the writer endpoint")
    p.add_argument("--db-reader", help="HOST:PORT of the region's reader (defaults to the writer)")
    p.add_argument("--db-name", default="gameday")
    p.add_argument("--db-user", default="gameday")
    p.add_argument("--db-connect-timeout", type=float, default=1.0, help="seconds")
    p.add_argument("--db-statement-timeout", type=float, default=3.0, help="seconds")
    p.add_argument("--health-timeout", type=float, default=1.0, help="seconds for the SELECT 1 of /health")
    p.add_argument("--health-db", choices=("auto", "writer", "reader", "both"), default="auto")
    p.add_argument("--health-db-grace", type=float, default=0.0,
                   help="seconds the database may fail before /health reports unhealthy (rides out a failover)")
    p.add_argument("--queue-url", help="SQS queue of this region (orders publishes, catalog consumes)")
    p.add_argument("--sqs-endpoint", help="endpoint_url for SQS (the local control plane)")
    p.add_argument("--sqs-wait", type=int, default=2, help="long-poll seconds of the catalog consumer (1-20)")
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    return p


def parse_config(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> AppConfig:
    """Parse argv + env; the DB password only ever comes from ``GAMEDAY_DB_PASSWORD``."""
    env = os.environ if env is None else env
    a = build_parser().parse_args(argv)
    writer = DbAddress.parse(a.db_writer, "--db-writer") if a.db_writer else None
    reader = DbAddress.parse(a.db_reader, "--db-reader") if a.db_reader else writer
    if a.service in DB_SERVICES and writer is None:
        raise ConfigError(f"service {a.service!r} needs a database", field="--db-writer",
                          hint="pass --db-writer HOST:PORT (and --db-reader for the local replica)")
    if not 0 <= a.port <= 65535:
        raise ConfigError(f"port {a.port} out of range", field="--port")
    for name in ("db_connect_timeout", "db_statement_timeout", "health_timeout"):
        if getattr(a, name) <= 0:
            raise ConfigError("must be > 0", field="--" + name.replace("_", "-"))
    if not 1 <= a.sqs_wait <= 20:
        raise ConfigError("must be between 1 and 20 (SQS long-poll limit)", field="--sqs-wait")
    return AppConfig(
        service=a.service, region=a.region, instance_id=a.instance_id, port=a.port, bind=a.bind,
        db_writer=writer, db_reader=reader, db_name=a.db_name, db_user=a.db_user,
        db_password=Secret(settings.text(PASSWORD_ENV, env) or ""),
        db_connect_timeout=a.db_connect_timeout, db_statement_timeout=a.db_statement_timeout,
        health_timeout=a.health_timeout, health_db=a.health_db, health_db_grace=a.health_db_grace,
        queue_url=a.queue_url, sqs_endpoint=a.sqs_endpoint, sqs_wait_s=a.sqs_wait, access_log=a.access_log,
    )
