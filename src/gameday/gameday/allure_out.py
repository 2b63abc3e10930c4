"""Allure results for a game day, and the allure report with each drill's history across runs.

``gameday run`` does not go through pytest, so it writes the allure results itself (with
allure-python-commons, the library allure-pytest writes through): one test result per drill,
a stable ``historyId`` per plan x target x scenario, the SLO verdicts as steps, the timeline and
summary as attachments, the same categories as the pytest drills.

Allure 3 keeps history in a JSONL file named by ``historyPath`` in its config: every
``allure generate`` reads it (the report's history and trend for each test) and appends this
run. That file lives in the gameday home per plan and target, so run N's report shows runs 1..N.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from allure_commons.logger import AllureFileLogger
from allure_commons.model2 import Attachment, Label, Parameter, Status, StatusDetails, TestResult, TestStepResult

from gameday.drill.report import write_categories, write_environment_properties
from gameday.gameday.home import gameday_home

STATUS = {"PASS": Status.PASSED, "FAIL": Status.FAILED, "ERROR": Status.BROKEN, "HALTED": Status.BROKEN,
          "INCONCLUSIVE": Status.SKIPPED}


def history_id(plan: str, target: str, scenario: str) -> str:
    return hashlib.md5(f"gameday:{plan}:{target}:{scenario}".encode()).hexdigest()


def history_path(plan: str, target: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{plan}-{target}")
    return gameday_home() / "allure-history" / f"{safe}.jsonl"


def write_results(gd: Any, results_dir: Path) -> int:
    """One allure result per drill; returns how many were written."""
    from gameday.drill.slo import breach_message  # starts with 'SLO breach:': allure's SLO category

    logger = AllureFileLogger(str(results_dir))
    write_categories(results_dir)
    write_environment_properties(results_dir, {"plan": gd.plan.name, "target": f"{gd.plan.target_kind} "
                                               f"{gd.target_name}", "timing": gd.plan.timing,
                                               "routing_mode": gd.plan.routing_mode, "gameday_rev": gd.gameday_rev,
                                               "terraform_rev": gd.terraform_rev})
    n = 0
    for s in gd.scenarios:
        sc = s.scenario
        start = int((s.started_at or gd.started_at) * 1000)
        stop = start + int((s.duration_s or 0) * 1000)
        message: str | None = None
        if s.verdict == "FAIL" and s.result is not None:
            message = breach_message(s.result.verdicts)
        elif s.verdict == "INCONCLUSIVE" and s.result is not None:
            message = s.result.inconclusive_message
        elif s.halted:
            message = f"HALTED: {s.halted}"
        elif s.error:
            message = s.error
        steps = []
        for v in (s.result.verdicts if s.result is not None else []):
            steps.append(TestStepResult(name=f"{'PASS' if v.passed else 'FAIL'} {v.name}: {v.message}",
                                        status=Status.PASSED if v.passed else Status.FAILED, start=start, stop=stop))
        attachments = []
        for path, name, mime in ((s.run_dir / "timeline.png", "timeline plot", "image/png"),
                                 (s.run_dir / "results.json", "measurements", "application/json"),
                                 (gd.root / "summary.md", "game-day summary", "text/markdown")):
            if path.is_file():
                fname = f"{uuid.uuid4()}-attachment{path.suffix}"
                logger.report_attached_file(str(path), fname)
                attachments.append(Attachment(name=name, source=fname, type=mime))
        labels = [Label("suite", f"game day {gd.plan.name}"), Label("feature", f"{sc.fault} fault"),
                  Label("story", sc.name), Label("scenario", sc.name), Label("framework", "gameday"),
                  *[Label("tag", t) for t in sc.tags]]
        result = TestResult(
            name=sc.name, fullName=f"gamedays.{gd.plan.name}.{sc.name}", uuid=str(uuid.uuid4()),
            historyId=history_id(gd.plan.name, gd.target_name, sc.name),
            testCaseId=history_id(gd.plan.name, gd.target_name, sc.name),
            status=STATUS.get(s.verdict, Status.BROKEN), stage="finished", start=start, stop=stop,
            description=sc.description, labels=labels, steps=steps, attachments=attachments,
            parameters=[Parameter(name="target", value=f"{gd.plan.target_kind} {gd.target_name}"),
                        Parameter(name="timing", value=gd.plan.timing)],
            statusDetails=StatusDetails(message=message) if message else None)
        logger.report_result(result)
        n += 1
    return n


def generate(gd: Any, results_dir: Path, out_dir: Path) -> Path:
    """``allure generate`` with the plan's history file; returns the report's index.html."""
    from gameday.allure_html import categories_for, find_allure_cli, run_allure, strip_analytics
    from gameday.errors import CommandFailed

    cli = find_allure_cli()
    hist = history_path(gd.plan.name, gd.target_name)
    hist.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    with tempfile.TemporaryDirectory(prefix="gameday-allurerc-") as tmp:
        config = Path(tmp) / "allurerc.json"
        config.write_text(json.dumps({"name": f"game day {gd.plan.name}", "historyPath": str(hist),
                                      "categories": {"rules": categories_for(results_dir)}}), encoding="utf-8")
        run_allure([*cli, "generate", str(results_dir), "-o", str(out_dir), "--config", str(config)], timeout=300,
             cwd=tmp)
    index = out_dir / "index.html"
    if not index.is_file():
        raise CommandFailed([*cli, "generate"], 0, "", summary=f"allure finished but wrote no {index}")
    strip_analytics(out_dir)
    return index


def history_entries(plan: str, target: str) -> list[dict[str, Any]]:
    """The allure history data points kept for a plan x target (one per generated report)."""
    path = history_path(plan, target)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
