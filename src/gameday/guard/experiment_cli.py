"""``gameday experiment run NAME`` and ``gameday scenario validate FILE...``.

``experiment run`` is ``chaos run`` with the target's environment filled in (what
``gameday sandbox env`` exports) and the drill runner's rule: a fault action that failed is an
error and a non-zero exit, never "completed". Against AWS the guardrails run first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from gameday import resources
from gameday.errors import ConfigError, DrillError


def register(sub: Any) -> None:
    p = sub.add_parser("experiment", help="run or preview one Chaos Toolkit experiment against a target")
    ss = p.add_subparsers(dest="experiment_cmd", required=True)
    run = ss.add_parser("run", help="chaos run with the target's environment; a failed fault is an error")
    run.add_argument("name", help="an experiment of experiments/ (e.g. instance-termination) or a .json path")
    run.add_argument("--target", choices=("sandbox", "aws"), default="sandbox")
    run.add_argument("--state-dir", default=None, help="sandbox: the state dir of 'gameday sandbox up'")
    run.add_argument("--aws-topology", default=None, metavar="FILE",
                     help="aws: the topology JSON written by 'gameday provision up --target aws'")
    run.add_argument("--config", default=None, metavar="FILE",
                     help="gameday config (allow-lists, scope tag, blast radius); default $GAMEDAY_CONFIG "
                          "or ~/.gameday/config.yaml")
    run.add_argument("--dry-run", action="store_true", help="print what each action would touch; change nothing")
    run.add_argument("--yes", action="store_true", help="confirm a destructive run without the typed account id")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="an experiment configuration value (e.g. gameday_timeout_s=60)")
    run.add_argument("--timeout", type=float, default=900.0, help="seconds allowed for chaos run")
    run.add_argument("--out", default=None, metavar="DIR", help="where journal and logs go "
                                                                "(default reports/experiments/<time>-<name>)")
    run.set_defaults(func=cmd_experiment_run)
    sc = sub.add_parser("scenario", help="check scenario files")
    sss = sc.add_subparsers(dest="scenario_cmd", required=True)
    val = sss.add_parser("validate", help="validate scenario YAML files (schema, SLOs, experiment references)")
    val.add_argument("files", nargs="+", metavar="FILE")
    val.set_defaults(func=cmd_scenario_validate)


def cmd_scenario_validate(args: argparse.Namespace) -> int:
    from gameday.drill.scenario import load_scenario

    for f in args.files:
        sc = load_scenario(f)
        print(f"{f}: ok ({sc.name}: experiment {sc.experiment}, fault {sc.fault})")
    return 0


def experiment_path(name: str) -> Path:
    from gameday.drill.runner import experiments_dir

    if name.endswith(".json") or os.sep in name:
        return Path(name)
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(f"{name!r} is not an experiment name", field="NAME",
                          hint="use a file name of experiments/ without .json, e.g. instance-termination")
    folder = experiments_dir()
    path = folder / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in folder.glob("*.json"))
        raise ConfigError(f"no experiment named {name!r}", file=str(folder), field="NAME",
                          hint=f"use one of: {', '.join(known) or '(none)'}")
    return path


def _extra(items: list[str]) -> dict[str, Any]:
    from gameday.chaos.config import CONFIG_ENV

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in CONFIG_ENV:
            raise ConfigError(f"--set {item!r} is not KEY=VALUE with a known key", field="--set",
                              hint=f"keys: {', '.join(sorted(CONFIG_ENV))}")
        out[key] = value
    return out


def target_env(args: argparse.Namespace, extra: dict[str, Any]) -> dict[str, str]:
    """The environment of ``chaos run``: the sandbox's (as ``gameday sandbox env``) or AWS's."""
    from gameday.chaos.config import experiment_env
    from gameday.provision.topology import Topology
    from gameday.target import Endpoints

    if args.target == "sandbox":
        from gameday.drill.runner import chaos_env
        from gameday.sandbox import client

        state = Path(args.state_dir) if args.state_dir else client.default_state_dir()
        if client.daemon_pid(state) is None or not (state / "endpoints.json").exists():
            raise ConfigError("no sandbox is running", file=str(state), field="--state-dir",
                              hint="start one with 'gameday sandbox up' (or pass the --state-dir it used)")
        ep = Endpoints.load(state / "endpoints.json")
        topo = Topology.load(state / "topology.json")
        try:
            password = str(json.loads((state / "secrets.json").read_text())["db_password"])
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError("the sandbox's secrets file is missing or unreadable", file=str(state / "secrets.json"),
                              hint="restart the sandbox: gameday sandbox down && gameday sandbox up") from exc
        return chaos_env(ep, topo, password, extra)
    if not args.aws_topology:
        raise ConfigError("--target aws needs the topology of the provisioned stack", field="--aws-topology",
                          hint="run 'gameday provision up --target aws' and pass the file it saved")
    topo = Topology.load(args.aws_topology)
    ep = Endpoints.for_aws(topo)
    env = dict(os.environ)  # the user's AWS credential chain, as is
    env.update(ep.aws_env())
    env.update(experiment_env(ep, topo, extra))
    return env


def cmd_experiment_run(args: argparse.Namespace) -> int:
    from gameday.drill.runner import check_injected, experiments_dir, fault_window, run_experiment
    from gameday.guard.hooks import guard_experiment
    from gameday.guard.plan import format_plan, load_experiment

    if args.timeout <= 0:
        raise ConfigError(f"--timeout {args.timeout:g} must be positive", field="--timeout", hint="e.g. --timeout 600")
    path = experiment_path(args.name)
    load_experiment(path)  # a malformed file is refused before anything else
    extra = _extra(args.set)
    env = target_env(args, extra)
    plan = guard_experiment(path, env, target=args.target, yes=args.yes, config_path=args.config,
                            dry_run=args.dry_run)
    if args.dry_run:
        assert plan is not None
        print(format_plan(plan, f"{path.stem} on {args.target}"))
        return 0
    out = Path(args.out) if args.out else (resources.checkout_root() or Path.cwd()) / "reports" / "experiments" / \
        f"{time.strftime('%Y%m%dT%H%M%S')}-{path.stem}"
    out.mkdir(parents=True, exist_ok=True)
    folder = experiments_dir()
    if path.resolve().parent != folder.resolve():
        raise ConfigError("only experiments of the experiments folder can be run (a path is for --dry-run)",
                          file=str(path), field="NAME", hint=f"copy it to {folder} "
                                                             "or set GAMEDAY_EXPERIMENTS_DIR")
    journal = run_experiment(path.stem, out, env, timeout=args.timeout)
    status = journal.get("status")
    try:
        fault_window(journal)
        check_injected(journal)
    except DrillError as exc:
        print(f"gameday: error: {exc} (journal {out / 'chaos-journal.json'}; chaos said {status!r})", file=sys.stderr)
        return 1
    print(f"experiment {path.stem}: {status}, deviated={journal.get('deviated')}; journal "
          f"{out / 'chaos-journal.json'}")
    return 0 if status == "completed" and not journal.get("deviated") else 1
