"""Rotated, compressed, per-worker journals: the streaming analysis equals the in-memory one."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from gameday.analysis import load_ledger, load_requests, summarise
from gameday.analysis.models import Write
from gameday.analysis.rpo import check_writes
from gameday.analysis.stream import (
    check_writes_columns,
    load_ledger_columns,
    load_request_columns,
    summarise_journals,
)
from gameday.analysis.synthetic import Outage, probe_timeline, writes_from
from gameday.errors import ConfigError
from gameday.util.journal import JournalTail, JournalWriter, journal_files, segments

START = 1_700_000_000.0
FAULT = START + 120.0


def _timeline() -> tuple[list, list, set[str]]:
    reqs = probe_timeline(start=START, duration_s=300.0, jitter=0.3, seed=7, read_rate=20.0, write_rate=10.0,
                          outages=[Outage(FAULT + 1.0, FAULT + 40.0, outcome="mixed"),
                                   Outage(FAULT + 60.0, FAULT + 63.0, service="catalog", outcome="unknown")],
                          region_of={"web": [(FAULT + 40.0, "eu-central-1")],
                                     "orders": [(FAULT + 41.0, "eu-central-1"), (FAULT + 140.0, "eu-south-1")]},
                          noise=[("catalog", FAULT + 100.0)])
    ledger = writes_from(reqs)
    present = {w.id for w in ledger if w.outcome == "ok"}
    acked = sorted(present)
    present -= set(acked[:9])  # lost
    present |= {w.id for w in ledger if w.outcome == "unknown"}  # recovered
    present |= {"phantom-1"}  # unexpected
    return reqs, ledger, present


def _write(path: Path, records: list, **kw: object) -> None:
    with JournalWriter(path, **kw) as w:  # type: ignore[arg-type]
        for r in records:
            w.write(r.to_dict())


def test_rotated_compressed_journals_give_the_in_memory_result(tmp_path: Path) -> None:
    reqs, ledger, present = _timeline()
    d = tmp_path / "load"
    _write(d / "requests.jsonl", reqs, max_lines=8_000, compression="gzip", buffer_bytes=4096)
    _write(d / "ledger.jsonl", ledger, max_bytes=400_000, compression="none")
    segs = segments(d / "requests.jsonl")
    assert len(segs) >= 3 and all(s.name.endswith(".gz") for s in segs[:-1])
    assert not list(d.glob("*.tmp"))
    assert len(segments(d / "ledger.jsonl")) >= 3
    expected = summarise(reqs, ledger, present, FAULT, FAULT + 40.0, "eu-south-1")
    assert expected.data_loss is not None
    assert expected.data_loss.lost == 9 and expected.data_loss.unexpected == 1
    assert expected.rto["web"]["read"].status == "recovered"
    # the in-memory path over the files, and the streaming path, both equal the original
    assert load_requests(d / "requests.jsonl") == reqs
    assert load_ledger(d / "ledger.jsonl") == ledger
    assert summarise_journals(d / "requests.jsonl", d / "ledger.jsonl", present, FAULT, FAULT + 40.0,
                              "eu-south-1") == expected
    assert summarise_journals(d, d, sorted(present), FAULT, FAULT + 40.0, "eu-south-1") == expected


def test_per_worker_journals_merge_into_one_timeline(tmp_path: Path) -> None:
    reqs, ledger, present = _timeline()
    for w in (1, 2, 3):  # round-robin split, as locust workers would share the users
        _write(tmp_path / f"worker-{w}" / f"requests-w{w}.jsonl", reqs[w - 1::3], max_lines=5000)
        _write(tmp_path / f"ledger-w{w}.jsonl", ledger[w - 1::3])
    files = journal_files(tmp_path, "requests")
    assert len(files) > 3
    got = summarise_journals(tmp_path, tmp_path, present, FAULT, FAULT + 40.0, "eu-south-1")
    mem = summarise(load_requests(tmp_path), load_ledger(tmp_path), present, FAULT, FAULT + 40.0, "eu-south-1")
    assert got == mem
    assert got.requests == len(reqs) and got.data_loss is not None and got.data_loss.lost == 9
    # a merged timeline is one timeline: the analysis equals the single-journal one
    assert got == summarise(reqs, ledger, present, FAULT, FAULT + 40.0, "eu-south-1")


def test_interrupted_run_torn_line_and_half_compressed_segment(tmp_path: Path) -> None:
    reqs, _, _ = _timeline()
    d = tmp_path
    _write(d / "requests.jsonl", reqs[:12_000], max_lines=5_000, compression="gzip")
    seg = segments(d / "requests.jsonl")[0]
    # a crash mid-compression: the plain segment is back, a partial .tmp beside it
    plain = seg.with_name(seg.name[: -len(".gz")])
    plain.write_bytes(gzip.decompress(seg.read_bytes()))
    seg.with_name(seg.name + ".tmp").write_bytes(seg.read_bytes()[:100])
    seg.unlink()
    with open(d / "requests.jsonl", "ab") as fh:
        fh.write(b'{"t0": 1700000001.5, "t1": 17')  # torn by the crash
    # the next run appends to the same journal: its first line must survive the torn one
    _write(d / "requests.jsonl", reqs[12_000:], max_lines=5_000, compression="gzip")
    assert load_requests(d / "requests.jsonl") == reqs
    assert summarise_journals(d, d, None, FAULT, None, "eu-south-1") == summarise(
        reqs, [], None, FAULT, None, "eu-south-1")


def test_malformed_record_raises_the_same_error(tmp_path: Path) -> None:
    reqs, _, _ = _timeline()
    _write(tmp_path / "requests.jsonl", reqs[:500])
    with open(tmp_path / "requests.jsonl", "a", encoding="utf-8") as fh:
        fh.write('{"t0": 1.0, "t1": 2.0, "service": "web", "kind": "read", "outcome": "maybe"}\n')
    with pytest.raises(ConfigError, match="unknown outcome"):
        load_requests(tmp_path / "requests.jsonl")
    with pytest.raises(ConfigError, match="unknown outcome"):
        load_request_columns(tmp_path / "requests.jsonl")


@pytest.mark.parametrize("partition_ids", [400_000, 700, 97])
def test_lost_write_check_in_hash_partitions_equals_the_set_semantics(tmp_path: Path, partition_ids: int) -> None:
    """Retries (one id attempted several times, by two services), duplicates in the database's answer,
    lost, recovered, failed-present and phantom ids: every partitioning gives check_writes' answer."""
    _, ledger, present = _timeline()
    retries = [Write(id=w.id, service="web", t0=w.t0 + 1, t1=w.t1 + 1,
                     outcome={"ok": "failed", "failed": "ok", "unknown": "ok"}[w.outcome])
               for w in ledger[::13]]
    led = ledger + retries
    failed = [w.id for w in ledger if w.outcome == "failed"][:40]
    answer = [*sorted(present), *sorted(present)[:50], *failed, "phantom-2", ""]
    _write(tmp_path / "ledger.jsonl", led)
    lc = load_ledger_columns(tmp_path)
    for max_ids in (5, 50, 100_000):
        expected = check_writes(led, answer, FAULT, max_ids=max_ids)
        assert expected.lost and expected.failed_present and expected.recovered and expected.unexpected == 3
        assert check_writes_columns(lc, answer, FAULT, max_ids=max_ids, partition_ids=partition_ids) == expected


def test_live_tail_follows_rotation_without_losing_or_repeating_a_line(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    tail = JournalTail(path)
    assert tail.lines() == []  # not there yet
    seen: list[bytes] = []
    with JournalWriter(path, max_lines=37, compression="gzip", buffer_bytes=1) as w:
        for i in range(1000):
            w.write({"n": i})
            if i % 150 == 0:  # several rotations between two reads
                seen.extend(tail.lines())
            if i % 97 == 0:
                for j in range(5):
                    w.write({"n": f"{i}.{j}"})
    seen.extend(tail.lines())
    tail.close()
    expected = [b'{"n":%d}' % i for i in range(1000)]
    got = [x for x in seen if b"." not in x]
    assert got == expected and len(seen) == 1000 + 5 * 11


def test_stop_condition_guard_sees_failures_after_rotations(tmp_path: Path) -> None:
    """The live guard reads the journal through its rotations (it once read a byte offset of one file)."""
    import time as _time

    from gameday.safety.guard import Guard, StopCondition, Trip

    path = tmp_path / "requests.jsonl"
    trips: list[Trip] = []
    guard = Guard([StopCondition(service="web", window_s=1.0, max_error_ratio=0.2)], path, trips.append).start()
    try:
        with JournalWriter(path, max_lines=50, compression="gzip", buffer_bytes=1) as w:
            t = _time.time()
            for i in range(400):  # 8 segments of healthy traffic, then failures only
                w.write({"t0": t, "t1": t + 0.01, "service": "web", "outcome": "ok" if i < 300 else "failed"})
                if i == 299:
                    assert not trips
            for _ in range(100):
                if trips:
                    break
                _time.sleep(0.05)
    finally:
        guard.stop()
    assert len(segments(path)) >= 8
    assert trips and "web" in trips[0].figure and guard.error is None


def test_odd_lines_inside_compressed_segments_take_the_record_parser(tmp_path: Path) -> None:
    """Garbage and blank lines in a compressed segment are skipped as in memory; a malformed record
    there raises the same ConfigError."""
    reqs, _, _ = _timeline()
    good = tmp_path / "good"
    with JournalWriter(good / "requests.jsonl", max_lines=3000, compression="gzip") as w:
        for i, r in enumerate(reqs[:9000]):
            w.write(r.to_dict())
            if i == 4000:
                w.write_line(b"not json at all\n")
                w.write_line(b"\n")
    assert any(s.name.endswith(".gz") for s in segments(good / "requests.jsonl"))
    assert load_requests(good) == reqs[:9000]
    assert summarise_journals(good, good, None, FAULT, None, "eu-south-1") == summarise(
        reqs[:9000], [], None, FAULT, None, "eu-south-1")
    bad = tmp_path / "bad"
    with JournalWriter(bad / "requests.jsonl", max_lines=3000, compression="gzip") as w:
        for i, r in enumerate(reqs[:9000]):
            w.write({**r.to_dict(), "kind": "delete"} if i == 4000 else r.to_dict())
    with pytest.raises(ConfigError, match="unknown kind"):
        load_requests(bad)
    with pytest.raises(ConfigError, match="unknown kind"):
        load_request_columns(bad)
