"""Every bad input, as a user meets it: a real subprocess, exit 2 (pytest: its usage-error code 4),
one ``error`` line (plus its ``fix:`` line) naming the file or option and the field, no traceback,
and nothing left running. The 13 ``sandbox up --var-file/--var`` cases of
tests/fidelity/test_sandbox_vars_cli.py belong to the same table (loaded from there, not copied).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gameday.util.procs import processes_mentioning

REPO = Path(__file__).resolve().parents[2]
OK_CONFIG = ("accounts: ['123456789012']\nregions: [eu-south-1, eu-central-1]\n"
             "scope_tag: {key: 'gameday:stack', value: gameday}\n")


@dataclass
class Case:
    argv: list[str]                    # after the program (gameday / pytest / locust)
    expect: list[str]                  # substrings of the error line(s)
    prog: str = "gameday"
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)   # relative name -> content, made in tmp


def _vars_cases() -> dict[str, Callable[[Path], Case]]:
    spec = importlib.util.spec_from_file_location("_vars_cli", REPO / "tests/fidelity/test_sandbox_vars_cli.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def make(fn: Callable[[Path], tuple[list[str], str | None, str, str]]) -> Callable[[Path], Case]:
        def build(d: Path) -> Case:
            args, file, message, fix = fn(d)
            return Case(["sandbox", "up", "--state-dir", "{tmp}/state", *args],
                        [message, fix] + ([file] if file else []))
        return build
    return {f"sandbox up: {k}": make(v) for k, v in mod.BAD_INPUT.items()}


def _c(*argv: str, expect: list[str], **kw: object) -> Callable[[Path], Case]:
    return lambda d: Case(list(argv), expect, **kw)  # type: ignore[arg-type]


EXPERIMENT_NO_METHOD = '{"title": "x"}'
EXPERIMENT_NO_PROVIDER = '{"title": "x", "method": [{"type": "action", "name": "a"}]}'
CASES: dict[str, Callable[[Path], Case]] = {
    **_vars_cases(),
    "sandbox up --variant bogus": _c("sandbox", "up", "--state-dir", "{tmp}/state", "--variant", "bogus",
                                     expect=["--variant", "bogus", "async-standby"]),
    "sandbox up --link-delay-ms -5": _c("sandbox", "up", "--state-dir", "{tmp}/state", "--link-delay-ms", "-5",
                                        expect=["--link-delay-ms", "0 to 60000"]),
    "sandbox up --link-delay-ms nan": _c("sandbox", "up", "--state-dir", "{tmp}/state", "--link-delay-ms", "nan",
                                         expect=["--link-delay-ms"]),
    "sandbox up --link-delay-ms text": _c("sandbox", "up", "--link-delay-ms", "fast", expect=["--link-delay-ms"]),
    "sandbox up --state-dir unwritable": _c("sandbox", "up", "--state-dir", "/proc/gameday-nope/x",
                                            expect=["--state-dir", "not writable"]),
    "sandbox up --state-dir under a file": _c("sandbox", "up", "--state-dir", "{tmp}/f.txt/x",
                                              expect=["--state-dir", "not a directory"], files={"f.txt": "x"}),
    "sandbox up --state-dir is a file": _c("sandbox", "up", "--state-dir", "{tmp}/f.txt",
                                           expect=["--state-dir", "not a directory"], files={"f.txt": "x"}),
    "sandbox up --timing slow": _c("sandbox", "up", "--timing", "slow", expect=["--timing", "invalid choice"]),
    "sandbox up --routing-mode x": _c("sandbox", "up", "--routing-mode", "x", expect=["--routing-mode"]),
    "sandbox events, no sandbox": _c("sandbox", "events", "--state-dir", "{tmp}/none",
                                     expect=["--state-dir", "gameday sandbox up"]),
    "sandbox status, no sandbox": _c("sandbox", "status", "--state-dir", "{tmp}/none",
                                     expect=["endpoints", "gameday sandbox up"]),
    "sandbox env, no sandbox": _c("sandbox", "env", "--state-dir", "{tmp}/none", expect=["no sandbox is running"]),
    "unknown command": _c("bogus", expect=["invalid choice", "--help"]),
    "provision up --var-file missing": _c("provision", "up", "--state-dir", "{tmp}/state", "--var-file",
                                          "/nonexistent.tfvars", expect=["/nonexistent.tfvars", "--var-file"]),
    "provision up --var-file syntax": _c("provision", "up", "--state-dir", "{tmp}/state", "--var-file",
                                         "{tmp}/bad.tfvars", expect=["bad.tfvars", "expected '='"],
                                         files={"bad.tfvars": "recovery_traffic_dial 0\n"}),
    "provision up --timeout -1": _c("provision", "up", "--state-dir", "{tmp}/state", "--timeout", "-1",
                                    expect=["--timeout"]),
    "provision up --target bogus": _c("provision", "up", "--target", "bogus", expect=["--target"]),
    "provision aws: no password": _c("provision", "up", "--target", "aws", "--state-dir", "{tmp}/state",
                                     expect=["GAMEDAY_DB_PASSWORD"], env={"GAMEDAY_DB_PASSWORD": ""}),
    "provision aws: no config": _c("provision", "up", "--target", "aws", "--state-dir", "{tmp}/state",
                                   expect=["config.yaml", "allow-list"]),
    "provision aws: $GAMEDAY_CONFIG missing": _c("provision", "up", "--target", "aws", "--state-dir", "{tmp}/st",
                                                 expect=["/nonexistent/gd.yaml"],
                                                 env={"GAMEDAY_CONFIG": "/nonexistent/gd.yaml"}),
    "provision aws: --config missing": _c("provision", "up", "--target", "aws", "--config", "{tmp}/no.yaml",
                                          expect=["no.yaml", "--config"]),
    "config: YAML syntax": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                              expect=["c.yaml", "invalid YAML"], files={"c.yaml": "accounts: [1\n"}),
    "config: not a mapping": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                                expect=["c.yaml", "mapping"], files={"c.yaml": "- a\n"}),
    "config: unknown key": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                              expect=["field 'acounts'"], files={"c.yaml": OK_CONFIG + "acounts: []\n"}),
    "config: account not 12 digits": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                                        expect=["field 'accounts.0'", "12-digit"],
                                        files={"c.yaml": OK_CONFIG.replace("'123456789012'", "'12345'")}),
    "config: account a number": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                                   expect=["field 'accounts.0'"],
                                   files={"c.yaml": OK_CONFIG.replace("'123456789012'", "123456789012")}),
    "config: regions missing": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                                  expect=["field 'regions'", "required"],
                                  files={"c.yaml": "accounts: ['123456789012']\nscope_tag: {value: x}\n"}),
    "config: bad region": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                             expect=["field 'regions.0'"], files={"c.yaml": OK_CONFIG.replace("eu-south-1", "Mars")}),
    "config: max_regions 2": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                                expect=["blast_radius.max_regions"],
                                files={"c.yaml": OK_CONFIG + "blast_radius: {max_regions: 2}\n"}),
    "config: max_percent 150": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                                  expect=["blast_radius.max_percent"],
                                  files={"c.yaml": OK_CONFIG + "blast_radius: {max_percent: 150}\n"}),
    "config: apply_to bogus": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                                 expect=["apply_to"], files={"c.yaml": OK_CONFIG + "apply_to: [prod]\n"}),
    "aws: no credentials": _c("provision", "up", "--target", "aws", "--config", "{tmp}/c.yaml",
                              "--state-dir", "{tmp}/state", expect=["no AWS credentials", "AWS_PROFILE"],
                              files={"c.yaml": OK_CONFIG},
                              env={"AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent"}),
    "experiment run: unknown name": _c("experiment", "run", "nope", expect=["NAME", "instance-termination"]),
    "experiment run: bad name": _c("experiment", "run", "a b", expect=["NAME", "not an experiment name"]),
    "experiment run: malformed JSON": _c("experiment", "run", "{tmp}/x.json", "--dry-run",
                                         expect=["x.json", "not valid JSON at line 1"], files={"x.json": "{\"a\": }"}),
    "experiment run: no method": _c("experiment", "run", "{tmp}/x.json", "--dry-run",
                                    expect=["x.json", "field 'method'"], files={"x.json": EXPERIMENT_NO_METHOD}),
    "experiment run: no provider": _c("experiment", "run", "{tmp}/x.json", "--dry-run",
                                      expect=["field 'method[0].provider'"], files={"x.json": EXPERIMENT_NO_PROVIDER}),
    "experiment run: no sandbox": _c("experiment", "run", "instance-termination", "--state-dir", "{tmp}/none",
                                     expect=["--state-dir", "no sandbox is running"]),
    "experiment run: aws without topology": _c("experiment", "run", "instance-termination", "--target", "aws",
                                               expect=["--aws-topology"]),
    "experiment run: --set unknown key": _c("experiment", "run", "instance-termination", "--set", "bogus=1",
                                            expect=["--set", "gameday_timeout_s"]),
    "experiment run: --timeout 0": _c("experiment", "run", "instance-termination", "--timeout", "0",
                                      expect=["--timeout"]),
    "scenario validate: missing": _c("scenario", "validate", "{tmp}/nope.yaml", expect=["nope.yaml", "not found"]),
    "scenario validate: YAML syntax": _c("scenario", "validate", "{tmp}/s.yaml", expect=["s.yaml", "invalid YAML"],
                                         files={"s.yaml": "name: [\n"}),
    "scenario validate: unknown key": _c("scenario", "validate", "{tmp}/s.yaml", expect=["s.yaml", "field"],
                                         files={"s.yaml": "nmae: x\n"}),
    "pytest --scenario nope": _c("-m", "drill", "--scenario", "nope", str(REPO / "scenarios"),
                                 prog="pytest", expect=["--scenario nope", "region-outage"]),
    "pytest --reuse-sandbox missing": _c("-m", "drill", "--reuse-sandbox", "/nonexistent", str(REPO / "scenarios"),
                                         prog="pytest", expect=["--reuse-sandbox", "/nonexistent"]),
    "pytest GAMEDAY_TARGET bogus": _c("-m", "drill", str(REPO / "scenarios"), prog="pytest",
                                      expect=["GAMEDAY_TARGET", "sandbox"], env={"GAMEDAY_TARGET": "moon"}),
    "pytest --target aws without topology": _c("-m", "drill", "--target", "aws", str(REPO / "scenarios"),
                                               prog="pytest", expect=["--aws-topology"]),
    "locust --host not-a-url": _c("-f", str(REPO / "loadtests/locustfile.py"), "--host", "not-a-url",
                                  "--headless", "-u", "1", "-r", "1", "-t", "2s", prog="locust",
                                  expect=["--host", "http"]),
    "locust -u 0": _c("-f", str(REPO / "loadtests/locustfile.py"), "--host", "http://127.0.0.1:9",
                      "--headless", "-u", "0", "-r", "1", "-t", "2s", prog="locust", expect=["-u", "multiple"]),
    "locust GAMEDAY_TARGETS not JSON": _c("-f", str(REPO / "loadtests/locustfile.py"), "--headless", "-u", "1",
                                          "-t", "2s", prog="locust", expect=["GAMEDAY_TARGETS"],
                                          env={"GAMEDAY_TARGETS": "{web"}),
    "locust GAMEDAY_PROBE_RATE -1": _c("-f", str(REPO / "loadtests/locustfile.py"), "--host", "http://127.0.0.1:9",
                                       "--headless", "-u", "1", "-t", "2s", prog="locust",
                                       expect=["GAMEDAY_PROBE_RATE"], env={"GAMEDAY_PROBE_RATE": "-1"}),
}


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 40, len(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(name: str, tmp_path: Path) -> None:
    if "unreadable" in name and os.geteuid() == 0:
        pytest.skip("root reads any file")
    case = CASES[name](tmp_path)
    for rel, text in case.files.items():
        (tmp_path / rel).write_text(text)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "GAMEDAY_", "PYTEST_")) and k != "HOME"}
    # a database password is set, so the aws cases reach the check they are about (its absence is a case)
    env.update({"HOME": str(home), "GAMEDAY_STATE_DIR": str(tmp_path / "default-state"),
                "GAMEDAY_DB_PASSWORD": "long-enough-password", **case.env})
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    prog = {"gameday": [sys.executable, "-m", "gameday"], "pytest": [sys.executable, "-m", "pytest", "-p",
            "no:randomly", "-q", "-p", "no:cacheprovider"], "locust": [str(Path(sys.executable).parent / "locust")]}
    proc = subprocess.run([*prog[case.prog], *argv], env=env, cwd=str(tmp_path), text=True, capture_output=True,
                          timeout=120, check=False)
    out = proc.stdout + proc.stderr
    want = 4 if case.prog == "pytest" else 2   # pytest's own code for a UsageError
    assert proc.returncode == want, (proc.returncode, out[-2000:])
    assert "Traceback" not in out, out[-3000:]
    if case.prog == "gameday":
        lines = proc.stderr.strip().splitlines()
        assert 1 <= len(lines) <= 2 and lines[0].startswith("gameday: error: "), proc.stderr
        assert proc.stdout == "", proc.stdout
    elif case.prog == "locust":
        lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("gameday locustfile: ")]
        assert len(lines) == 1, proc.stderr
    else:
        lines = [ln for ln in out.splitlines() if ln.startswith("ERROR: ")]
        assert len(lines) == 1, out
    for text in case.expect:
        assert text.replace("{tmp}", str(tmp_path)) in out, (text, out[-2000:])
    assert not (tmp_path / "state").exists() or not any((tmp_path / "state").iterdir()), \
        "bad input must be refused before state is written"
    assert not processes_mentioning(str(tmp_path)), "bad input left a process running"
