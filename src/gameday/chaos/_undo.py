"""Undo-log entries for our activities: written before each injection, closed by its rollback.

``before`` raises ActivityFailed when the entry cannot be written, so no fault is ever injected
that the harness or ``gameday abort`` would not know how to undo.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from gameday.chaos._common import ActivityFailed
from gameday.safety import undolog


def before(action: str, resource: str, undo: Mapping[str, Any], *, what: str = "",
           region: str | None = None) -> str:
    """Record how to undo ``action`` on ``resource``; call right before the AWS call that injects it."""
    try:
        return undolog.record(action, resource, undo, what=what, region=region)
    except undolog.UndoLogError as exc:
        raise ActivityFailed(f"{action} not injected: {exc}") from exc


def after(entry_id: str, **undo: Any) -> None:
    """Add what the injection returned (an experiment id) to its entry; best effort (it is open)."""
    with contextlib.suppress(undolog.UndoLogError):  # the open entry alone is enough to undo by tags
        undolog.update(entry_id, undo)


def done(kind: str, by: str, **match: Any) -> None:
    """A rollback undid the faults of ``kind`` matching ``match``: close their entries."""
    with contextlib.suppress(undolog.UndoLogError):  # left open: replayed again, every undo is idempotent
        undolog.close_matching(kind, match, by)
