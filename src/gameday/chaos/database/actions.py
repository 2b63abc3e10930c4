"""Actions on the database: wait for a writable primary, promote the cross-region replica, heartbeat."""

from __future__ import annotations

import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from gameday.chaos import _undo
from gameday.chaos._common import ActivityFailed, client
from gameday.chaos.database._conn import connect, scalar
from gameday.chaos.database.probes import db_instance_status, is_writable, replication_healthy

__all__ = ["promote_read_replica", "wait_for_db_instance_available", "wait_for_replication", "wait_for_writable",
           "write_heartbeat"]


def wait_for_writable(endpoint: str = "writer", timeout_s: float = 120.0, configuration: Configuration = None,
                      secrets: Secrets = None) -> float:
    """Poll until endpoint accepts writes (bounded by timeout_s); returns the seconds waited."""
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        if is_writable(endpoint, configuration, secrets):
            return round(time.monotonic() - start, 3)
        if time.monotonic() >= deadline:
            raise ActivityFailed(f"database {endpoint} not writable within {timeout_s:.1f} s")
        time.sleep(0.5)


def wait_for_replication(max_lag_s: float = 5.0, timeout_s: float = 180.0, replicas: list[str] | None = None,
                         writer: str = "writer", configuration: Configuration = None,
                         secrets: Secrets = None) -> float:
    """Poll until replication_healthy(max_lag_s) holds (bounded by timeout_s); returns the seconds waited."""
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        if replication_healthy(max_lag_s, replicas, writer, configuration, secrets):
            return round(time.monotonic() - start, 3)
        if time.monotonic() >= deadline:
            raise ActivityFailed(f"replication not healthy (lag <= {max_lag_s} s) within {timeout_s:.1f} s")
        time.sleep(1.0)


def wait_for_db_instance_available(db_instance_identifier: str, region: str | None = None,
                                   timeout_s: float = 600.0, configuration: Configuration = None,
                                   secrets: Secrets = None) -> float:
    """Poll DescribeDBInstances until the instance is ``available`` (bounded by timeout_s); seconds waited."""
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        status = db_instance_status(db_instance_identifier, region, configuration, secrets)["status"]
        if status == "available":
            return round(time.monotonic() - start, 3)
        if time.monotonic() >= deadline:
            raise ActivityFailed(f"RDS instance {db_instance_identifier} still {status!r} after {timeout_s:.1f} s")
        time.sleep(1.0)


def promote_read_replica(db_instance_identifier: str, region: str | None = None,
                         configuration: Configuration = None, secrets: Secrets = None) -> dict[str, Any]:
    """Promote an RDS read replica to a standalone primary (RDS PromoteReadReplica in region); one-way."""
    rds = client("rds", configuration, secrets, region=region)
    # AWS cannot undo a promotion ("you can't convert the instance back into a read replica"): the undo
    # is a controlled re-seed of the steady state (the sandbox's reset; on AWS a runbook, see replay.py)
    _undo.before("promote_read_replica", f"rds:{db_instance_identifier}",
                 {"kind": "reseed", "region": region, "db_instance_identifier": db_instance_identifier},
                 what="read replica promoted to a standalone primary (one-way)", region=region)
    try:
        inst = rds.promote_read_replica(DBInstanceIdentifier=db_instance_identifier)["DBInstance"]
    except Exception as exc:
        raise ActivityFailed(f"promote of {db_instance_identifier} failed: {exc}") from exc
    return {"db_instance_identifier": inst.get("DBInstanceIdentifier"),
            "status": inst.get("DBInstanceStatus"), "region": region}


def write_heartbeat(endpoint: str = "writer", configuration: Configuration = None,
                    secrets: Secrets = None) -> str:
    """Write a timestamp to table gameday_heartbeat so replica lag is visible even with no app writes."""
    with connect(endpoint, configuration, secrets) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS gameday_heartbeat "
                     "(id int PRIMARY KEY, ts timestamptz NOT NULL)")
        return str(scalar(conn, "INSERT INTO gameday_heartbeat VALUES (1, clock_timestamp()) "
                                "ON CONFLICT (id) DO UPDATE SET ts = excluded.ts RETURNING ts::text"))
