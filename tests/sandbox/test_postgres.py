"""PgCluster against real PostgreSQL 15: replication, failover without lost writes, link faults.

Tests of the shared synchronous cluster run in file order and each leaves it usable
(healed, thawed, or reset), so one ~1.5 s start serves the module.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import psycopg
import pytest

from gameday.errors import TimeoutExceeded
from gameday.sandbox.events import read_events
from gameday.sandbox.pg import PgCluster
from gameday.util.net import port_open
from gameday.util.procs import pid_alive
from gameday.util.retry import wait_until

P, R = "eu-south-1", "eu-central-1"


def roles(pg: PgCluster) -> dict[str, str]:
    return {s.name: s.role for s in pg.status()}


def test_starts_streams_and_serves_both_regions(pg: PgCluster) -> None:
    timings = pg.start_timings  # type: ignore[attr-defined]
    assert timings["total"] < 10, timings
    st = {s.name: s for s in pg.status()}
    assert (st["a"].role, st["b"].role, st["c"].role) == ("primary", "standby", "replica")
    assert st["b"].sync_state == "sync" and st["b"].streaming
    assert st["c"].sync_state == "async" and st["c"].streaming
    assert {s.region for s in st.values()} == {P, R} and st["c"].region == R
    with pg.connect(pg.writer_port(P)) as conn:
        conn.execute("INSERT INTO records (id, service, region) VALUES ('start-1', 'web', %s)", (P,))
        row = conn.execute("SHOW synchronous_standby_names").fetchone()
        assert row is not None and "b" in row[0]
    with pg.connect(pg.writer_port(R)) as conn:   # cross-region writer reaches the same primary
        conn.execute("INSERT INTO records (id, service, region) VALUES ('start-2', 'web', %s)", (R,))
    wait_until("replica has both rows", lambda: pg.count_ids(["start-1", "start-2"], pg.reader_port(R))
               == {"start-1", "start-2"}, timeout=5)
    with pg.connect(pg.reader_port(R)) as conn, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        conn.execute("INSERT INTO records (id) VALUES ('nope')")
    # the app user must authenticate: a wrong password is refused
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=pg.writer_port(P), user=pg.user, dbname=pg.db_name,
                        password="wrong", connect_timeout=3)


def test_link_delay_creates_measurable_lag(pg: PgCluster, pgkit: SimpleNamespace) -> None:
    pg.set_link_delay(250)
    samples: list[float] = []
    try:
        with pgkit.WriteLoop(lambda: pg.connect(pg.writer_port(P)), "delay", interval_s=0.01) as w:
            w.wait_acks(10)
            t_end = time.monotonic() + 1.5
            while time.monotonic() < t_end:
                samples.append(pg.replica_lag_seconds())
                time.sleep(0.05)
    finally:
        pg.set_link_delay(0)
    assert max(samples) > 0.25, samples
    wait_until("replica caught up", lambda: pg.replica_lag().bytes == 0, timeout=10)


def test_cut_link_makes_lag_grow_and_heal_recovers(pg: PgCluster, pgkit: SimpleNamespace) -> None:
    pg.cut_link()
    try:
        with pgkit.WriteLoop(lambda: pg.connect(pg.writer_port(P)), "cut", interval_s=0.01) as w:
            w.wait_acks(5)
            first = pg.replica_lag()
            time.sleep(1.0)
            second = pg.replica_lag()
        assert second.seconds > first.seconds >= 0 and second.seconds > 0.8, (first, second)
        assert second.bytes > first.bytes > 0
        # the cross-region writer path is cut too: it fails fast, it does not hang
        t0 = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            pg.connect(pg.writer_port(R), connect_timeout=5)
        assert time.monotonic() - t0 < 2
    finally:
        pg.heal_link()
    wait_until("replica caught up after heal", lambda: pg.replica_lag().bytes == 0, timeout=15)
    assert pg.count_ids(w.acked, pg.reader_port(R)) == set(w.acked)
    kinds = [e["kind"] for e in read_events(pg.events.path)]  # type: ignore[union-attr]
    assert "link_cut" in kinds and "link_healed" in kinds


def test_freeze_region_hangs_clients_and_thaw_restores(pg: PgCluster) -> None:
    pg.freeze_region(R)
    try:
        assert roles(pg)["c"] == "frozen"
        # stopped children are recorded so a crashed harness's cleanup can still kill them
        assert len(list(pg.registry.dir.glob("pg-c-frozen-*.json"))) >= 3
        t0 = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            pg.connect(pg.reader_port(R), connect_timeout=1)
        assert time.monotonic() - t0 >= 0.9          # it hung until the client gave up
        with pg.connect(pg.writer_port(P)) as conn:  # primary region unaffected (sync standby is local)
            conn.execute("INSERT INTO records (id) VALUES ('frozen-r-1')")
    finally:
        pg.thaw_region(R)
    assert not list(pg.registry.dir.glob("pg-c-frozen-*.json"))
    wait_until("replica back", lambda: pg.count_ids(["frozen-r-1"], pg.reader_port(R)) == {"frozen-r-1"},
               timeout=15)

    conn = pg.connect(pg.writer_port(P))
    pg.freeze_region(P)
    try:
        # an open session hangs (no error, no answer) while the region is frozen
        result: list[object] = []
        t = threading.Thread(target=lambda: result.append(conn.execute("SELECT 1").fetchone()), daemon=True)
        t.start()
        t.join(1.0)
        assert t.is_alive() and not result
        with pytest.raises(psycopg.OperationalError):
            pg.connect(pg.writer_port(P), connect_timeout=1)
        assert roles(pg)["a"] == "frozen" and pg.primary() == "a"   # a frozen primary is not "crashed"
    finally:
        pg.thaw_region(P)
    t.join(10)
    assert result == [(1,)]
    conn.close()
    with pg.connect(pg.writer_port(P)) as c2:
        c2.execute("INSERT INTO records (id) VALUES ('frozen-p-1')")
    assert pg.primary() == "a"


def test_planned_failover_no_loss_old_primary_rejoins(pg: PgCluster, pgkit: SimpleNamespace) -> None:
    old = pg.primary()
    tl_before = {s.name: s.timeline for s in pg.status()}[old]
    with pgkit.WriteLoop(lambda: pg.connect(pg.writer_port(P)), "planned") as w:
        w.wait_acks(20)
        result = pg.failover("test: planned")
        w.wait_acks(20)
    new = pg.primary()
    assert new != old and result["to"] == new
    assert result["writers_moved"] < 5, result
    acked = set(w.acked)
    assert pg.count_ids(w.acked, pg.node_port(new)) == acked      # zero acknowledged writes lost
    st = {s.name: s for s in pg.status()}
    assert st[new].role == "primary" and st[old].role == "standby"
    assert st[old].streaming and st[old].sync_state == "sync"
    assert st[new].timeline == st[old].timeline == tl_before + 1  # type: ignore[operator]
    wait_until("c follows the new primary", lambda: pg.count_ids(w.acked, pg.reader_port(R)) == acked,
               timeout=15)
    kinds = [e["kind"] for e in read_events(pg.events.path)]  # type: ignore[union-attr]
    for k in ("db_failover_started", "db_promoted", "db_failover_done", "db_rejoined"):
        assert k in kinds
    print(f"\nplanned failover: {result}; max write gap {w.max_gap():.3f}s, acked {len(acked)}")


def test_primary_crash_fails_over_automatically_no_loss(pg: PgCluster, pgkit: SimpleNamespace) -> None:
    old = pg.primary()
    n_failovers = len(pg.failovers)
    loops = [pgkit.WriteLoop(lambda: pg.connect(pg.writer_port(P)), f"crash{i}", interval_s=0)
             for i in range(3)]
    for w in loops:
        w.__enter__()
    try:
        for w in loops:
            w.wait_acks(50)
        pid = pg.crash_primary()
        t_crash = time.monotonic()
        try:
            wait_until("automatic failover", lambda: len(pg.failovers) > n_failovers, timeout=15)
        except TimeoutExceeded as exc:  # say what the monitor saw, so a rare miss can be diagnosed
            raise AssertionError(f"{exc}: auto_failover={pg.auto_failover}, last_error={pg.last_error!r}, "
                                 f"events={[e.get('kind') for e in read_events(pg.events.path)][-8:]}") from exc
        for w in loops:
            w.wait_acks(20)
        # a write in flight at the crash may have been acknowledged by the old primary just before it
        firsts = [a for w in loops if (a := w.first_ack_of_write_sent_after(t_crash)) is not None]
        assert firsts, "no write sent after the crash was acknowledged"
        first_ack_after = min(firsts) - t_crash
    finally:
        for w in loops:
            w.stop()
    assert not pid_alive(pid)
    new = pg.primary()
    assert new != old
    acked = [i for w in loops for i in w.acked]
    assert len(acked) > 150
    missing = set(acked) - pg.count_ids(acked, pg.node_port(new))
    assert not missing, f"{len(missing)} acknowledged writes lost: {sorted(missing)[:5]}"
    crashed = read_events(pg.events.path, "db_crashed")  # type: ignore[union-attr]
    assert crashed and crashed[-1]["node"] == old and crashed[-1]["detect_s"] <= 0.3 + 0.2
    # RDS fails over only after its detection time: no write is acknowledged before it has passed
    assert first_ack_after >= pg.failover_detect_s, first_ack_after
    detected = read_events(pg.events.path, "db_crash_detected")  # type: ignore[union-attr]
    promoted = read_events(pg.events.path, "db_promoted")  # type: ignore[union-attr]
    assert detected[-1]["mono"] - crashed[-1]["mono"] >= pg.failover_detect_s - 0.05
    assert promoted[-1]["mono"] >= detected[-1]["mono"]
    st = roles(pg)
    assert st[old] == "standby" and st[new] == "primary"
    print(f"\ncrash failover: detect {crashed[-1]['detect_s']}s, {pg.failovers[-1]}, "
          f"{len(acked)} acked, first ack after crash {first_ack_after:.3f}s, "
          f"max gap {max(w.max_gap() for w in loops):.3f}s")


def test_password_never_reaches_logs_events_or_reprs(pg: PgCluster, pgkit: SimpleNamespace) -> None:
    texts = [p.read_text(errors="replace") for p in Path(pg._root).rglob("*.log")]
    texts.append(pg.events.path.read_text())  # type: ignore[union-attr]
    texts += [repr(pg), repr(pg.dsn(pg.writer_port(P))), repr(pg.status())]
    assert len(texts) >= 5
    for t in texts:
        assert pgkit.PASSWORD not in t


def test_promote_replica_accepts_writes_then_reset(pg: PgCluster) -> None:
    res = pg.promote_replica()
    assert res["node"] == "c"
    with pg.connect(pg.writer_port(R)) as conn:
        conn.execute("INSERT INTO records (id) VALUES ('dr-1')")
    assert pg.count_ids(["dr-1"], pg.node_port("c")) == {"dr-1"}
    assert pg.count_ids(["dr-1"], pg.writer_port(P)) == set()      # independent of the primary region
    st = roles(pg)
    assert st["c"] == "primary"
    assert read_events(pg.events.path, "db_replica_promoted")  # type: ignore[union-attr]

    ports = (pg.writer_port(P), pg.writer_port(R), pg.reader_port(R))
    t = pg.reset()
    assert t["total"] < 10, t
    assert roles(pg) == {"a": "primary", "b": "standby", "c": "replica"}
    assert (pg.writer_port(P), pg.writer_port(R), pg.reader_port(R)) == ports   # endpoints are stable
    with pg.connect(pg.writer_port(R)) as conn:
        conn.execute("INSERT INTO records (id) VALUES ('after-reset')")
    wait_until("replica streams after reset",
               lambda: pg.count_ids(["after-reset"], pg.reader_port(R)) == {"after-reset"}, timeout=10)
    print(f"\nreset: {t}")


def test_stop_leaves_no_process_and_no_port(pg: PgCluster, pgkit: SimpleNamespace) -> None:
    pids = pgkit.cluster_pids(pg)
    assert len(pids) >= 3 * 5
    ports = [n.port for n in pg.nodes.values()] + [p.port for p in pg.proxies.values()]
    pg.stop()
    assert not [p for p in pids if pid_alive(p)]
    assert not [p for p in ports if port_open(p)]
    assert not list(pg.registry.dir.glob("*.json"))


def test_async_variant_loses_acknowledged_writes(tmp_path: Path, pgkit: SimpleNamespace) -> None:
    """The broken variant: b is not a synchronous standby, so a commit can be acked before b has it."""
    pg, registry, _ = pgkit.make_cluster(tmp_path, synchronous=False, auto_failover=False)
    try:
        pg.start()
        with pg.connect(pg.writer_port(P)) as conn:
            row = conn.execute("SHOW synchronous_standby_names").fetchone()
        assert row is not None and "b" not in row[0]
        assert {s.name: s.sync_state for s in pg.status()}["b"] == "async"
        # b hangs, the primary keeps acknowledging (more WAL than the socket buffers hold), then
        # dies: what b never received is gone although every INSERT was acknowledged
        pg.freeze_node("b")
        acked: list[str] = []
        with pg.connect(pg.writer_port(P)) as conn:
            for i in range(30):
                conn.execute("INSERT INTO records (id, payload)"
                             " VALUES (%s, jsonb_build_object('blob', %s::text))",
                             (f"async-{i}", os.urandom(150_000).hex()))
                acked.append(f"async-{i}")
        pg.crash_primary()
        pg.thaw_node("b")
        pg.failover("test: async crash")
        lost = set(acked) - pg.count_ids(acked, pg.writer_port(P))
        print(f"\nasync variant: {len(lost)} of {len(acked)} acknowledged writes lost")
        assert lost, "expected acknowledged writes to be lost with an async standby"
        assert roles(pg)["a"] == "standby"       # the old primary was rewound, not left diverged
    finally:
        pg.stop()
        registry.kill_all()


def test_sync_commit_blocks_when_standby_hangs(tmp_path: Path, pgkit: SimpleNamespace) -> None:
    """Contrast with the async variant: with b hung, nothing is acknowledged (uses a fresh cluster)."""
    cluster, registry, _ = pgkit.make_cluster(tmp_path, auto_failover=False)
    try:
        cluster.start()
        cluster.freeze_node("b")
        conn = cluster.connect(cluster.writer_port(P))
        done: list[object] = []
        t = threading.Thread(
            target=lambda: done.append(conn.execute("INSERT INTO records (id) VALUES ('x')")), daemon=True)
        t.start()
        t.join(1.0)
        assert t.is_alive() and not done        # the commit waits for b: not acknowledged
        cluster.thaw_node("b")
        t.join(10)
        assert done
        conn.close()
    finally:
        cluster.stop()
        registry.kill_all()
