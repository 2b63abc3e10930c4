"""Probes on the PostgreSQL topology: who is primary, is it writable, how far behind are replicas."""

from __future__ import annotations

import logging
import time
from typing import Any

from chaoslib.types import Configuration, Secrets
from psycopg import sql

from gameday.chaos._common import ActivityFailed, client
from gameday.chaos.database._conn import configured_endpoints, connect, scalar

__all__ = ["any_writable", "count_records", "db_instance_status", "is_writable", "replica_lag_seconds",
           "replication_healthy", "role"]

log = logging.getLogger("chaostoolkit")


def is_writable(endpoint: str = "writer", configuration: Configuration = None,
                secrets: Secrets = None) -> bool:
    """Whether endpoint accepts writes now (a reachable primary, not read-only); unreachable is False."""
    try:
        with connect(endpoint, configuration, secrets) as conn:
            row = conn.execute("SELECT pg_is_in_recovery(), "
                               "current_setting('transaction_read_only')").fetchone()
    except ActivityFailed as exc:
        log.info("database %s not writable: %s", endpoint, exc)
        return False
    return row is not None and not row[0] and row[1] == "off"


def any_writable(endpoints: list[str] | None = None, configuration: Configuration = None,
                 secrets: Secrets = None) -> bool:
    """Whether writes are accepted somewhere: any of endpoints (default: every configured writer)."""
    names = endpoints if endpoints is not None else sorted(
        k for k in configured_endpoints(configuration) if k.startswith("writer:"))
    return any(is_writable(name, configuration, secrets) for name in names)


def role(endpoint: str, configuration: Configuration = None, secrets: Secrets = None) -> str:
    """``primary`` or ``replica`` (from pg_is_in_recovery()) of the node behind endpoint."""
    with connect(endpoint, configuration, secrets) as conn:
        return "replica" if scalar(conn, "SELECT pg_is_in_recovery()") else "primary"


def replica_lag_seconds(endpoint: str, writer: str = "writer", window_s: float = 2.0,
                        configuration: Configuration = None, secrets: Secrets = None) -> float:
    """Seconds the replica at endpoint is behind the writer; fails clearly if endpoint is not a replica.

    Measured, not estimated: read the writer's current WAL position, then time how long the replica
    takes to replay it (polling for up to window_s). A replica that has not caught up by then is
    reported as behind by the age of its last replayed transaction (at least window_s); so is a
    replica whose writer cannot be reached (an upper bound: an idle system looks older than it is).
    """
    with connect(endpoint, configuration, secrets) as rconn:
        if not scalar(rconn, "SELECT pg_is_in_recovery()"):
            raise ActivityFailed(f"database {endpoint} is a primary, not a replica: "
                                 "it has no replication lag")
        try:
            with connect(writer, configuration, secrets) as wconn:
                target = scalar(wconn, "SELECT CASE WHEN pg_is_in_recovery() THEN NULL "
                                       "ELSE pg_current_wal_lsn()::text END")
        except ActivityFailed as exc:
            log.info("writer %s unreachable, lag from replay timestamp only: %s", writer, exc)
            target = None
        start = time.monotonic()
        deadline = start + max(0.0, window_s)
        while target is not None:
            if scalar(rconn, "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (target,)):
                return round(time.monotonic() - start, 3)
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        # Not caught up (or writer unknown): behind by at least the age of its last replayed transaction.
        age = scalar(rconn, "SELECT COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)")
        return round(max(float(age or 0.0), window_s if target is not None else 0.0), 3)


def replication_healthy(max_lag_s: float = 5.0, replicas: list[str] | None = None, writer: str = "writer",
                        configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """Writer writable and every replica (default: each configured reader not a writer) within max_lag_s."""
    if not is_writable(writer, configuration, secrets):
        return False
    known = configured_endpoints(configuration)
    # A reader entry that is the current writer itself (AWS: the primary region reads from the primary)
    # is no replica. The recovery "writer" (the replica's endpoint, writable only after promotion) is.
    current = known.get(writer, writer)
    names = replicas if replicas is not None else sorted(
        k for k, v in known.items() if k.startswith("reader:") and v != current)
    if replicas is None:
        # a reader endpoint that reaches the primary itself (read-your-writes in the primary region) is no replica
        names = [n for n in names if role(n, configuration, secrets) != "primary"]
    if not names:
        raise ActivityFailed("no replicas to check: configure gameday_db_reader or pass replicas")
    for name in names:
        try:
            lag = replica_lag_seconds(name, writer=writer, window_s=max_lag_s, configuration=configuration,
                                      secrets=secrets)
        except ActivityFailed as exc:
            log.info("replica %s unhealthy: %s", name, exc)
            return False
        if lag > max_lag_s:
            log.info("replica %s lags %.3f s > %.3f s", name, lag, max_lag_s)
            return False
    return True


def count_records(endpoint: str = "writer", table: str = "records", ids: list[str] | None = None,
                  configuration: Configuration = None, secrets: Secrets = None) -> int:
    """Number of rows in table (only those whose id is in ids, when given) as endpoint sees them."""
    query: Any = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(*table.split(".", 1)))
    with connect(endpoint, configuration, secrets) as conn:
        if ids is not None:
            query = sql.SQL("{} WHERE id::text = ANY(%s)").format(query)
            return int(scalar(conn, query, (list(ids),)))
        return int(scalar(conn, query))


def db_instance_status(db_instance_identifier: str, region: str | None = None, configuration: Configuration = None,
                       secrets: Secrets = None) -> dict[str, Any]:
    """DBInstanceStatus and MultiAZ of an RDS instance, as DescribeDBInstances reports them.

    ``rebooting`` while a reboot, failover or crash recovery runs, ``available`` when it accepts
    connections again (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/Overview.DBInstance.Status.html).
    """
    rds = client("rds", configuration, secrets, region=region)
    try:
        inst = rds.describe_db_instances(DBInstanceIdentifier=db_instance_identifier)["DBInstances"][0]
    except Exception as exc:
        raise ActivityFailed(f"cannot describe RDS instance {db_instance_identifier}: {exc}") from exc
    return {"db_instance_identifier": inst.get("DBInstanceIdentifier"), "status": inst.get("DBInstanceStatus"),
            "multi_az": bool(inst.get("MultiAZ")), "engine_version": inst.get("EngineVersion")}
