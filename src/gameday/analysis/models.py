"""The load journals parsed into their schema's records (:mod:`gameday.util.journal_schema`).

``Request`` and ``Write`` are the schema's :class:`RequestRecord` and :class:`WriteRecord`; this
module validates journal lines into them (a malformed record raises ConfigError naming the field)
and loads whole journals (rotated, compressed and per-worker segments alike).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from gameday.errors import ConfigError
from gameday.util.journal import file_records, journal_files
from gameday.util.journal_schema import KINDS, LEDGER, OUTCOMES, REQUESTS, Kind, Outcome, RequestRecord, WriteRecord

Request = RequestRecord
Write = WriteRecord
__all__ = ["KINDS", "OUTCOMES", "Request", "Write", "as_requests", "as_writes", "jsonable", "load_ledger",
           "load_requests", "parse_request", "parse_write"]


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


def _outcome(rec: Mapping[str, Any], source: str | None) -> Outcome:
    value = rec.get("outcome")
    for outcome in OUTCOMES:
        if value == outcome:
            return outcome
    raise ConfigError(f"unknown outcome {value!r}", file=source, field="outcome",
                      hint=f"one of {', '.join(OUTCOMES)}")


def _kind(rec: Mapping[str, Any], source: str | None) -> Kind:
    value = rec.get("kind")
    for kind in KINDS:
        if value == kind:
            return kind
    raise ConfigError(f"unknown kind {value!r}", file=source, field="kind", hint="read or write")


def parse_request(rec: Mapping[str, Any], *, source: str | None = None) -> Request:
    """One ``requests.jsonl`` record; a malformed one raises ConfigError naming the field."""
    if type(rec) is dict:  # fast path for well-formed journal lines (hours of probes parse in ~1 s)
        g = rec.get
        t0, t1, svc, kind = g("t0"), g("t1"), g("service"), g("kind")
        outcome, status = g("outcome"), g("status")
        if (type(t0) is float and type(t1) is float and type(svc) is str and svc and kind in KINDS
                and outcome in OUTCOMES and (status is None or type(status) is int)
                and math.isfinite(t0) and math.isfinite(t1)):
            return Request(t0, t1, svc, kind, outcome, g("endpoint") or None, status, g("region") or None,
                           g("instance") or None, g("error") or None)
    if not isinstance(rec, Mapping):
        raise ConfigError(f"expected a JSON object, got {type(rec).__name__}", file=source)
    kind = _kind(rec, source)
    return Request(t0=_num(rec, "t0", source), t1=_num(rec, "t1", source),
                   service=_str(rec, "service", source), kind=kind,
                   outcome=_outcome(rec, source), endpoint=_opt_str(rec, "endpoint"),
                   status=_opt_int(rec, "status"), region=_opt_str(rec, "region"),
                   instance=_opt_str(rec, "instance"), error=_opt_str(rec, "error"))


def parse_write(rec: Mapping[str, Any], *, source: str | None = None) -> Write:
    """One ``ledger.jsonl`` record; a malformed one raises ConfigError naming the field."""
    if not isinstance(rec, Mapping):
        raise ConfigError(f"expected a JSON object, got {type(rec).__name__}", file=source)
    wid = rec.get("id")
    if wid is None or wid == "":
        raise ConfigError("write without id", file=source, field="id")
    outcome = _outcome(rec, source)
    return Write(id=str(wid), service=_str(rec, "service", source), t0=_num(rec, "t0", source),
                 t1=_num(rec, "t1", source), outcome=outcome, status=_opt_int(rec, "status"),
                 region=_opt_str(rec, "region"))


def as_requests(items: Iterable[Request | Mapping[str, Any]]) -> list[Request]:
    """Accept parsed records or raw dicts, so callers can pass journal lines straight in."""
    return [r if isinstance(r, Request) else parse_request(r) for r in items]


def as_writes(items: Iterable[Write | Mapping[str, Any]]) -> list[Write]:
    return [w if isinstance(w, Write) else parse_write(w) for w in items]


def load_requests(path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Request]:
    """Read ``requests.jsonl`` with its rotated/compressed segments, or every request journal of a
    directory or list (per-worker journals merge into one timeline); a torn last line is skipped."""
    out: list[Request] = []
    for f in journal_files(path, REQUESTS):
        src = str(f)
        out.extend(parse_request(rec, source=src) for rec in file_records([f]))
    return out


def load_ledger(path: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Write]:
    """Read ``ledger.jsonl`` (same sources as :func:`load_requests`)."""
    out: list[Write] = []
    for f in journal_files(path, LEDGER):
        src = str(f)
        out.extend(parse_write(rec, source=src) for rec in file_records([f]))
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
