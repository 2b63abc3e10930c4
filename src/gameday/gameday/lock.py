"""One game day per target at a time: a lock file that survives crashes.

The lock is ``flock`` on ``<home>/locks/<target>.lock``: the kernel drops it when the holder
dies, however it dies (SIGKILL, OOM, power), so a crash never leaves a target locked. The file
also records the holder (pid, plan, start time) so a refusal says who holds it; a file left by a
dead process is simply taken over. ``flock`` is per host: a Kubernetes CronJob serialises its
runs with ``concurrencyPolicy: Forbid`` instead (deploy/kubernetes).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from gameday.errors import GamedayError


class TargetBusy(GamedayError):
    """Raised when another game day holds the target's lock."""

    exit_code = 75  # EX_TEMPFAIL: try again later


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TargetLock:
    """``with TargetLock(dir, key, plan=...)``: held for the block, or TargetBusy at once."""

    def __init__(self, directory: Path, key: str, **info: Any) -> None:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_")[:150] or "target"
        self.path = Path(directory) / f"{safe}.lock"
        self.key = key
        self.info = info
        self.fd: int | None = None
        self.took_over: dict[str, Any] | None = None  # the dead holder's record, when one was left

    def holder(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text() or "null") or {}
        except (OSError, ValueError):
            return None
        return data or None

    def acquire(self) -> TargetLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            who = self.holder() or {}
            pid = who.get("pid")
            since = who.get("started", "?")
            raise TargetBusy(f"target {self.key} is busy: game day {who.get('plan', '?')!r} (pid {pid}, since "
                             f"{since}) holds {self.path}; wait for it to finish") from None
        previous = self.holder()
        if previous and isinstance(previous.get("pid"), int) and previous["pid"] != os.getpid():
            # a record without the kernel lock: its process died without cleaning up
            self.took_over = previous if not _pid_alive(previous["pid"]) else {**previous, "note": "pid reused"}
        record = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "target": self.key,
                  **self.info}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)  # an empty file: nobody holds it
        with contextlib.suppress(OSError):
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> TargetLock:
        return self.acquire()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.release()
