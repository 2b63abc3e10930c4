"""Child processes that are always cleaned up: own process group, recorded in a pid directory.

Every process the sandbox starts is registered in ``<state_dir>/pids/`` before it can
outlive us, so ``gameday sandbox down`` (or the next ``up``) can kill what a crashed
controller left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from gameday import settings
from gameday.util.retry import poll_until

UNPRIVILEGED_USER = settings.text("GAMEDAY_UNPRIVILEGED_USER") or "postgres"


def running_as_root() -> bool:
    return os.geteuid() == 0


def unprivileged_ids(user: str = UNPRIVILEGED_USER) -> tuple[int, int]:
    """uid/gid to drop to when root (PostgreSQL refuses to run as root)."""
    try:
        pw = pwd.getpwnam(user)
    except KeyError:
        pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


#: psutil statuses of a process that has exited (a zombie only waits to be reaped): counted as dead
_GONE = (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)


def pid_alive(pid: int) -> bool:
    """True for a live, non-zombie process."""
    if pid <= 0:
        return False
    try:
        return psutil.Process(pid).status() not in _GONE
    except psutil.NoSuchProcess:  # ZombieProcess included
        return False
    except psutil.AccessDenied:
        return True  # it exists, we may not look at it


def pgid_alive(pgid: int) -> bool:
    """Whether any non-zombie process is left in process group pgid."""
    for proc in psutil.process_iter():
        try:
            # psutil has no process-group attribute: getpgid(2) answers for any pid
            if os.getpgid(proc.pid) == pgid and proc.status() not in _GONE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
        except psutil.AccessDenied:
            return True  # a member we may not inspect is still a member
    return False


def descendants(pid: int) -> list[psutil.Process]:
    """Live (non-zombie) descendants of pid, each parent before its children; [] when pid is gone.

    psutil only counts a process started after pid as its child, so a reused pid is never
    taken for a descendant; signalling a returned Process checks its start time again.
    """
    try:
        kids = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for kid in kids:
        try:
            if kid.status() not in _GONE:
                out.append(kid)
        except psutil.NoSuchProcess:
            continue
        except psutil.AccessDenied:
            out.append(kid)
    return out


def process_tree(root: int) -> list[int]:
    """root and all its live descendants (parents first).

    PostgreSQL children call setsid(), so signalling the postmaster's process group
    reaches only the postmaster: freezing or killing a node must walk the tree.
    """
    return [root, *(p.pid for p in descendants(root))]


def command_lines_containing(text: str) -> list[tuple[int, str]]:
    """(pid, command line) of every live process but this one whose command line contains text.

    A zombie or a process we may not inspect has no command line to match.
    """
    me = os.getpid()
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"]
        if proc.pid == me or not argv:
            continue
        cmd = " ".join(argv)
        if text in cmd:
            found.append((proc.pid, cmd))
    return found


def processes_mentioning(text: str) -> list[str]:
    """``pid: command line`` of every live process (but this one) whose command line contains text.

    Tests pass a unique temp path to prove that nothing they started is still running.
    """
    return [f"{pid}: {cmd}" for pid, cmd in command_lines_containing(text)]


def kill_group(pgid: int, sig: int = signal.SIGKILL, wait: float = 5.0) -> None:
    """Signal a whole process group and wait until nothing of it is left running."""
    try:
        os.killpg(pgid, signal.SIGCONT)
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return
    poll_until(lambda: not pgid_alive(pgid), wait, interval=0.02)
    if sig != signal.SIGKILL and pgid_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)


@dataclass
class Managed:
    """One started process: its name, Popen handle and process group."""

    name: str
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None


class ProcessRegistry:
    """Starts processes in their own process group and records them under ``state_dir/pids``."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(state_dir) / "pids"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Managed] = {}

    def spawn(self, name: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
              cwd: str | os.PathLike[str] | None = None, log: str | os.PathLike[str] | None = None,
              unprivileged: bool = False) -> Managed:
        """Start argv in a new session; as root and ``unprivileged``, drop to an unprivileged user."""
        if name in self.procs and self.procs[name].alive():
            raise RuntimeError(f"process {name} already running")
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        user: tuple[int, int] | None = unprivileged_ids() if unprivileged and running_as_root() else None
        popen = subprocess.Popen(
            list(argv), env=dict(env) if env is not None else None, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
            user=user[0] if user else None, group=user[1] if user else None,
        )
        if log:
            out.close()  # type: ignore[union-attr]
        m = Managed(name, popen)
        self.procs[name] = m
        self._record(name, popen.pid, argv)
        return m

    def adopt(self, name: str, pid: int, argv: Sequence[str] = ()) -> None:
        """Record a process started elsewhere (e.g. a daemon that forked) so cleanup finds it."""
        self._record(name, pid, argv)

    def _record(self, name: str, pid: int, argv: Sequence[str]) -> None:
        path = self.dir / f"{_safe(name)}.json"
        path.write_text(json.dumps({"name": name, "pid": pid, "pgid": pid, "argv": list(argv)}))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a process's whole group, reap it and forget it."""
        m = self.procs.pop(name, None)
        path = self.dir / f"{_safe(name)}.json"
        pgid = None
        if m is not None:
            pgid = m.pid
        elif path.exists():
            pgid = int(json.loads(path.read_text())["pgid"])
        if pgid is not None:
            kill_group(pgid, sig)
        if m is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                m.popen.wait(timeout=5)
        path.unlink(missing_ok=True)

    def forget(self, name: str) -> None:
        """Drop a process that has already exited (reaped) from the registry."""
        m = self.procs.pop(name, None)
        if m is not None:
            m.popen.poll()
        (self.dir / f"{_safe(name)}.json").unlink(missing_ok=True)

    def signal(self, name: str, sig: int) -> None:
        """Send sig to a process group without forgetting it (SIGSTOP/SIGCONT for freezing)."""
        m = self.procs.get(name)
        if m is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(m.pid, sig)

    def kill_all(self) -> None:
        """Kill everything this registry (or a crashed earlier one in the same dir) started."""
        for name in list(self.procs):
            self.kill(name)
        kill_recorded(self.dir.parent)


def kill_recorded(state_dir: str | os.PathLike[str]) -> int:
    """Kill every process group recorded under state_dir/pids; return how many were still alive."""
    d = Path(state_dir) / "pids"
    n = 0
    if not d.is_dir():
        return 0
    for path in d.glob("*.json"):
        try:
            rec = json.loads(path.read_text())
            pgid = int(rec["pgid"])
        except (ValueError, KeyError, OSError):
            path.unlink(missing_ok=True)
            continue
        if pgid_alive(pgid):
            n += 1
            kill_group(pgid)
        path.unlink(missing_ok=True)
    return n


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
