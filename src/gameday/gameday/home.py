"""Where game days keep their state (history database, locks, allure history), and which code ran.

The gameday home is ``$GAMEDAY_HOME``, else ``~/.gameday`` (the sandboxes' default state lives
there too). A history row records the git revision of gameday and of the Terraform it applied, so
a regression can be tied to a change.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

from gameday import resources, settings


def gameday_home() -> Path:
    home = settings.home()
    home.mkdir(parents=True, exist_ok=True)
    return home


def default_history_url() -> str:
    return f"sqlite:///{gameday_home() / 'history.db'}"


def git_revision(path: Path | None = None) -> str | None:
    """Last commit touching ``path`` (default: the whole checkout; ``+dirty`` when it has uncommitted
    changes); None outside a git checkout (an installed wheel)."""
    root = resources.checkout_root()
    if root is None:
        return None
    target = path if path is not None else root

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                 timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    rev = git("log", "-1", "--format=%h", "--", str(target))
    if not rev:
        return None
    dirty = git("status", "--porcelain", "--", str(target))
    return f"{rev}+dirty" if dirty else rev


def human_time(ts: float | datetime | None, tz: str | None = None) -> str:
    """A wall-clock instant as people read it (``2025-01-06 06:00:03 UTC``), never a raw epoch."""
    if ts is None:
        return "-"
    d = ts if isinstance(ts, datetime) else datetime.fromtimestamp(float(ts), tz=UTC)
    if d.tzinfo is None:
        d = d.replace(tzinfo=UTC)
    if tz:
        from zoneinfo import ZoneInfo

        d = d.astimezone(ZoneInfo(tz))
    return d.strftime("%Y-%m-%d %H:%M:%S %Z")


def duration(seconds: float | None) -> str:
    """``1 h 02 min``, ``3 min 05 s``, ``12.3 s``."""
    if seconds is None:
        return "-"
    s = float(seconds)
    if s < 60:
        return f"{s:.1f} s"
    m, sec = divmod(round(s), 60)
    if m < 60:
        return f"{m} min {sec:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"
