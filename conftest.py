"""Repository-level pytest configuration.

The gameday plugin (options, markers, sandbox fixtures) is loaded through its ``pytest11``
entry point, so installed users get it too; this file only orders this repository's tests.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fast harness tests first, then tests that need a sandbox, drills last: early failures show early."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("drill"):
            return 2
        if item.get_closest_marker("sandbox") or "gameday_sandbox" in getattr(item, "fixturenames", ()):
            return 1
        return 0

    items.sort(key=rank)
