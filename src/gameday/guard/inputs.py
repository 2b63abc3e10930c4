"""Checks of command-line input that must fail before anything starts (one ConfigError each)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import NoReturn

from gameday.errors import ConfigError


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``gameday: error:`` line, its fix line, and exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"gameday: error: {self.prog}: {message}\n  fix: see '{self.prog} --help'\n")
        raise SystemExit(2)


def check_state_dir(path: Path, option: str = "--state-dir") -> None:
    """``path`` is (or can become) a directory this user can write, checked without creating it."""
    p = Path(path).absolute()
    if p.exists() and not p.is_dir():
        raise ConfigError("exists and is not a directory", file=str(p), field=option,
                          hint="pass a directory (it is created if missing)")
    probe = p
    for _ in range(64):  # bounded walk up to the first existing ancestor
        if probe.exists():
            break
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"{probe} is not a directory", file=str(p), field=option,
                          hint="pass a path under an existing directory")
    # os.access says yes to root everywhere (even /proc): try it, with a file removed at once
    try:
        fd, tmp = tempfile.mkstemp(prefix=".gameday-probe-", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise ConfigError(f"not writable by this user ({probe}: {exc.strerror})", file=str(p), field=option,
                          hint="pass a directory you can write, e.g. under your home or /tmp") from exc


def check_sandbox_up(state_dir: Path, variants: tuple[str, ...], link_delay_ms: float, timing: str) -> None:
    """``sandbox up`` options, before a daemon or control plane starts."""
    import math

    from gameday.sandbox.controller import Variant
    from gameday.sandbox.timing import PROFILES

    Variant.parse(list(variants), 0.0)
    if not math.isfinite(link_delay_ms) or link_delay_ms < 0 or link_delay_ms > 60_000:
        raise ConfigError(f"{link_delay_ms:g} ms is not a one-way delay", field="--link-delay-ms",
                          hint="use a number of milliseconds from 0 to 60000 (default 20)")
    if timing not in PROFILES:
        raise ConfigError(f"unknown timing profile {timing!r}", field="--timing",
                          hint=f"use one of: {', '.join(sorted(PROFILES))}")
    check_state_dir(state_dir)
