"""``gameday sandbox up --var-file/--var`` as users meet it: what is accepted, and every bad input.

Bad input must end the real CLI (a subprocess) with exit 2 and one error line naming the file
and the variable plus its fix line, no traceback, and nothing started: no daemon, no control
plane, no state written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from gameday.cli import build_parser
from gameday.errors import ConfigError
from gameday.provision.sandbox import (
    CLI_VARS_FILE,
    check_sandbox_vars,
    declared_variables,
    read_tfvars,
    terraform_var_files,
)
from gameday.util.procs import processes_mentioning

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = REPO_ROOT / "provision" / "terraform" / "examples"


def _gameday(*args: str, state: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GAMEDAY_STATE_DIR": str(state)}
    return subprocess.run([sys.executable, "-m", "gameday", *args], env=env, text=True, capture_output=True,
                          timeout=timeout, cwd=str(state.parent), check=False)


# ------------------------------------------------------------------ accepted input


def test_up_parses_repeated_var_files_and_vars() -> None:
    args = build_parser().parse_args(["sandbox", "up", "--var-file", "a.tfvars", "--var-file", "b.tfvars",
                                      "--var", "recovery_traffic_dial=0", "--var", "tags={a = \"b\"}"])
    assert args.var_file == ["a.tfvars", "b.tfvars"]
    assert args.var == ["recovery_traffic_dial=0", 'tags={a = "b"}']
    plain = build_parser().parse_args(["sandbox", "up"])
    assert plain.var_file == [] and plain.var == []


def test_tfvars_reader_takes_the_literal_language(tmp_path: Path) -> None:
    f = tmp_path / "all.tfvars"
    f.write_text('# comment\n'
                 'primary_region = "us-east-2" // trailing comment\n'
                 '/* block\n comment */\n'
                 'services = ["web",\n  "orders", ]\n'
                 'tags = { team = "sre", "cost:center" : "42" }\n'
                 'recovery_traffic_dial = 0\n'
                 'route53_record_ttl = 1.5e1\n'
                 'frontend_bucket_name = null\n'
                 'create_timeout = <<-EOT\n    5s\n    EOT\n'
                 'name_prefix = "a$${b}\\n\\u00e9"\n')
    values = {k: v for k, (v, _line) in read_tfvars(f, str(f)).items()}
    assert values == {"primary_region": "us-east-2", "services": ["web", "orders"],
                      "tags": {"team": "sre", "cost:center": "42"}, "recovery_traffic_dial": 0,
                      "route53_record_ttl": 15.0, "frontend_bucket_name": None, "create_timeout": "5s\n",
                      "name_prefix": "a${b}\n\u00e9"}
    assert check_sandbox_vars([f]).var_files == (str(f.resolve()),)


def test_tfvars_json_is_accepted(tmp_path: Path) -> None:
    f = tmp_path / "dial.tfvars.json"
    f.write_text(json.dumps({"recovery_traffic_dial": 0}))
    assert check_sandbox_vars([f]).var_files == (str(f.resolve()),)


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.tfvars")))
def test_shipped_examples_set_only_declared_variables(example: str) -> None:
    """Every example parses and names variables of provision/terraform (terraform would only warn)."""
    path = EXAMPLES / example
    assert path.read_text().startswith("#"), f"{example}: header comment missing"
    names = set(read_tfvars(path, example))
    assert names and names <= set(declared_variables()), f"{example}: {names - set(declared_variables())}"
    check_sandbox_vars([path])


def test_cli_vars_go_last_typed_like_terraform_var(tmp_path: Path) -> None:
    """--var values become one JSON var file after the user's files; complex types parsed as HCL."""
    f = tmp_path / "dial.tfvars"
    f.write_text("recovery_traffic_dial = 50\n")
    files = terraform_var_files(tmp_path / "state", [f], ["recovery_traffic_dial=0", 'services=["web", "orders"]'])
    assert files == [str(f.resolve()), str(tmp_path / "state" / CLI_VARS_FILE)]
    assert json.loads(Path(files[-1]).read_text()) == {"recovery_traffic_dial": "0", "services": ["web", "orders"]}
    assert terraform_var_files(tmp_path / "state", [f]) == [str(f.resolve())]
    assert not (tmp_path / "state" / CLI_VARS_FILE).exists(), "a stale --var file would still be applied"


def test_var_wins_over_var_file_in_real_terraform(tmp_path: Path) -> None:
    """The order terraform_var_files promises, applied by terraform itself (a provider-less module)."""
    from gameday.provision.runner import TerraformRunner

    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text('variable "dial" {\n  type = number\n}\n'
                                    'variable "names" {\n  type = list(string)\n  default = []\n}\n'
                                    'output "dial" {\n  value = var.dial\n}\n'
                                    'output "names" {\n  value = var.names\n}\n')
    f = tmp_path / "a.tfvars"
    f.write_text("dial = 50\nnames = [\"x\"]\n")
    files = terraform_var_files(tmp_path / "state", [f], ["dial=0"], module=module)
    runner = TerraformRunner(module, tmp_path / "work", var_files=files, timeout_s=120.0)
    runner.init()
    runner.apply()
    out = runner.output()
    assert out["dial"] == 0 and out["names"] == ["x"]


# ------------------------------------------------------------------ bad input

BadCase = Callable[[Path], tuple[list[str], str | None, str, str]]


def _missing(d: Path) -> tuple[list[str], str | None, str, str]:
    return ["--var-file", str(d / "nope.tfvars")], str(d / "nope.tfvars"), "does not exist", "existing"


def _directory(d: Path) -> tuple[list[str], str | None, str, str]:
    (d / "dir.tfvars").mkdir()
    return ["--var-file", str(d / "dir.tfvars")], str(d / "dir.tfvars"), "not a regular file", "fix:"


def _unreadable(d: Path) -> tuple[list[str], str | None, str, str]:
    f = d / "secret.tfvars"
    f.write_text("recovery_traffic_dial = 0\n")
    f.chmod(0)
    return ["--var-file", str(f)], str(f), "not readable", "chmod"


def _binary(d: Path) -> tuple[list[str], str | None, str, str]:
    f = d / "binary.tfvars"
    f.write_bytes(b"\xff\xfe\x00garbage")
    return ["--var-file", str(f)], str(f), "not UTF-8", "fix:"


def _syntax(d: Path) -> tuple[list[str], str | None, str, str]:
    f = d / "syntax.tfvars"
    f.write_text("# fine\nrecovery_traffic_dial 0\n")
    return ["--var-file", str(f)], str(f), "field 'recovery_traffic_dial': line 2, column 23: expected '='", "fix:"


def _reference(d: Path) -> tuple[list[str], str | None, str, str]:
    f = d / "ref.tfvars"
    f.write_text("primary_region = var.region\n")
    return ["--var-file", str(f)], str(f), "field 'primary_region'", "quote strings"


def _undeclared(d: Path) -> tuple[list[str], str | None, str, str]:
    f = d / "typo.tfvars"
    f.write_text("recovery_traffic_dail = 0\n")
    return ["--var-file", str(f)], str(f), "field 'recovery_traffic_dail': variable 'recovery_traffic_dail' " \
        "(line 1) is not declared", "did you mean 'recovery_traffic_dial'"


def _wrong_type(d: Path) -> tuple[list[str], str | None, str, str]:
    f = d / "type.tfvars"
    f.write_text('recovery_traffic_dial = "half"\n')
    return ["--var-file", str(f)], str(f), "field 'recovery_traffic_dial': recovery_traffic_dial is a number", \
        "recovery_traffic_dial = 0"


def _password(d: Path) -> tuple[list[str], str | None, str, str]:
    f = d / "pw.tfvars"
    f.write_text('db_password = "hunter2hunter2"\n')
    return ["--var-file", str(f)], str(f), "field 'db_password'", "remove it from the file"


def _bad_json(d: Path) -> tuple[list[str], str | None, str, str]:
    f = d / "bad.tfvars.json"
    f.write_text('{"recovery_traffic_dial": }')
    return ["--var-file", str(f)], str(f), "not valid JSON", "fix:"


def _var_syntax(d: Path) -> tuple[list[str], str | None, str, str]:
    return ["--var", "recovery_traffic_dial"], None, "field '--var': --var 'recovery_traffic_dial' is not NAME=VALUE", \
        "--var recovery_traffic_dial=0"


def _var_undeclared(d: Path) -> tuple[list[str], str | None, str, str]:
    return ["--var", "db_multi_azz=false"], None, "field 'db_multi_azz': variable 'db_multi_azz' (--var)", \
        "fix:"


def _var_complex(d: Path) -> tuple[list[str], str | None, str, str]:
    return ["--var", "services=[web]"], None, "field 'services'", "--var 'services="


def _cluster_file(d: Path) -> tuple[list[str], str | None, str, str]:
    f = d / "cluster.tfvars"
    f.write_text('database_mode = "cluster"\n')
    return ["--var-file", str(f)], str(f), "field 'database_mode': database_mode = 'cluster' is not supported by " \
        "the sandbox yet", "database_mode = \"instance\""


def _cluster_var(d: Path) -> tuple[list[str], str | None, str, str]:
    return ["--var", "database_mode=cluster"], None, "field 'database_mode': database_mode = 'cluster' is not " \
        "supported by the sandbox yet", "does not map Aurora clusters"


BAD_INPUT: dict[str, BadCase] = {
    "missing file": _missing, "directory": _directory, "unreadable file": _unreadable, "not UTF-8": _binary,
    "HCL syntax": _syntax, "reference instead of a literal": _reference, "undeclared variable": _undeclared,
    "wrong type": _wrong_type, "reserved db_password": _password, "broken .tfvars.json": _bad_json,
    "database_mode cluster (file)": _cluster_file, "database_mode cluster (--var)": _cluster_var,
    "--var without =": _var_syntax, "--var undeclared": _var_undeclared, "--var list not HCL": _var_complex,
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_is_one_clear_line_exit_2_nothing_started(case: str, tmp_path: Path) -> None:
    if case == "unreadable file" and os.geteuid() == 0:
        pytest.skip("root reads any file")
    args, file, message, fix = BAD_INPUT[case](tmp_path)
    state = tmp_path / "state"
    proc = _gameday("sandbox", "up", "--state-dir", str(state), *args, state=state)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, proc.stderr          # the error, and its fix
    assert lines[0].startswith("gameday: error: "), proc.stderr
    if file is not None:
        assert file in lines[0], proc.stderr
    assert message in lines[0], proc.stderr
    assert fix in proc.stderr, proc.stderr
    assert not state.exists(), "bad input must be rejected before the state dir is touched"
    assert not processes_mentioning(str(tmp_path)), "bad input left a process running"


def test_config_errors_name_file_and_field(tmp_path: Path) -> None:
    f = tmp_path / "typo.tfvars"
    f.write_text("\n\nrecovery_trafic_dial = 0\n")
    with pytest.raises(ConfigError) as ei:
        check_sandbox_vars([f])
    assert ei.value.file == str(f) and ei.value.field == "recovery_trafic_dial" and ei.value.exit_code == 2
    assert "(line 3)" in str(ei.value)


def test_env_without_a_sandbox_is_exit_2(tmp_path: Path) -> None:
    state = tmp_path / "state"
    proc = _gameday("sandbox", "env", "--state-dir", str(state), state=state)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"gameday: error: {state}: no sandbox is running"), proc.stderr
    assert "gameday sandbox up" in proc.stderr


def test_status_names_the_var_files() -> None:
    """``gameday sandbox status`` says which Terraform variant runs (from the daemon's endpoints)."""
    from gameday.cli import format_status

    text = format_status({"timing": "fast", "endpoints": {"var_files": ["/x/single-az.tfvars"]}})
    assert "terraform var files: /x/single-az.tfvars" in text
    assert "terraform var files" not in format_status({"timing": "fast", "endpoints": {"var_files": []}})


def test_daemon_refuses_cluster_mode_at_once(tmp_path: Path) -> None:
    """Started directly (not through `gameday sandbox up`), the daemon refuses before it starts anything."""
    state = tmp_path / "state"
    proc = subprocess.run([sys.executable, "-m", "gameday.sandbox.daemon", "--state-dir", str(state),
                           "--var", "database_mode=cluster", "--snapshots", "off"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    progress = (state / "progress.log").read_text()
    assert "FAILED: field 'database_mode': database_mode = 'cluster' is not supported by the sandbox yet" in progress
    assert "control plane at" not in progress and "DOWN" in progress
    assert not (state / "endpoints.json").exists()
    assert not processes_mentioning(str(tmp_path)), "the refused daemon left a process running"
