"""``gameday report``: turn a run's allure results into the HTML report (see gameday.allure_html)."""

from __future__ import annotations

import argparse
import time
import webbrowser
from pathlib import Path
from typing import Any

from gameday.allure_html import generate_report, serve_report
from gameday.drill.report import latest_run
from gameday.errors import ConfigError


def _default_results(reports_dir: Path) -> Path:
    run = latest_run(reports_dir)
    if run is None:
        raise ConfigError("no run with allure results found", file=str(reports_dir), field="--results",
                          hint="run a drill first (make drill / pytest -m drill), or pass --results DIR")
    if not any(run.allure_results.glob("*-result.json")):
        # The plugin always makes the folder (side files), but test results come only from --alluredir.
        raise ConfigError(f"the newest run ({run.run_id}) has no allure test results: its drills ran "
                          "without --alluredir (or wrote them to another folder)", file=str(run.allure_results),
                          field="--results",
                          hint="rerun the drills with pytest's --alluredir option, e.g. "
                               "'pytest -m drill --alluredir=reports/allure-results', then run "
                               "'gameday report --results reports/allure-results' (or pass the "
                               "folder you gave --alluredir to --results)")
    return run.allure_results


def cmd_report(args: argparse.Namespace) -> int:
    """Entry point of ``gameday report``."""
    results = Path(args.results) if args.results else _default_results(Path(args.reports_dir))
    out = Path(args.out) if args.out else results.parent / "allure-report"
    index = generate_report(results, out, name=args.name)
    print(f"allure report: {index}")
    print(f"  results: {results}")
    summary = results.parent / "summary.md"
    if summary.is_file():
        print(f"  summary: {summary}")
    if args.open:
        with serve_report(index.parent, port=args.port) as url:
            print(f"serving the report at {url} for up to {args.open_for:g} s (Ctrl-C stops)", flush=True)
            webbrowser.open(url)
            deadline = time.monotonic() + args.open_for
            try:
                while time.monotonic() < deadline:
                    time.sleep(0.5)
            except KeyboardInterrupt:
                pass
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``report`` to the gameday CLI (``subparsers`` from ``add_subparsers``); sets ``func``."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "report", help="build the allure HTML report of a drill run",
        description="Build the Allure 3 HTML report from a run's allure-results folder.")
    p.add_argument("--results", metavar="DIR",
                   help="allure results folder (default: newest <reports-dir>/<run>/allure-results)")
    p.add_argument("--out", metavar="DIR", help="report folder (default: <run>/allure-report)")
    p.add_argument("--reports-dir", default="reports/runs", metavar="DIR",
                   help="where run folders are (default: reports/runs)")
    p.add_argument("--name", default="gameday drills", help="report title")
    p.add_argument("--open", action="store_true", help="serve the report on 127.0.0.1 and open a browser")
    p.add_argument("--port", type=int, default=0, help="port for --open (default: a free one)")
    p.add_argument("--open-for", type=float, default=3600.0, metavar="S", help="stop serving after S seconds")
    p.set_defaults(func=cmd_report)
    return p
