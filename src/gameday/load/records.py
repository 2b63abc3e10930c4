"""Typed views of the load journals (``requests.jsonl``, ``ledger.jsonl``) for the analysis.

Field names are the contract with ``loadtests/locustfile.py``; keep both in step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Literal, cast

from gameday.errors import LoadError
from gameday.util.journal import iter_records

Outcome = Literal["ok", "failed", "unknown"]
Kind = Literal["read", "write"]
OUTCOMES: frozenset[str] = frozenset({"ok", "failed", "unknown"})
KINDS: frozenset[str] = frozenset({"read", "write"})


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as it completed. ``status``/``region``/``instance`` are None when no answer came.

    outcome: ok = 2xx; failed = HTTP error answer, or connection refused / not established
    (certainly not applied); unknown = sent but no answer (timeout, reset): maybe applied.
    """

    t0: float
    t1: float
    service: str
    kind: Kind
    endpoint: str
    outcome: Outcome
    status: int | None
    region: str | None
    instance: str | None
    error: str | None

    @property
    def latency_s(self) -> float:
        return self.t1 - self.t0


@dataclass(frozen=True, slots=True)
class LedgerRecord:
    """One write attempt: client-generated unique ``id`` and what the client learnt about it."""

    id: str
    service: str
    t0: float
    t1: float
    outcome: Outcome
    status: int | None
    region: str | None


def _opt_str(v: Any) -> str | None:
    return None if v is None else str(v)


def _opt_int(v: Any) -> int | None:
    return None if v in (None, 0, "") else int(v)


def _check(rec: dict[str, Any], path: str | os.PathLike[str], n: int) -> None:
    if rec.get("outcome") not in OUTCOMES:
        raise LoadError(f"{path}: record {n}: outcome {rec.get('outcome')!r} not one of {sorted(OUTCOMES)}")


def read_requests(path: str | os.PathLike[str]) -> list[RequestRecord]:
    """All request records in file order, rotated/compressed segments first (a torn last line from a
    crash is skipped)."""
    out: list[RequestRecord] = []
    for n, r in enumerate(iter_records(path, "requests"), 1):
        try:
            _check(r, path, n)
            if r["kind"] not in KINDS:
                raise LoadError(f"{path}: record {n}: kind {r['kind']!r} not one of {sorted(KINDS)}")
            out.append(RequestRecord(
                t0=float(r["t0"]), t1=float(r["t1"]), service=str(r["service"]), kind=cast(Kind, r["kind"]),
                endpoint=str(r["endpoint"]), outcome=cast(Outcome, r["outcome"]),
                status=_opt_int(r.get("status")),
                region=_opt_str(r.get("region")), instance=_opt_str(r.get("instance")),
                error=_opt_str(r.get("error"))))
        except (KeyError, TypeError, ValueError) as exc:
            raise LoadError(f"{path}: record {n} is not a request record ({exc!r}): {r}") from exc
    return out


def read_ledger(path: str | os.PathLike[str]) -> list[LedgerRecord]:
    """All write records in file order, rotated/compressed segments first (a torn last line is skipped)."""
    out: list[LedgerRecord] = []
    for n, r in enumerate(iter_records(path, "ledger"), 1):
        try:
            _check(r, path, n)
            out.append(LedgerRecord(
                id=str(r["id"]), service=str(r["service"]), t0=float(r["t0"]), t1=float(r["t1"]),
                outcome=cast(Outcome, r["outcome"]), status=_opt_int(r.get("status")),
                region=_opt_str(r.get("region"))))
        except (KeyError, TypeError, ValueError) as exc:
            raise LoadError(f"{path}: record {n} is not a ledger record ({exc!r}): {r}") from exc
    return out
