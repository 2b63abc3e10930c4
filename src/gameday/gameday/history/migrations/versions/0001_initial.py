"""Runs, scenario runs, SLO verdicts, measurements.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gameday_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(80), nullable=False, unique=True),
        sa.Column("plan", sa.String(120), nullable=False, index=True),
        sa.Column("plan_path", sa.Text),
        sa.Column("target", sa.String(200), nullable=False, index=True),
        sa.Column("target_kind", sa.String(20), nullable=False),
        sa.Column("timing", sa.String(20), nullable=False),
        sa.Column("routing_mode", sa.String(40)),
        sa.Column("trigger", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("exit_code", sa.Integer, nullable=False),
        sa.Column("halt_reason", sa.Text),
        sa.Column("gameday_rev", sa.String(60)),
        sa.Column("terraform_rev", sa.String(60)),
        sa.Column("var_files", sa.JSON),
        sa.Column("report_dir", sa.Text),
        sa.Column("summary_md", sa.Text),
        sa.Column("summary_html", sa.Text),
    )
    op.create_table(
        "scenario_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("gameday_runs.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("scenario", sa.String(120), nullable=False, index=True),
        sa.Column("fault", sa.String(40), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("duration_s", sa.Float),
        sa.Column("fault_start", sa.DateTime(timezone=True)),
        sa.Column("fault_end", sa.DateTime(timezone=True)),
        sa.Column("chaos_status", sa.String(40)),
        sa.Column("error", sa.Text),
        sa.Column("inconclusive", sa.Text),
        sa.Column("run_dir", sa.Text),
    )
    op.create_table(
        "slo_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scenario_pk", sa.Integer, sa.ForeignKey("scenario_runs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("expected", sa.JSON),
        sa.Column("measured", sa.JSON),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("scenario_pk", sa.Integer, sa.ForeignKey("scenario_runs.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("service", sa.String(80), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False, index=True),
        sa.Column("value", sa.Float),
        sa.Column("status", sa.String(40)),
        sa.Column("budget", sa.Float),
        sa.Column("policy", sa.Float),
        sa.Column("unit", sa.String(20), nullable=False),
    )


def downgrade() -> None:
    for table in ("measurements", "slo_results", "scenario_runs", "gameday_runs"):
        op.drop_table(table)
