"""Comparisons: each measurement against the previous run and the median of the last N runs.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "comparisons",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_pk", sa.Integer, sa.ForeignKey("gameday_runs.id", ondelete="CASCADE"), nullable=False,
                  index=True),
        sa.Column("scenario", sa.String(120), nullable=False),
        sa.Column("service", sa.String(80), nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("previous", sa.Float),
        sa.Column("previous_run_id", sa.String(80)),
        sa.Column("median", sa.Float),
        sa.Column("runs_in_median", sa.Integer, nullable=False),
        sa.Column("change_pct", sa.Float),
        sa.Column("regression", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text),
    )


def downgrade() -> None:
    op.drop_table("comparisons")
