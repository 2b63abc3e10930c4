"""The history database: open (migrating to the newest schema), record a game day, query it.

SQLite in the gameday home by default; a team shares PostgreSQL by URL
(``postgresql+psycopg://user@host/db``; the password never shows in a message: URLs are
rendered with it hidden). The schema is owned by the Alembic migrations in ``migrations/``;
opening a store upgrades it to head, so an older database keeps working after an upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from gameday.errors import ConfigError, GamedayError
from gameday.gameday.history.models import ComparisonRow, MeasurementRow, RunRow, ScenarioRow, SloRow


class HistoryError(GamedayError):
    """Raised when the history database cannot be opened, migrated or written."""


@dataclass
class Measurement:
    service: str
    metric: str           # rto | write_rto | rpo | lost_writes
    value: float | None
    status: str | None = None
    budget: float | None = None
    policy: float | None = None
    unit: str = "s"


@dataclass
class ScenarioRecord:
    position: int
    scenario: str
    fault: str
    verdict: str
    started_at: datetime | None = None
    duration_s: float | None = None
    fault_start: datetime | None = None
    fault_end: datetime | None = None
    chaos_status: str | None = None
    error: str | None = None
    inconclusive: str | None = None
    run_dir: str | None = None
    slos: list[dict[str, Any]] = field(default_factory=list)
    measurements: list[Measurement] = field(default_factory=list)


@dataclass
class RunRecord:
    run_id: str
    plan: str
    target: str
    target_kind: str
    timing: str
    started_at: datetime
    verdict: str
    exit_code: int
    plan_path: str | None = None
    routing_mode: str | None = None
    trigger: str = "manual"
    finished_at: datetime | None = None
    halt_reason: str | None = None
    gameday_rev: str | None = None
    terraform_rev: str | None = None
    var_files: list[str] = field(default_factory=list)
    report_dir: str | None = None
    summary_md: str | None = None
    summary_html: str | None = None
    scenarios: list[ScenarioRecord] = field(default_factory=list)


@dataclass(frozen=True)
class Point:
    """One trend point: a measurement of one run."""

    run_id: str
    started_at: datetime
    run_verdict: str
    scenario: str
    scenario_verdict: str
    service: str
    metric: str
    value: float | None
    status: str | None
    budget: float | None
    policy: float | None


def safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable URL)"


def migrations_dir() -> Path:
    return Path(str(resources.files("gameday.gameday.history").joinpath("migrations")))


def migrate(engine: Engine, revision: str = "head", *, down: bool = False) -> None:
    """Alembic upgrade (or downgrade) on this engine."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if down:
            command.downgrade(cfg, revision)
        else:
            command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        rev: str | None = MigrationContext.configure(conn).get_current_revision()
        return rev


def _utc(d: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes for timezone-aware columns: they were stored as UTC."""
    if d is None or d.tzinfo is not None:
        return d
    from datetime import UTC

    return d.replace(tzinfo=UTC)


class HistoryStore:
    """A history database at ``url``, migrated to head on open."""

    def __init__(self, url: str, *, upgrade: bool = True) -> None:
        self.url = url
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise ConfigError(f"not a database URL: {safe_url(url)}", field="history.url",
                              hint="sqlite:///path/history.db or postgresql+psycopg://user:pw@host/db") from exc
        if parsed.get_backend_name() == "sqlite" and parsed.database:
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is what gameday ships
        try:
            self.engine = create_engine(parsed, future=True, pool_pre_ping=True)
        except (NoSuchModuleError, ArgumentError) as exc:
            raise ConfigError(f"unsupported database URL {safe_url(url)}: {exc}", field="history.url",
                              hint="use sqlite:/// or postgresql+psycopg://") from exc
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if upgrade:
            try:
                migrate(self.engine)
            except SQLAlchemyError as exc:
                raise HistoryError(f"history database {safe_url(url)}: migration failed: "
                                   f"{str(exc).splitlines()[0]}") from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def tables(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    # --- writing ---------------------------------------------------------------------------------

    def record(self, run: RunRecord) -> int:
        """Store a finished game day with its scenarios, SLOs and measurements; returns its key."""
        row = RunRow(run_id=run.run_id, plan=run.plan, plan_path=run.plan_path, target=run.target,
                     target_kind=run.target_kind, timing=run.timing, routing_mode=run.routing_mode,
                     trigger=run.trigger, started_at=run.started_at, finished_at=run.finished_at,
                     verdict=run.verdict, exit_code=run.exit_code, halt_reason=run.halt_reason,
                     gameday_rev=run.gameday_rev, terraform_rev=run.terraform_rev, var_files=list(run.var_files),
                     report_dir=run.report_dir, summary_md=run.summary_md, summary_html=run.summary_html)
        for s in run.scenarios:
            srow = ScenarioRow(position=s.position, scenario=s.scenario, fault=s.fault, verdict=s.verdict,
                               started_at=s.started_at, duration_s=s.duration_s, fault_start=s.fault_start,
                               fault_end=s.fault_end, chaos_status=s.chaos_status, error=s.error,
                               inconclusive=s.inconclusive, run_dir=s.run_dir)
            srow.slos = [SloRow(name=v["name"], expected=v.get("expected"), measured=v.get("measured"),
                                passed=bool(v["passed"]), message=str(v.get("message", ""))) for v in s.slos]
            srow.measurements = [MeasurementRow(service=m.service, metric=m.metric, value=m.value, status=m.status,
                                                budget=m.budget, policy=m.policy, unit=m.unit)
                                 for m in s.measurements]
            row.scenarios.append(srow)
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                session.add(row)
        except SQLAlchemyError as exc:
            raise HistoryError(f"history database {safe_url(self.url)}: cannot record run {run.run_id}: "
                               f"{str(exc).splitlines()[0]}") from exc
        return row.id

    def add_comparisons(self, run_pk: int, rows: Sequence[ComparisonRow]) -> None:
        with Session(self.engine) as session, session.begin():
            for r in rows:
                r.run_pk = run_pk
                session.add(r)

    def update_run(self, run_pk: int, **values: Any) -> None:
        with Session(self.engine) as session, session.begin():
            row = session.get(RunRow, run_pk)
            if row is not None:
                for k, v in values.items():
                    setattr(row, k, v)

    # --- reading ---------------------------------------------------------------------------------

    def runs(self, *, plan: str | None = None, scenario: str | None = None, target: str | None = None,
             limit: int = 50) -> list[RunRow]:
        """Newest first, with scenarios, SLOs, measurements and comparisons loaded."""
        q = (select(RunRow).options(selectinload(RunRow.scenarios).selectinload(ScenarioRow.slos),
                                    selectinload(RunRow.scenarios).selectinload(ScenarioRow.measurements),
                                    selectinload(RunRow.comparisons))
             .order_by(RunRow.started_at.desc(), RunRow.id.desc()).limit(limit))
        if plan:
            q = q.where(RunRow.plan == plan)
        if target:
            q = q.where(RunRow.target == target)
        if scenario:
            q = q.where(RunRow.id.in_(select(ScenarioRow.run_pk).where(ScenarioRow.scenario == scenario)))
        with Session(self.engine, expire_on_commit=False) as session:
            rows = list(session.scalars(q))
        for r in rows:
            r.started_at = _utc(r.started_at)  # type: ignore[assignment]
            r.finished_at = _utc(r.finished_at)
        return rows

    def series(self, *, plan: str | None = None, target: str | None = None, scenario: str | None = None,
               service: str | None = None, metric: str | None = None, before_run_pk: int | None = None,
               last: int | None = None) -> list[Point]:
        """Measurements oldest first (the last ``last`` runs when given)."""
        q = (select(MeasurementRow, ScenarioRow, RunRow)
             .join(ScenarioRow, MeasurementRow.scenario_pk == ScenarioRow.id)
             .join(RunRow, ScenarioRow.run_pk == RunRow.id))
        for col, val in ((RunRow.plan, plan), (RunRow.target, target), (ScenarioRow.scenario, scenario),
                         (MeasurementRow.service, service), (MeasurementRow.metric, metric)):
            if val is not None:
                q = q.where(col == val)
        if before_run_pk is not None:
            q = q.where(RunRow.id < before_run_pk)
        q = q.order_by(RunRow.started_at, RunRow.id, ScenarioRow.position, MeasurementRow.id)
        with Session(self.engine) as session:
            points = [Point(run_id=r.run_id, started_at=_utc(r.started_at) or r.started_at, run_verdict=r.verdict,
                            scenario=s.scenario, scenario_verdict=s.verdict, service=m.service, metric=m.metric,
                            value=m.value, status=m.status, budget=m.budget, policy=m.policy)
                      for m, s, r in session.execute(q)]
        if last is not None:
            keep = list(dict.fromkeys(p.run_id for p in points))[-last:]
            points = [p for p in points if p.run_id in set(keep)]
        return points


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Foreign keys on (ON DELETE CASCADE), and wait for a concurrent writer instead of failing."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()
