"""Reuses the PostgreSQL and app fixtures of tests/app (see tests/app/_pg.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "app"))

from _pg import pg, pg_private, registry, start_app  # noqa: F401
