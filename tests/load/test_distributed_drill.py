"""A drill (instance termination, the cheapest scenario) with locust as a master and 2 workers.

Against a sandbox (restored from a snapshot when one matches); one sandbox, torn down in ``finally``.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from gameday.analysis import load_ledger, load_requests
from gameday.drill.runner import run_drill
from gameday.drill.scenario import load_scenario
from gameday.load.runner import read_run_info
from gameday.provision.topology import Topology
from gameday.pytest_plugin import skip_if_inconclusive
from gameday.sandbox import client
from gameday.util.jsonl import read_jsonl

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "instance-termination.yaml"


def _csv_totals(path: Path) -> dict[str, int]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {row["Name"]: int(row["Request Count"]) for row in csv.DictReader(fh) if row["Name"] != "Aggregated"}


@pytest.mark.drill
def test_drill_with_two_locust_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEDAY_LOAD_WORKERS", "2")  # what --load-workers 2 sets
    state = tmp_path / "sandbox"
    try:
        ep = client.up_with_retry(state, timing="fast", timeout=900)
        password = json.loads((state / "secrets.json").read_text())["db_password"]
        topology = Topology.load(state / "topology.json")
        result = run_drill(load_scenario(SCENARIO), ep, topology, tmp_path / "drill", timing="fast",
                           password=password)
        skip_if_inconclusive(result)
        load = tmp_path / "drill" / "load"
        info = read_run_info(load / "run.json")
        assert info.role == "master" and [w.worker_id for w in info.workers] == ["w1", "w2"]
        assert not info.workers_missing

        # the merged timeline holds every request of every worker exactly once, as locust counts them
        per_worker = [list(read_jsonl(load / f"requests-{w}.jsonl")) for w in ("w1", "w2")]
        assert all(per_worker)
        merged = load_requests(load)  # the analysis' own merge of the directory's journals
        assert result.results.analysis is not None
        assert len(merged) == sum(len(p) for p in per_worker) == result.results.analysis.requests
        assert sorted((r.t0, r.t1, r.service, r.endpoint) for r in merged) == sorted(
            (r["t0"], r["t1"], r["service"], r["endpoint"]) for p in per_worker for r in p)
        counts = Counter(f"{r.service} {r.endpoint}" for r in merged)
        assert dict(counts) == _csv_totals(load / "locust_stats.csv")

        # write ids unique across workers, each with its worker's prefix
        ledger = [{"id": w.id, "outcome": w.outcome} for w in load_ledger(load)]
        ids = [w["id"] for w in ledger]
        assert ids and len(set(ids)) == len(ids)
        run_id = info.run_id
        for w in ("w1", "w2"):  # one user per schedule: the write user runs on one of the two workers
            assert all(r["id"].startswith(f"{run_id}-{w}-orders-") for r in read_jsonl(load / f"ledger-{w}.jsonl"))
        assert sum(1 for w in ("w1", "w2") for _ in read_jsonl(load / f"ledger-{w}.jsonl")) == len(ids)

        # the drill's lost-write count is what PostgreSQL (the writer after the drill) holds
        acked = {w["id"] for w in ledger if w["outcome"] == "ok"}
        host, port = ep.db_writer[ep.primary_region].split(":")
        with psycopg.connect(host=host, port=int(port), dbname=topology.database.db_name,
                             user=topology.database.username, password=password, connect_timeout=10) as conn:
            held = {row[0] for row in conn.execute("SELECT id FROM records WHERE id = ANY(%s)", (sorted(ids),))}
        loss = result.results.analysis.data_loss
        assert loss is not None
        assert loss.acknowledged == len(acked)
        assert loss.lost == len(acked - held)
    finally:
        client.down(state)
