"""Terraform's machine-readable output as data: UI events (-json), diagnostics, outputs, and the
error type built from them. No process handling here (that is ``runner``), so it is cheap to test.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gameday.errors import EndpointUnreachable, GamedayError, TerraformError
from gameday.util.redact import REDACTED, Secret

#: Diagnostics that mean the (local) AWS endpoint is down, not that the config is wrong.
UNREACHABLE = re.compile(r"connect: connection refused|no such host|dial tcp [^:]+:\d+: i/o timeout")

EventCallback = Callable[["TfEvent"], None]


@dataclass(frozen=True)
class TfEvent:
    """One line of terraform's machine-readable UI (or a harness event such as ``retry``)."""

    type: str
    message: str
    level: str = "info"
    address: str | None = None
    command: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __str__(self) -> str:
        return f"{self.type} {self.address}" if self.address else f"{self.type}: {self.message}"


@dataclass(frozen=True)
class Diagnostic:
    """A terraform error/warning, with the resource it is about when terraform says so."""

    severity: str
    summary: str
    detail: str = ""
    address: str | None = None
    filename: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = f" [{self.address}]" if self.address else ""
        loc = f" ({self.filename}:{self.line})" if self.filename else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"{self.severity.capitalize()}{where}{loc}: {self.summary}{detail}"


class TerraformRunError(TerraformError):
    """TerraformError with terraform's own error diagnostics attached (``.diagnostics``)."""

    def __init__(self, command: list[str], exit_code: int, stderr: str, summary: str | None = None,
                 resources: list[str] | None = None, diagnostics: Sequence[Diagnostic] = ()) -> None:
        super().__init__(command, exit_code, stderr, summary=summary, resources=resources)
        self.diagnostics = list(diagnostics)


class TerraformEndpointUnreachable(TerraformRunError, EndpointUnreachable):
    """A terraform command failed because the AWS endpoint refused connections (both types catch it)."""


@dataclass
class RunResult:
    """What one terraform command did: argv, exit code, events, diagnostics, text output."""

    command: list[str]
    exit_code: int
    events: list[TfEvent]
    diagnostics: list[Diagnostic]
    stdout: str
    duration_s: float

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


@dataclass(frozen=True)
class PlanSummary:
    """Counts from terraform's change_summary plus the addresses of planned changes."""

    add: int
    change: int
    destroy: int
    changes: tuple[tuple[str, str], ...]  # (address, action)

    @property
    def has_changes(self) -> bool:
        return bool(self.add or self.change or self.destroy)


class Outputs(dict[str, Any]):
    """``terraform output -json`` unwrapped; sensitive names in ``.sensitive``, their strings as Secret."""

    def __init__(self, values: Mapping[str, Any], sensitive: frozenset[str] = frozenset()) -> None:
        super().__init__(values)
        self.sensitive = sensitive

    def redacted(self) -> dict[str, Any]:
        return {k: (REDACTED if k in self.sensitive else v) for k, v in self.items()}

    def __repr__(self) -> str:
        return f"Outputs({self.redacted()!r})"


def _secretify(value: Any) -> Any:
    if isinstance(value, str):
        return Secret(value)
    if isinstance(value, dict):
        return {k: _secretify(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_secretify(v) for v in value]
    return value


def parse_outputs(raw: Mapping[str, Any]) -> Outputs:
    """Unwrap ``{"name": {"value": v, "sensitive": b, "type": t}}`` into name → value."""
    values: dict[str, Any] = {}
    sensitive: set[str] = set()
    for name, entry in raw.items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise GamedayError(f"terraform output {name!r} has no value: {entry!r}"[:300])
        if entry.get("sensitive"):
            sensitive.add(name)
            values[name] = _secretify(entry["value"])
        else:
            values[name] = entry["value"]
    return Outputs(values, frozenset(sensitive))


_CONTEXT_RE = re.compile(r'^resource "([^"]+)" "([^"]+)"')


def diagnostic_from_json(d: Mapping[str, Any]) -> Diagnostic:
    rng = d.get("range") or {}
    address = d.get("address")
    if not address:
        m = _CONTEXT_RE.match(str((d.get("snippet") or {}).get("context") or ""))
        if m:
            address = f"{m.group(1)}.{m.group(2)}"
    return Diagnostic(
        severity=str(d.get("severity", "error")), summary=str(d.get("summary", "")),
        detail=str(d.get("detail") or ""), address=address, filename=rng.get("filename"),
        line=(rng.get("start") or {}).get("line"),
    )


def event_from_json(rec: Mapping[str, Any], command: str) -> TfEvent:
    address = None
    for key in ("hook", "change"):
        res = (rec.get(key) or {}).get("resource") if isinstance(rec.get(key), dict) else None
        if isinstance(res, dict):
            address = res.get("addr")
    if rec.get("type") == "diagnostic":
        address = diagnostic_from_json(rec.get("diagnostic") or {}).address
    return TfEvent(type=str(rec.get("type", "log")), message=str(rec.get("@message", "")),
                   level=str(rec.get("@level", "info")), address=address, command=command, raw=rec)
