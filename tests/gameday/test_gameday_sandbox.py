"""``gameday run`` end to end on a real sandbox: a two-drill plan twice, then history, trends, comparison,
allure history; and a game day stopped by SIGTERM mid-fault rolls its drill back and exits HALTED.

Uses the worker's session sandbox (``gameday_sandbox``, like the other sandbox tests and the drills);
``gameday run`` resets it before each drill, this test resets it once more at the end.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gameday.gameday.engine import EXIT_CODES
from gameday.gameday.history.store import HistoryStore
from gameday.safety import undolog
from gameday.util.retry import wait_until

pytestmark = pytest.mark.sandbox

PLAN = """\
name: two
target: {kind: sandbox, name: test-sandbox}
timing: fast
scenarios:
  - name: instance-termination
    load: {warmup_s: 3, duration_s: 30, settle_s: 5}
  - name: service-failover
    load: {warmup_s: 3, duration_s: 45, settle_s: 8}
    slos: {rto_s: {orders: policy}}
policy:
  name: test policy
  rto_s: {"*": 30}
  rpo_s: {"*": 0}
"""
HALT_PLAN = """\
name: halt
target: {kind: sandbox}
scenarios:
  - name: service-failover
    load: {warmup_s: 3, duration_s: 60, settle_s: 5}
  - instance-termination
"""


def gameday(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gameday", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_plan_twice_history_trends_and_halt(gameday_sandbox: Any, tmp_path: Path, gameday_home: Path) -> None:
    from gameday.sandbox import client

    state = str(gameday_sandbox.state_dir)
    (tmp_path / "gamedays").mkdir()
    plan = tmp_path / "gamedays" / "two.yaml"
    plan.write_text(PLAN)
    reports = tmp_path / "reports"
    db = f"sqlite:///{tmp_path / 'history.db'}"
    env = {**os.environ, "GAMEDAY_HOME": str(gameday_home), "GAMEDAY_HISTORY_URL": db}
    allure = shutil.which("node") is not None and (Path(__file__).resolve().parents[2] / "node_modules" / "allure"
                                                   / "cli.js").is_file()
    try:
        for _ in range(2):
            proc = gameday("run", str(plan), "--sandbox-state", state, "--reports-dir", str(reports),
                           *([] if allure else ["--no-allure"]), env=env)
            # the drills ran and were judged: PASS, or INCONCLUSIVE on a host other work starves (2 cores),
            # or FAIL; never a harness ERROR or a HALT here
            assert proc.returncode in (0, 1, 6), proc.stdout[-3000:] + proc.stderr[-3000:]
            assert "Traceback" not in proc.stderr
            # not a terminal: plain progress lines, one per phase, with the drill's verdict
            assert "service-failover: fault: service-failover ..." in proc.stdout
            assert re.search(r"\[2/2\] service-failover: (PASS|FAIL|INCONCLUSIVE)", proc.stdout), proc.stdout[-2000:]
        folders = sorted(reports.glob("two-*"))
        assert len(folders) == 2
        docs = [json.loads((f / "summary.json").read_text()) for f in folders]

        with HistoryStore(db) as store:
            rows = store.runs(plan="two")
            assert [r.run_id for r in reversed(rows)] == [d["run_id"] for d in docs]
            for row, doc in zip(reversed(rows), docs, strict=True):
                assert row.verdict == doc["verdict"] and row.exit_code == EXIT_CODES[row.verdict] == doc["exit_code"]
                assert row.report_dir == str(reports / doc["run_id"])
                assert row.gameday_rev and row.terraform_rev
                assert [s.scenario for s in row.scenarios] == ["instance-termination", "service-failover"]
                for s, sdoc in zip(row.scenarios, doc["scenarios"], strict=True):
                    # every SLO verdict of the drill is in the history, with its budget and measured value
                    assert {v.name for v in s.slos} == {v["name"] for v in sdoc["slos"]} and len(s.slos) >= 12
                    assert all(v.expected is not None for v in s.slos)
                    metrics = {(m.service, m.metric) for m in s.measurements}
                    assert {("orders", "rto"), ("orders", "write_rto"), ("*", "rpo"), ("*", "lost_writes")} <= metrics
                    assert s.fault_start is not None and Path(s.run_dir or "").is_dir()
                sf = row.scenarios[1]
                orders = next(m for m in sf.measurements if (m.service, m.metric) == ("orders", "rto"))
                assert orders.budget == 30.0 and orders.policy == 30.0  # the plan's policy reference
            second = rows[0]
            assert second.comparisons and all(c.previous_run_id == docs[0]["run_id"] for c in second.comparisons)
            assert not rows[1].comparisons  # the first run had nothing to compare with

        md = (folders[1] / "summary.md").read_text()
        assert f"Previous run: {docs[0]['run_id']}" in md and "| service-failover | orders | write RTO |" in md
        html = (folders[1] / "summary.html").read_text()
        assert "Change since the last run" in html and "data:image/png;base64," in html
        for text in (md, re.sub(r"base64,[A-Za-z0-9+/=]+", "", html)):  # no raw epoch seconds a person reads
            assert not re.search(r"(?<![\d.])1[6-9]\d{8}(\.\d+)?(?![\d.])", text), re.findall(r"1[6-9]\d{8}", text)

        plot = tmp_path / "trends.png"
        proc = gameday("trends", "--plan", "two", "--scenario", "service-failover", "--metric", "write_rto",
                       "--plot", str(plot), env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr
        lines = [ln for ln in proc.stdout.splitlines() if "service-failover" in ln and "write RTO" in ln]
        assert [ln.split()[0] for ln in lines] == [d["run_id"] for d in docs]
        assert plot.is_file() and plot.stat().st_size > 5000
        proc = gameday("history", "--plan", "two", "--json", env=env, timeout=120)
        assert [r["run_id"] for r in json.loads(proc.stdout)] == [d["run_id"] for d in reversed(docs)]
        if allure:
            from gameday.gameday.allure_out import history_entries

            assert len(history_entries("two", "test-sandbox")) == 2  # allure's history file grew by one per run
            assert (folders[1] / "allure-report" / "index.html").is_file()

        # SIGTERM while the fault is injected: the experiment rolls back, no further drill, exit 5 (HALTED)
        halt = tmp_path / "gamedays" / "halt.yaml"
        halt.write_text(HALT_PLAN)
        p = subprocess.Popen([sys.executable, "-m", "gameday", "run", str(halt), "--sandbox-state", state,
                              "--reports-dir", str(reports), "--no-allure"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
        assert p.stdout is not None
        out: list[str] = []
        deadline = time.monotonic() + 300
        for line in p.stdout:
            out.append(line)
            if "fault: service-failover ..." in line or time.monotonic() > deadline:
                break
        # interrupt once the fault is really injected: its undo entry is written just before the
        # injection (on a busy host chaos can take seconds to load before that)
        wait_until("the fault's undo entry", lambda: bool(undolog.read(
            reports.glob("halt-*/drills/service-failover/undo.jsonl"))), timeout=120, interval=0.1)
        time.sleep(1.0)
        p.send_signal(signal.SIGTERM)
        rest, _ = p.communicate(timeout=300)
        text = "".join(out) + rest
        assert p.returncode == 5, text[-3000:]
        doc = json.loads(next(reports.glob("halt-*/summary.json")).read_text())
        assert doc["verdict"] == "HALTED" and ("SIGTERM" in doc["halt_reason"] or "interrupted" in doc["halt_reason"])
        assert [s["verdict"] for s in doc["scenarios"]] == ["HALTED", "HALTED"]
        assert "not started" in doc["scenarios"][1]["halted"]
        run_dir = Path(doc["scenarios"][0]["run_dir"])
        # the experiment was interrupted and still rolled back
        journal = json.loads((run_dir / "chaos-journal.json").read_text())
        assert journal["rollbacks"] and all(r["status"] == "succeeded" for r in journal["rollbacks"]), journal
        from gameday.drill.runner import steady_state

        steady_state(gameday_sandbox, timeout=60)  # every service back in the primary region
        with HistoryStore(db) as store:
            assert store.runs(plan="halt")[0].verdict == "HALTED"
    finally:
        client.admin(gameday_sandbox, "/reset", method="POST")
