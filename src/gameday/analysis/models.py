"""Typed records of the load generator's journals, parsed without importing ``gameday.load``.

Analysis only needs a handful of fields, so it owns its own small dataclasses: the load
module can evolve its recorder freely as long as the JSON-lines fields stay the same.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gameday.errors import ConfigError
from gameday.util.journal import file_records, journal_files

OUTCOMES = ("ok", "failed", "unknown")
KINDS = ("read", "write")


def _num(rec: Mapping[str, Any], field: str, source: str | None) -> float:
    value = rec.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"expected a finite number, got {value!r}", file=source, field=field,
                          hint="timestamps are wall-clock seconds (time.time())")
    return float(value)


def _str(rec: Mapping[str, Any], field: str, source: str | None) -> str:
    value = rec.get(field)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"expected a non-empty string, got {value!r}", file=source, field=field)
    return value


def _opt_str(rec: Mapping[str, Any], field: str) -> str | None:
    value = rec.get(field)
    return None if value is None or value == "" else str(value)


def _opt_int(rec: Mapping[str, Any], field: str) -> int | None:
    value = rec.get(field)
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _outcome(rec: Mapping[str, Any], source: str | None) -> str:
    value = rec.get("outcome")
    if value not in OUTCOMES:
        raise ConfigError(f"unknown outcome {value!r}", file=source, field="outcome",
                          hint=f"one of {', '.join(OUTCOMES)}")
    return str(value)


@dataclass(frozen=True, slots=True)
class Request:
    """One probe request; ``unknown`` means timeout/dropped connection (outcome not known)."""

    t0: float
    t1: float
    service: str
    kind: str
    outcome: str
    endpoint: str | None = None
    status: int | None = None
    region: str | None = None
    instance: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"

    @classmethod
    def from_dict(cls, rec: Mapping[str, Any], *, source: str | None = None) -> Request:
        """Parse one ``requests.jsonl`` record; a malformed one raises ConfigError naming the field."""
        if type(rec) is dict:  # fast path for well-formed journal lines (hours of probes parse in ~1 s)
            g = rec.get
            t0, t1, svc, kind = g("t0"), g("t1"), g("service"), g("kind")
            outcome, status = g("outcome"), g("status")
            if (type(t0) is float and type(t1) is float and type(svc) is str and svc and kind in KINDS
                    and outcome in OUTCOMES and (status is None or type(status) is int)
                    and math.isfinite(t0) and math.isfinite(t1)):
                return cls(t0, t1, svc, kind, outcome, g("endpoint") or None, status, g("region") or None,
                           g("instance") or None, g("error") or None)
        if not isinstance(rec, Mapping):
            raise ConfigError(f"expected a JSON object, got {type(rec).__name__}", file=source)
        kind = rec.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"unknown kind {kind!r}", file=source, field="kind", hint="read or write")
        return cls(t0=_num(rec, "t0", source), t1=_num(rec, "t1", source),
                   service=_str(rec, "service", source), kind=str(kind),
                   outcome=_outcome(rec, source), endpoint=_opt_str(rec, "endpoint"),
                   status=_opt_int(rec, "status"), region=_opt_str(rec, "region"),
                   instance=_opt_str(rec, "instance"), error=_opt_str(rec, "error"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, slots=True)
class Write:
    """One write attempt from ``ledger.jsonl``; ``t1`` is the acknowledgement time when ``ok``."""

    id: str
    service: str
    t0: float
    t1: float
    outcome: str
    status: int | None = None
    region: str | None = None

    @classmethod
    def from_dict(cls, rec: Mapping[str, Any], *, source: str | None = None) -> Write:
        """Parse one ``ledger.jsonl`` record; a malformed one raises ConfigError naming the field."""
        if not isinstance(rec, Mapping):
            raise ConfigError(f"expected a JSON object, got {type(rec).__name__}", file=source)
        wid = rec.get("id")
        if wid is None or wid == "":
            raise ConfigError("write without id", file=source, field="id")
        return cls(id=str(wid), service=_str(rec, "service", source), t0=_num(rec, "t0", source),
                   t1=_num(rec, "t1", source), outcome=_outcome(rec, source), status=_opt_int(rec, "status"),
                   region=_opt_str(rec, "region"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def as_requests(items: Iterable[Request | Mapping[str, Any]]) -> list[Request]:
    """Accept parsed records or raw dicts, so callers can pass journal lines straight in."""
    return [r if isinstance(r, Request) else Request.from_dict(r) for r in items]


def as_writes(items: Iterable[Write | Mapping[str, Any]]) -> list[Write]:
    return [w if isinstance(w, Write) else Write.from_dict(w) for w in items]


def load_requests(path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Request]:
    """Read ``requests.jsonl`` with its rotated/compressed segments, or every request journal of a
    directory or list (per-worker journals merge into one timeline); a torn last line is skipped."""
    out: list[Request] = []
    for f in journal_files(path, "requests"):
        src = str(f)
        out.extend(Request.from_dict(rec, source=src) for rec in file_records([f]))
    return out


def load_ledger(path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Write]:
    """Read ``ledger.jsonl`` (same sources as :func:`load_requests`)."""
    out: list[Write] = []
    for f in journal_files(path, "ledger"):
        src = str(f)
        out.extend(Write.from_dict(rec, source=src) for rec in file_records([f]))
    return out


def jsonable(value: Any) -> Any:
    """Plain JSON types only (tuples → lists, non-finite floats → None) for reports."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [jsonable(v) for v in items]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value
