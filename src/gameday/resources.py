"""Where the files gameday reads at run time come from, in one place.

The Terraform module, the experiments, the scenarios, the locustfile and the game-day plans are
plain folders of the repository. Run from a checkout (an editable install, the tests) they are the
checkout's own folders, so an edit takes effect at once. An installed wheel has no checkout: the
build copies the same folders, same layout, into the package as ``gameday/_data`` (see setup.py),
and they are found there with importlib.resources.
"""

from __future__ import annotations

import importlib.resources
from functools import cache
from pathlib import Path

from gameday.errors import ResourceMissing

#: Every folder the harness reads at run time, relative to the repository root (and to ``_data``).
RESOURCES: dict[str, str] = {
    "terraform": "provision/terraform",
    "experiments": "experiments",
    "scenarios": "scenarios",
    "loadtests": "loadtests",
    "gamedays": "gamedays",
    "monitoring": "monitoring",
}
#: The folder inside the package that a wheel carries them in.
DATA_DIR = "_data"

_PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def checkout_root() -> Path | None:
    """The repository this package is imported from (``<root>/src/gameday``), None when installed."""
    root = _PACKAGE_DIR.parents[1]
    project = root / "pyproject.toml"
    if _PACKAGE_DIR.parent.name == "src" and project.is_file() and \
            'name = "gameday"' in project.read_text(encoding="utf-8"):
        return root
    return None


@cache
def data_root() -> Path:
    """The folder the resources hang from: the checkout's root, else the installed ``gameday/_data``.

    A path even when nothing is there; :func:`resource` says what is missing.
    """
    root = checkout_root()
    if root is not None:
        return root
    shipped = importlib.resources.files("gameday") / DATA_DIR
    # a package imported from a zip has no directory terraform or chaos could be pointed at
    return shipped if isinstance(shipped, Path) else _PACKAGE_DIR / DATA_DIR


def resource_path(name: str) -> Path:
    """Where resource ``name`` (a key of RESOURCES) lives; not checked (see :func:`resource`)."""
    return data_root() / RESOURCES[name]


def resource(name: str) -> Path:
    """The folder of resource ``name``; ResourceMissing, naming it and the fix, when it is absent."""
    path = resource_path(name)
    if not path.is_dir():
        if checkout_root() is not None:
            hint = f"restore the repository's {RESOURCES[name]}/ folder (git checkout -- {RESOURCES[name]})"
        else:
            hint = ("reinstall gameday from a wheel built by its own build (it ships the folder as "
                    f"gameday/{DATA_DIR}/{RESOURCES[name]}), or install from a checkout")
        raise ResourceMissing(f"gameday's {RESOURCES[name]}/ folder", str(path), hint)
    return path


def terraform_module() -> Path:
    """The reference Terraform root module."""
    return resource("terraform")


def experiments_dir() -> Path:
    """The Chaos Toolkit experiments."""
    return resource("experiments")


def scenarios_dir() -> Path:
    """The drill scenarios (and the pytest file that runs them)."""
    return resource("scenarios")


def locustfile() -> Path:
    """The load generator's locustfile."""
    return resource("loadtests") / "locustfile.py"


def gamedays_dir() -> Path:
    """The game-day plans (``weekly.yaml``)."""
    return resource("gamedays")
