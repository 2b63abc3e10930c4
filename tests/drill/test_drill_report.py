"""Run folder files: summary.md/json, allure categories and environment, never a password."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from gameday.drill.report import (
    CATEGORY_HARNESS,
    CATEGORY_SLO,
    ScenarioResult,
    latest_run,
    new_run_id,
    overall_verdict,
    run_layout,
    write_categories,
    write_environment_properties,
    write_summary,
)
from gameday.drill.slo import SloVerdict
from gameday.util.redact import REDACTED, Secret

PASSWORD = "s3cr3t-Pa55word"


def verdicts(ok: bool) -> list[SloVerdict]:
    rto = SloVerdict("rto.orders.read", 5.0, 3.2 if ok else 7.4, ok,
                     f"orders read RTO {'3.2 s <=' if ok else '7.4 s >'} 5.0 s allowed")
    lost = SloVerdict("lost_writes", 0, 0, True, "lost acknowledged writes: 0 <= 0 allowed")
    return [rto, lost]


def test_run_layout_and_latest_run(tmp_path: Path) -> None:
    old = run_layout(tmp_path, "20250101-000000-1")
    assert old.allure_results.is_dir()
    assert sorted(p.name for p in old.root.iterdir()) == ["allure-results"]  # drills make their own folders
    assert old.summary_md == tmp_path / "20250101-000000-1" / "summary.md"
    assert old.run_id == "20250101-000000-1"
    new = run_layout(tmp_path)
    assert new.run_id.endswith(f"-{os.getpid()}") and len(new.run_id.split("-")[0]) == 8
    os.utime(old.root, (time.time() - 100, time.time() - 100))
    latest = latest_run(tmp_path)
    assert latest is not None and latest.root == new.root
    assert latest_run(tmp_path / "nothing") is None
    assert new_run_id(0).startswith("1970")


def test_summary_files(tmp_path: Path) -> None:
    results = [
        ScenarioResult("instance-termination", "instance", verdicts(True), target="sandbox", timing="fast",
                       measurements={"max RTO": "3.2 s", "db_password": PASSWORD}),
        ScenarioResult("region-outage", "region", verdicts(False), target="sandbox", timing="fast"),
        ScenarioResult("database-crash", "database", (), error=f"DrillError: steady state not reached\n"
                       f"dsn=postgres://app:{PASSWORD}@127.0.0.1/x"),
    ]
    md_path, json_path = write_summary(tmp_path / "run-1", results,
                                       meta={"target": "sandbox", "timing": "fast",
                                             "database_password": Secret(PASSWORD)},
                                       secrets=(PASSWORD,))
    md = md_path.read_text()
    doc = json.loads(json_path.read_text())
    assert PASSWORD not in md and PASSWORD not in json_path.read_text()
    assert md.startswith("# gameday run run-1: ERROR\n")
    assert "| Scenario | Fault | Verdict | Key measurements |" in md
    assert "| instance-termination | instance | PASS | max RTO: 3.2 s; db_password: ***REDACTED*** |" in md
    assert "| region-outage | region | **FAIL** | orders read RTO 7.4 s > 5.0 s allowed |" in md
    assert "| database-crash | database | **ERROR** | DrillError: steady state not reached |" in md
    assert "## region-outage (region): FAIL" in md
    assert "| **FAIL** | rto.orders.read | 5.0 | 7.4 | orders read RTO 7.4 s > 5.0 s allowed |" in md
    assert "Harness/infrastructure error (not an SLO verdict):" in md and REDACTED in md
    assert doc["verdict"] == "ERROR" and doc["target"] == "sandbox" and doc["database_password"] == REDACTED
    assert [s["verdict"] for s in doc["scenarios"]] == ["PASS", "FAIL", "ERROR"]
    # verdict fields survive redaction (a key-based redactor would mask "passed")
    assert doc["scenarios"][1]["slos"][0] == {
        "name": "rto.orders.read", "expected": 5.0, "measured": 7.4, "passed": False,
        "message": "orders read RTO 7.4 s > 5.0 s allowed"}
    assert overall_verdict(results[:2]) == "FAIL" and overall_verdict(results[:1]) == "PASS"
    assert overall_verdict([]) == "ERROR"


def test_categories_separate_slo_breaches_from_harness_errors(tmp_path: Path) -> None:
    import re

    cats = json.loads(write_categories(tmp_path).read_text())
    assert [c["name"] for c in cats][:2] == [CATEGORY_SLO, CATEGORY_HARNESS]
    slo = cats[0]
    assert slo["matchedStatuses"] == ["failed"]
    message = "AssertionError: SLO breach: 1 of 3 SLOs failed\n- orders read RTO 7.4 s > 5.0 s allowed"
    assert re.fullmatch(slo["messageRegex"], message)  # allure 2: whole-message match
    assert re.search(slo["messageRegex"], message)     # allure 3: search
    assert not re.fullmatch(slo["messageRegex"], "AssertionError: assert 1 == 2")
    assert cats[1]["matchedStatuses"] == ["broken"]


def test_environment_properties_are_redacted_and_escaped(tmp_path: Path) -> None:
    path = write_environment_properties(tmp_path, {
        "target": "sandbox", "primary region": "eu-south-1", "database_password": PASSWORD,
        "db_dsn": f"postgres://app:{PASSWORD}@127.0.0.1:5432/gameday", "note": "a=b\nc",
        "regions": {"primary": "eu-south-1"},
    }, secrets=(PASSWORD,))
    text = path.read_text()
    assert PASSWORD not in text
    lines = text.splitlines()
    assert "database_password=***REDACTED***" in lines
    assert "db_dsn=postgres://app:***REDACTED***@127.0.0.1:5432/gameday" in lines
    assert "primary\\ region=eu-south-1" in lines and "note=a=b\\nc" in lines
    assert 'regions={"primary": "eu-south-1"}' in lines
