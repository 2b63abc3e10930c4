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



def test_bad_sandbox_var_file_is_a_usage_error_naming_file_and_field(tmp_path: Path) -> None:
    """A typo in a drill's var file fails the session at once, before any sandbox starts."""
    (tmp_path / "test_nothing.py").write_text("def test_x():\n    assert 1 + 1 == 2\n")
    bad = tmp_path / "typo.tfvars"
    bad.write_text("recovery_trafic_dial = 0\n")
    for args, env in ((["--sandbox-var-file", str(bad)], {}), ([], {"GAMEDAY_SANDBOX_VAR_FILES": str(bad)})):
        proc = _pytest(tmp_path, *args, **env)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == pytest.ExitCode.USAGE_ERROR, out
        assert f"{bad}: field 'recovery_trafic_dial'" in out and "did you mean 'recovery_traffic_dial'" in out
        assert "Traceback" not in out


SHOW_VAR_FILES = textwrap.dedent("""
    from gameday.pytest_plugin import sandbox_var_files

    def test_show(pytestconfig):
        print("VAR_FILES=" + repr(sandbox_var_files(pytestconfig)))
""")


def test_sandbox_var_files_from_option_or_environment(tmp_path: Path) -> None:
    """--sandbox-var-file (repeatable) wins over GAMEDAY_SANDBOX_VAR_FILES (os.pathsep-separated)."""
    (tmp_path / "test_show.py").write_text(SHOW_VAR_FILES)
    a, b = tmp_path / "a.tfvars", tmp_path / "b.tfvars"
    a.write_text("recovery_traffic_dial = 0\n")
    b.write_text("health_check_interval = 30\n")
    cases = [
        ([], {"GAMEDAY_SANDBOX_VAR_FILES": f"{a}{os.pathsep}{b}"}, (str(a), str(b))),
        (["--sandbox-var-file", "b.tfvars"], {"GAMEDAY_SANDBOX_VAR_FILES": str(a)}, (str(b),)),
        ([], {}, ()),
    ]
    for args, env, want in cases:
        proc = _pytest(tmp_path, "-s", *args, **{"GAMEDAY_SANDBOX_VAR_FILES": "", **env})
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out
        assert f"VAR_FILES={want!r}" in out, out


LANE_PROBE = textwrap.dedent("""
    import os
    from pathlib import Path

    import pytest

    OUT = Path(os.environ["PROBE_DIR"])

    def _record(kind, name):
        (OUT / f"{kind}-{name}").write_text(os.environ.get("PYTEST_XDIST_WORKER", "master"))

    @pytest.mark.sandbox
    @pytest.mark.parametrize("n", range(4))
    def test_sandbox(n):
        _record("sandbox", n)

    @pytest.mark.drill
    def test_drill():
        _record("sandbox", "drill")

    @pytest.mark.parametrize("n", range(6))
    def test_unit(n):
        _record("unit", n)
""")


def test_sandbox_and_drill_tests_share_one_worker(tmp_path: Path) -> None:
    """Under ``-n 2 --dist loadgroup`` (the test command) every sandbox test runs on one worker:
    two busy sandboxes on two cores starve each other. Would fail if xdist ignored the group."""
    (tmp_path / "test_lane.py").write_text(LANE_PROBE)
    out = tmp_path / "out"
    out.mkdir()
    proc = _pytest(tmp_path, "-n", "2", "--dist", "loadgroup", "-p", "no:randomly", PROBE_DIR=str(out))
    stdout, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, stdout
    workers = {p.name: p.read_text() for p in out.iterdir()}
    assert len(workers) == 11, workers
    lane = {w for name, w in workers.items() if name.startswith("sandbox-")}
    assert len(lane) == 1 and lane != {"master"}, workers
