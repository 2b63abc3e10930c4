"""Buffered, rotating journals lose nothing: every request locust counted is journaled, on the run
time's end and on SIGTERM, across rotated and compressed segments; every write is in the ledger."""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest
from _pg import AppFactory, ThrowawayPg

from gameday.load import LoadRunner
from gameday.util.journal import iter_records, segments
from gameday.util.retry import wait_until

ABANDONED = "still in flight at stop"


def _locust_counts(log: Path) -> Counter[str]:
    """Request counts from locust's final summary (printed after the last request completed; its
    ``_stats.csv`` is rewritten only once a second, so it can miss the last second)."""
    counts: Counter[str] = Counter()
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"^(?:GET|POST)\s+(\S.*?)\s{2,}(\d+)\s+\d+\(\d", line)
        if m:
            counts[m.group(1)] = int(m.group(2))  # the last summary printed wins
    return counts


@pytest.mark.parametrize("stop", ["run_time", "sigterm"])
def test_every_counted_request_is_journaled(stop: str, start_app: AppFactory, pg: ThrowawayPg,
                                            tmp_path: Path) -> None:
    web = start_app("web", name="web", instance="i-web", region="eu-south-1")
    orders = start_app("orders", db=pg, name="orders", instance="i-ord")
    out = tmp_path / "load"
    # ~0.1 MiB segments: a few seconds of this load rotates and compresses several times mid-run
    lr = LoadRunner({"web": web, "orders": orders}, out, run_time_s=6 if stop == "run_time" else 60,
                    probe_rate=150, write_rate=40, extra_env={"GAMEDAY_JOURNAL_MAX_MB": "0.1",
                                                              "GAMEDAY_JOURNAL_COMPRESSION": "gzip"})
    with lr:
        # buffered, yet visible to live tails within the flush interval
        wait_until("lines reach the journal while running",
                   lambda: lr.requests_path.exists() and lr.requests_path.stat().st_size > 0, timeout=15)
        if stop == "run_time":
            result = lr.wait()
        else:
            time.sleep(6)
            result = lr.stop()
    assert not result.forced_kill
    req_segments = segments(result.requests_path)
    assert len(req_segments) >= 3 and any(s.name.endswith(".gz") for s in req_segments)
    assert not list(out.glob("*.tmp")), "compression left unfinished"

    journal = list(iter_records(result.requests_path))
    ledger = list(iter_records(result.ledger_path))
    done = Counter(f"{r['service']} {r['endpoint']}" for r in journal if r["error"] != ABANDONED)
    everything = Counter(f"{r['service']} {r['endpoint']}" for r in journal)
    counted = _locust_counts(result.log_path)
    assert sum(counted.values()) > 500
    for name, n in counted.items():
        # locust counts a request when it completes; so does the journal (an abandoned one may
        # still complete after it was journaled as unknown, and then locust counts it too)
        assert done[name] <= n <= everything[name], (name, done[name], n, everything[name])
    assert set(everything) == set(counted)
    # every write attempt in the ledger, once; every acknowledged one is in PostgreSQL
    writes = [r for r in journal if r["kind"] == "write"]
    assert len(ledger) == len(writes) and len({w["id"] for w in ledger}) == len(ledger)
    held = {row[0] for row in pg.query("SELECT id FROM records")}
    acked = {w["id"] for w in ledger if w["outcome"] == "ok"}
    assert acked and acked <= held
