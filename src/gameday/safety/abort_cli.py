"""``gameday abort``: the kill switch. Undo every open fault of gameday on a target, from anywhere.

Works without the harness: it reads the target's undo folder (a sandbox's ``<state>/undo``,
AWS's under the gameday home), ends the drill processes the logs name (a harness killed with
``kill -9`` leaves its chaos run and locust behind), replays every open entry newest first, stops
any FIS experiment still running with gameday's tag, and on a sandbox resets it as the last step.
Exit 0 only when the target is back in steady state.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError
from gameday.safety import undolog
from gameday.safety.replay import Target, check_steady, replay, sweep_fis
from gameday.util.procs import kill_recorded, pid_alive


def register(sub: Any) -> None:
    p = sub.add_parser("abort", help="kill switch: undo every running gameday fault on a target (works when "
                                     "the harness is gone)")
    p.add_argument("--target", choices=["sandbox", "aws"], default="sandbox")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="sandbox state dir (default: ~/.gameday/sandboxes/default)")
    p.add_argument("--region", action="append", default=[], metavar="REGION",
                   help="AWS: the regions to sweep for FIS experiments (repeatable; default: those in the undo log)")
    p.set_defaults(func=abort)


def _harness_dirs(paths: list[Path]) -> list[tuple[int, list[str]]]:
    out = []
    for p in paths:
        try:
            lines = p.read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for raw in lines:
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict) and rec.get("op") == "harness":
                out.append((int(rec.get("pid", 0)), list(rec.get("pids_dirs") or [])))
    return out


def _end_drill_processes(paths: list[Path]) -> list[str]:
    """Kill the chaos runs / locust of drills whose harness is gone (a live harness cleans up itself)."""
    done = []
    for pid, dirs in _harness_dirs(paths):
        if pid and pid_alive(pid) and pid != os.getpid():
            continue
        for d in dirs:
            n = kill_recorded(d)
            if n:
                done.append(f"ended {n} leftover process group(s) of {d}")
    return done


def abort(args: Any) -> int:
    if args.target == "sandbox":
        from gameday.sandbox import client

        state = Path(args.state_dir) if args.state_dir else client.default_state_dir()
        if client.daemon_pid(state) is None or not (state / "endpoints.json").exists():
            raise ConfigError("no sandbox is running", file=str(state), field="--state-dir",
                              hint="pass the --state-dir the sandbox was started with (gameday sandbox up)")
        target = Target.sandbox(state)
        folders = [undolog.sandbox_undo_dir(state)]
        if target.endpoints.aws_endpoint_url:  # plain 'chaos run' against this sandbox
            from urllib.parse import urlparse

            from gameday.gameday.home import gameday_home

            port = urlparse(target.endpoints.aws_endpoint_url).port
            folders.append(gameday_home() / undolog.UNDO_SUBDIR / f"sandbox-{port}")
    else:
        folders = [undolog.aws_undo_dir()]
        target = Target("aws", ("", ""), {}, None)
    paths = [f for d in folders for f in undolog.files_in(d)]
    lines: list[str] = _end_drill_processes(paths)
    entries = undolog.open_entries(paths)
    if args.target == "aws":
        regions = list(args.region) or sorted({str(e.region) for e in entries if e.region})
        if not regions:
            regions = [os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"]
        target.regions = (regions[0], regions[1] if len(regions) > 1 else regions[0])
    failed = 0
    for u in replay(entries, target, "gameday abort"):
        lines.append(f"{'undid' if u.ok else 'FAILED'}: {u.entry.describe()}: {u.message}")
        failed += 0 if u.ok else 1
    for exp in sweep_fis(target):
        lines.append(f"stopped FIS experiment {exp}")
    if args.target == "sandbox":
        from gameday.sandbox import client

        client.admin(target.endpoints, "/reset", method="POST")
        lines.append("sandbox reset: regions thawed, inter-region link healed, declared dials, database "
                     "re-seeded if it was not in its steady roles")
        problems = check_steady(target)
    else:
        problems = [] if target.endpoints is None else check_steady(target)
        from gameday.safety.replay import running_fis

        problems += [f"FIS experiment still running: {x}" for x in running_fis(target)]
    if not lines:
        lines.append("nothing to undo: no open undo-log entry and no gameday FIS experiment running")
    for line in lines:
        print(line)
    if problems or failed:
        for p in problems:
            print(f"NOT steady: {p}", file=sys.stderr)
        return 1
    print(f"{args.target}: back in steady state")
    return 0
