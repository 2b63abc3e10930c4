"""The pytest plugin as users meet it: real pytest subprocesses, not the in-process API."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gameday.util.retry import wait_until

TEARDOWN_PROBE = textwrap.dedent("""
    import os, time
    from pathlib import Path

    import pytest

    OUT = Path(os.environ["PROBE_DIR"])

    @pytest.fixture
    def resource():
        yield
        (OUT / "teardown-ran").write_text("yes")

    def test_long(resource):
        (OUT / "started").write_text(str(os.getpid()))
        time.sleep(60)
""")


def _pytest(tmp_path: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                            cwd=tmp_path, env={**os.environ, **env}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_sigterm_runs_fixture_teardown(tmp_path: Path) -> None:
    """A CI timeout's SIGTERM must not leave sandboxes behind: teardown runs as on Ctrl-C."""
    (tmp_path / "test_probe.py").write_text(TEARDOWN_PROBE)
    proc = _pytest(tmp_path, "test_probe.py", PROBE_DIR=str(tmp_path))
    try:
        wait_until("probe test started", lambda: (tmp_path / "started").exists(), timeout=60)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (tmp_path / "teardown-ran").exists(), out
    assert time.monotonic() - t0 < 30
    assert proc.returncode != 0, out          # interrupted, not passed


@pytest.mark.parametrize(("args", "fix"), [
    (["--target", "aws"], "--aws-topology FILE"),
    (["--target", "aws", "--aws-topology", "t.json", "-n", "2", "-m", "drill"], "drop -n/--numprocesses"),
])
def test_usage_errors_name_the_fix(tmp_path: Path, args: list[str], fix: str) -> None:
    (tmp_path / "test_nothing.py").write_text("def test_x():\n    assert 1 + 1 == 2\n")
    proc = _pytest(tmp_path, *args)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert fix in out
    assert "Traceback" not in out


@pytest.mark.parametrize(("env", "fix"), [
    ({"GAMEDAY_ROUTING_MODE": "dns"}, "--routing-mode (or GAMEDAY_ROUTING_MODE) is 'dns': use one of"),
    ({"GAMEDAY_TIMING": "slow"}, "--timing (or GAMEDAY_TIMING) is 'slow': use one of fast, aws"),
])
def test_bad_environment_defaults_are_usage_errors(tmp_path: Path, env: dict[str, str], fix: str) -> None:
    (tmp_path / "test_nothing.py").write_text("def test_x():\n    assert 1 + 1 == 2\n")
    proc = _pytest(tmp_path, **env)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
    assert fix in out and "Traceback" not in out

