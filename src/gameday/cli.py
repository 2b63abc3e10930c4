"""``gameday`` command line: provision, sandbox, drill, report.

Every ``GamedayError`` becomes a clear message and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gameday.errors import GamedayError

Registrar = Callable[[Any], None]


def _sandbox_register(sub: Any) -> None:
    p = sub.add_parser("sandbox", help="the local two-region sandbox (no AWS account needed)")
    ss = p.add_subparsers(dest="sandbox_cmd", required=True)
    up = ss.add_parser("up", help="apply the Terraform stack to the local control plane and start the data plane")
    up.add_argument("--timing", choices=["fast", "aws"], default="fast")
    up.add_argument("--variant", action="append", default=[],
                    help="deliberately broken variant: async-standby, no-router-health, ignore-replica")
    up.add_argument("--link-delay-ms", type=float, default=20.0, help="one-way inter-region replication delay")
    up.add_argument("--routing-mode", choices=["global_accelerator", "route53"], default="global_accelerator",
                    help="route between regions by Global Accelerator (default) or Route 53 failover records")
    up.add_argument("--var-file", action="append", default=[], metavar="FILE",
                    help="terraform .tfvars file applied to the sandbox stack (repeatable, in order; e.g. "
                         "provision/terraform/examples/single-az.tfvars)")
    up.add_argument("--var", action="append", default=[], metavar="NAME=VALUE",
                    help="one terraform variable (repeatable; wins over --var-file)")
    up.add_argument("--cold", action="store_true",
                    help="apply the Terraform even if a snapshot of the same stack exists (and replace it)")
    up.set_defaults(func=_sandbox_up)
    snaps = ss.add_parser("snapshots", help="saved control-plane snapshots (what a warm 'sandbox up' restores)")
    snaps.add_argument("--prune", action="store_true", help="delete them all")
    snaps.set_defaults(func=_sandbox_snapshots)
    for name, fn, text in (("down", _sandbox_down, "stop everything the sandbox started"),
                           ("status", _sandbox_status, "regions, services, instances, health, routing, database"),
                           ("events", _sandbox_events, "the ground-truth event log"),
                           ("env", _sandbox_env, "export lines for 'chaos run': eval \"$(gameday sandbox env)\"")):
        q = ss.add_parser(name, help=text)
        if name == "status":
            q.add_argument("--json", action="store_true")
        if name == "events":
            q.add_argument("--kind", default=None)
        if name == "env":
            q.add_argument("--with-secrets", action="store_true",
                           help="also export GAMEDAY_DB_PASSWORD (the experiments' database checks need it)")
        q.set_defaults(func=fn)
    for q in (up, *[ss.choices[n] for n in ("down", "status", "events", "env")]):
        q.add_argument("--state-dir", type=Path, default=None, help="default: ~/.gameday/sandboxes/default")


def _state(args: Any) -> Path:
    from gameday.sandbox.client import default_state_dir

    return Path(args.state_dir) if args.state_dir else default_state_dir()


def _sandbox_up(args: Any) -> int:
    from gameday.guard.inputs import check_sandbox_up
    from gameday.sandbox import client

    check_sandbox_up(_state(args), tuple(args.variant), args.link_delay_ms, args.timing)
    ep = client.up(_state(args), timing=args.timing, variants=tuple(args.variant),
                   link_delay_ms=args.link_delay_ms, routing_mode=args.routing_mode,
                   var_files=tuple(args.var_file), tf_vars=tuple(args.var),
                   snapshots="cold" if args.cold else "use",
                   progress=lambda line: print(f"  {line}", flush=True))
    print("sandbox is up:")
    for svc, url in ep.services.items():
        print(f"  {svc:<8} {url}")
    print(f"  AWS API   {ep.aws_endpoint_url}  (chaos run: eval \"$(gameday sandbox env)\")")
    print(f"  events    {ep.events_path}")
    if ep.var_files:
        print(f"  tfvars    {', '.join(ep.var_files)}")
    return 0


def _sandbox_snapshots(args: Any) -> int:
    from gameday.sandbox import snapshot

    if args.prune:
        gone = snapshot.prune(remove_all=True)
        print(f"{len(gone)} snapshot(s) removed from {snapshot.snapshots_dir()}")
        return 0
    snaps = snapshot.list_snapshots()
    print(f"{len(snaps)} snapshot(s) in {snapshot.snapshots_dir()}")
    for s in snaps:
        meta, parts = s.meta, s.meta.get("parts", {})
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(float(meta.get("created", 0))))
        print(f"  {s.key}  {created}  {s.size() / 1e6:7.1f} MB  routing={parts.get('routing_mode')}  "
              f"var files={len(parts.get('var_files', []))} vars={len(parts.get('tf_vars', []))}  "
              f"cold apply {meta.get('cold_apply_s')} s")
    return 0


def _sandbox_down(args: Any) -> int:
    from gameday.sandbox import client

    n = client.down(_state(args))
    print("sandbox is down" + (f" ({n} leftover process groups killed)" if n else ""))
    return 0


def _sandbox_status(args: Any) -> int:
    from gameday.sandbox import client
    from gameday.target import Endpoints

    ep = Endpoints.load(_state(args) / "endpoints.json")
    st = client.admin(ep, "/status")
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(format_status(st))
    return 0


def _sandbox_env(args: Any) -> int:
    """``export`` lines that make ``chaos run experiments/<name>.json`` reach this sandbox."""
    import shlex

    from gameday.chaos.config import experiment_env
    from gameday.errors import ConfigError
    from gameday.provision.sandbox import AWS_ENV_DROPPED_FOR_SANDBOX
    from gameday.provision.topology import Topology
    from gameday.safety import undolog
    from gameday.sandbox import client
    from gameday.target import Endpoints

    state = _state(args)
    if client.daemon_pid(state) is None or not (state / "endpoints.json").exists():
        raise ConfigError("no sandbox is running", file=str(state),
                          hint="start one with 'gameday sandbox up' (or pass the --state-dir it used)")
    ep = Endpoints.load(state / "endpoints.json")
    env = {**ep.aws_env(), **experiment_env(ep, Topology.load(state / "topology.json"))}
    # a hand-run chaos run records its undo log where 'gameday abort' and the sandbox reset look
    env[undolog.ENV_DIR] = str(undolog.sandbox_undo_dir(state))
    if args.with_secrets:
        try:
            env["GAMEDAY_DB_PASSWORD"] = str(json.loads((state / "secrets.json").read_text())["db_password"])
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError("the sandbox's secrets file is missing or unreadable", file=str(state / "secrets.json"),
                              hint="restart the sandbox: gameday sandbox down && gameday sandbox up") from exc
    variant = f"; terraform var files: {', '.join(ep.var_files)}" if ep.var_files else ""
    print(f"# gameday sandbox in {state}{variant}")
    if not args.with_secrets:
        print("# GAMEDAY_DB_PASSWORD not shown: add --with-secrets for the experiments' database checks")
    # real-AWS credential settings must not mix with the sandbox's dummy keys
    print("unset " + " ".join(AWS_ENV_DROPPED_FOR_SANDBOX))
    for key in sorted(env):
        print(f"export {key}={shlex.quote(env[key])}")
    return 0


def format_status(st: dict[str, Any]) -> str:
    """A readable table: routing per service, instances per region, database roles and lag."""
    lines = [f"timing profile: {st.get('timing')}   frozen regions: {', '.join(st.get('frozen_regions', [])) or '-'}"]
    var_files = (st.get("endpoints") or {}).get("var_files") or []
    if var_files:
        lines.append(f"terraform var files: {', '.join(var_files)}")
    lines += ["", f"{'SERVICE':<9} {'SERVED FROM':<14}"]
    for svc, region in sorted(st.get("routing", {}).items()):
        lines.append(f"{svc:<9} {region or 'NOWHERE':<14}")
    lines += ["", f"{'REGION':<14} {'SERVICE':<9} {'INSTANCE':<21} {'AZ':<15} {'PORT':<6} {'STATE':<8} HEALTH"]
    for i in sorted(st.get("instances", []), key=lambda i: (i["region"], i["service"], i["id"])):
        lines.append(f"{i['region']:<14} {i['service']:<9} {i['id']:<21} {i['az']:<15} {i['port']:<6} "
                     f"{i['state']:<8} {i['health']}")
    lines += ["", f"{'DB NODE':<8} {'REGION':<14} {'ROLE':<9} {'PORT':<6} LAG"]
    for n in st.get("database", []):
        lag = n.get("lag_seconds")
        lag_s = "-" if lag is None else f"{float(lag):.3f} s"
        lines.append(f"{n.get('name', '?'):<8} {n.get('region', '?'):<14} {n.get('role', '?'):<9} "
                     f"{n.get('port', '?')!s:<6} {lag_s}")
    return "\n".join(lines)


def _sandbox_events(args: Any) -> int:
    from gameday.errors import ConfigError
    from gameday.sandbox.events import read_events

    path = _state(args) / "events.jsonl"
    if not path.exists():
        raise ConfigError("no sandbox event log here", file=str(path), field="--state-dir",
                          hint="start one with 'gameday sandbox up' (or pass the --state-dir it used)")
    for e in read_events(path, args.kind):
        print(json.dumps(e))
    return 0


def _registrar(module: str) -> Registrar:
    """The ``register`` function of a subcommand module; an import error surfaces, never a missing command."""
    import importlib

    registrar: Registrar = importlib.import_module(module).register
    return registrar


def build_parser() -> argparse.ArgumentParser:
    from gameday.guard.inputs import OneLineParser

    ap = OneLineParser(prog="gameday", description="Chaos and disaster-recovery drills for a "
                                 "two-region AWS system, or its local sandbox.")
    sub = ap.add_subparsers(dest="command", required=True)
    for module in ("gameday.provision.cli", "gameday.report_cli", "gameday.gameday.cli",
                   "gameday.guard.experiment_cli", "gameday.safety.abort_cli"):
        _registrar(module)(sub)
    _sandbox_register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except GamedayError as exc:
        print(f"gameday: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gameday: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
