"""Hard-crash the PostgreSQL primary: SIGKILL of its postmaster and every backend, like a power cut.

AWS has no API for this (RebootDBInstance with ForceFailover is a clean, orderly failover), so this
only works where the harness runs on the database host: the sandbox. It refuses anything that is
not a loopback endpoint and any node that is not a primary.
"""

from __future__ import annotations

import signal
from typing import Any

import psutil
from chaoslib.types import Configuration, Secrets

from gameday.chaos import _undo
from gameday.chaos._common import ActivityFailed
from gameday.chaos.database._conn import connect, resolve
from gameday.util.procs import descendants

__all__ = ["crash_primary_db"]


def crash_primary_db(endpoint: str = "writer", configuration: Configuration = None,
                     secrets: Secrets = None) -> dict[str, Any]:
    """SIGKILL the postmaster (and its backends) of the primary behind a loopback endpoint; sandbox only."""
    host, port = resolve(endpoint, configuration)
    if not (host in ("localhost", "::1") or host.startswith("127.")):
        raise ActivityFailed(f"crash_primary_db only works on the sandbox: {endpoint} is {host}:{port}, not "
                             "loopback; on AWS use chaosaws.rds.actions.reboot_db_instance(force_failover)")
    with connect(endpoint, configuration, secrets) as conn:
        row = conn.execute("SELECT pg_is_in_recovery(), pg_backend_pid()").fetchone()
        if row is None or row[0]:
            raise ActivityFailed(f"{endpoint} is not a primary: refusing to crash it")
        # look the backend up while it still exists: it exits as soon as the session closes
        try:
            parent = psutil.Process(int(row[1])).parent()
            name = parent.name() if parent is not None else ""
        except (psutil.Error, ValueError) as exc:
            raise ActivityFailed(f"cannot find the postmaster of {endpoint} on this host: {exc}") from exc
        if parent is None:
            raise ActivityFailed(f"cannot find the postmaster of {endpoint} on this host: backend {row[1]} "
                                 "has no parent")
        postmaster = parent.pid
    if "postgres" not in name and "postmaster" not in name:
        raise ActivityFailed(f"parent of the backend is {name!r}, not a PostgreSQL postmaster: refusing")
    victims = [parent, *descendants(postmaster)]
    # nothing AWS-side to call back: the database recovers by itself (failover / crash recovery);
    # the undo waits for it and the sandbox's reset re-seeds what did not come back
    _undo.before("crash_primary_db", f"db:{endpoint}", {"kind": "db_recover", "endpoint": endpoint},
                 what="PostgreSQL primary hard-crashed (SIGKILL)")
    try:
        for proc in victims:
            try:
                proc.send_signal(signal.SIGKILL)  # psutil checks the start time: never a reused pid
            except psutil.NoSuchProcess:
                continue
    except psutil.AccessDenied as exc:
        raise ActivityFailed(f"not allowed to kill PostgreSQL (pid {postmaster}): "
                             "run as root or as its user") from exc
    return {"endpoint": endpoint, "postmaster_pid": postmaster, "killed": len(victims)}
