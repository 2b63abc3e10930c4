"""Terraform stack tests: a private copy of provision/terraform per test, a mirror-only CLI config."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gameday.provision.mirror import write_cli_config

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "provision" / "terraform"


def copy_stack(dest: Path) -> Path:
    """Copy the HCL (not .terraform/ or state) so runs never touch the repo or each other."""
    shutil.copytree(
        STACK,
        dest,
        ignore=shutil.ignore_patterns(".terraform", "*.tfstate*", ".terraform.lock.hcl", "*_override.tf"),
    )
    return dest


@pytest.fixture()
def stack_copy(tmp_path: Path) -> Path:
    return copy_stack(tmp_path / "stack")


@pytest.fixture()
def stack_dir() -> Path:
    return STACK


@pytest.fixture()
def tf_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    if shutil.which("terraform") is None:
        pytest.fail("terraform is not installed (needed: terraform >= 1.5 on PATH)")
    cli = write_cli_config(tmp_path / "cli.tfrc")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(cli),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            "TF_DATA_DIR": str(tmp_path / "tfdata"),
        }
    )
    yield env
