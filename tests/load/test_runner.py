"""LoadRunner + locustfile against real app instances (web without DB, orders on a real PostgreSQL)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from _pg import AppFactory, ThrowawayPg

from gameday.errors import ConfigError, LoadError
from gameday.load import LoadRunner, RequestRecord, WriteRecord, read_ledger, read_requests
from gameday.util.jsonl import read_jsonl
from gameday.util.procs import ProcessRegistry, pid_alive
from gameday.util.retry import wait_until

REQUEST_FIELDS = {"t0", "t1", "service", "kind", "endpoint", "outcome", "status", "region", "instance",
                  "error"}
LEDGER_FIELDS = {"id", "service", "t0", "t1", "outcome", "status", "region"}


def _locust_pid(lr: LoadRunner) -> int:
    return lr.registry.procs[lr.proc_name].pid


def _assert_nothing_left(lr: LoadRunner, pid: int) -> None:
    assert not pid_alive(pid), "locust still running"
    assert lr.proc_name not in lr.registry.procs
    assert not list(lr.registry.dir.glob("*.json")), "pid record left behind"


def test_records_appear_while_running_and_match_the_database(
        start_app: AppFactory, pg: ThrowawayPg, tmp_path: Path) -> None:
    web = start_app("web", name="web", instance="i-web", region="eu-central-1")
    orders = start_app("orders", db=pg, name="orders", instance="i-ord")
    out = tmp_path / "load"
    lr = LoadRunner({"web": web, "orders": orders}, out, run_time_s=5, probe_rate=10, write_rate=5)
    with lr:
        pid = _locust_pid(lr)
        # Journals are written as requests complete, not at the end.
        wait_until("reads of both services and ok writes journaled while running", lambda: (
            {r["service"] for r in read_jsonl(out / "requests.jsonl")} == {"web", "orders"}
            and any(r["outcome"] == "ok" for r in read_jsonl(out / "ledger.jsonl"))), timeout=15)
        assert lr.running
        result = lr.wait()
    assert result.exit_code == 0 and not result.forced_kill
    _assert_nothing_left(lr, pid)

    raw = list(read_jsonl(result.requests_path))
    assert raw and all(set(r) == REQUEST_FIELDS for r in raw)
    assert all(set(r) == LEDGER_FIELDS for r in read_jsonl(result.ledger_path))
    reqs = result.requests()
    assert all(isinstance(r, RequestRecord) and r.t1 >= r.t0 for r in reqs)
    web_reads = [r for r in reqs if r.service == "web"]
    assert all(r.outcome == "ok" and r.status == 200 and r.kind == "read" and r.endpoint == "GET /items"
               and r.region == "eu-central-1" and r.instance == "i-web" for r in web_reads)
    # Paced: 10/s for 5 s (locust start-up eats a little); not a closed loop running flat out.
    assert 35 <= len(web_reads) <= 55, len(web_reads)
    gaps = sorted(b.t0 - a.t0 for a, b in itertools.pairwise(web_reads))
    assert 0.07 < gaps[len(gaps) // 2] < 0.13  # median spacing ~ 1/rate

    ledger = result.ledger()
    assert all(isinstance(w, WriteRecord) for w in ledger)
    assert {w.service for w in ledger} == {"orders"} and len({w.id for w in ledger}) == len(ledger)
    writes = [r for r in reqs if r.kind == "write"]
    assert len(writes) == len(ledger) >= 15
    ok_ids = [w.id for w in ledger if w.outcome == "ok"]
    assert ok_ids and all(w.status == 201 and w.region == "eu-south-1" for w in ledger if w.outcome == "ok")
    assert all(i.startswith(lr.run_id + "-orders-") for i in ok_ids)
    with urllib.request.urlopen(f"{orders}/records?ids={','.join(ok_ids)}", timeout=10) as resp:
        assert json.loads(resp.read())["found"] == sorted(ok_ids)  # every acknowledged write is there

    assert result.csv_stats_path.is_file() and "orders POST /records" in result.csv_stats_path.read_text()
    assert result.html_path.is_file() and result.html_path.stat().st_size > 1000
    assert json.loads(result.run_info_path.read_text())["run_id"] == lr.run_id


def test_killed_and_frozen_targets_give_failed_and_unknown_then_stop_writes_reports(
        start_app: AppFactory, registry: ProcessRegistry, tmp_path: Path) -> None:
    web = start_app("web", name="web")
    edge = start_app("web", name="edge", instance="i-edge")
    out = tmp_path / "load"
    lr = LoadRunner({"web": web, "edge": edge}, out, run_time_s=60, probe_rate=10,
                    connect_timeout=0.5, read_timeout=1.0, stop_timeout=10)
    with lr:
        pid = _locust_pid(lr)
        wait_until("both targets probed", lambda: len(list(read_jsonl(out / "requests.jsonl"))) >= 10, 15)
        registry.kill("web")  # process gone: connection refused
        registry.signal("edge", signal.SIGSTOP)  # alive but silent: requests time out
        t_fault = time.time()
        try:
            def seen() -> bool:
                recs = read_requests(out / "requests.jsonl")
                return (any(r.service == "web" and r.outcome == "failed" for r in recs)
                        and any(r.service == "edge" and r.outcome == "unknown" for r in recs))

            wait_until("failed + unknown journaled", seen, timeout=10)
            t_stop = time.monotonic()
            result = lr.stop()
            stop_took = time.monotonic() - t_stop
        finally:
            registry.signal("edge", signal.SIGCONT)
    _assert_nothing_left(lr, pid)
    assert result.exit_code == 0 and not result.forced_kill, result.stderr_tail
    assert stop_took < 6, stop_took

    recs = result.requests()
    after = [r for r in recs if r.t0 > t_fault + 0.1]
    web_after = [r for r in after if r.service == "web"]
    assert web_after and all(r.outcome == "failed" and r.status is None and r.region is None
                             and r.error == "connection refused" for r in web_after)
    edge_unknown = [r for r in after if r.service == "edge" and r.outcome == "unknown"]
    assert edge_unknown and all(r.error in ("read timeout", "still in flight at stop") for r in edge_unknown)
    # unknown = no answer: the read timeout bounds it, no stall.
    assert all(r.t1 - r.t0 < 1.0 + 0.5 for r in edge_unknown if r.error == "read timeout")
    assert result.csv_stats_path.is_file() and result.html_path.is_file()


def test_db_outage_shows_as_failed_writes_in_the_ledger(
        start_app: AppFactory, pg_private: ThrowawayPg, tmp_path: Path) -> None:
    orders = start_app("orders", db=pg_private, name="orders")
    out = tmp_path / "load"
    with LoadRunner({"orders": orders}, out, run_time_s=60, probe_rate=5, write_rate=10) as lr:
        wait_until("first ok writes", lambda: sum(
            r["outcome"] == "ok" for r in read_jsonl(out / "ledger.jsonl")) >= 5, timeout=15)
        pg_private.crash()
        wait_until("503 writes", lambda: any(
            r["status"] == 503 for r in read_jsonl(out / "ledger.jsonl")), timeout=10)
        result = lr.stop()
    failed = [w for w in result.ledger() if w.status == 503]
    assert failed and all(w.outcome == "failed" and w.region == "eu-south-1" for w in failed)
    assert all(w.t1 - w.t0 < 1.5 for w in failed)  # the app answers 503 fast: no unknowns from stalls
    assert any("database unavailable" in (r.error or "") for r in result.requests() if r.status == 503)


def test_bad_env_is_a_load_error_with_locusts_own_text(tmp_path: Path) -> None:
    lr = LoadRunner({"web": "http://127.0.0.1:9"}, tmp_path / "a", run_time_s=5,
                    extra_env={"GAMEDAY_PROBE_RATE": "fast"})
    with pytest.raises(LoadError, match=r"GAMEDAY_PROBE_RATE='fast' is not a number"):
        lr.start()
    assert lr.proc_name not in lr.registry.procs

    broken = tmp_path / "broken_locustfile.py"
    broken.write_text("from locust import HttpUser\ndef broken(:\n")
    lr = LoadRunner({"web": "http://127.0.0.1:9"}, tmp_path / "b", run_time_s=5, locustfile=broken)
    with pytest.raises(LoadError, match="SyntaxError"):
        lr.start()

    with pytest.raises(ConfigError, match="run time"):
        LoadRunner({"web": "http://127.0.0.1:9"}, tmp_path / "c", run_time_s=0)
    with pytest.raises(ConfigError, match="http"):
        LoadRunner({"web": "127.0.0.1:9"}, tmp_path / "c", run_time_s=1)


def test_context_manager_stops_locust_when_the_body_raises(start_app: AppFactory, tmp_path: Path) -> None:
    web = start_app("web")
    lr = LoadRunner({"web": web}, tmp_path / "load", run_time_s=120, probe_rate=5)
    with pytest.raises(RuntimeError, match="drill blew up"), lr:
        pid = _locust_pid(lr)
        raise RuntimeError("drill blew up")
    _assert_nothing_left(lr, pid)
    assert lr.result is not None and lr.result.html_path.is_file()


def test_readers_type_records_and_skip_a_torn_last_line(tmp_path: Path) -> None:
    p = tmp_path / "requests.jsonl"
    rec = {"t0": 1.0, "t1": 1.5, "service": "web", "kind": "read", "endpoint": "GET /items",
           "outcome": "unknown", "status": None, "region": None, "instance": None, "error": "read timeout"}
    p.write_text(json.dumps(rec) + "\n" + '{"t0": 2.0, "t1"')
    assert read_requests(p) == [RequestRecord(**rec)]
    assert read_requests(p)[0].latency_s == 0.5
    led = tmp_path / "ledger.jsonl"
    led.write_text(json.dumps({"id": "x", "service": "orders", "t0": 1, "t1": 2, "outcome": "ok",
                               "status": 201, "region": "r"}) + "\n")
    assert read_ledger(led) == [WriteRecord("x", "orders", 1.0, 2.0, "ok", 201, "r")]
    led.write_text(json.dumps({"id": "x", "outcome": "maybe"}) + "\n")
    with pytest.raises(LoadError, match="outcome 'maybe'"):
        read_ledger(led)
    assert os.fspath(p)  # paths accepted as str or Path alike
    assert read_requests(str(tmp_path / "missing.jsonl")) == []
