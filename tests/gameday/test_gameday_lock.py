"""The target lock: a live holder is refused (named), a dead holder's lock is taken over, a crash frees it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gameday.gameday.lock import TargetBusy, TargetLock

HOLD = """
import sys, time
from pathlib import Path
from gameday.gameday.lock import TargetLock
lock = TargetLock(Path(sys.argv[1]), "sandbox-x", plan="holder").acquire()
print("held", flush=True)
time.sleep(60)
"""


def _holder(tmp_path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_live_holder_is_refused_and_named(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    try:
        with pytest.raises(TargetBusy) as info:
            TargetLock(tmp_path, "sandbox-x", plan="second").acquire()
        assert f"pid {proc.pid}" in str(info.value) and "'holder'" in str(info.value)
        assert info.value.exit_code == 75
    finally:
        proc.kill()
        proc.wait(timeout=10)


def test_lock_of_a_killed_holder_is_taken_over(tmp_path: Path) -> None:
    proc = _holder(tmp_path)
    proc.send_signal(signal.SIGKILL)  # a crash: no cleanup ran, the record stays in the file
    proc.wait(timeout=10)
    lock = TargetLock(tmp_path, "sandbox-x", plan="after")
    assert lock.holder() is not None and lock.holder()["pid"] == proc.pid  # type: ignore[index]
    with lock:
        assert lock.took_over is not None and lock.took_over["pid"] == proc.pid
        assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    assert lock.path.read_text() == ""  # released: empty record


def test_stale_record_from_dead_pid(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=10)
    lock = TargetLock(tmp_path, "aws-staging")
    lock.path.parent.mkdir(parents=True, exist_ok=True)
    lock.path.write_text(json.dumps({"pid": dead.pid, "plan": "old", "started": "earlier"}))
    with lock:
        assert lock.took_over is not None and lock.took_over["plan"] == "old"


def test_one_process_two_plans_same_target(tmp_path: Path) -> None:
    with TargetLock(tmp_path, "sandbox-x", plan="a"):
        t0 = time.monotonic()
        with pytest.raises(TargetBusy):
            TargetLock(tmp_path, "sandbox-x", plan="b").acquire()
        assert time.monotonic() - t0 < 1.0  # refused at once, never waits
        with TargetLock(tmp_path, "sandbox-y", plan="c"):  # another target is free
            pass
