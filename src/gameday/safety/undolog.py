"""The undo log: one fsync'd JSON line per injection (written before it), closed when undone.

Lines are ``{"op": "open", "id", "t", "action", "resource", "region", "what", "undo": {...}}``,
``{"op": "update", "id", "undo": {...}}`` (e.g. the FIS experiment id once started) and
``{"op": "close", "id", "by"}``. ``undo["kind"]`` names the AWS call that undoes the fault
(see ``gameday.safety.replay``). Writers append to every file of ``GAMEDAY_UNDO_LOGS``
(``os.pathsep``-separated; the run folder's copy and the target's), else to the target's
default folder, so a plain ``chaos run`` is recorded too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gameday import settings
from gameday.errors import GamedayError

ENV_LOGS = "GAMEDAY_UNDO_LOGS"
ENV_DIR = "GAMEDAY_UNDO_DIR"
UNDO_SUBDIR = "undo"


class UndoLogError(GamedayError):
    """The undo log could not be written: the fault must not be injected."""


@dataclass
class Entry:
    """One injection as the log tells it (updates merged, closed or not)."""

    id: str
    t: float
    action: str
    resource: str
    region: str | None
    what: str
    undo: dict[str, Any]
    closed_by: str | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.closed_by is None

    def describe(self) -> str:
        return f"{self.action} on {self.resource}" + (f" ({self.region})" if self.region else "")


def sandbox_undo_dir(state_dir: str | os.PathLike[str]) -> Path:
    """A sandbox's undo folder: inside its state dir, so abort and reset find it."""
    return Path(state_dir) / UNDO_SUBDIR


def aws_undo_dir() -> Path:
    """Real AWS: under the gameday home (``$GAMEDAY_HOME``, else ``~/.gameday``)."""
    from gameday.gameday.home import gameday_home

    return gameday_home() / UNDO_SUBDIR / "aws"


def default_undo_dir() -> Path:
    """Where a plain ``chaos run`` records: ``$GAMEDAY_UNDO_DIR``, else by the endpoint it talks to."""
    given = settings.path(ENV_DIR)
    if given:
        return given
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    host = urlparse(url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1"):
        from gameday.gameday.home import gameday_home

        return gameday_home() / UNDO_SUBDIR / f"sandbox-{urlparse(url).port}"
    return aws_undo_dir()


def log_paths() -> list[Path]:
    """The files this process appends to (from ``GAMEDAY_UNDO_LOGS``, else a default per process)."""
    given = [Path(p) for p in settings.paths(ENV_LOGS)]
    if given:
        return given
    return [default_undo_dir() / f"adhoc-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.jsonl"]


def _append(path: Path, record: Mapping[str, Any]) -> None:
    """Append one line and fsync it (file and, when new, its folder) under an exclusive lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    line = (json.dumps(record, separators=(",", ":"), default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)
    if new:
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write(record: Mapping[str, Any], paths: Iterable[Path] | None = None) -> None:
    """Write a record to every log file; any failure is an UndoLogError (nothing may be injected)."""
    targets = list(paths) if paths is not None else log_paths()
    for p in targets:
        try:
            _append(p, record)
        except OSError as exc:
            raise UndoLogError(f"cannot write the undo log {p}: {exc.strerror or exc}") from exc


def record(action: str, resource: str, undo: Mapping[str, Any], *, what: str = "", region: str | None = None,
           paths: Iterable[Path] | None = None, **extra: Any) -> str:
    """Write an open entry BEFORE the injection; returns its id (for ``update`` / ``close``)."""
    entry_id = uuid.uuid4().hex
    write({"op": "open", "id": entry_id, "t": time.time(), "pid": os.getpid(), "action": action,
           "resource": resource, "region": region, "what": what or action, "undo": dict(undo), **extra}, paths)
    return entry_id


def update(entry_id: str, undo: Mapping[str, Any], paths: Iterable[Path] | None = None) -> None:
    """Add what the injection returned (e.g. the FIS experiment id) to an open entry's undo."""
    write({"op": "update", "id": entry_id, "t": time.time(), "undo": dict(undo)}, paths)


def close(entry_id: str, by: str, paths: Iterable[Path] | None = None) -> None:
    write({"op": "close", "id": entry_id, "t": time.time(), "by": by}, paths)


def read(paths: Iterable[Path]) -> list[Entry]:
    """Entries of the given files (open order; a torn last line is skipped), updates merged, de-duplicated."""
    entries: dict[str, Entry] = {}
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            for raw in p.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    rec = json.loads(raw)
                except json.JSONDecodeError:
                    continue
                if not isinstance(rec, dict) or "id" not in rec:
                    continue
                eid, op = str(rec["id"]), rec.get("op")
                if op == "open" and eid not in entries:
                    known = {"op", "id", "t", "action", "resource", "region", "what", "undo"}
                    entries[eid] = Entry(eid, float(rec.get("t", 0)), str(rec.get("action", "?")),
                                         str(rec.get("resource", "?")), rec.get("region"),
                                         str(rec.get("what", "")), dict(rec.get("undo") or {}), source=str(p),
                                         extra={k: v for k, v in rec.items() if k not in known})
                elif op == "update" and eid in entries:
                    entries[eid].undo.update(rec.get("undo") or {})
                elif op == "close" and eid in entries:
                    entries[eid].closed_by = str(rec.get("by", "closed"))
    return sorted(entries.values(), key=lambda e: e.t)


def files_in(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.jsonl")) if directory.is_dir() else []


def open_entries(paths: Iterable[Path]) -> list[Entry]:
    return [e for e in read(paths) if e.open]


def close_matching(kind: str, match: Mapping[str, Any], by: str, paths: Iterable[Path] | None = None) -> list[str]:
    """Close the open entries of ``kind`` whose undo carries ``match`` (a rollback did their undo)."""
    targets = list(paths) if paths is not None else log_paths()
    closed = []
    for e in open_entries(targets):
        if e.undo.get("kind") == kind and all(e.undo.get(k) == v for k, v in match.items()):
            close(e.id, by, targets)
            closed.append(e.id)
    return closed
