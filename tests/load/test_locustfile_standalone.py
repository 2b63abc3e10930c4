"""The locustfile on a machine without gameday (a stock locust image): only the schema file beside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from gameday.load.runner import read_requests, read_run_info

REPO = Path(__file__).resolve().parents[2]


def _locust(image: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # a package named gameday that cannot be imported shadows the installed one
    shadow = tmp_path / "shadow" / "gameday"
    shadow.mkdir(parents=True, exist_ok=True)
    (shadow / "__init__.py").write_text("raise ImportError('gameday is not installed here')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow"), "GAMEDAY_RECORDS_DIR": str(tmp_path / "rec"),
           "GAMEDAY_TARGETS": json.dumps({"web": "http://127.0.0.1:9"}), "GAMEDAY_WRITE_SERVICES": "",
           "GAMEDAY_PROBE_RATE": "10", "GAMEDAY_CONNECT_TIMEOUT": "0.2", "GAMEDAY_READ_TIMEOUT": "0.2"}
    return subprocess.run([sys.executable, "-m", "locust", "-f", str(image / "locustfile.py"), "--headless",
                           "-u", "1", "-r", "1", "-t", "4s", "--only-summary"],
                          env=env, cwd=tmp_path, timeout=60, capture_output=True, text=True, check=False)


def test_locustfile_journals_the_schema_without_gameday(tmp_path: Path) -> None:
    image = tmp_path / "image"
    image.mkdir()
    shutil.copy(REPO / "loadtests" / "locustfile.py", image)
    shutil.copy(REPO / "src" / "gameday" / "util" / "journal_schema.py", image)
    proc = _locust(image, tmp_path)
    records = read_requests(tmp_path / "rec" / "requests.jsonl")
    assert len(records) >= 3, proc.stderr[-2000:]
    assert all(r.service == "web" and r.kind == "read" and r.outcome == "failed" and r.status is None
               for r in records), records[:3]
    info = read_run_info(tmp_path / "rec" / "run.json")
    assert info.role == "local" and info.journals == ["requests.jsonl", "ledger.jsonl"] and info.probe_rate == 10.0

    # without the schema file: one clear line and exit 2 before any load
    (image / "journal_schema.py").unlink()
    shutil.rmtree(tmp_path / "rec")
    proc = _locust(image, tmp_path)
    assert proc.returncode == 2
    assert "journal_schema.py is not beside this file" in proc.stderr
    assert not (tmp_path / "rec" / "requests.jsonl").exists()
