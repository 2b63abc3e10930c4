"""Lost writes and RPO with Jepsen set-checker semantics.

Every write attempt is in the ledger with the client's view of its outcome; after the drill the
harness reads back which ids the database actually holds (``present_ids``). Then:

* acknowledged: at least one attempt of the id ended ``ok`` (ack time = earliest ok ``t1``).
  Attempts of one id are merged with precedence ok > unknown > failed, so a retried write
  counts once.
* lost: acknowledged but absent — the only real data loss.
* recovered: outcome ``unknown`` (timeout/dropped) and present — the write did commit.
* unknown_absent: outcome ``unknown`` and absent — allowed (it may never have committed), never lost.
* failed_present: the client was told ``failed`` yet the row exists — not loss, but a lie to the
  client worth reporting.
* unexpected: present but never attempted — phantom data (Jepsen ``unexpected``).
* ``valid`` = no lost and no unexpected ids (Jepsen ``:valid?``).
* RPO: ``fault_start - ack time of the oldest lost write``, clamped at 0; 0 when nothing is lost.
  A write acknowledged *after* the fault and then lost (e.g. taken by a primary that was later
  demoted) still counts through its own ack time: if the oldest lost write was acked after the
  fault, RPO is 0 but ``lost_after_fault`` says so — the loss is real even then.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from gameday.analysis.models import Write, as_writes, jsonable

_RANK = {"failed": 0, "unknown": 1, "ok": 2}


@dataclass(frozen=True)
class DataLossResult:
    """What the database kept compared with what clients were told; id lists are capped."""

    fault_start: float
    attempted: int
    acknowledged: int
    failed: int
    unknown: int
    present: int
    lost: int
    lost_ids: list[str]
    lost_after_fault: int
    recovered: int
    unknown_absent: int
    failed_present: int
    failed_present_ids: list[str]
    unexpected: int
    unexpected_ids: list[str]
    rpo_s: float
    oldest_lost_ack_at: float | None
    newest_lost_ack_at: float | None
    valid: bool
    ids_truncated: bool
    max_ids: int
    lost_by_service: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(jsonable(self))


def check_writes(ledger: Iterable[Write | Mapping[str, Any]], present_ids: Iterable[str], fault_start: float,
                 *, max_ids: int = 50) -> DataLossResult:
    """Compare the write ledger with the ids read back from the database (see module doc)."""
    present = {str(p) for p in present_ids}
    merged: dict[str, Write] = {}
    ack_at: dict[str, float] = {}
    for w in as_writes(ledger):
        prev = merged.get(w.id)
        if prev is None or _RANK[w.outcome] > _RANK[prev.outcome]:
            merged[w.id] = w
        if w.outcome == "ok" and (w.id not in ack_at or w.t1 < ack_at[w.id]):
            ack_at[w.id] = w.t1
    outcomes = Counter(w.outcome for w in merged.values())
    lost = sorted((ack_at[i], i) for i in ack_at if i not in present)
    failed_present = sorted(i for i, w in merged.items() if w.outcome == "failed" and i in present)
    unexpected = sorted(p for p in present if p not in merged)
    n_recovered = sum(1 for i, w in merged.items() if w.outcome == "unknown" and i in present)
    n_unknown_absent = outcomes["unknown"] - n_recovered
    by_service = Counter(merged[i].service for _, i in lost)
    oldest = lost[0][0] if lost else None
    newest = lost[-1][0] if lost else None
    rpo = max(0.0, fault_start - oldest) if oldest is not None else 0.0
    truncated = len(lost) > max_ids or len(failed_present) > max_ids or len(unexpected) > max_ids
    return DataLossResult(
        fault_start=fault_start, attempted=len(merged), acknowledged=len(ack_at), failed=outcomes["failed"],
        unknown=outcomes["unknown"], present=len(present), lost=len(lost),
        lost_ids=[i for _, i in lost[:max_ids]], lost_after_fault=sum(1 for a, _ in lost if a > fault_start),
        recovered=n_recovered, unknown_absent=n_unknown_absent, failed_present=len(failed_present),
        failed_present_ids=failed_present[:max_ids], unexpected=len(unexpected),
        unexpected_ids=unexpected[:max_ids], rpo_s=rpo, oldest_lost_ack_at=oldest, newest_lost_ack_at=newest,
        valid=not lost and not unexpected, ids_truncated=truncated, max_ids=max_ids,
        lost_by_service=dict(sorted(by_service.items())))
