"""Provider mirror discovery and binary prerequisites, on this machine's real installs."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gameday.errors import PrerequisiteMissing
from gameday.provision import mirror, prereqs


def _fake_mirror(root: Path, version: str = "5.100.0") -> Path:
    """A mirror laid out like `terraform providers mirror` does (unpacked), for discovery only."""
    d = root / "registry.terraform.io" / "hashicorp" / "aws" / version / mirror.os_arch()
    d.mkdir(parents=True)
    (d / f"terraform-provider-aws_v{version}_x5").write_text("")
    return root


@pytest.fixture(autouse=True)
def _no_mirror_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(mirror.ENV_MIRROR, raising=False)


def test_discovers_the_machine_mirror() -> None:
    found = mirror.find_provider_mirror(online=False)
    assert found is not None
    assert mirror.provider_versions(found), f"{found} holds hashicorp/aws"


def test_env_variable_wins_and_is_authoritative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _fake_mirror(tmp_path / "m")
    monkeypatch.setenv(mirror.ENV_MIRROR, str(fake))
    assert mirror.find_provider_mirror() == fake
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv(mirror.ENV_MIRROR, str(empty))
    with pytest.raises(PrerequisiteMissing) as ei:
        mirror.find_provider_mirror()
    assert mirror.ENV_MIRROR in str(ei.value) and "registry.terraform.io/hashicorp/aws" in str(ei.value)


def test_search_order_and_layouts(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    _fake_mirror(b, "5.1.0")
    packed = a / "registry.terraform.io" / "hashicorp" / "aws"
    packed.mkdir(parents=True)
    (packed / f"terraform-provider-aws_5.2.0_{mirror.os_arch()}.zip").write_bytes(b"PK")
    assert mirror.find_provider_mirror(search=[a, b], online=False) == a
    assert mirror.provider_versions(a) == ["5.2.0"]
    assert mirror.find_provider_mirror(search=[tmp_path / "none", b], online=False) == b


def test_missing_mirror_offline_is_a_prerequisite_error(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteMissing) as ei:
        mirror.find_provider_mirror(search=[tmp_path], online=False)
    assert mirror.ENV_MIRROR in str(ei.value) and str(tmp_path) in str(ei.value)
    # online, terraform may download it: no mirror, no error
    assert mirror.find_provider_mirror(search=[tmp_path], online=True) is None


def test_existing_cli_config_mirror_is_read(tmp_path: Path) -> None:
    cfg = tmp_path / "rc"
    cfg.write_text('provider_installation {\n  filesystem_mirror {\n    path = "/srv/mirror"\n'
                   '    include = ["registry.terraform.io/*/*"]\n  }\n  direct {}\n}\n')
    assert Path("/srv/mirror") in mirror.configured_mirrors(cfg)


def test_cli_config_makes_terraform_use_the_mirror(tmp_path: Path) -> None:
    found = mirror.find_provider_mirror(online=False)
    cfg = mirror.write_cli_config(tmp_path / "tf.rc", found)
    text = cfg.read_text()
    assert f'path    = "{found}"' in text
    assert not any(line.startswith("plugin_cache_dir") for line in text.splitlines())
    assert "direct" not in text
    mod = tmp_path / "mod"
    mod.mkdir()
    (mod / "main.tf").write_text('terraform {\n  required_providers {\n'
                                 '    aws = { source = "hashicorp/aws" }\n  }\n}\n')
    env = {**os.environ, "TF_CLI_CONFIG_FILE": str(cfg), "CHECKPOINT_DISABLE": "1"}
    env.pop("TF_PLUGIN_CACHE_DIR", None)
    argv = [str(prereqs.find_terraform()), "init", "-input=false", "-no-color"]
    cp = subprocess.run(argv, cwd=mod, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert "Installing hashicorp/aws" in cp.stdout


def test_find_terraform_real_and_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tf = prereqs.find_terraform()
    assert prereqs.terraform_version(tf) >= prereqs.MIN_TERRAFORM
    monkeypatch.setenv("GAMEDAY_TERRAFORM", str(tmp_path / "nope"))
    with pytest.raises(PrerequisiteMissing, match="GAMEDAY_TERRAFORM"):
        prereqs.find_terraform()
    monkeypatch.delenv("GAMEDAY_TERRAFORM")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PrerequisiteMissing, match="not on PATH"):
        prereqs.find_terraform()


def test_find_haproxy_and_pg_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hp = prereqs.find_haproxy()
    assert hp.name == "haproxy"
    pg = prereqs.find_pg_bin()
    assert all((pg / t).exists() for t in prereqs.PG_TOOLS)
    monkeypatch.setenv("GAMEDAY_PG_BIN", str(tmp_path))
    with pytest.raises(PrerequisiteMissing) as ei:
        prereqs.find_pg_bin()
    assert "initdb" in str(ei.value) and "GAMEDAY_PG_BIN" in str(ei.value)
    monkeypatch.setenv("GAMEDAY_HAPROXY", str(tmp_path / "haproxy"))
    with pytest.raises(PrerequisiteMissing, match="GAMEDAY_HAPROXY"):
        prereqs.find_haproxy()


def test_parse_version() -> None:
    assert prereqs.parse_version("HAProxy version 2.6.12-1+deb12u4") == (2, 6, 12)
    assert prereqs.parse_version("postgres (PostgreSQL) 15.8 (Debian 15.8-0+deb12u1)") == (15, 8)
    assert prereqs.parse_version("no digits") == ()
    assert shutil.which("terraform") is not None
