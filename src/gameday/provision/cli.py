"""``gameday provision up|down|status --target sandbox|aws``: terraform the system, save its Topology.

For the sandbox, ``up`` makes sure a local control plane runs (starting one in the background
and recording it in the state dir), points the providers at it through an override file and
applies with fast waiters.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gameday import settings
from gameday.errors import ConfigError, ControlPlaneError, GamedayError
from gameday.provision import TARGETS, module_dir, sandbox_password_path, state_dir, target_dir, topology_path
from gameday.provision.runner import TerraformRunner, TfEvent
from gameday.provision.topology import Topology
from gameday.target import SANDBOX_CREDENTIALS
from gameday.util.net import free_port
from gameday.util.procs import ProcessRegistry, pid_alive
from gameday.util.redact import Secret

CONTROLPLANE_NAME = "controlplane"
CONTROLPLANE_RECORD = "controlplane.json"
DEFAULT_CREATE_TIMEOUT = "5s"
#: Sleeping provider waiters hold parallelism slots; against the local control plane use more.
SANDBOX_PARALLELISM = 30
CONTROLPLANE_START_TIMEOUT_S = 90.0
#: The password of `--target aws` (never on argv, never in files written by the harness).
ENV_DB_PASSWORD = "GAMEDAY_DB_PASSWORD"
#: Use an already running control plane (e.g. the sandbox daemon's) instead of starting one.
ENV_CONTROLPLANE_URL = "GAMEDAY_CONTROLPLANE_URL"
#: Environment of terraform aimed at the sandbox: moto's dummy credentials, no instance metadata look-up.
SANDBOX_ENV = {**SANDBOX_CREDENTIALS, "AWS_EC2_METADATA_DISABLED": "true"}
#: Real-AWS credential settings that must not leak into a sandbox run.
AWS_ENV_DROPPED_FOR_SANDBOX = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE",
                                "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE")


# ------------------------------------------------------------------ argparse


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``provision up|down|status`` to the main CLI's subparsers; each command sets ``func``."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "provision", help="create / destroy the two-region system with terraform",
        description="Apply provision/terraform to the local sandbox control plane or to real AWS.")
    sub = parser.add_subparsers(dest="provision_command", metavar="{up,down,status}", required=True)
    commands = (("up", cmd_up, "apply terraform and save the topology"),
                ("down", cmd_down, "destroy everything (and stop the sandbox control plane)"),
                ("status", cmd_status, "show what is provisioned"))
    for name, func, help_text in commands:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--target", choices=TARGETS, default="sandbox",
                       help="sandbox: local control plane on 127.0.0.1; aws: the normal AWS credential chain")
        p.add_argument("--state-dir", default=None,
                       help="where state, logs and topology go (default $GAMEDAY_STATE_DIR or ./.gameday)")
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
            p.add_argument("--create-timeout", default=DEFAULT_CREATE_TIMEOUT,
                           help="sandbox only: short create timeout of slow resources, converged by "
                                f"untaint + re-apply (default {DEFAULT_CREATE_TIMEOUT})")
        p.set_defaults(func=func)
    return parser


# --------------------------------------------------------- sandbox helpers


@dataclass(frozen=True)
class ControlPlaneInfo:
    """A control plane the sandbox target talks to; ``owned`` if provision started it."""

    url: str
    pid: int | None
    owned: bool
    fresh: bool = False


def _record_path(state: Path) -> Path:
    return target_dir(state, "sandbox") / CONTROLPLANE_RECORD


def read_controlplane(state: Path) -> ControlPlaneInfo | None:
    """The control plane recorded in the state dir if its process is still alive."""
    url = settings.text(ENV_CONTROLPLANE_URL)
    if url:
        return ControlPlaneInfo(url=url.rstrip("/"), pid=None, owned=False)
    path = _record_path(state)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
        pid = int(rec["pid"])
        url = str(rec["url"])
    except (OSError, ValueError, KeyError):
        return None
    if not pid_alive(pid):
        return None
    return ControlPlaneInfo(url=url, pid=pid, owned=bool(rec.get("owned", True)))


def start_controlplane(state: Path) -> ControlPlaneInfo:
    """Start ``python -m gameday.controlplane`` in the background and wait for its READY line."""
    tdir = target_dir(state, "sandbox")
    tdir.mkdir(parents=True, exist_ok=True)
    log = tdir / "controlplane.log"
    log.unlink(missing_ok=True)
    port = free_port()
    reg = ProcessRegistry(state)
    reg.kill(CONTROLPLANE_NAME)  # a dead record from a crashed run
    argv = [sys.executable, "-m", "gameday.controlplane", "--port", str(port)]
    m = reg.spawn(CONTROLPLANE_NAME, argv, log=log)
    deadline = time.monotonic() + CONTROLPLANE_START_TIMEOUT_S
    url = None
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        for line in text.splitlines():
            if line.startswith("READY "):
                url = line.split(None, 1)[1].strip()
        if url:
            break
        if m.popen.poll() is not None:
            reg.forget(CONTROLPLANE_NAME)
            tail = "\n".join(text.splitlines()[-15:])
            raise ControlPlaneError(f"control plane exited with code {m.popen.returncode} before READY "
                                    f"(log {log}):\n{tail}")
        time.sleep(0.1)
    if not url:
        reg.kill(CONTROLPLANE_NAME)
        raise ControlPlaneError(f"control plane printed no READY line within "
                                f"{CONTROLPLANE_START_TIMEOUT_S:.0f}s (log {log})")
    _record_path(state).write_text(json.dumps({"url": url, "pid": m.pid, "port": port, "owned": True}),
                                   encoding="utf-8")
    return ControlPlaneInfo(url=url, pid=m.pid, owned=True, fresh=True)


def stop_controlplane(state: Path) -> bool:
    """Stop the control plane provision started (never one it merely used); True if one was stopped."""
    info = read_controlplane(state)
    path = _record_path(state)
    if info is not None and not info.owned:
        return False
    ProcessRegistry(state).kill(CONTROLPLANE_NAME)
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed and info is not None


def sandbox_password(state: Path) -> Secret:
    """The sandbox DB password: generated once, kept 0600 in the state dir so re-runs agree."""
    path = sandbox_password_path(state)
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return Secret(value)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)  # the password file: owner-only file in an owner-only directory
    value = "gd-" + secrets.token_urlsafe(24)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return Secret(value)


def _drop_stale_state(work: Path) -> None:
    """A new control plane is empty: the old state describes resources that no longer exist."""
    for p in work.glob("terraform.tfstate*"):
        p.unlink()


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
    """A TerraformRunner for the target, with its variables, credentials and (sandbox) override."""
    target = args.target
    work = target_dir(state, target) / "terraform"
    env: dict[str, str] = {}
    unset: list[str] = []
    vars_: dict[str, Any] = {}
    if target == "sandbox":
        vars_["db_password"] = sandbox_password(state)
        create_timeout = getattr(args, "create_timeout", None) or DEFAULT_CREATE_TIMEOUT
        vars_["create_timeout"] = create_timeout
        # Only used if the module declares it (terraform ignores TF_VAR_ of undeclared variables):
        # RDS delete waiters otherwise sit ~60 s each against the instant local control plane.
        vars_["delete_timeout"] = create_timeout
        env.update(SANDBOX_ENV)
        unset.extend(AWS_ENV_DROPPED_FOR_SANDBOX)
    else:
        vars_["db_password"] = aws_db_password(for_destroy)
        env["AWS_EC2_METADATA_DISABLED"] = "true"  # no silent credentials from an EC2 host's metadata
    var_files = list(getattr(args, "var_file", []) or [])
    for f in var_files:
        if not Path(f).is_file():
            raise ConfigError("variables file does not exist", file=f, hint="pass an existing .tfvars file")
    return TerraformRunner(module_dir(), work, env=env, unset_env=unset, vars=vars_, var_files=var_files,
                           timeout_s=float(getattr(args, "timeout", 1800.0)),
                           on_event=_Printer(bool(getattr(args, "verbose", False))))


def _write_sandbox_override(runner: TerraformRunner, url: str) -> None:
    from gameday.provision.sandbox_override import render_sandbox_override  # written by another module

    runner.write_override("sandbox", render_sandbox_override(url))


# --------------------------------------------------------------- commands


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


def cmd_up(args: argparse.Namespace) -> int:
    from gameday.guard.provision import check_provision_inputs, guard_provision

    state = state_dir(args.state_dir)
    target = args.target
    check_provision_inputs(args)  # bad input: nothing started
    if target == "aws":
        aws_db_password()  # a missing password is bad input: said before any AWS call
        guard_provision(args)  # credentials, STS identity, allow-lists, consent: before terraform
    cp: ControlPlaneInfo | None = None
    if target == "sandbox":
        cp = read_controlplane(state)
        if cp is None:
            cp = start_controlplane(state)
            print(f"control plane started at {cp.url} (pid {cp.pid})", file=sys.stderr)
        else:
            print(f"using control plane at {cp.url}", file=sys.stderr)
        try:
            guard_provision(args, endpoint_url=cp.url, extra_env=SANDBOX_ENV)  # when the config asks for it
        except BaseException:
            if cp.fresh:
                stop_controlplane(state)  # a refusal leaves nothing running
            raise
    runner = make_runner(args, state)
    if cp is not None:
        if cp.fresh:
            _drop_stale_state(runner.work_dir)
        _write_sandbox_override(runner, cp.url)
    started = time.monotonic()
    runner.init()
    sandbox = target == "sandbox"
    runner.apply(fast_waiters=sandbox, parallelism=SANDBOX_PARALLELISM if sandbox else None)
    outputs = runner.output()
    topo = Topology.from_outputs(outputs, source=f"terraform output ({runner.work_dir})", strict=True)
    path = topo.save(topology_path(state, target))
    print(f"provisioned {target} in {time.monotonic() - started:.0f}s; "
          f"{len(runner.state_list())} resources; topology saved to {path}")
    print(topo.summary())
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    state = state_dir(args.state_dir)
    target = args.target
    topo_file = topology_path(state, target)
    if target == "sandbox":
        cp = read_controlplane(state)
        work = target_dir(state, target) / "terraform"
        if cp is None:
            _drop_stale_state(work)
            topo_file.unlink(missing_ok=True)
            stop_controlplane(state)
            print("sandbox: no control plane running; nothing to destroy (stale state removed)")
            return 0
        runner = make_runner(args, state, for_destroy=True)
        _write_sandbox_override(runner, cp.url)
        try:
            if runner.state_file.exists():
                runner.init()
                runner.destroy(parallelism=SANDBOX_PARALLELISM)
        finally:
            if cp.owned:
                stop_controlplane(state)
                _drop_stale_state(work)
        topo_file.unlink(missing_ok=True)
        print(f"sandbox destroyed{'; control plane stopped' if cp.owned else ''}")
        return 0
    runner = make_runner(args, state, for_destroy=True)
    if runner.state_file.exists():
        runner.init()
        runner.destroy()
    topo_file.unlink(missing_ok=True)
    print("aws: destroyed")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state = state_dir(args.state_dir)
    target = args.target
    work = target_dir(state, target) / "terraform"
    if target == "sandbox":
        cp = read_controlplane(state)
        pid = f" (pid {cp.pid})" if cp and cp.pid else ""
        print(f"control plane: {cp.url + pid if cp else 'not running'}")
    n = _state_resource_count(work / "terraform.tfstate")
    print(f"terraform state ({work}): {n} managed resources" if n is not None else "terraform state: none")
    topo_file = topology_path(state, target)
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
