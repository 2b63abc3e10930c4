"""The psutil-based process scans, on real processes: a sleep child and grandchild, zombies, groups."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from gameday.gameday.engine import _signal_chaos_children
from gameday.safety.trials import leftovers
from gameday.util.procs import (
    command_lines_containing,
    descendants,
    kill_group,
    kill_recorded,
    pgid_alive,
    pid_alive,
    process_tree,
    processes_mentioning,
)
from gameday.util.retry import wait_until

# sh -> sh -> sleep: the outer shell is the child, the inner one and its sleep the grandchildren
TREE = "sh -c 'sleep 300; :' & wait"


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A process group of three: the outer sh (named after tmp_path as its $0), an inner sh and a sleep."""
    proc = subprocess.Popen(["sh", "-c", TREE, str(tmp_path)], start_new_session=True)
    wait_until("the grandchild sleep", lambda: len(process_tree(proc.pid)) == 3, timeout=10, interval=0.02)
    yield proc
    kill_group(proc.pid)
    proc.wait(timeout=5)


def _zombie(*, new_session: bool = False) -> subprocess.Popen[bytes]:
    """A child that has exited and is not reaped yet."""
    proc = subprocess.Popen(["true"], start_new_session=new_session)
    wait_until("the child to exit", lambda: not pid_alive(proc.pid), timeout=10, interval=0.02)
    return proc


def test_process_tree_lists_parents_before_children(tree: subprocess.Popen[bytes]) -> None:
    pids = process_tree(tree.pid)
    assert pids[0] == tree.pid
    kids = descendants(tree.pid)
    assert [p.pid for p in kids] == pids[1:]
    assert kids[0].ppid() == tree.pid and kids[1].ppid() == kids[0].pid
    assert kids[1].name() == "sleep"


def test_process_tree_of_a_gone_pid_is_just_that_pid() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert process_tree(proc.pid) == [proc.pid]
    assert descendants(proc.pid) == []


def test_zombies_count_as_dead() -> None:
    zombie = _zombie()
    try:
        assert os.path.exists(f"/proc/{zombie.pid}")  # still in the process table, not reaped
        assert not pid_alive(zombie.pid)
        assert zombie.pid not in [p.pid for p in descendants(os.getpid())]
    finally:
        zombie.wait()


def test_pid_alive() -> None:
    proc = subprocess.Popen(["sleep", "300"])
    try:
        assert pid_alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert not pid_alive(proc.pid)
    assert not pid_alive(0) and not pid_alive(-1)


def test_pgid_alive_and_kill_group_take_the_whole_group(tree: subprocess.Popen[bytes]) -> None:
    pids = process_tree(tree.pid)
    assert pgid_alive(tree.pid)
    kill_group(tree.pid)
    tree.wait(timeout=5)
    assert not pgid_alive(tree.pid)
    assert not [p for p in pids if pid_alive(p)]


def test_a_group_of_only_a_zombie_is_not_alive() -> None:
    zombie = _zombie(new_session=True)
    try:
        assert not pgid_alive(zombie.pid)
    finally:
        zombie.wait()


def test_kill_recorded_kills_a_recorded_group(tree: subprocess.Popen[bytes], tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "pids").mkdir(parents=True)
    (state / "pids" / "tree.json").write_text(json.dumps({"name": "tree", "pid": tree.pid, "pgid": tree.pid}))
    pids = process_tree(tree.pid)
    assert kill_recorded(state) == 1
    tree.wait(timeout=5)
    assert not [p for p in pids if pid_alive(p)]
    assert not list((state / "pids").iterdir())


def test_processes_mentioning_and_leftovers(tree: subprocess.Popen[bytes], tmp_path: Path) -> None:
    found = processes_mentioning(str(tmp_path))
    assert found == [f"{tree.pid}: sh -c {TREE} {tmp_path}"]
    assert leftovers(tmp_path) == [f[:len(str(tree.pid)) + 2 + 120] for f in found]
    kill_group(tree.pid)
    tree.wait(timeout=5)
    assert processes_mentioning(str(tmp_path)) == []
    assert leftovers(tmp_path) == []


def test_this_process_never_mentions_itself() -> None:
    me = " ".join(psutil.Process().cmdline())
    assert os.getpid() not in [pid for pid, _ in command_lines_containing(me)]


def test_signal_chaos_children_signals_only_chaostoolkit_children(tmp_path: Path) -> None:
    chaos = subprocess.Popen(["sh", "-c", "sleep 300; :", "chaostoolkit"])
    other = subprocess.Popen(["sh", "-c", "sleep 300; :", str(tmp_path)])
    try:
        assert _signal_chaos_children(signal.SIGTERM) == 1
        assert chaos.wait(timeout=5) == -signal.SIGTERM
        assert other.poll() is None
    finally:
        for p in (chaos, other):
            p.kill()
            p.wait()
