"""Every ground-truth event the sandbox emits is a declared kind (emit raises on others, mid-tick)."""

from __future__ import annotations

import ast
from pathlib import Path

import gameday.sandbox
from gameday.sandbox.events import EVENT_KINDS

SANDBOX = Path(gameday.sandbox.__file__).parent


def _emitted_kinds() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in SANDBOX.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            first = node.args[0] if node.args else None
            if node.func.attr in ("emit", "_emit") and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found[first.value] = f"{path.relative_to(SANDBOX)}:{node.lineno}"
    return found


def test_every_emitted_kind_is_declared() -> None:
    kinds = _emitted_kinds()
    assert len(kinds) > 25  # the scan found the emitters
    missing = {k: where for k, where in kinds.items() if k not in EVENT_KINDS}
    assert missing == {}, f"add these to EVENT_KINDS: {missing}"
