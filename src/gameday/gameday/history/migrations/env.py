"""Alembic environment: runs on the connection the history store hands over (never reads a URL here)."""

from __future__ import annotations

from alembic import context

from gameday.gameday.history.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the store always passes one
    raise RuntimeError("gameday history migrations run through gameday.gameday.history.store.migrate()")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
