"""Role changes: Multi-AZ failover (with pg_rewind of the old primary), Single-AZ crash recovery,
reboot in place, and promotion of the cross-region replica."""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from gameday.errors import CommandFailed, SandboxError, TimeoutExceeded
from gameday.sandbox.pg.common import STATUS_AVAILABLE, STATUS_REBOOTING, SUPERUSER, Node, Timings, lsn
from gameday.sandbox.pg.faults import FaultOps

log = logging.getLogger("gameday.sandbox.postgres")


class FailoverOps(FaultOps):
    """Every change of who is primary, planned or not."""

    def failover(self, reason: str) -> dict[str, Any]:
        """Make the standby of the pair the primary; the old primary rejoins as its standby.

        Returns timings (seconds since the call): ``promoted``, ``writers_moved`` (= RTO of the
        database layer), ``replica_repointed``, ``rejoined``, ``total``.
        """
        if not self.multi_az:
            raise SandboxError("cannot fail over: the instance is Single-AZ (no standby)")
        with self._lock:
            return self._failover(reason, crashed=False)

    def _failover(self, reason: str, *, crashed: bool) -> dict[str, Any]:
        t = Timings()
        old, new = self.nodes[self._primary], self.nodes[self.standby()]
        if new.frozen or not new.alive():
            state = "frozen" if new.frozen else "down"
            raise SandboxError(f"cannot fail over: standby {new.name} is {state}")
        self._set_status(STATUS_REBOOTING, reason=reason)
        self._emit("db_failover_started", from_node=old.name, to_node=new.name, region=self.primary_region,
                   reason=reason, planned=not crashed)
        # 1. fence the old primary: a clean fast shutdown sends every WAL record to the standbys first
        if old.frozen:
            self._signal(old, signal.SIGCONT)
            old.frozen = False
        self._stop_node(old, fast=old.alive())
        t.mark("fenced")
        if not crashed and self.failover_delay_s > 0:
            self._stop_evt.wait(self.failover_delay_s)   # emulated RDS failover time (aws profile)
        # 2. promote the standby; its config has no synchronous standby, so writes never block
        with self._su(new, timeout=5) as conn:
            conn.execute("SELECT pg_promote(true, 60)")
        self._primary = new.name
        self._write_config(new, primary=True, sync_names="")
        new.upstream = None
        timeline = self._timeline(new)
        t.mark("promoted")
        self._emit("db_promoted", node=new.name, region=new.region, timeline=timeline,
                   duration_s=t.marks["promoted"], reason=reason)
        # 3. move the endpoints, dropping sessions that still point at the old primary
        self._point_proxies(drop=True, link=False)
        t.mark("writers_moved")
        self._set_status(STATUS_AVAILABLE, reason=reason)
        self._emit("db_failover_done", from_node=old.name, to_node=new.name, region=self.primary_region,
                   duration_s=t.marks["writers_moved"], writer_port=self.writer_port(self.primary_region),
                   reason=reason, timeline=timeline)
        # 4. checkpoint so pg_rewind sees the new timeline in the control file
        with self._su(new, timeout=30) as conn:
            conn.execute("CHECKPOINT")
        switch_lsn = self._switch_lsn(new, timeline)
        # 5. c follows the new primary through the link (rewound if it got WAL the new primary never had)
        if not self._replica_promoted:
            self._repoint_replica(new, timeline, switch_lsn)
            t.mark("replica_repointed")
        # 6. the old primary rejoins as the new synchronous standby
        method = self._rejoin(old, new)
        t.mark("rejoined")
        self._emit("db_rejoined", node=old.name, region=old.region, standby_of=new.name, method=method,
                   timeline=timeline, duration_s=t.marks["rejoined"])
        t.mark("total")
        result: dict[str, Any] = {"from": old.name, "to": new.name, "reason": reason, "timeline": timeline,
                                  "rejoin_method": method, **t.marks}
        self.failovers.append(result)
        return result

    def _recover_single_az(self, node: Node, reason: str) -> dict[str, Any]:
        """RDS Single-AZ recovery after the detection time: the same instance comes back on its own storage.

        The caller has already waited the detection and recovery time (without the lock). The
        data directory is the instance's EBS volume: a host replacement re-attaches it, so
        PostgreSQL crash recovery (WAL replay) of that same directory brings back every commit
        that was acknowledged, and nothing that was not.
        """
        t = Timings()
        self._stop_node(node, fast=False)        # reap the dead postmaster, forget it in the registry
        self._start_node(node)                   # crash recovery from the same data directory
        t.mark("restarted")
        self._point_proxies(drop=True)
        t.mark("writers_moved")
        self._set_status(STATUS_AVAILABLE, reason=reason)
        result: dict[str, Any] = {"node": node.name, "reason": reason, **t.marks}
        self._emit("db_recovered", node=node.name, region=node.region, multi_az=False,
                   duration_s=t.marks["writers_moved"], reason=reason)
        self.recoveries.append(result)
        return result

    def _repoint_replica(self, new: Node, timeline: int, switch_lsn: int) -> None:
        c = self.nodes["c"]
        link = self.proxies["link"]
        # refuse c's reconnects (and drop WAL still in flight) while we look at what it received
        link.set_upstream(None, drop_existing=True)
        if c.frozen or not c.alive():
            link.set_upstream(new.port)
            return
        try:
            with self._su(c, timeout=3) as conn:
                row = conn.execute("SELECT greatest(pg_last_wal_receive_lsn(),"
                                   " pg_last_wal_replay_lsn())::text").fetchone()
            assert row is not None
            received = lsn(row[0])
        except psycopg.Error:
            received = 0
        if switch_lsn and received > switch_lsn:
            log.info("replica c got WAL past the switch point (%x > %x): rewinding", received, switch_lsn)
            self._stop_node(c, fast=True)
            self._rewind_or_rebuild(c, new, upstream="link")
            # a rewound c is consistent only once it replays the new primary's WAL: open the link first
            link.set_upstream(new.port, drop_existing=True)
            self._start_node(c)
        link.set_upstream(new.port, drop_existing=False)
        if not self._link_cut and "recovery" not in self._frozen_regions:
            try:
                self._wait_streaming(new, c, sync=False, timeout=15)
            except TimeoutExceeded:
                log.warning("replica c does not follow %s: rebuilding it", new.name)
                self._stop_node(c, fast=True)
                self._wipe(c)
                self._basebackup(c, new)
                self._write_config(c, primary=False, upstream="link")
                self._start_node(c)
                self._wait_streaming(new, c, sync=False, timeout=30)

    def _rejoin(self, old: Node, new: Node) -> str:
        self._stop_node(old, fast=False)
        method = self._rewind_or_rebuild(old, new, upstream="az")
        self._start_node(old)
        self._wait_streaming(new, old, sync=False, timeout=30)
        if self.synchronous:
            self._write_config(new, primary=True, sync_names=old.name)
            self._wait_streaming(new, old, sync=True, timeout=15)
        return method

    def _rewind_or_rebuild(self, node: Node, source: Node, *, upstream: str) -> str:
        src = make_conninfo(host=str(source.sock), port=source.port, user=SUPERUSER, dbname="postgres")
        method = "rewind"
        try:
            self._run_as_pg([str(self.bin / "pg_rewind"), "-D", str(node.data), "--source-server", src,
                             "--no-sync"], f"pg_rewind {node.name}", timeout=120)
        except (CommandFailed, TimeoutExceeded) as exc:
            log.warning("pg_rewind of %s failed (%s): taking a fresh base backup", node.name, exc)
            self._wipe(node)
            self._basebackup(node, source)
            method = "basebackup"
        self._write_config(node, primary=False, upstream=upstream)
        return method

    def restart_primary(self) -> dict[str, Any]:
        """Reboot the primary in place, no failover (RDS reboot): fast shutdown, start, standbys reconnect."""
        with self._lock:
            node = self.nodes[self._primary]
            if node.frozen:
                raise SandboxError(f"cannot restart primary {node.name}: it is frozen")
            t0 = time.monotonic()
            self._set_status(STATUS_REBOOTING, reason="reboot")
            try:
                self._stop_node(node, fast=True)
                self._start_node(node)
                self._point_proxies(drop=True)
            finally:
                self._set_status(STATUS_AVAILABLE, reason="reboot")
            dur = round(time.monotonic() - t0, 3)
            log.info("primary %s restarted in %.2fs", node.name, dur)
            return {"node": node.name, "duration_s": dur}

    def promote_replica(self) -> dict[str, Any]:
        """Promote c to an independent writable primary; the recovery writer endpoint moves to it."""
        with self._lock:
            c = self.nodes["c"]
            if c.frozen or not c.alive():
                raise SandboxError("cannot promote replica c: it is frozen or down")
            if self._replica_promoted:
                return {"node": "c", "already": True}
            t0 = time.monotonic()
            try:
                lag = self.replica_lag()
            except (SandboxError, psycopg.Error):
                lag = None
            with self._su(c, timeout=5) as conn:
                conn.execute("SELECT pg_promote(true, 60)")
            self._replica_promoted = True
            c.upstream = None
            self._write_config(c, primary=True, sync_names="")
            self.proxies["link"].set_upstream(None, drop_existing=True)
            self._point_proxies(drop=True)
            timeline = self._timeline(c)
            dur = round(time.monotonic() - t0, 3)
            self._emit("db_replica_promoted", node="c", region=c.region, timeline=timeline, duration_s=dur,
                       lag_seconds=lag.seconds if lag else None, lag_bytes=lag.bytes if lag else None,
                       writer_port=self.writer_port(self.recovery_region))
            return {"node": "c", "timeline": timeline, "duration_s": dur,
                    "lag_seconds": lag.seconds if lag else None}
