"""Locate the real binaries the harness drives (terraform, haproxy, PostgreSQL) and check versions.

Failing early with "install X >= N like this" beats a cryptic error halfway through a drill.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from gameday import settings
from gameday.errors import PrerequisiteMissing

MIN_TERRAFORM = (1, 5)
MIN_HAPROXY = (2, 4)
MIN_POSTGRES = (14,)
MIN_PROMETHEUS = (2, 37)
PG_TOOLS = ("initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_rewind")

TERRAFORM_HINT = ("install terraform >= 1.5 (https://developer.hashicorp.com/terraform/install, "
                  "e.g. `apt-get install terraform` from the HashiCorp apt repo) "
                  "or set GAMEDAY_TERRAFORM=/path/to/terraform")
HAPROXY_HINT = "install haproxy >= 2.4 (`apt-get install haproxy`) or set GAMEDAY_HAPROXY=/path/to/haproxy"
PROMETHEUS_HINT = ("install prometheus >= 2.37 with its promtool (`apt-get install prometheus`) or set "
                   "GAMEDAY_PROMETHEUS=/path/to/prometheus (promtool is looked for beside it, or GAMEDAY_PROMTOOL)")
PG_HINT = ("install PostgreSQL server >= 14 (`apt-get install postgresql`) or set GAMEDAY_PG_BIN to the "
           f"directory holding {', '.join(PG_TOOLS)}")


def parse_version(text: str) -> tuple[int, ...]:
    """First dotted version number in text, e.g. '2.6.12-1' → (2, 6, 12)."""
    m = re.search(r"(\d+(?:\.\d+)+|\d+)", text)
    if not m:
        return ()
    return tuple(int(p) for p in m.group(1).split("."))


def _fmt(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v)) or "unknown"


def _run_version(argv: list[str], what: str, hint: str) -> str:
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False,
                            env={**os.environ, "CHECKPOINT_DISABLE": "1"})
    except OSError as exc:
        raise PrerequisiteMissing(f"{what} ({argv[0]}: {exc.strerror})", hint) from exc
    except subprocess.TimeoutExpired as exc:
        msg = f"{what} ({argv[0]} did not answer `{' '.join(argv[1:])}` in 30 s)"
        raise PrerequisiteMissing(msg, hint) from exc
    if cp.returncode != 0:
        msg = f"{what} ({' '.join(argv)} exited {cp.returncode}: {cp.stderr.strip()[:200]})"
        raise PrerequisiteMissing(msg, hint)
    return cp.stdout + cp.stderr


def _locate(env_var: str, name: str, what: str, hint: str) -> Path:
    explicit = settings.text(env_var)
    if explicit:
        p = Path(explicit)
        if p.is_file() and os.access(p, os.X_OK):
            return p
        raise PrerequisiteMissing(f"{what} at ${env_var}={explicit} (not an executable file)", hint)
    found = shutil.which(name)
    if not found:
        raise PrerequisiteMissing(f"{what} (`{name}` is not on PATH)", hint)
    return Path(found)


def terraform_version(path: Path) -> tuple[int, ...]:
    out = _run_version([str(path), "version", "-json"], "terraform", TERRAFORM_HINT)
    try:
        data, _ = json.JSONDecoder().raw_decode(out[out.index("{"):])  # stderr warnings may follow
        return parse_version(data["terraform_version"])
    except (ValueError, KeyError) as exc:
        msg = f"terraform ({path}: unreadable `version -json` output)"
        raise PrerequisiteMissing(msg, TERRAFORM_HINT) from exc


def find_terraform() -> Path:
    """terraform from $GAMEDAY_TERRAFORM or PATH, version >= 1.5 (for -json UI, terraform_data, checks)."""
    path = _locate("GAMEDAY_TERRAFORM", "terraform", "terraform", TERRAFORM_HINT)
    v = terraform_version(path)
    if v < MIN_TERRAFORM:
        raise PrerequisiteMissing(f"terraform >= {_fmt(MIN_TERRAFORM)} ({path} is {_fmt(v)})", TERRAFORM_HINT)
    return path


def find_haproxy() -> Path:
    """haproxy from $GAMEDAY_HAPROXY, PATH or /usr/sbin, version >= 2.4 (runtime API for servers)."""
    try:
        path = _locate("GAMEDAY_HAPROXY", "haproxy", "haproxy", HAPROXY_HINT)
    except PrerequisiteMissing:
        if settings.text("GAMEDAY_HAPROXY") or not os.access("/usr/sbin/haproxy", os.X_OK):
            raise
        path = Path("/usr/sbin/haproxy")
    out = _run_version([str(path), "-v"], "haproxy", HAPROXY_HINT)
    m = re.search(r"HA-?Proxy version (\S+)", out)
    v = parse_version(m.group(1) if m else out)
    if v < MIN_HAPROXY:
        raise PrerequisiteMissing(f"haproxy >= {_fmt(MIN_HAPROXY)} ({path} is {_fmt(v)})", HAPROXY_HINT)
    return path


def _pg_dir_version(d: Path) -> tuple[int, ...] | None:
    if not all(os.access(d / t, os.X_OK) for t in PG_TOOLS):
        return None
    out = _run_version([str(d / "postgres"), "--version"], "postgres", PG_HINT)
    return parse_version(out.split(")", 1)[-1] if ")" in out else out)


def find_pg_bin() -> Path:
    """Directory with initdb, pg_ctl, postgres, pg_basebackup, pg_rewind of PostgreSQL >= 14.

    Looks at $GAMEDAY_PG_BIN, then PATH, then /usr/lib/postgresql/<newest>/bin (Debian keeps the
    server binaries off PATH).
    """
    explicit = settings.text("GAMEDAY_PG_BIN")
    if explicit:
        d = Path(explicit)
        v = _pg_dir_version(d)
        if v is None:
            missing = [t for t in PG_TOOLS if not os.access(d / t, os.X_OK)]
            msg = f"PostgreSQL tools {', '.join(missing)} in $GAMEDAY_PG_BIN={explicit}"
            raise PrerequisiteMissing(msg, PG_HINT)
        if v < MIN_POSTGRES:
            raise PrerequisiteMissing(f"PostgreSQL >= {_fmt(MIN_POSTGRES)} ({d} is {_fmt(v)})", PG_HINT)
        return d
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: parse_version(p), reverse=True)
    candidates.extend(Path(p) for p in debian)
    seen: list[str] = []
    for d in candidates:
        v = _pg_dir_version(d)
        if v is None:
            continue
        if v >= MIN_POSTGRES:
            return d
        seen.append(f"{d} ({_fmt(v)})")
    detail = f"too old: {', '.join(seen)}" if seen else "searched PATH and /usr/lib/postgresql/*/bin"
    raise PrerequisiteMissing(f"PostgreSQL >= {_fmt(MIN_POSTGRES)} server binaries ({detail})", PG_HINT)


def find_prometheus() -> Path:
    """prometheus from $GAMEDAY_PROMETHEUS or PATH, version >= 2.37 (file_sd, ms durations, /api/v1)."""
    path = _locate("GAMEDAY_PROMETHEUS", "prometheus", "prometheus", PROMETHEUS_HINT)
    out = _run_version([str(path), "--version"], "prometheus", PROMETHEUS_HINT)
    m = re.search(r"prometheus, version (\S+)", out)
    v = parse_version(m.group(1) if m else out)
    if v < MIN_PROMETHEUS:
        raise PrerequisiteMissing(f"prometheus >= {_fmt(MIN_PROMETHEUS)} ({path} is {_fmt(v)})", PROMETHEUS_HINT)
    return path


def find_promtool() -> Path:
    """promtool from $GAMEDAY_PROMTOOL, beside the prometheus found by find_prometheus, or PATH."""
    if settings.text("GAMEDAY_PROMTOOL"):
        return _locate("GAMEDAY_PROMTOOL", "promtool", "promtool", PROMETHEUS_HINT)
    beside = find_prometheus().parent / "promtool"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    return _locate("GAMEDAY_PROMTOOL", "promtool", "promtool", PROMETHEUS_HINT)
