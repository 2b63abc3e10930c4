"""Background threads: the RDS health monitor (crash detection -> failover or Single-AZ recovery) and
the RDS-style heartbeat that keeps replica lag in seconds meaningful."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import psycopg

from gameday.sandbox.pg.common import STATUS_REBOOTING, SUPERUSER, Node
from gameday.sandbox.pg.failover import FailoverOps
from gameday.util.procs import Managed

log = logging.getLogger("gameday.sandbox.postgres")


class MonitorOps(FailoverOps):
    """What RDS does on its own while nobody calls the API."""

    def _monitor_loop(self) -> None:
        interval = max(0.02, min(0.1, self.failover_detect_s / 4))
        while not self._stop_evt.wait(interval):
            if not self.auto_failover or not self._started:
                continue
            node = self.nodes[self._primary]
            proc = node.proc
            if proc is None or node.alive() or node.frozen:
                continue
            try:
                self._on_primary_dead(node, proc)
            except Exception as exc:
                self.last_error = exc
                log.exception("automatic recovery of the primary failed")
                self.auto_failover = False

    def _still_dead(self, node: Node, proc: Managed) -> bool:
        """The same primary process we saw die is still the dead primary (no reset/failover since)."""
        return self.nodes[self._primary] is node and node.proc is proc and not node.alive()

    def _on_primary_dead(self, node: Node, proc: Managed) -> None:
        """RDS detects the failure first, then fails over (Multi-AZ) or recovers in place (Single-AZ).

        Detection: RDS acts on a failed instance only after its health checks have found it
        unhealthy ("When the DB instance shows potential issues and fails to respond to RDS health
        checks, RDS automatically initiates a Single-AZ recovery for the Single-AZ deployment and a
        Multi-AZ failover for the Multi-AZ deployment",
        https://repost.aws/knowledge-center/rds-multi-az-failover-restart). The Multi-AZ failover
        time is counted *from* that detection ("Failovers, as defined by the interval between the
        detection of the failure on the primary and the resumption of transactions on the standby,
        typically complete within one to two minutes", https://aws.amazon.com/rds/faqs/), so the
        detection time comes on top of it: ``failover_detect_s`` is waited here in full.
        """
        seen = time.monotonic()
        detect = round(seen - self._crash_at, 3) if self._crash_at else None
        self._crash_at = None
        self._emit("db_crashed", node=node.name, region=node.region, pid=proc.pid,
                   returncode=proc.popen.returncode, detect_s=detect)
        if self._stop_evt.wait(max(0.0, self.failover_detect_s - (time.monotonic() - seen))):
            return
        if not self._still_dead(node, proc):
            return
        reason = f"primary {node.name} crashed"
        self._set_status(STATUS_REBOOTING, reason=reason)
        self._emit("db_crash_detected", node=node.name, region=node.region, multi_az=self.multi_az,
                   detection_s=self.failover_detect_s)
        if self.multi_az:
            log.warning("primary %s died (rc=%s): failing over", node.name, proc.popen.returncode)
            if self.failover_delay_s > 0 and self._stop_evt.wait(self.failover_delay_s):
                return
            with self._lock:
                if self._still_dead(node, proc):
                    self._failover(reason, crashed=True)
            return
        # Single-AZ: there is no failover target; RDS restarts or replaces the instance
        log.warning("primary %s died (rc=%s): Single-AZ recovery in %.2fs", node.name,
                    proc.popen.returncode, self.single_az_recovery_s)
        self._emit("db_recovery_started", node=node.name, region=node.region, multi_az=False,
                   recovery_s=self.single_az_recovery_s, reason=reason)
        if self.single_az_recovery_s > 0 and self._stop_evt.wait(self.single_az_recovery_s):
            return
        with self._lock:
            if self._still_dead(node, proc):
                self._recover_single_az(node, reason)

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
                    conn = psycopg.connect(host=str(node.sock), port=node.port, user=SUPERUSER, dbname="postgres",
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
