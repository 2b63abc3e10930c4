"""``gameday report`` after drills ran without ``--alluredir``: a clear fix, a non-zero exit, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from gameday.cli import main
from gameday.drill.report import run_layout, write_categories, write_environment_properties


def test_report_without_alluredir_says_which_option_and_folder(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    # What the pytest plugin leaves behind when --alluredir was not given: side files, no results.
    layout = run_layout(tmp_path / "runs", "20260101-120000-1")
    write_categories(layout.allure_results)
    write_environment_properties(layout.allure_results, {"target": "sandbox"})
    rc = main(["report", "--reports-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" not in err
    assert "20260101-120000-1" in err and "without --alluredir" in err
    assert "--alluredir=reports/allure-results" in err
    assert "gameday report --results reports/allure-results" in err


def test_report_with_no_run_at_all_points_at_a_drill(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--reports-dir", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "no run with allure results found" in err and "--results" in err
