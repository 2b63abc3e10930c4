"""After a game day: history row, comparison with earlier runs, summary.md/html/json, allure report.

A history that cannot be written does not change the game day's verdict (the drills ran and
their reports are on disk); the summary says the run is missing from the history.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from gameday.errors import GamedayError
from gameday.gameday.history.store import HistoryStore, RunRecord, ScenarioRecord, safe_url


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(float(ts), tz=UTC)


def to_record(gd: Any) -> RunRecord:
    plan = gd.plan
    scenarios = []
    for s in gd.scenarios:
        r = s.result
        scenarios.append(ScenarioRecord(
            position=s.position, scenario=s.scenario.name, fault=s.scenario.fault, verdict=s.verdict,
            started_at=_dt(s.started_at), duration_s=s.duration_s,
            fault_start=_dt(r.fault_start) if r is not None else None,
            fault_end=_dt(r.fault_end) if r is not None else None,
            chaos_status=r.chaos_status if r is not None else None,
            error=s.error, inconclusive=r.inconclusive_message if r is not None else None,
            run_dir=str(s.run_dir), slos=[v.to_dict() for v in (r.verdicts if r is not None else [])],
            measurements=list(s.measurements)))
    return RunRecord(
        run_id=gd.run_id, plan=plan.name, plan_path=str(plan.path), target=gd.target_name,
        target_kind=plan.target_kind, timing=plan.timing, routing_mode=plan.routing_mode, trigger=gd.trigger,
        started_at=_dt(gd.started_at) or datetime.now(UTC), finished_at=_dt(gd.finished_at), verdict=gd.verdict,
        exit_code=gd.exit_code, halt_reason=gd.halt_reason, gameday_rev=gd.gameday_rev,
        terraform_rev=gd.terraform_rev, var_files=list(gd.var_files), report_dir=str(gd.root),
        summary_md=str(gd.root / "summary.md"), summary_html=str(gd.root / "summary.html"), scenarios=scenarios)


def record_and_report(gd: Any, history_url: str, *, out: Callable[[str], None],
                      generate_allure: bool = True) -> None:
    from gameday.gameday import allure_out
    from gameday.gameday.summary import write_all
    from gameday.gameday.trends import compare_run

    history_note: str | None = None
    try:
        with HistoryStore(history_url) as store:
            pk = store.record(to_record(gd))
            gd.comparisons = compare_run(store, pk, gd.run_id, gd.plan.name, gd.target_name, gd.plan.compare)
            gd.previous_run_id = next((c.previous_run_id for c in gd.comparisons if c.previous_run_id), None)
    except GamedayError as exc:
        history_note = f"not recorded in the history ({safe_url(history_url)}): {str(exc).splitlines()[0]}"
        out(f"WARNING: {history_note}")
    for c in gd.comparisons:
        if c.regression:
            out(f"REGRESSION: {c.describe()}: {c.reason}")
    write_all(gd, history_note=history_note)
    results = gd.root / "allure-results"
    try:
        allure_out.write_results(gd, results)
    except (OSError, ValueError) as exc:
        out(f"WARNING: allure results not written: {exc}")
    if generate_allure:
        try:
            index = allure_out.generate(gd, results, gd.root / "allure-report")
            out(f"allure report (with history): {index}")
        except GamedayError as exc:
            out(f"allure report not generated: {str(exc).splitlines()[0]}")
