"""``gameday run | history | trends | schedule``: game days from the command line.

Exit codes of ``gameday run``: 0 PASS, 1 FAIL (an SLO breached), 2 bad plan or option,
4 ERROR (the harness or the target could not run a drill), 5 HALTED (SIGTERM, a guardrail or a
stop condition), 6 INCONCLUSIVE (the host was starved), 75 target busy (another game day holds it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from gameday import settings
from gameday.errors import ConfigError


def register(sub: Any) -> None:
    """Add the game-day subcommands to the gameday CLI."""
    r = sub.add_parser("run", help="run a game-day plan (gamedays/<name>.yaml) now",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("plan", type=Path, help="the plan file, e.g. gamedays/weekly.yaml")
    r.add_argument("--sandbox-state", type=Path, default=None, metavar="DIR",
                   help="use (or start) the sandbox in DIR instead of the plan's target.state_dir")
    r.add_argument("--reports-dir", type=Path, default=None, metavar="DIR", help="default: reports/runs")
    r.add_argument("--trigger", choices=["manual", "schedule"], default="manual", help=argparse.SUPPRESS)
    r.add_argument("--no-allure", action="store_true", help="do not generate the allure HTML report")
    r.add_argument("--plain", action="store_true", help="plain progress lines even on a terminal")
    r.add_argument("--check", action="store_true", help="only validate the plan and print what it would run")
    _history_arg(r)
    r.set_defaults(func=cmd_run)

    h = sub.add_parser("history", help="past game days: verdicts, scenarios, reports")
    _filters(h)
    h.add_argument("--limit", type=int, default=20)
    h.add_argument("--json", action="store_true")
    h.set_defaults(func=cmd_history)

    t = sub.add_parser("trends", help="RTO, write RTO, RPO, lost writes over the game days: table and plot")
    _filters(t)
    t.add_argument("--service", default=None)
    t.add_argument("--metric", choices=["rto", "write_rto", "rpo", "lost_writes"], default=None)
    t.add_argument("--last", type=int, default=20, help="the last N runs (default 20)")
    t.add_argument("--plot", type=Path, default=None, metavar="PNG",
                   help="where the plot goes (default: reports/trends/<plan>.png)")
    t.set_defaults(func=cmd_trends)

    s = sub.add_parser("schedule", help="run plans on their cron schedule, in the foreground (a service)")
    s.add_argument("plans", type=Path, nargs="+", help="plan files with a schedule")
    s.set_defaults(func=cmd_schedule)


def _history_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", default=None, metavar="URL",
                   help="history database (default: $GAMEDAY_HISTORY_URL, the plan's history.url, "
                        "else SQLite in the gameday home)")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plan", default=None, help="plan name")
    p.add_argument("--scenario", default=None)
    p.add_argument("--target", default=None, help="target name (the plan's target.name, default its kind)")
    _history_arg(p)


def history_url(arg: str | None, plan_url: str | None = None) -> str:
    from gameday.gameday.home import default_history_url
    from gameday.gameday.plan import resolve_env

    url = arg or settings.text("GAMEDAY_HISTORY_URL") or plan_url or default_history_url()
    return resolve_env(url, field_name="history.url")


def cmd_run(args: argparse.Namespace) -> int:
    import sys

    from gameday.gameday.engine import Engine
    from gameday.gameday.plan import load_plan

    plan = load_plan(args.plan)
    if args.check:
        print(f"plan {plan.name}: {plan.target_kind} {plan.target_name}, timing {plan.timing}, "
              f"routing {plan.routing_mode}")
        for s in plan.scenarios:
            load = s.load_for(plan.timing)
            print(f"  {s.name:<24} {s.fault:<9} load {load.duration_s:g} s")
        if plan.schedule:
            print(f"  schedule: '{plan.schedule.cron}' {plan.schedule.timezone} (missed: {plan.schedule.missed})")
        return 0
    url = history_url(args.history, plan.history_url)
    engine = Engine(plan, state_dir=args.sandbox_state, history_url=url, reports_dir=args.reports_dir,
                    trigger=args.trigger, tty=False if args.plain else None, generate_allure=not args.no_allure,
                    out=sys.stdout)
    return engine.run().exit_code


def cmd_history(args: argparse.Namespace) -> int:
    from gameday.gameday.history.store import HistoryStore
    from gameday.gameday.home import duration, human_time

    with HistoryStore(history_url(args.history)) as store:
        runs = store.runs(plan=args.plan, scenario=args.scenario, target=args.target, limit=args.limit)
    if args.json:
        print(json.dumps([{"run_id": r.run_id, "plan": r.plan, "target": r.target, "timing": r.timing,
                           "started_at": r.started_at.isoformat(), "verdict": r.verdict, "exit_code": r.exit_code,
                           "report": r.summary_md, "gameday_rev": r.gameday_rev, "terraform_rev": r.terraform_rev,
                           "scenarios": [{"scenario": s.scenario, "verdict": s.verdict,
                                          "slos": [{"name": v.name, "expected": v.expected, "measured": v.measured,
                                                    "passed": v.passed} for v in s.slos],
                                          "measurements": [{"service": m.service, "metric": m.metric,
                                                            "value": m.value, "budget": m.budget, "policy": m.policy}
                                                           for m in s.measurements]}
                                         for s in r.scenarios],
                           "regressions": [c.reason for c in r.comparisons if c.regression]} for r in runs],
                         indent=2))
        return 0
    print(f"{'RUN':<34} {'STARTED':<24} {'TARGET':<10} {'TIMING':<6} {'VERDICT':<13} {'TOOK':<12} "
          f"{'REGR':<4} SCENARIOS")
    for r in runs:
        took = (r.finished_at - r.started_at).total_seconds() if r.finished_at else None
        regress = sum(1 for c in r.comparisons if c.regression)
        scen = ", ".join(f"{s.scenario} {s.verdict}" for s in r.scenarios)
        print(f"{r.run_id:<34} {human_time(r.started_at):<24} {r.target:<10} {r.timing:<6} {r.verdict:<13} "
              f"{duration(took):<12} {regress:<4} {scen}")
        print(f"{'':<34} report: {r.summary_md}")
    if not runs:
        print("(no game day recorded yet: gameday run gamedays/weekly.yaml)")
    return 0


def cmd_trends(args: argparse.Namespace) -> int:
    from gameday.gameday.history.store import HistoryStore
    from gameday.gameday.trends import plot_trends, trend_table

    with HistoryStore(history_url(args.history)) as store:
        points = store.series(plan=args.plan, target=args.target, scenario=args.scenario, service=args.service,
                              metric=args.metric, last=args.last)
    print(trend_table(points))
    plot = args.plot or Path("reports") / "trends" / f"{args.plan or 'all'}.png"
    plot_trends(points, plot, f"game day trends: {args.plan or 'all plans'}")
    print(f"plot: {plot}")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from gameday.gameday.home import gameday_home
    from gameday.gameday.plan import load_plan
    from gameday.gameday.scheduler import Scheduler

    plans = [load_plan(p) for p in args.plans]
    names = [p.name for p in plans]
    if len(set(names)) != len(names):
        raise ConfigError("the same plan is given twice", field="plans", hint="list each plan once")
    return Scheduler(plans, home=gameday_home()).run()
