"""History database: Alembic migrations on SQLite and on a real PostgreSQL, recording and reading runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from gameday.gameday.history.store import (
    HistoryError,
    HistoryStore,
    Measurement,
    RunRecord,
    ScenarioRecord,
    current_revision,
    migrate,
)
from gameday.gameday.plan import Compare
from gameday.gameday.trends import compare_run, worst

T0 = datetime(2025, 1, 6, 5, 0, tzinfo=UTC)


def run(i: int, write_rto: float | None, lost: float = 0) -> RunRecord:
    slos = [{"name": "rto.orders.write", "expected": 6.4, "measured": write_rto, "passed": True, "message": "m"}]
    ms = [Measurement("orders", "rto", 2.0, "recovered", 6.4, 30.0),
          Measurement("orders", "write_rto", write_rto, "recovered" if write_rto is not None else "not_recovered",
                      6.4, 30.0),
          Measurement("*", "lost_writes", lost, "valid", 0, None, "writes")]
    return RunRecord(run_id=f"weekly-{i}", plan="weekly", target="sandbox", target_kind="sandbox", timing="fast",
                     started_at=T0 + timedelta(days=7 * i), verdict="PASS", exit_code=0,
                     scenarios=[ScenarioRecord(0, "service-failover", "service", "PASS", slos=slos, measurements=ms)])


def exercise(url: str) -> None:
    """Migrate step by step with data in between, then use the store, then downgrade to nothing."""
    engine = create_engine(url)
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as c:
        c.execute(text("INSERT INTO gameday_runs (run_id, plan, target, target_kind, timing, trigger, started_at, "
                       "verdict, exit_code) VALUES ('old-1', 'weekly', 'sandbox', 'sandbox', 'fast', 'manual', "
                       ":t, 'PASS', 0)"), {"t": T0 - timedelta(days=7)})
    store = HistoryStore(url)  # opening upgrades to head (0002 adds comparisons)
    try:
        assert current_revision(store.engine) == "0002"
        assert "comparisons" in store.tables()
        assert [r.run_id for r in store.runs()] == ["old-1"]  # data written under 0001 survives
        cfg = Compare(last_n=5, regression_pct=25, min_delta_s=0.5)
        comps = []
        for i, (w, lost) in enumerate([(4.0, 0), (4.2, 0), (6.0, 0), (None, 3)]):
            pk = store.record(run(i, w, lost))
            comps.append(compare_run(store, pk, f"weekly-{i}", "weekly", "sandbox", cfg))
        assert comps[0] == []  # first run with measurements: nothing to compare with
        w1 = next(c for c in comps[1] if c.metric == "write_rto")
        assert not w1.regression and w1.previous == 4.0
        w2 = next(c for c in comps[2] if c.metric == "write_rto")
        assert w2.regression and w2.median == 4.1 and w2.change_pct == pytest.approx(42.857, abs=0.01)
        w3 = next(c for c in comps[3] if c.metric == "write_rto")
        assert w3.regression and "did not recover" in (w3.reason or "")
        lost3 = next(c for c in comps[3] if c.metric == "lost_writes")
        assert lost3.regression
        assert worst(comps[3]) is w3
        runs = store.runs(plan="weekly", scenario="service-failover")
        assert [r.run_id for r in runs] == ["weekly-3", "weekly-2", "weekly-1", "weekly-0"]
        assert runs[0].started_at.tzinfo is not None
        assert {c.metric for c in runs[0].comparisons if c.regression} == {"write_rto", "lost_writes"}
        series = store.series(plan="weekly", metric="write_rto")
        assert [p.value for p in series] == [4.0, 4.2, 6.0, None]
        assert all(p.policy == 30.0 and p.budget == 6.4 for p in series)
        assert store.series(plan="weekly", metric="write_rto", last=2)[0].run_id == "weekly-2"
        migrate(store.engine, "base", down=True)
        assert store.tables() == ["alembic_version"]
    finally:
        store.close()
        engine.dispose()


def test_migrations_sqlite(tmp_path: Path) -> None:
    (tmp_path / "h").mkdir()
    exercise(f"sqlite:///{tmp_path / 'h' / 'history.db'}")


def test_migrations_postgresql(pg_private: object) -> None:  # a real server (tests/app/_pg.py)
    info = pg_private.conninfo()  # type: ignore[attr-defined]
    url = f"postgresql+psycopg://{info['user']}:{info['password']}@{info['host']}:{info['port']}/{info['dbname']}"
    exercise(url)
    bad = url.replace(str(info["password"]), "wrong-pw-123")
    with pytest.raises(HistoryError) as err:
        HistoryStore(bad)
    assert "wrong-pw-123" not in str(err.value) and "***" in str(err.value)
