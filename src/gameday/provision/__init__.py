"""Provisioning: real terraform against AWS or the local control plane, and the Topology it yields."""

from __future__ import annotations

import os
from pathlib import Path

from gameday import resources, settings

TARGETS = ("sandbox", "aws")
#: Where ``provision up --target aws`` kept its state before the layout was one for every target.
OLD_AWS_STATE = Path(".gameday") / "aws"


def module_dir() -> Path:
    """The terraform root module; ``GAMEDAY_TF_MODULE`` overrides it (forks, a changed copy)."""
    return settings.path("GAMEDAY_TF_MODULE") or resources.terraform_module()


def aws_state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The AWS system's state: ``--state-dir``, else ``<state root>/aws`` (see ``settings.state_root``)."""
    return Path(explicit).resolve() if explicit else settings.state_root() / "aws"


def topology_path(state: Path) -> Path:
    """Where ``provision up`` (and a sandbox) saves the redacted Topology: ``<state>/topology.json``."""
    return state / "topology.json"
