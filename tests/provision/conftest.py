"""Fixtures for the provision tests: tiny real terraform modules written per test."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from gameday.provision.runner import TerraformRunner, TfEvent


@pytest.fixture
def make_module(tmp_path: Path) -> Callable[..., Path]:
    """Write main.tf (and optional extra files) into a fresh module directory."""
    counter = {"n": 0}

    def make(main_tf: str, **files: str) -> Path:
        counter["n"] += 1
        d = tmp_path / f"module{counter['n']}"
        d.mkdir()
        (d / "main.tf").write_text(textwrap.dedent(main_tf))
        for name, text in files.items():
            (d / name).write_text(textwrap.dedent(text))
        return d

    return make


@pytest.fixture
def make_runner(tmp_path: Path) -> Callable[..., tuple[TerraformRunner, list[TfEvent]]]:
    """A TerraformRunner on a module with its own work dir, collecting streamed events."""
    counter = {"n": 0}

    def make(module: Path, **kw: object) -> tuple[TerraformRunner, list[TfEvent]]:
        counter["n"] += 1
        seen: list[TfEvent] = []
        kw.setdefault("on_event", seen.append)
        kw.setdefault("timeout_s", 120.0)
        work = kw.pop("work_dir", tmp_path / f"work{counter['n']}")
        runner = TerraformRunner(module, work, **kw)  # type: ignore[arg-type]
        return runner, seen

    return make
