"""Every scenario in this folder as a drill: ``pytest -m drill`` (``--scenario NAME`` for one).

A drill fails with an ``SLO breach:`` message that says what was expected and what was
measured; a harness or infrastructure failure is an error, not a breach. A drill whose host was
starved during the fault is INCONCLUSIVE: skipped with the lateness figure (pytest: not red;
allure: "Infrastructure" category; summary: INCONCLUSIVE), never retried and never a pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gameday.drill.scenario import Scenario, load_all

SCENARIOS = load_all(Path(__file__).parent)


@pytest.mark.drill
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_drill(scenario: Scenario, gameday_target: Any, gameday_run: Any) -> None:
    from gameday.drill import report
    from gameday.drill.runner import drill_scenario
    from gameday.drill.slo import assert_slos

    # Label first: a skipped drill must not show the Scenario object's repr as its allure parameter.
    report.label_scenario(scenario, target=gameday_target.kind, timing=gameday_target.timing)
    if not scenario.runs_on(gameday_target.kind):
        pytest.skip(f"{scenario.name} runs only on {', '.join(scenario.targets)}")
    if gameday_target.dry_run:
        print(gameday_target.preview(scenario))
        pytest.skip(f"dry run: {scenario.name} previewed, nothing changed")
    run_dir = gameday_run.root / "drills" / scenario.name
    result = drill_scenario(scenario, gameday_target, run_dir, phase=report.phase,
                            on_done=lambda o: gameday_run.record(scenario, o.result, o.error, o.duration_s,
                                                                 gameday_target))
    secrets = (gameday_target.password,) if gameday_target.password else ()
    report.attach_verdicts(result.verdicts, secrets=secrets)
    report.attach_file(run_dir / "timeline.png", "timeline plot")
    report.attach_file(run_dir / "chaos-journal.json", "chaos journal")
    report.attach_file(run_dir / "load" / "locust.html", "locust report")
    report.attach_json(gameday_target.topology.to_dict(redacted=True), "topology", secrets=secrets)
    report.attach_results(result.results, secrets=secrets)
    if result.halted is not None:  # a stop condition tripped: the system broke a guard
        report.attach_results(result.results, "stop condition", secrets=secrets)
        pytest.fail(result.halted_message or "HALTED", pytrace=False)
    if result.inconclusive:
        pytest.skip(result.inconclusive_message or "INCONCLUSIVE")
    assert_slos(result.verdicts)
