"""Game-day tests: a private gameday home (history, locks, allure history) per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def gameday_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("GAMEDAY_HOME", str(home))
    monkeypatch.delenv("GAMEDAY_HISTORY_URL", raising=False)
    return home
