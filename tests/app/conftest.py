"""Fixtures: a throwaway PostgreSQL (real, password auth) and app instances as subprocesses (see _pg.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _pg import pg, pg_private, registry, start_app  # noqa: F401
