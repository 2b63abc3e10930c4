"""The Multi-AZ pair's link: a lagging standby loses acknowledged writes at a crash only if asynchronous.

This is what makes the ``async-standby`` sandbox variant a real regression: with the same
delayed link, a synchronous standby has every acknowledged commit (the commit waited for it),
while an asynchronous one misses what the link still held when the primary's host died.
Both sides run here, so the difference cannot come from anything but ``synchronous``.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from gameday.sandbox.events import read_events
from gameday.util.retry import wait_until

P = "eu-south-1"
STANDBY_DELAY_MS = 300


@pytest.mark.parametrize("synchronous", [True, False], ids=["sync", "async"])
def test_crash_with_lagging_standby_loses_acked_writes_only_when_async(
        synchronous: bool, tmp_path: Path, pgkit: SimpleNamespace) -> None:
    pg, registry, events_path = pgkit.make_cluster(tmp_path, synchronous=synchronous, failover_detect_s=0.3,
                                                   standby_delay_ms=STANDBY_DELAY_MS)
    try:
        pg.start()
        loops = [pgkit.WriteLoop(lambda: pg.connect(pg.writer_port(P)), f"az{i}", interval_s=0.002)
                 for i in range(4)]
        for w in loops:
            w.__enter__()
        try:
            for w in loops:
                w.wait_acks(5, timeout=20)
            time.sleep(1.0)             # a steady stream of commits, some of them held by the link
            old = pg.primary()
            pg.crash_primary()
            wait_until("automatic failover", lambda: bool(pg.failovers), timeout=20)
        finally:
            for w in loops:
                w.stop()
        new = pg.primary()
        assert new != old
        acked = [i for w in loops for i in w.acked]
        lost = set(acked) - pg.count_ids(acked, pg.node_port(new))
        held = pg.proxies["az"].stats.discarded_chunks
        if synchronous:
            assert len(acked) > 20, "too few acknowledged writes to judge"
            assert not lost, f"synchronous standby lost {len(lost)} of {len(acked)} acknowledged writes"
        else:
            assert len(acked) > 200, "too few acknowledged writes to judge"
            assert lost, f"async standby behind a {STANDBY_DELAY_MS} ms link lost nothing of {len(acked)} acks"
            assert held >= 1, "the crash should have discarded WAL the link still held"
        crashed = read_events(events_path, "db_crashed")
        assert crashed and crashed[-1]["node"] == old
        print(f"\n{'sync' if synchronous else 'async'} standby, {STANDBY_DELAY_MS} ms link: "
              f"{len(lost)} of {len(acked)} acked writes lost; {held} WAL chunks discarded at the crash")
    finally:
        pg.stop()
        registry.kill_all()
