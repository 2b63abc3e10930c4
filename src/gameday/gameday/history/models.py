"""The history's tables (SQLAlchemy ORM); the schema itself is made by the Alembic migrations.

Times are timezone-aware UTC ``DateTime`` columns (never epoch floats), so a person querying the
database reads instants, and PostgreSQL and SQLite agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class RunRow(Base):
    """One game day: plan, target, code revisions, overall verdict, where its reports are."""

    __tablename__ = "gameday_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(80), unique=True)
    plan: Mapped[str] = mapped_column(String(120), index=True)
    plan_path: Mapped[str | None] = mapped_column(Text)
    target: Mapped[str] = mapped_column(String(200), index=True)
    target_kind: Mapped[str] = mapped_column(String(20))
    timing: Mapped[str] = mapped_column(String(20))
    routing_mode: Mapped[str | None] = mapped_column(String(40))
    trigger: Mapped[str] = mapped_column(String(20), default="manual")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verdict: Mapped[str] = mapped_column(String(20))
    exit_code: Mapped[int] = mapped_column(Integer)
    halt_reason: Mapped[str | None] = mapped_column(Text)
    gameday_rev: Mapped[str | None] = mapped_column(String(60))
    terraform_rev: Mapped[str | None] = mapped_column(String(60))
    var_files: Mapped[Any] = mapped_column(JSON, default=list)
    report_dir: Mapped[str | None] = mapped_column(Text)
    summary_md: Mapped[str | None] = mapped_column(Text)
    summary_html: Mapped[str | None] = mapped_column(Text)

    scenarios: Mapped[list[ScenarioRow]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                        order_by="ScenarioRow.position")
    comparisons: Mapped[list[ComparisonRow]] = relationship(back_populates="run", cascade="all, delete-orphan")


class ScenarioRow(Base):
    """One drill of a game day: verdict, timings, the fault window, its run folder."""

    __tablename__ = "scenario_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("gameday_runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    scenario: Mapped[str] = mapped_column(String(120), index=True)
    fault: Mapped[str] = mapped_column(String(40))
    verdict: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Float)
    fault_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fault_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    chaos_status: Mapped[str | None] = mapped_column(String(40))
    error: Mapped[str | None] = mapped_column(Text)
    inconclusive: Mapped[str | None] = mapped_column(Text)
    run_dir: Mapped[str | None] = mapped_column(Text)

    run: Mapped[RunRow] = relationship(back_populates="scenarios")
    slos: Mapped[list[SloRow]] = relationship(back_populates="scenario_run", cascade="all, delete-orphan")
    measurements: Mapped[list[MeasurementRow]] = relationship(back_populates="scenario_run",
                                                              cascade="all, delete-orphan")


class SloRow(Base):
    """One SLO verdict as the drill judged it (budget, measured value, message)."""

    __tablename__ = "slo_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scenario_pk: Mapped[int] = mapped_column(ForeignKey("scenario_runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    expected: Mapped[Any] = mapped_column(JSON)
    measured: Mapped[Any] = mapped_column(JSON)
    passed: Mapped[bool] = mapped_column(Boolean)
    message: Mapped[str] = mapped_column(Text)

    scenario_run: Mapped[ScenarioRow] = relationship(back_populates="slos")


class MeasurementRow(Base):
    """A trend figure: RTO, write RTO, RPO or lost writes of one service, with budget and policy target."""

    __tablename__ = "measurements"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scenario_pk: Mapped[int] = mapped_column(ForeignKey("scenario_runs.id", ondelete="CASCADE"), index=True)
    service: Mapped[str] = mapped_column(String(80))
    metric: Mapped[str] = mapped_column(String(40), index=True)
    value: Mapped[float | None] = mapped_column(Float)   # None: not recovered / not measured
    status: Mapped[str | None] = mapped_column(String(40))
    budget: Mapped[float | None] = mapped_column(Float)
    policy: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(20), default="s")

    scenario_run: Mapped[ScenarioRow] = relationship(back_populates="measurements")


class ComparisonRow(Base):
    """A measurement against the previous run and the median of the last N (migration 0002)."""

    __tablename__ = "comparisons"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_pk: Mapped[int] = mapped_column(ForeignKey("gameday_runs.id", ondelete="CASCADE"), index=True)
    scenario: Mapped[str] = mapped_column(String(120))
    service: Mapped[str] = mapped_column(String(80))
    metric: Mapped[str] = mapped_column(String(40))
    value: Mapped[float | None] = mapped_column(Float)
    previous: Mapped[float | None] = mapped_column(Float)
    previous_run_id: Mapped[str | None] = mapped_column(String(80))
    median: Mapped[float | None] = mapped_column(Float)
    runs_in_median: Mapped[int] = mapped_column(Integer, default=0)
    change_pct: Mapped[float | None] = mapped_column(Float)
    regression: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)

    run: Mapped[RunRow] = relationship(back_populates="comparisons")
