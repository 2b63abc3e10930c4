"""Endpoints and replication links: the TcpProxies clients and standbys go through, and what they see.

Clients never learn node ports: every endpoint is a TcpProxy with a stable port that is re-aimed
when the topology changes (failover, replica promotion, crash recovery).
"""

from __future__ import annotations

import contextlib
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from gameday.errors import SandboxError
from gameday.sandbox.pg.common import TL_SQL, Node, NodeStatus, ReplicaLag, lsn
from gameday.sandbox.pg.nodes import NodeOps
from gameday.sandbox.tcpproxy import TcpProxy
from gameday.util.net import LOOPBACK
from gameday.util.redact import Secret


class LinkOps(NodeOps):
    """Endpoints (writer/reader per region), the inter-region link and the Multi-AZ pair's link."""

    # ---------------------------------------------------------------- endpoints
    def writer_port(self, region: str) -> int:
        return self.proxies[f"writer-{self._region_key(region)}"].port

    def reader_port(self, region: str) -> int:
        return self.proxies[f"reader-{self._region_key(region)}"].port

    @property
    def link_port(self) -> int:
        return self.proxies["link"].port

    def node_port(self, name: str) -> int:
        return self.nodes[name].port

    def dsn(self, port: int, *, dbname: str | None = None, connect_timeout: int = 3) -> Secret:
        """libpq connection string for the application user on a local port (a Secret: never printed)."""
        return Secret(make_conninfo(host=LOOPBACK, port=port, dbname=dbname or self.db_name, user=self.user,
                                    password=str(self.password), connect_timeout=connect_timeout,
                                    application_name="gameday"))

    def connect(self, port: int, *, connect_timeout: int = 3) -> psycopg.Connection[Any]:
        """Autocommit application connection to port (a proxy or a node)."""
        return psycopg.connect(str(self.dsn(port, connect_timeout=connect_timeout)), autocommit=True)

    def _make_proxies(self) -> None:
        p, r = "primary", "recovery"
        self.proxies = {
            f"writer-{p}": TcpProxy(f"writer-{self.primary_region}", None),
            f"reader-{p}": TcpProxy(f"reader-{self.primary_region}", None),
            f"writer-{r}": TcpProxy(f"writer-{self.recovery_region}", None, delay_ms=self.link_delay_ms),
            f"reader-{r}": TcpProxy(f"reader-{self.recovery_region}", None),
            "link": TcpProxy("link", None, delay_ms=self.link_delay_ms),
            # the Multi-AZ pair's own link: what the delay holds dies with a crashed primary
            "az": TcpProxy("az", None, delay_ms=self.standby_delay_ms, lossy_upstream_close=True),
        }

    def _point_proxies(self, drop: bool = True, *, link: bool = True) -> None:
        """Aim every proxy at where the current topology says it should go.

        ``drop`` closes the sessions of a proxy whose upstream *changes* (they point at a node
        that is no longer the right one); sessions on an unchanged upstream live on, as read
        sessions on a promoted PostgreSQL replica do.
        """
        prim = self.nodes[self._primary]
        c = self.nodes["c"]

        def aim(name: str, port: int) -> None:
            proxy = self.proxies[name]
            proxy.set_upstream(port, drop_existing=drop and proxy.upstream_port != port)

        aim("az", prim.port)
        aim("writer-primary", prim.port)
        aim("reader-primary", prim.port)
        aim("reader-recovery", c.port)
        wr = self.proxies["writer-recovery"]
        if self._replica_promoted:
            wr.set_delay(0)
            aim("writer-recovery", c.port)
        else:
            wr.set_delay(self.link_delay_ms)
            aim("writer-recovery", prim.port)
            if link:
                aim("link", prim.port)

    # ---------------------------------------------------------------- status & reads
    def status(self) -> list[NodeStatus]:
        """Every node's role, timeline, LSN and lag (relative to the primary it follows)."""
        raw: dict[str, dict[str, Any]] = {}
        for node in self.nodes.values():
            raw[node.name] = self._probe(node)
        prim_lsn = lsn(raw.get(self._primary, {}).get("lsn"))
        out = []
        for node in self.nodes.values():
            r = raw[node.name]
            role = r["role"]
            lag_b: int | None = None
            lag_s: float | None = None
            if role in ("standby", "replica") and prim_lsn:
                lag_b = max(0, prim_lsn - lsn(r.get("lsn")))
                lag_s = 0.0 if lag_b == 0 else r.get("replay_age")
            elif role == "primary":
                lag_b, lag_s = 0, 0.0
            out.append(NodeStatus(node.name, node.region, role, node.port,
                                  node.proc.pid if node.proc and node.alive() else None,
                                  r.get("timeline"), r.get("lsn"), lag_b, lag_s,
                                  r.get("streaming"), r.get("sync_state")))
        return out

    def _probe(self, node: Node) -> dict[str, Any]:
        if not node.alive():
            return {"role": "down"}
        if node.frozen:
            return {"role": "frozen"}
        try:
            with self._su(node, timeout=2) as conn:
                rec = conn.execute(
                    "SELECT pg_is_in_recovery(),"
                    " CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text"
                    "      ELSE pg_current_wal_lsn()::text END,"
                    " CASE WHEN pg_is_in_recovery() THEN NULL"
                    f"      ELSE {TL_SQL} END,"
                    " (SELECT received_tli FROM pg_stat_wal_receiver),"
                    " (SELECT status FROM pg_stat_wal_receiver),"
                    " (SELECT timeline_id FROM pg_control_checkpoint()),"
                    " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8").fetchone()
                assert rec is not None
                in_rec, at, tl_prim, tl_recv, wr_status, tl_ckpt, age = rec
                sync_state = None
                if not in_rec:
                    return {"role": "primary", "lsn": at, "timeline": tl_prim}
                role = "standby" if node.region == self.primary_region else "replica"
                prim = self.nodes[self._primary]
                if prim.alive() and not prim.frozen and node.name != self._primary:
                    with contextlib.suppress(psycopg.Error), self._su(prim, timeout=2) as pc:
                        row = pc.execute("SELECT sync_state FROM pg_stat_replication"
                                         " WHERE application_name = %s", (node.name,)).fetchone()
                        sync_state = row[0] if row else None
                return {"role": role, "lsn": at, "timeline": tl_recv or tl_ckpt, "replay_age": age,
                        "streaming": wr_status == "streaming", "sync_state": sync_state}
        except psycopg.Error as exc:
            return {"role": "down", "error": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}

    def replica_lag(self) -> ReplicaLag:
        """Lag of c behind the primary it follows: bytes, and seconds since its last replayed commit.

        Seconds are 0 when c has replayed everything the primary has written; otherwise
        ``now() - pg_last_xact_replay_timestamp()`` on c. If the primary cannot be asked
        (down/frozen), the seconds are that age whenever c is not known to be caught up.
        """
        c = self.nodes["c"]
        if self._replica_promoted:
            return ReplicaLag(0.0, 0)
        if not c.alive() or c.frozen:
            raise SandboxError("replica c is down or frozen: its lag cannot be read")
        with self._su(c, timeout=2) as conn:
            row = conn.execute("SELECT pg_last_wal_replay_lsn()::text,"
                               " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
                               ).fetchone()
        assert row is not None
        replay, age = lsn(row[0]), float(row[1] or 0.0)
        prim = self.nodes[self._primary]
        if prim.alive() and not prim.frozen:
            try:
                with self._su(prim, timeout=2) as conn:
                    r = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
                assert r is not None
                behind = max(0, lsn(r[0]) - replay)
                return ReplicaLag(age if behind else 0.0, behind)
            except psycopg.Error:
                pass
        return ReplicaLag(age, 0)

    def replica_lag_seconds(self) -> float:
        return self.replica_lag().seconds

    def replica_lag_bytes(self) -> int:
        return self.replica_lag().bytes

    def count_ids(self, ids: list[str], port: int) -> set[str]:
        """Which of ids exist in ``records`` on whatever answers at port (node or proxy)."""
        found: set[str] = set()
        with self.connect(port) as conn:
            for i in range(0, len(ids), 5000):
                chunk = ids[i:i + 5000]
                for (rid,) in conn.execute("SELECT id FROM records WHERE id = ANY(%s)", (chunk,)):
                    found.add(rid)
        return found
