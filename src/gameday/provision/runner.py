"""Drive real terraform the way terratest does: own work dir per run, -json UI streamed as events,
allow-listed retries, per-command timeouts, and destroy registered before create.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from gameday.errors import ConfigError, GamedayError, TerraformError, TimeoutExceeded
from gameday.provision import mirror
from gameday.provision.fast_waiters import (
    MAX_DESTROY_ROUNDS,
    MAX_ROUNDS,
    converge_apply,
    converge_destroy,
    rerun_allow_list,
)
from gameday.provision.prereqs import find_terraform
from gameday.provision.tfjson import (
    UNREACHABLE,
    Diagnostic,
    EventCallback,
    Outputs,
    PlanSummary,
    RunResult,
    TerraformEndpointUnreachable,
    TerraformRunError,
    TfEvent,
    diagnostic_from_json,
    event_from_json,
    parse_outputs,
)
from gameday.util.procs import ProcessRegistry, kill_group, pgid_alive
from gameday.util.redact import REDACTED, SENSITIVE_KEYS, Secret
from gameday.util.retry import do_with_retry

__all__ = ["Diagnostic", "Outputs", "PlanSummary", "RunResult", "TerraformEndpointUnreachable",
           "TerraformRunError", "TerraformRunner", "TfEvent", "parse_outputs", "provisioned"]


class TerraformRunner:
    """One terraform root module applied in its own working directory (state lives there too)."""

    def __init__(self, module_dir: str | os.PathLike[str], work_dir: str | os.PathLike[str], *,
                 env: Mapping[str, str] | None = None, unset_env: Sequence[str] = (),
                 vars: Mapping[str, Any] | None = None,
                 var_files: Sequence[str | os.PathLike[str]] = (),
                 cli_config: str | os.PathLike[str] | None = None,
                 timeout_s: float = 900.0, on_event: EventCallback | None = None,
                 terraform: str | os.PathLike[str] | None = None, registry: ProcessRegistry | None = None,
                 retry_attempts: int = 3, retry_sleep_s: float = 2.0, lock_timeout_s: float = 30.0,
                 interrupt_grace_s: float = 30.0) -> None:
        self.module_dir = Path(module_dir).resolve()
        self.work_dir = Path(work_dir).resolve()
        if not self.module_dir.is_dir():
            raise GamedayError(f"terraform module directory {self.module_dir} does not exist")
        self.terraform = Path(terraform) if terraform else find_terraform()
        self.extra_env = dict(env or {})
        self.unset_env = tuple(unset_env)
        self.vars = dict(vars or {})
        self.var_files = [Path(f).resolve() for f in var_files]
        self.timeout_s = timeout_s
        self.on_event = on_event
        self.retry_attempts = retry_attempts
        self.retry_sleep_s = retry_sleep_s
        self.lock_timeout_s = lock_timeout_s
        self.interrupt_grace_s = interrupt_grace_s
        self.events: list[TfEvent] = []
        self.last_pid: int | None = None
        self._seq = 0
        if self.work_dir == self.module_dir or self.module_dir in self.work_dir.parents:
            raise GamedayError(f"work dir {self.work_dir} must be outside the module {self.module_dir}")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.work_dir / "logs"
        self.registry = registry or ProcessRegistry(self.work_dir)
        self._sync_module()
        # after the copy (copytree copies the module dir's own mode onto the work dir): the state
        # holds sensitive values, terraform keeps them in plain text
        self.work_dir.chmod(0o700)
        if cli_config is None:
            self.cli_config = mirror.write_cli_config(self.work_dir / "terraform.tfrc")
        else:
            self.cli_config = Path(cli_config).resolve()

    # ----------------------------------------------------------------- set-up

    def _sync_module(self) -> None:
        """Copy the module's files into the work dir (state, .terraform and overrides stay per run)."""
        ignore = shutil.ignore_patterns(".terraform", "terraform.tfstate*", ".terraform.tfstate.lock.info",
                                        "override.tf", "*_override.tf", "override.tf.json",
                                        "*_override.tf.json")
        shutil.copytree(self.module_dir, self.work_dir, ignore=ignore, dirs_exist_ok=True)

    def write_override(self, name: str, text: str) -> Path:
        """Write ``<name>_override.tf`` into the work dir (merged over the module by terraform)."""
        base = name.removesuffix(".tf").removesuffix(".json")
        fname = base + ".tf" if base == "override" or base.endswith("_override") else f"{base}_override.tf"
        path = self.work_dir / fname
        path.write_text(text, encoding="utf-8")
        return path

    @property
    def state_file(self) -> Path:
        return self.work_dir / "terraform.tfstate"

    def _secrets(self) -> tuple[str, ...]:
        out = [str(v) for k, v in self.vars.items() if isinstance(v, Secret) or SENSITIVE_KEYS.search(k)]
        out += [v for k, v in self.extra_env.items() if isinstance(v, Secret) or
                (k.startswith("TF_VAR_") and SENSITIVE_KEYS.search(k))]
        return tuple(s for s in out if s)

    def _scrub(self, text: str) -> str:
        for s in self._secrets():
            text = text.replace(s, REDACTED)
        return text

    def _env(self) -> dict[str, str]:
        dropped = {"TF_PLUGIN_CACHE_DIR", "TF_CLI_ARGS", *self.unset_env}
        env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("TF_CLI_ARGS_")}
        env.update({"TF_IN_AUTOMATION": "1", "TF_INPUT": "0", "CHECKPOINT_DISABLE": "1",
                    "TF_CLI_CONFIG_FILE": str(self.cli_config)})
        env.update({k: str(v) for k, v in self.extra_env.items()})
        # Variables travel in the environment, never argv: argv shows up in `ps`, logs and errors.
        for name, value in self.vars.items():
            env[f"TF_VAR_{name}"] = value if isinstance(value, str) else json.dumps(value)
        return env

    def _var_file_args(self) -> list[str]:
        for f in self.var_files:
            if not f.is_file():
                raise ConfigError("variables file does not exist", file=str(f),
                                  hint="pass an existing .tfvars file")
        return [f"-var-file={f}" for f in self.var_files]

    # ----------------------------------------------------------- one command

    def _emit(self, ev: TfEvent) -> None:
        self.events.append(ev)
        if self.on_event is not None:
            self.on_event(ev)

    def run(self, args: Sequence[str], *, json_ui: bool = False, timeout_s: float | None = None,
            keep_log: bool = True, check: bool = True, quiet: bool = False) -> RunResult:
        """Run ``terraform <args>`` once in the work dir, streaming its output as events.

        The process is started through the ProcessRegistry (own process group, recorded pid). On
        timeout it is killed; on an exception in a callback or Ctrl-C it is interrupted like a
        user would (SIGINT, so terraform writes its state) and killed after a grace period.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        self._seq += 1
        cmd_name = args[0]
        argv = [str(self.terraform), *args]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{self._seq:03d}-{cmd_name}.log"
        log.unlink(missing_ok=True)
        fd = os.open(log, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        os.close(fd)
        proc_name = f"terraform-{os.getpid()}-{id(self)}-{self._seq}"
        started = time.monotonic()
        m = self.registry.spawn(proc_name, argv, env=self._env(), cwd=self.work_dir, log=log)
        self.last_pid = m.pid
        events: list[TfEvent] = []
        diags: list[Diagnostic] = []
        text_lines: list[str] = []
        self._emit(TfEvent("command_start", " ".join(args), command=cmd_name))

        def handle(line: str) -> None:
            rec: Any = None
            if json_ui and line.startswith("{"):
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    rec = None
            if isinstance(rec, dict):
                ev = event_from_json(rec, cmd_name)
                if ev.type == "diagnostic":
                    diags.append(diagnostic_from_json(rec.get("diagnostic") or {}))
            else:
                text_lines.append(line)
                if quiet:  # e.g. state pull / output: the text holds sensitive values
                    return
                ev = TfEvent("output", self._scrub(line), command=cmd_name)
            events.append(ev)
            self._emit(ev)

        try:
            with open(log, encoding="utf-8", errors="replace") as fh:
                buf = ""
                while True:
                    if time.monotonic() - started > timeout and m.popen.poll() is None:
                        kill_group(m.pid, signal.SIGKILL)
                        self._reap(proc_name)
                        self._emit(TfEvent("timeout", f"terraform {cmd_name} killed after {timeout:.0f}s",
                                           level="error", command=cmd_name))
                        raise TimeoutExceeded(f"terraform {cmd_name} in {self.work_dir}", timeout)
                    chunk = fh.read()
                    if chunk:
                        buf += chunk
                        *lines, buf = buf.split("\n")
                        for line in lines:
                            if line.strip():
                                handle(line.rstrip("\r"))
                        continue
                    if m.popen.poll() is not None:
                        rest = fh.read()
                        buf += rest
                        if not rest:
                            if buf.strip():
                                handle(buf.rstrip("\r\n"))
                            break
                        continue
                    time.sleep(0.05)
        except BaseException:
            if m.popen.poll() is None:
                self._interrupt(m.pid, cmd_name)
            self._reap(proc_name)
            raise
        finally:
            if not keep_log:
                log.unlink(missing_ok=True)
            self._protect_state()
        code = m.popen.wait()
        self._reap(proc_name)
        result = RunResult(argv, code, events, diags, "\n".join(text_lines), time.monotonic() - started)
        self._emit(TfEvent("command_end", f"exit {code}", level="info" if code == 0 else "error",
                           command=cmd_name))
        if code != 0 and check:
            raise self._error(result)
        return result

    def _interrupt(self, pgid: int, cmd_name: str) -> None:
        """Stop terraform like Ctrl-C does (it still writes its state); SIGKILL after the grace period."""
        self.events.append(TfEvent("interrupt", f"interrupting terraform {cmd_name}", level="warn",
                                   command=cmd_name))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGINT)
        deadline = time.monotonic() + self.interrupt_grace_s
        while time.monotonic() < deadline and pgid_alive(pgid):
            time.sleep(0.05)
        if pgid_alive(pgid):
            kill_group(pgid, signal.SIGKILL)

    def _protect_state(self) -> None:
        """State, its backups and plans hold the database password in clear text: owner-only (0600),
        in an owner-only directory (0700; copying the module in can reset the directory's mode)."""
        with contextlib.suppress(OSError):
            self.work_dir.chmod(0o700)
        for p in [*self.work_dir.glob("terraform.tfstate*"), *self.work_dir.glob("*.tfplan")]:
            with contextlib.suppress(OSError):
                p.chmod(0o600)

    def _reap(self, proc_name: str) -> None:
        m = self.registry.procs.get(proc_name)
        if m is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                m.popen.wait(timeout=5)
        self.registry.forget(proc_name)

    def _error(self, result: RunResult) -> TerraformRunError:
        errors = result.errors or [d for d in result.diagnostics if d.severity != "warning"]
        resources: list[str] = []
        for d in errors:
            if d.address and d.address not in resources:
                resources.append(d.address)
        for ev in result.events:
            if ev.type == "apply_errored" and ev.address and ev.address not in resources:
                resources.append(ev.address)
        cmd = result.command[1] if len(result.command) > 1 else "terraform"
        body = "\n".join(str(d) for d in errors)
        stderr = self._scrub("\n".join(filter(None, [body, result.stdout])))
        first = errors[0].summary if errors else f"exit code {result.exit_code}"
        on = f" on {', '.join(resources)}" if resources else ""
        summary = self._scrub(f"terraform {cmd} failed{on}: {first}")
        argv = [self._scrub(a) for a in result.command]
        cls = TerraformEndpointUnreachable if UNREACHABLE.search(body) else TerraformRunError
        return cls(argv, result.exit_code, stderr, summary=summary, resources=resources, diagnostics=errors)

    def _with_retry(self, what: str, fn: Callable[[], RunResult]) -> RunResult:
        def on_retry(attempt: int, reason: str, exc: BaseException) -> None:
            self._emit(TfEvent("retry", f"{what} attempt {attempt} failed, retrying: {reason}", level="warn"))

        return do_with_retry(what, fn, allow_list=rerun_allow_list(), attempts=self.retry_attempts,
                             sleep=self.retry_sleep_s, on_retry=on_retry)

    @property
    def _lock_args(self) -> list[str]:
        return [f"-lock-timeout={int(self.lock_timeout_s)}s"]

    # --------------------------------------------------------------- commands

    def init(self, *, upgrade: bool = False) -> RunResult:
        """``terraform init`` (providers from the filesystem mirror per the run's CLI config)."""
        self._sync_module()
        args = ["init", "-input=false", "-no-color"] + (["-upgrade"] if upgrade else [])
        return self._with_retry("terraform init", lambda: self.run(args))

    def validate(self) -> RunResult:
        return self.run(["validate", "-json", "-no-color"], json_ui=False)

    def plan(self, *, destroy: bool = False, out: str | None = "plan.tfplan") -> PlanSummary:
        """``terraform plan``; returns the change counts and planned actions per address."""
        args = ["plan", "-json", "-input=false", *self._lock_args, *self._var_file_args()]
        if destroy:
            args.append("-destroy")
        if out:
            args.append(f"-out={out}")
        res = self._with_retry("terraform plan", lambda: self.run(args, json_ui=True))
        counts = {"add": 0, "change": 0, "remove": 0}
        changes: list[tuple[str, str]] = []
        for ev in res.events:
            if ev.type == "change_summary":
                counts.update({k: int(v) for k, v in (ev.raw.get("changes") or {}).items() if k in counts})
            elif ev.type == "planned_change" and ev.address:
                changes.append((ev.address, str((ev.raw.get("change") or {}).get("action", ""))))
        return PlanSummary(counts["add"], counts["change"], counts["remove"], tuple(changes))

    def apply(self, *, fast_waiters: bool = False, max_rounds: int = MAX_ROUNDS,
              targets: Sequence[str] = (), parallelism: int | None = None) -> RunResult:
        """``terraform apply``; with fast_waiters, converge through provider waiter timeouts.

        Slow resources get short create timeouts (a module variable); the provider then reports
        "timeout while waiting for state to become ..." and taints them although they exist. We
        untaint exactly the resources named by such diagnostics and apply again, at most max_rounds
        times (``fast_waiters.converge_apply``). Any error not on the allow-list ends the loop.
        """
        args = ["apply", "-auto-approve", "-json", "-input=false", *self._lock_args, *self._var_file_args(),
                *[f"-target={t}" for t in targets]]
        if parallelism:
            # sleeping provider waiters hold parallelism slots (provision/README.md)
            args.append(f"-parallelism={parallelism}")
        def once() -> RunResult:
            return self._with_retry("terraform apply", lambda: self.run(args, json_ui=True))

        if not fast_waiters:
            return once()
        return converge_apply(once, self.untaint_many, self._emit, max_rounds=max_rounds)

    def destroy(self, *, max_rounds: int = MAX_DESTROY_ROUNDS, parallelism: int | None = None) -> RunResult:
        """``terraform destroy``; re-run (bounded) when only provider waiter timeouts failed it."""
        args = ["destroy", "-auto-approve", "-json", "-input=false", *self._lock_args, *self._var_file_args()]
        if parallelism:
            args.append(f"-parallelism={parallelism}")
        return converge_destroy(
            lambda: self._with_retry("terraform destroy", lambda: self.run(args, json_ui=True)),
            self._emit, max_rounds=max_rounds)

    def output(self) -> Outputs:
        """Parsed ``terraform output -json``; sensitive values kept (as Secret) and marked."""
        res = self._with_retry("terraform output",
                               lambda: self.run(["output", "-json", "-no-color"], keep_log=False, quiet=True))
        text = res.stdout.strip()
        try:
            raw = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise TerraformError(res.command, 0, "unparseable `terraform output -json`",
                                 summary=f"terraform output returned invalid JSON: {exc}") from exc
        return parse_outputs(raw)

    def untaint(self, address: str) -> bool:
        """``terraform untaint address``; False if it was not tainted (nothing to do)."""
        try:
            self._with_retry(f"terraform untaint {address}",
                             lambda: self.run(["untaint", "-no-color", *self._lock_args, address]))
        except TerraformError as exc:
            if re.search(r"is not tainted|No such resource instance", str(exc)):
                return False
            raise
        return True

    def untaint_many(self, addresses: Sequence[str]) -> list[str]:
        """Clear the taint of many resources in one state pull/push (``terraform untaint`` is one each).

        Only instances whose address is listed are touched; returns the addresses untainted.
        """
        wanted = set(addresses)
        if not wanted:
            return []
        pulled = self.run(["state", "pull"], keep_log=False, quiet=True)
        if not pulled.stdout.strip():
            return []  # no state yet: the first apply failed before creating anything
        state = json.loads(pulled.stdout)
        done: list[str] = []
        for res in state.get("resources", []):
            if res.get("mode") != "managed":
                continue
            base = f"{res['module']}.{res['type']}.{res['name']}" if res.get("module") else \
                f"{res['type']}.{res['name']}"
            for inst in res.get("instances", []):
                key = inst.get("index_key")
                addr = base + ("" if key is None else f"[{json.dumps(key)}]")
                if addr in wanted and inst.get("status") == "tainted":
                    del inst["status"]
                    done.append(addr)
        if not done:
            return []
        state["serial"] = int(state.get("serial", 0)) + 1
        tmp = self.work_dir / ".untaint.tfstate.json"
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(state, fh)
            self._with_retry("terraform state push",
                             lambda: self.run(["state", "push", *self._lock_args, str(tmp)], quiet=True))
        finally:
            tmp.unlink(missing_ok=True)
        self._emit(TfEvent("untaint", f"untainted {', '.join(done)}", command="state"))
        return done

    def state_list(self) -> list[str]:
        """Addresses in the run's state ([] before the first apply)."""
        if not self.state_file.exists():
            return []
        res = self.run(["state", "list", "-no-color"])
        return [ln.strip() for ln in res.stdout.splitlines() if ln.strip()]


@contextlib.contextmanager
def provisioned(runner: TerraformRunner, *, fast_waiters: bool = False, keep: bool = False,
                on_destroy_error: Callable[[BaseException], None] | None = None) -> Iterator[Outputs]:
    """init + apply + yield outputs; destroy is registered *before* apply (terratest's defer Destroy).

    A half-finished apply (error, Ctrl-C) is still destroyed. A destroy failure never masks the
    original error: it is attached as a note; without an original error it is raised.
    """
    with contextlib.ExitStack() as stack:
        def cleanup(exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
            if keep or not runner.state_file.exists():
                return False  # nothing was ever created (init failed) or the caller keeps it
            try:
                runner.destroy()
            except BaseException as derr:
                if on_destroy_error is not None:
                    on_destroy_error(derr)
                if exc is None:
                    raise
                exc.add_note(f"cleanup: terraform destroy also failed: {derr}")
            return False

        stack.push(cleanup)
        runner.init()
        runner.apply(fast_waiters=fast_waiters)
        yield runner.output()
