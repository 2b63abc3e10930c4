"""Lost writes with Jepsen set semantics on generated ledgers with a chosen absent subset."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gameday.analysis import Write, check_writes

F = 5_000.0
PROFILE = settings.get_profile("analysis")

write_spec = st.tuples(st.sampled_from(["ok", "failed", "unknown"]), st.floats(-60.0, 30.0), st.booleans())


@settings(PROFILE)
@given(specs=st.lists(write_spec, max_size=200), n_unexpected=st.integers(0, 5))
def test_exactly_the_absent_acknowledged_writes_are_lost(specs: list[tuple[str, float, bool]],
                                                         n_unexpected: int) -> None:
    ledger = [Write(id=f"w{i}", service="orders", t0=F + dt - 0.01, t1=F + dt, outcome=o)
              for i, (o, dt, _) in enumerate(specs)]
    present = {w.id for w, (_, _, keep) in zip(ledger, specs, strict=True) if keep}
    present |= {f"ghost{i}" for i in range(n_unexpected)}
    r = check_writes(ledger, present, F, max_ids=10_000)

    lost = [w for w, (_, _, keep) in zip(ledger, specs, strict=True) if w.outcome == "ok" and not keep]
    assert sorted(r.lost_ids) == sorted(w.id for w in lost) and r.lost == len(lost)
    assert not set(r.lost_ids) & {w.id for w in ledger if w.outcome == "unknown"}  # unknown never lost
    n_unknown = sum(1 for w in ledger if w.outcome == "unknown")
    n_unknown_present = sum(1 for w in ledger if w.outcome == "unknown" and w.id in present)
    assert (r.recovered, r.unknown_absent) == (n_unknown_present, n_unknown - n_unknown_present)
    assert r.failed_present == sum(1 for w in ledger if w.outcome == "failed" and w.id in present)
    assert r.unexpected == n_unexpected
    oldest = min((w.t1 for w in lost), default=None)
    assert r.rpo_s == (max(0.0, F - oldest) if oldest is not None else 0.0)
    assert r.lost_after_fault == sum(1 for w in lost if w.t1 > F)
    assert r.valid == (not lost and not n_unexpected)
    json.dumps(r.to_dict(), allow_nan=False)


def test_no_loss_is_valid_with_rpo_zero() -> None:
    ledger = [Write(id=str(i), service="orders", t0=F - i, t1=F - i + 0.01, outcome="ok") for i in range(10)]
    r = check_writes(ledger, {w.id for w in ledger}, F)
    assert (r.valid, r.lost, r.rpo_s, r.acknowledged) == (True, 0, 0.0, 10)


def test_rpo_from_oldest_lost_and_clamped_for_post_fault_acks() -> None:
    ledger = [Write(id="old", service="orders", t0=F - 3.5, t1=F - 3.0, outcome="ok"),
              Write(id="new", service="orders", t0=F - 1.5, t1=F - 1.0, outcome="ok"),
              Write(id="after", service="web", t0=F + 1.0, t1=F + 2.0, outcome="ok")]
    r = check_writes(ledger, set(), F)
    assert r.rpo_s == pytest.approx(3.0) and r.lost_ids == ["old", "new", "after"]
    assert r.lost_by_service == {"orders": 2, "web": 1} and r.lost_after_fault == 1
    only_after = check_writes(ledger, {"old", "new"}, F)
    assert only_after.rpo_s == 0.0 and only_after.lost == 1 and not only_after.valid


def test_retried_ids_merge_with_ok_winning() -> None:
    ledger = [Write(id="a", service="orders", t0=F - 2, t1=F - 1.9, outcome="failed"),
              Write(id="a", service="orders", t0=F - 1, t1=F - 0.9, outcome="ok"),
              Write(id="a", service="orders", t0=F - 0.5, t1=F - 0.4, outcome="ok"),
              Write(id="b", service="orders", t0=F - 1, t1=F + 4, outcome="unknown"),
              Write(id="b", service="orders", t0=F + 5, t1=F + 5.1, outcome="failed")]
    r = check_writes(ledger, {"b"}, F)
    assert (r.attempted, r.acknowledged, r.lost, r.recovered, r.failed_present) == (2, 1, 1, 1, 0)
    assert r.rpo_s == pytest.approx(0.9)  # earliest ack of "a"


def test_failed_but_present_and_unexpected_are_reported() -> None:
    ledger = [Write(id="f", service="orders", t0=F, t1=F + 0.1, outcome="failed", status=500)]
    r = check_writes([w.to_dict() for w in ledger], ["f", "x"], F)
    assert (r.failed_present_ids, r.unexpected_ids, r.lost, r.valid) == (["f"], ["x"], 0, False)


def test_id_lists_are_capped_but_counts_are_full() -> None:
    ledger = [Write(id=f"{i:04d}", service="orders", t0=F - 100 + i, t1=F - 99 + i, outcome="ok")
              for i in range(500)]
    r = check_writes(ledger, set(), F, max_ids=20)
    assert r.lost == 500 and len(r.lost_ids) == 20 and r.ids_truncated
    assert r.lost_ids[0] == "0000"  # oldest first


def test_empty_inputs() -> None:
    r = check_writes([], set(), F)
    assert (r.attempted, r.lost, r.rpo_s, r.valid, r.oldest_lost_ack_at) == (0, 0, 0.0, True, None)
