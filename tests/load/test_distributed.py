"""locust's distributed mode: a master and 2 workers on 127.0.0.1 against real app instances."""

from __future__ import annotations

import csv
import json
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from _pg import AppFactory, ThrowawayPg

from gameday.analysis import load_ledger
from gameday.analysis.rpo import check_writes
from gameday.errors import ConfigError
from gameday.load import LoadRunner
from gameday.load.runner import read_run_info
from gameday.util.jsonl import read_jsonl
from gameday.util.procs import pid_alive


def _csv_totals(path: Path) -> dict[str, int]:
    """locust's own request counts per name (the master's stats CSV, fed by every worker)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(fh) if row["Name"] != "Aggregated"}


def test_two_workers_one_timeline(start_app: AppFactory, pg: ThrowawayPg, tmp_path: Path) -> None:
    web = start_app("web", name="web", instance="i-web", region="eu-central-1")
    orders = start_app("orders", db=pg, name="orders", instance="i-ord")
    out = tmp_path / "load"
    # 3 schedules (web read, orders read, orders write) x 2 users each, spread over 2 workers
    lr = LoadRunner({"web": web, "orders": orders}, out, run_time_s=8, probe_rate=10, write_rate=5,
                    workers=2, users=6)
    with lr:
        pids = [lr.registry.procs[n].pid for n in [lr.proc_name, *lr._worker_names()]]
        info = read_run_info(lr.run_info_path)
        assert info.role == "master" and [w.worker_id for w in info.workers] == ["w1", "w2"]
        result = lr.wait()
    assert result.exit_code == 0 and not result.forced_kill
    assert not any(pid_alive(p) for p in pids)

    # each worker journaled to its own files, with its id in the name
    assert [p.name for p in lr.journal_files("requests")] == ["requests-w1.jsonl", "requests-w2.jsonl"]
    per_worker = {p.name: sum(1 for _ in read_jsonl(p)) for p in lr.journal_files("requests")}
    assert all(n > 0 for n in per_worker.values()), per_worker

    # run.json describes the whole run: the master and every worker (not the last writer)
    info = result.run_info()
    assert info.users == 6 and info.expected_workers == 2
    assert sorted(info.workers_drained) == sorted(str(w.client_id) for w in info.workers)
    assert not info.workers_missing
    for w in info.workers:
        assert w.write_id_prefix == f"{lr.run_id}-{w.worker_id}-"
        assert read_run_info(out / f"run-{w.worker_id}.json").worker_id == w.worker_id

    # the merged timeline holds every request exactly once, as locust's own (master) totals count them
    merged = result.requests()
    assert len(merged) == sum(per_worker.values())
    assert not [r for r in merged if r.error == "still in flight at stop"]
    counts = Counter(f"{r.service} {r.endpoint}" for r in merged)
    assert dict(counts) == _csv_totals(result.csv_stats_path)
    assert result.html_path.stat().st_size > 1000  # the master's report

    # -u honoured: 2 users per schedule, so about twice the single-user rate (10/s web reads for ~8 s)
    web_reads = counts["web GET /items"]
    assert 110 <= web_reads <= 170, web_reads

    # write ids are unique across workers and carry their worker's prefix
    ledger = result.ledger()
    ids = [w.id for w in ledger]
    assert ids and len(set(ids)) == len(ids)
    assert {i.split("-orders-")[0] for i in ids} == {f"{lr.run_id}-w1", f"{lr.run_id}-w2"}

    # the lost-write count of the merged ledger is what PostgreSQL holds
    acked = sorted(w.id for w in ledger if w.outcome == "ok")
    with urllib.request.urlopen(f"{orders}/records?ids={','.join(acked)}", timeout=10) as resp:
        present = set(json.loads(resp.read())["found"])
    loss = check_writes(load_ledger(result.ledger_path), present, fault_start=min(w.t0 for w in ledger))
    assert loss.acknowledged == len(acked) and loss.lost == len(set(acked) - present) == 0


def test_users_must_be_a_multiple_of_the_schedules(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="multiple"):
        LoadRunner({"web": "http://127.0.0.1:9", "edge": "http://127.0.0.1:9"}, tmp_path, run_time_s=5,
                   write_rate=0, users=3)
    with pytest.raises(ConfigError, match="multiple"):
        LoadRunner({"web": "http://127.0.0.1:9", "orders": "http://127.0.0.1:9"}, tmp_path, run_time_s=5, users=5)
    with pytest.raises(ConfigError, match="out of range"):
        LoadRunner({"web": "http://127.0.0.1:9"}, tmp_path, run_time_s=5, workers=-1)
