"""The allure HTML report (Allure 3, from npm): find the CLI, generate, serve; used by ``gameday report`` and game days.

Allure 3 is the npm package ``allure`` pinned in the repository's ``package.json`` and installed
into a repo-local ``node_modules`` (``npm ci``/``npm install`` at the repo root). Its CLI is
``allure generate <results> -o <out>``. The generated page embeds a Google Analytics tag; we
strip it so opening a report never sends anything off the machine.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gameday import resources, settings
from gameday.drill.report import categories
from gameday.errors import CommandFailed, ConfigError, PrerequisiteMissing, TimeoutExceeded
from gameday.util.net import LOOPBACK, assert_loopback

ALLURE_PACKAGE = "allure"
ALLURE_MAJOR = "3"
GENERATE_TIMEOUT_S = 300.0
NPM_HINT = "run `npm ci` (or `npm install`) in the repository root; package.json pins the allure package"
NODE_HINT = "install Node.js >= 20 and npm (Debian: apt-get install -y nodejs npm)"

_ANALYTICS = [
    re.compile(r'<script[^>]*src="https://www\.googletagmanager\.com/[^"]*"[^>]*>\s*</script>\s*', re.I),
    re.compile(r"<script>(?:(?!</script>)[\s\S])*?\bgtag\((?:(?!</script>)[\s\S])*?</script>\s*", re.I),
]


def repo_candidates() -> list[Path]:
    """Folders that may hold the repo's package.json: the cwd and its parents, then this checkout (if any)."""
    here = resources.checkout_root()
    cwd = Path.cwd().resolve()
    out = [cwd, *cwd.parents, *([here] if here is not None else [])]
    seen: list[Path] = []
    for p in out:
        if p not in seen:
            seen.append(p)
    return seen


def find_allure_cli() -> list[str]:
    """argv prefix that runs Allure 3: ``[node, .../node_modules/allure/cli.js]``.

    ``GAMEDAY_ALLURE_CLI`` may point at another cli.js.
    """
    node = shutil.which("node")
    if node is None:
        raise PrerequisiteMissing("node (Node.js, needed by the Allure 3 report generator)", NODE_HINT)
    override = settings.text("GAMEDAY_ALLURE_CLI")
    if override:
        if not Path(override).is_file():
            raise ConfigError(f"GAMEDAY_ALLURE_CLI points at {override}, which does not exist",
                              field="GAMEDAY_ALLURE_CLI", hint="unset it to use the repo's node_modules")
        return [node, override]
    for root in repo_candidates():
        cli = root / "node_modules" / ALLURE_PACKAGE / "cli.js"
        if cli.is_file():
            return [node, str(cli)]
    where = next((r for r in repo_candidates() if (r / "package.json").is_file()), None)
    hint = NPM_HINT if shutil.which("npm") else f"{NODE_HINT}; then {NPM_HINT}"
    if where is not None:
        hint += f" (cd {where} && npm ci)"
    raise PrerequisiteMissing("the Allure 3 report generator (npm package 'allure' in node_modules)", hint)


def allure_version(cli: list[str] | None = None) -> str:
    cli = cli or find_allure_cli()
    proc = run_allure([*cli, "--version"], timeout=60)
    return proc.stdout.strip().splitlines()[-1].strip() if proc.stdout.strip() else ""


def run_allure(argv: list[str], *, timeout: float,
         cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ALLURE_NO_ANALYTICS": "true", "NO_COLOR": "1", "FORCE_COLOR": "0"}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        raise TimeoutExceeded(f"allure ({' '.join(argv[1:3])})", timeout) from exc
    if proc.returncode != 0:
        raise CommandFailed(argv, proc.returncode, proc.stderr or proc.stdout,
                            summary="allure report generation failed")
    return proc


def strip_analytics(report_dir: str | os.PathLike[str]) -> int:
    """Remove the analytics tag allure 3 embeds in its HTML; returns how many files changed."""
    changed = 0
    for page in Path(report_dir).rglob("*.html"):
        text = page.read_text(encoding="utf-8", errors="replace")
        new = text
        for pattern in _ANALYTICS:
            new = pattern.sub("", new)
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed += 1
    return changed


def generate_report(results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], *,
                    name: str = "gameday drills", timeout: float = GENERATE_TIMEOUT_S) -> Path:
    """Build the HTML report from allure results; returns the report's ``index.html``."""
    results = Path(results_dir).resolve()
    out = Path(out_dir).resolve()
    if not results.is_dir():
        raise ConfigError("allure results folder not found", file=str(results), field="--results",
                          hint="run drills with pytest --alluredir=<dir> first, or pass --results")
    if not any(results.glob("*-result.json")):
        raise ConfigError("no test results (*-result.json) in this folder", file=str(results),
                          field="--results",
                          hint="point --results at the folder the drills wrote with pytest --alluredir=DIR")
    if out.exists() and any(out.iterdir()):
        if not (out / "index.html").is_file():
            raise ConfigError("output folder is not empty and is not an allure report; "
                              "refusing to overwrite it", file=str(out), field="--out",
                              hint="choose an empty or new folder")
        shutil.rmtree(out)  # an older report: replace it whole so no stale data file survives
    cli = find_allure_cli()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gameday-allurerc-") as tmp:
        # Allure 3's report takes categories from its config, not from results/categories.json
        # (that file only feeds the allure-2-style plugins): hand it the same rules.
        config = Path(tmp) / "allurerc.json"
        config.write_text(json.dumps({"name": name, "categories": {"rules": categories_for(results)}}),
                          encoding="utf-8")
        run_allure([*cli, "generate", str(results), "-o", str(out), "--config", str(config)],
             timeout=timeout, cwd=tmp)
    index = out / "index.html"
    if not index.is_file():
        raise CommandFailed([*cli, "generate", str(results), "-o", str(out)], 0, "",
                            summary=f"allure finished but wrote no {index}")
    strip_analytics(out)
    return index


def categories_for(results: Path) -> list[dict[str, Any]]:
    """The run's own categories.json when it has a valid one, else gameday's default rules."""
    path = results / "categories.json"
    if path.is_file():
        try:
            rules = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"invalid categories.json: {exc}", file=str(path),
                              hint="fix or delete it (gameday.drill.report.write_categories "
                                   "writes a valid one)") from exc
        if isinstance(rules, list) and all(isinstance(r, dict) and r.get("name") for r in rules):
            return rules
        raise ConfigError("categories.json must be a list of {name, matchedStatuses, messageRegex} objects",
                          file=str(path), hint="fix or delete it")
    return categories()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # stdlib's signature
        return


@contextmanager
def serve_report(report_dir: str | os.PathLike[str], port: int = 0, host: str = LOOPBACK) -> Iterator[str]:
    """Serve a report folder over HTTP on loopback (the report fetches its data files, so
    ``file://`` does not work); yields the URL, stops the server on exit."""
    assert_loopback(host)
    handler = functools.partial(_QuietHandler, directory=str(report_dir))
    server = http.server.ThreadingHTTPServer((host, port), handler)
    thread = threading.Thread(target=server.serve_forever, name="report-server", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


__all__ = ["allure_version", "categories_for", "find_allure_cli", "generate_report", "repo_candidates",
           "run_allure", "serve_report", "strip_analytics"]
