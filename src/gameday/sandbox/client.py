"""Start, stop and query a sandbox daemon from the CLI or pytest (never in-process).

The daemon runs in its own session; its pid and every child are recorded in the state
directory, so ``down`` (or the next ``up``) cleans up even after a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gameday import settings
from gameday.errors import SandboxError, TimeoutExceeded
from gameday.target import Endpoints
from gameday.util.procs import kill_group, kill_recorded, pgid_alive, pid_alive
from gameday.util.retry import poll_until


def default_state_dir(name: str = "default") -> Path:
    """``<state root>/sandboxes/<name>`` (state root: ``$GAMEDAY_STATE_DIR``, else the gameday home)."""
    return settings.state_root() / "sandboxes" / name


def daemon_pid(state_dir: Path) -> int | None:
    try:
        pid = int(json.loads((state_dir / "daemon.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None
    return pid if pid_alive(pid) else None


def up(state_dir: Path, *, timing: str = "fast", variants: tuple[str, ...] = (), link_delay_ms: float = 20.0,
       timeout: float = 600.0, progress: Callable[[str], None] | None = None,
       routing_mode: str = "global_accelerator", var_files: Sequence[str | os.PathLike[str]] = (),
       tf_vars: Sequence[str] = (), snapshots: str = "use") -> Endpoints:
    """Start a sandbox daemon and wait until all services are healthy; clean up on any failure.

    ``var_files`` (.tfvars) and ``tf_vars`` (``NAME=VALUE``) vary the Terraform stack; they are
    checked before anything starts, so bad input never leaves a control plane behind.
    ``snapshots``: ``use`` restores a matching snapshot (else applies and saves one), ``cold``
    always applies (and replaces the snapshot), ``off`` neither (see ``gameday.sandbox.snapshot``).
    """
    from gameday.provision.sandbox import check_sandbox_vars

    checked = check_sandbox_vars(var_files, tf_vars)
    state_dir = Path(state_dir)
    if daemon_pid(state_dir) is not None:
        raise SandboxError(f"a sandbox is already running in {state_dir}",)
    clean(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    state_dir.chmod(0o700)  # secrets.json, the terraform state and the PostgreSQL data live under it
    for stale in ("progress.log", "endpoints.json", "events.jsonl", "daemon.json"):
        (state_dir / stale).unlink(missing_ok=True)
    argv = [sys.executable, "-m", "gameday.sandbox.daemon", "--state-dir", str(state_dir), "--timing", timing,
            "--link-delay-ms", str(link_delay_ms), "--routing-mode", routing_mode, "--snapshots", snapshots]
    for v in variants:
        argv += ["--variant", v]
    for f in checked.var_files:
        argv += ["--var-file", f]
    for text in tf_vars:
        argv += ["--var", text]
    log = open(state_dir / "daemon.log", "ab")  # noqa: SIM115 - handed to the daemon
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    log.close()
    seen = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            lines = _progress_lines(state_dir)
            for line in lines[seen:]:
                if progress:
                    progress(line)
            seen = len(lines)
            if any(line.endswith(" READY") for line in lines):
                return Endpoints.load(state_dir / "endpoints.json")
            failed = [line for line in lines if " FAILED: " in line]
            if failed or proc.poll() is not None:
                tail = _tail(state_dir / "daemon.log", 30)
                reason = failed[0].split(" FAILED: ", 1)[1] if failed else f"daemon exited with {proc.returncode}"
                raise SandboxError(f"sandbox failed to come up: {reason}\n--- daemon.log (tail) ---\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutExceeded("sandbox up", timeout)
            time.sleep(0.2)
    except BaseException:
        down(state_dir)
        raise


#: Start-up failures worth one more try on a fresh control plane, each with its reason.
UP_RETRYABLE = {
    r"terraform apply failed": "moto's in-memory models occasionally race under a parallel apply (seen: a "
                               "security group's default egress rule, a launch template 'already in use' "
                               "after the provider retried a slow create); a new control plane starts "
                               "empty, so a second apply is independent of the first",
}


def up_with_retry(state_dir: Path, **kwargs: Any) -> Endpoints:
    """``up`` with one more attempt on an allow-listed start-up failure (``up`` cleans up after each)."""
    from gameday.util.retry import do_with_retry

    return do_with_retry("sandbox up", lambda: up(state_dir, **kwargs), allow_list=UP_RETRYABLE,
                         attempts=2, sleep=1.0)


def down(state_dir: Path, timeout: float = 60.0) -> int:
    """Stop the daemon (it tears everything down); then kill whatever is still recorded."""
    state_dir = Path(state_dir)
    pid = daemon_pid(state_dir)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        poll_until(lambda: not pid_alive(pid), timeout)
        if pgid_alive(pid):
            kill_group(pid)
    return clean(state_dir)


def clean(state_dir: Path) -> int:
    """Kill every process a (possibly crashed) sandbox recorded; returns how many were alive."""
    n = kill_recorded(state_dir)
    (state_dir / "endpoints.json").unlink(missing_ok=True)
    return n


def admin(endpoints: Endpoints, path: str, method: str = "GET", timeout: float = 300.0) -> Any:
    """Call the daemon's admin API (status, reset) on loopback."""
    if not endpoints.admin_url:
        raise SandboxError("this sandbox has no admin endpoint")
    req = urllib.request.Request(endpoints.admin_url + path, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raise SandboxError(f"sandbox {path} failed: {exc.read().decode(errors='replace')[:500]}") from exc
    except OSError as exc:
        raise SandboxError(f"sandbox admin API unreachable at {endpoints.admin_url}: {exc}") from exc


def _progress_lines(state_dir: Path) -> list[str]:
    try:
        return (state_dir / "progress.log").read_text().splitlines()
    except FileNotFoundError:
        return []


def _tail(path: Path, n: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except FileNotFoundError:
        return ""
