"""Keep secrets (database passwords) out of logs, reprs and reports."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "***REDACTED***"
SENSITIVE_KEYS = re.compile(r"(password|passwd|secret|token|credential|private_key)", re.IGNORECASE)


class Secret(str):
    """A str whose repr never shows the value; str() still gives it to code that needs it."""

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"


def redact(value: Any, secrets: tuple[str, ...] = ()) -> Any:
    """Return a copy of a JSON-like value with sensitive keys and known secret strings masked."""
    if isinstance(value, dict):
        return {k: (REDACTED if SENSITIVE_KEYS.search(str(k)) and v not in (None, "") else redact(v, secrets))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
    if isinstance(value, Secret):
        return REDACTED
    if isinstance(value, str):
        for s in secrets:
            if s:
                value = value.replace(s, REDACTED)
        return value
    return value
