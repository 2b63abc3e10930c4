"""``gameday provision up|down|status --target aws``: terraform the system on AWS, save its Topology.

The sandbox has one bring-up, ``gameday sandbox up``: it applies the same Terraform to its own
control plane and starts the data plane. ``--target sandbox`` here says so and starts nothing.
The AWS state is ``<state root>/aws/`` (``terraform/`` and ``topology.json``), the same layout
as a sandbox's own state directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from gameday import settings
from gameday.errors import ConfigError, GamedayError
from gameday.provision import OLD_AWS_STATE, TARGETS, aws_state_dir, module_dir, topology_path
from gameday.provision.runner import TerraformRunner, TfEvent
from gameday.provision.topology import Topology
from gameday.util.redact import Secret

#: The password of `--target aws` (never on argv, never in files written by the harness).
ENV_DB_PASSWORD = "GAMEDAY_DB_PASSWORD"


# ------------------------------------------------------------------ argparse


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``provision up|down|status`` to the main CLI's subparsers; each command sets ``func``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "provision", help="create / destroy the two-region system on AWS with terraform",
        description="Apply provision/terraform to real AWS (the sandbox: 'gameday sandbox up').")
    sub = parser.add_subparsers(dest="provision_command", metavar="{up,down,status}", required=True)
    commands = (("up", cmd_up, "apply terraform and save the topology"),
                ("down", cmd_down, "destroy everything"),
                ("status", cmd_status, "show what is provisioned"))
    for name, func, help_text in commands:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--target", choices=TARGETS, default="aws",
                       help="aws: the normal AWS credential chain (the sandbox is 'gameday sandbox up')")
        p.add_argument("--state-dir", default=None,
                       help="where terraform state and the topology go (default: <state root>/aws, the state "
                            "root being $GAMEDAY_STATE_DIR, else $GAMEDAY_HOME, else ~/.gameday)")
        if name != "status":
            p.add_argument("--var-file", action="append", default=[], metavar="F",
                           help="terraform .tfvars file (repeatable)")
            p.add_argument("--timeout", type=float, default=1800.0,
                           help="seconds allowed per terraform command (default 1800)")
            p.add_argument("-v", "--verbose", action="store_true", help="print every terraform event")
        if name == "up":
            p.add_argument("--config", default=None, metavar="FILE",
                           help="gameday config (account/region allow-lists); default $GAMEDAY_CONFIG or "
                                "~/.gameday/config.yaml; required for --target aws")
            p.add_argument("--yes", action="store_true", help="confirm changing the AWS account without typing it")
        p.set_defaults(func=func, provision_verb=name)
    return parser


def _aws_only(args: argparse.Namespace) -> Path:
    """The state dir of the AWS system; the sandbox target is refused with the command that does it."""
    if args.target == "sandbox":
        verb = getattr(args, "provision_verb", "up")
        raise ConfigError("the sandbox is not provisioned with 'gameday provision'", field="--target",
                          hint=f"run 'gameday sandbox {verb}' (same Terraform, plus the data plane; it takes "
                               "--var-file and --var too)")
    state = aws_state_dir(args.state_dir)
    old = OLD_AWS_STATE.resolve() / "terraform" / "terraform.tfstate"
    if args.state_dir is None and old.is_file() and not (state / "terraform" / "terraform.tfstate").exists():
        raise ConfigError("terraform state of an AWS system is in the old default place", file=str(old),
                          hint=f"pass --state-dir {OLD_AWS_STATE}, or move {OLD_AWS_STATE} to {state}; a run "
                               "without that state would create the whole system a second time")
    return state


# --------------------------------------------------------------- runners


class _Printer:
    """Concise progress on stderr: resource starts/ends, errors, retries, fast-waiter rounds."""

    SHOWN = ("apply_start", "apply_complete", "apply_errored", "diagnostic", "retry", "fast_waiter_round",
             "change_summary", "timeout", "interrupt")

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def __call__(self, ev: TfEvent) -> None:
        if self.verbose or ev.type in self.SHOWN:
            if ev.command == "output" and ev.type == "output":
                return  # output lines may hold sensitive values
            print(f"  [{ev.command or 'terraform'}] {ev.message}", file=sys.stderr, flush=True)


def make_runner(args: argparse.Namespace, state: Path, *, for_destroy: bool = False) -> TerraformRunner:
    """A TerraformRunner for AWS, with its variables and credentials."""
    var_files = list(getattr(args, "var_file", []) or [])
    for f in var_files:
        if not Path(f).is_file():
            raise ConfigError("variables file does not exist", file=f, hint="pass an existing .tfvars file")
    return TerraformRunner(module_dir(), state / "terraform",
                           env={"AWS_EC2_METADATA_DISABLED": "true"},  # no silent credentials from a host's metadata
                           vars={"db_password": aws_db_password(for_destroy)}, var_files=var_files,
                           timeout_s=float(getattr(args, "timeout", 1800.0)),
                           on_event=_Printer(bool(getattr(args, "verbose", False))))


def aws_db_password(for_destroy: bool = False) -> Secret:
    """The database password for real AWS, from the environment only (never argv, never logs)."""
    pw = settings.text(ENV_DB_PASSWORD)
    if not pw:
        if not for_destroy:
            raise ConfigError(f"${ENV_DB_PASSWORD} is not set", field=ENV_DB_PASSWORD,
                              hint=f"export {ENV_DB_PASSWORD}=<at least 8 characters> "
                                   "(kept out of argv and logs)")
        pw = "destroy-does-not-use-the-password"
    return Secret(pw)


# --------------------------------------------------------------- commands


def cmd_up(args: argparse.Namespace) -> int:
    from gameday.guard.provision import check_provision_inputs, guard_provision

    state = _aws_only(args)
    check_provision_inputs(args)  # bad input: nothing started
    aws_db_password()  # a missing password is bad input: said before any AWS call
    guard_provision(args)  # credentials, STS identity, allow-lists, consent: before terraform
    runner = make_runner(args, state)
    started = time.monotonic()
    runner.init()
    runner.apply()
    topo = Topology.from_outputs(runner.output(), source=f"terraform output ({runner.work_dir})", strict=True)
    path = topo.save(topology_path(state))
    print(f"provisioned aws in {time.monotonic() - started:.0f}s; "
          f"{len(runner.state_list())} resources; topology saved to {path}")
    print(topo.summary())
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state = _aws_only(args)
    runner = make_runner(args, state, for_destroy=True)
    if runner.state_file.exists():
        runner.init()
        runner.destroy()
    topology_path(state).unlink(missing_ok=True)
    print("aws: destroyed")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = _aws_only(args)
    work = state / "terraform"
    n = _state_resource_count(work / "terraform.tfstate")
    print(f"terraform state ({work}): {n} managed resources" if n is not None else "terraform state: none")
    topo_file = topology_path(state)
    if topo_file.exists():
        try:
            print(Topology.load(topo_file).summary())
        except GamedayError as exc:
            print(f"topology {topo_file}: {exc}")
            return 1
    else:
        print("topology: not provisioned")
    return 0


def _state_resource_count(path: Path) -> int | None:
    """Managed resource instances in a local state file, read without running terraform."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return sum(len(r.get("instances", [])) for r in data.get("resources", []) if r.get("mode") == "managed")
