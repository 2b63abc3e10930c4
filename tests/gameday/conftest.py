"""Game-day tests: a private gameday home (history, locks, allure history) per test."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "app"))

from _pg import pg_private  # noqa: F401  (a throwaway real PostgreSQL, for the history migrations)


@pytest.fixture(autouse=True)
def gameday_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("GAMEDAY_HOME", str(home))
    monkeypatch.delenv("GAMEDAY_HISTORY_URL", raising=False)
    return home
